#include <math.h>
#include <string.h>

#include "gesso.h"
#include "tensor/arena.h"
#include "tensor/half.h"
#include "tensor/tensor.h"

static void
test_arena_alignment_and_exhaustion (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoArena) arena = gesso_arena_new (1000, &error);
  g_assert_no_error (error);

  void *a = gesso_arena_alloc (arena, 3);
  void *b = gesso_arena_alloc (arena, 100);
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_cmpuint ((uintptr_t) a % GESSO_ARENA_ALIGN, ==, 0);
  g_assert_cmpuint ((uintptr_t) b % GESSO_ARENA_ALIGN, ==, 0);
  g_assert_cmpuint (gesso_arena_used (arena), ==, 64 + 128);

  size_t mark = gesso_arena_mark (arena);
  g_assert_null (gesso_arena_alloc (arena, 2000));
  g_assert_nonnull (gesso_arena_alloc (arena, 500));
  gesso_arena_reset (arena, mark);
  g_assert_cmpuint (gesso_arena_used (arena), ==, mark);
  g_assert_cmpuint (gesso_arena_peak (arena), ==, mark + 512);
  g_assert_null (gesso_arena_alloc (arena, SIZE_MAX));
}

static void
test_tensor_ownership (void)
{
  g_autoptr (GError) error = NULL;
  GessoTensor t;
  const int64_t shape[] = { 2, 3, 5, 7 };

  g_assert_true (gesso_tensor_new (&t, 4, shape, &error));
  g_assert_true (t.owns_data);
  g_assert_cmpint (gesso_tensor_numel (&t), ==, 210);
  memset (t.data, 0, 210 * sizeof (float));
  gesso_tensor_free (&t);
  g_assert_null (t.data);

  g_autoptr (GessoArena) arena = gesso_arena_new (512, &error);
  g_assert_true (gesso_tensor_new_in (&t, arena, 2, shape, &error));
  g_assert_false (t.owns_data);
  g_assert_false (gesso_tensor_new_in (&t, arena, 4, shape, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY);
  g_clear_error (&error);

  const int64_t huge[] = { INT64_MAX / 2, 4 };
  g_assert_false (gesso_tensor_new (&t, 2, huge, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);

  g_autofree char *s = gesso_tensor_shape_string (4, shape);
  g_assert_cmpstr (s, ==, "[2, 3, 5, 7]");
}

/* Reference: the value an F16 bit pattern denotes, from its definition. */
static double
f16_reference (uint16_t h)
{
  int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double v;

  if (exponent == 31)
    return mantissa ? NAN : (sign ? -INFINITY : INFINITY);
  if (exponent == 0)
    v = ldexp (mantissa, -24);
  else
    v = ldexp (1024 + mantissa, exponent - 25);
  return sign ? -v : v;
}

static void
test_f16_exhaustive (void)
{
  uint16_t all[65536];
  float out[65536];

  for (uint32_t i = 0; i < 65536; i++)
    all[i] = (uint16_t) i;
  /* odd start: the vector path must cope with unaligned input and a scalar tail */
  gesso_f16_to_f32_array ((const uint8_t *) all + 2, out, 65535);
  for (uint32_t i = 1; i < 65536; i++)
    {
      double ref = f16_reference ((uint16_t) i);
      float got = out[i - 1];
      if (isnan (ref))
        g_assert_true (isnan (got));
      else
        {
          g_assert_cmpfloat ((double) got, ==, ref);
          g_assert_cmpint (signbit (got) != 0, ==, signbit (ref) != 0);
        }
      g_assert_true (got == gesso_f16_to_f32 ((uint16_t) i) || isnan (got));
      if (!isnan (ref))
        g_assert_cmpuint (gesso_f32_to_f16 (got), ==, i);
    }
  g_assert_true (isnan (gesso_f16_to_f32 (gesso_f32_to_f16 (NAN))));
  g_assert_cmpuint (gesso_f32_to_f16 (1e6f), ==, 0x7c00);
  g_assert_cmpuint (gesso_f32_to_f16 (65519.0f), ==, 0x7bff);
  g_assert_cmpuint (gesso_f32_to_f16 (65520.0f), ==, 0x7c00);
  /* halfway between 1 and the next half rounds to even (1) */
  g_assert_cmpuint (gesso_f32_to_f16 (1.0f + 0x1p-11f), ==, 0x3c00);
  g_assert_cmpuint (gesso_f32_to_f16 (0x1p-25f), ==, 0);        /* tie to even: 0 */
  g_assert_cmpuint (gesso_f32_to_f16 (0x1.8p-25f), ==, 1);
}

static void
test_bf16_exhaustive (void)
{
  static uint16_t all[65536 + 1];
  static float out[65536];

  for (uint32_t i = 0; i < 65536; i++)
    all[i + 1] = (uint16_t) i;
  gesso_bf16_to_f32_array (all + 1, out, 65536);
  for (uint32_t i = 0; i < 65536; i++)
    {
      uint32_t bits = i << 16;
      float ref;
      memcpy (&ref, &bits, sizeof ref);
      if (isnan (ref))
        {
          g_assert_true (isnan (out[i]));
          g_assert_true (isnan (gesso_bf16_to_f32 (gesso_f32_to_bf16 (ref))));
        }
      else
        {
          g_assert_true (memcmp (&ref, &out[i], sizeof ref) == 0);
          g_assert_cmpuint (gesso_f32_to_bf16 (ref), ==, i);
        }
    }
  g_assert_cmpuint (gesso_f32_to_bf16 (1.0f + 0x1p-8f), ==, 0x3f80);   /* tie to even */
  g_assert_cmpuint (gesso_f32_to_bf16 (1.0f + 0x1.8p-8f), ==, 0x3f81);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/tensor/arena/alignment-and-exhaustion",
                   test_arena_alignment_and_exhaustion);
  g_test_add_func ("/core/tensor/ownership", test_tensor_ownership);
  g_test_add_func ("/core/tensor/half/f16-exhaustive-exact", test_f16_exhaustive);
  g_test_add_func ("/core/tensor/half/bf16-exhaustive-exact", test_bf16_exhaustive);
  return g_test_run ();
}
