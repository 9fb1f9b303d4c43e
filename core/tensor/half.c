#include "tensor/half.h"

#include <glib.h>

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

static inline uint32_t
float_bits (float f)
{
  uint32_t u;
  memcpy (&u, &f, sizeof u);
  return u;
}

static inline float
bits_float (uint32_t u)
{
  float f;
  memcpy (&f, &u, sizeof f);
  return f;
}

float
gesso_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;

  if (exponent == 0x1f)                         /* inf / NaN: keep the payload */
    return bits_float (sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)                            /* normal: rebias 15 -> 127 */
    return bits_float (sign | ((exponent + 112u) << 23) | (mantissa << 13));
  /* zero or subnormal: mantissa * 2^-24, exactly representable in float32 */
  return bits_float (sign) + (sign ? -1.0f : 1.0f) * (float) mantissa * 0x1p-24f;
}

float
gesso_bf16_to_f32 (uint16_t b)
{
  return bits_float ((uint32_t) b << 16);
}

uint16_t
gesso_f32_to_f16 (float f)
{
  uint32_t u = float_bits (f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;

  if (abs >= 0x7f800000u)                       /* inf or NaN */
    return (uint16_t) (sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0));
  if (abs >= 0x477ff000u)                       /* rounds to >= 65536: overflow to inf */
    return (uint16_t) (sign | 0x7c00u);
  if (abs < 0x38800000u)                        /* below the smallest normal half */
    {
      /* scale so the half subnormal's unit is 1.0, round to nearest even by the FPU */
      float scaled = bits_float (abs) * 0x1p24f;
      uint32_t m = (uint32_t) nearbyintf (scaled);   /* default rounding: nearest even */
      return (uint16_t) (sign | m);             /* m == 0x400 becomes the smallest normal */
    }
  /* normal: round the 13 dropped mantissa bits to nearest even */
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return (uint16_t) (sign | ((rounded - 0x38000000u) >> 13));
}

uint16_t
gesso_f32_to_bf16 (float f)
{
  uint32_t u = float_bits (f);

  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((u >> 16) | 0x40u);      /* quiet NaN, never rounded into inf */
  return (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static void
f16_to_f32_scalar (const uint8_t *src, float *dst, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      uint16_t h;
      memcpy (&h, src + 2 * i, sizeof h);
      dst[i] = gesso_f16_to_f32 (h);
    }
}

#ifdef HAVE_X86
static gboolean
cpu_has_f16c (void)
{
  unsigned int eax, ebx, ecx, edx;

  /* F16C needs AVX state; both are CPUID leaf 1 ECX bits (29 and 28) */
  if (!__get_cpuid (1, &eax, &ebx, &ecx, &edx))
    return FALSE;
  return (ecx & bit_F16C) && (ecx & bit_AVX) && (ecx & bit_OSXSAVE);
}

/* vcvtph2ps converts exactly, subnormals and NaN payloads included. */
__attribute__ ((target ("avx,f16c"))) static void
f16_to_f32_f16c (const uint8_t *src, float *dst, size_t n)
{
  size_t i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m128i h = _mm_loadu_si128 ((const __m128i *) (src + 2 * i));
      _mm256_storeu_ps (dst + i, _mm256_cvtph_ps (h));
    }
  f16_to_f32_scalar (src + 2 * i, dst + i, n - i);
}
#endif

void
gesso_f16_to_f32_array (const void *src, float *dst, size_t n)
{
#ifdef HAVE_X86
  static int has_f16c = -1;

  if (has_f16c < 0)
    has_f16c = cpu_has_f16c ();
  if (has_f16c)
    {
      f16_to_f32_f16c (src, dst, n);
      return;
    }
#endif
  f16_to_f32_scalar (src, dst, n);
}

void
gesso_bf16_to_f32_array (const void *src, float *dst, size_t n)
{
  const uint8_t *bytes = src;
  uint32_t *out = (uint32_t *) dst;

  /* a shift per element: the compiler vectorises this loop at any -march */
  for (size_t i = 0; i < n; i++)
    {
      uint16_t b;
      memcpy (&b, bytes + 2 * i, sizeof b);
      out[i] = (uint32_t) b << 16;
    }
}
