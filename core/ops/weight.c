/* Weights as stored, widened to float32 where a kernel multiplies with them; see ops.h.
 *
 * A whole weight is widened before its products rather than a panel at a time while packing:
 * the products then get exactly the operands, shapes and leading dimensions they got when the
 * weights were widened at load, so results stay bit-identical whatever kernels the GEMM
 * provider picks for a shape (OpenBLAS sums a small slice of a product differently from the
 * whole: see gemm.c). Widening is cheap next to the products that use the weight: every
 * weight of a UNet evaluation is widened once per guidance pair (bench-unet measures it).
 */
#include <omp.h>
#include <string.h>

#include "ops/ops.h"
#include "tensor/arena.h"
#include "tensor/half.h"

/* Elements one thread widens at a time: big enough to amortise the loop, small enough that
 * two threads share a small weight. */
#define WIDEN_CHUNK ((int64_t) 1 << 16)
/* Below this a weight is widened on the calling thread alone. */
#define PARALLEL_MIN_ELEMENTS ((int64_t) 1 << 18)

typedef struct
{
  float *data;
  size_t capacity;              /* floats */
} ThreadBuffer;

static void
thread_buffer_free (gpointer data)
{
  ThreadBuffer *buffer = data;

  g_aligned_free (buffer->data);
  g_free (buffer);
}

static GPrivate thread_buffer_key = G_PRIVATE_INIT (thread_buffer_free);
/* a second one for a delta's factors, widened beside the weight they change */
static GPrivate factor_buffer_key = G_PRIVATE_INIT (thread_buffer_free);

/* The calling thread's buffer of KEY, grown to hold N floats. */
static float *
thread_buffer_of (GPrivate *key, size_t n)
{
  ThreadBuffer *buffer = g_private_get (key);

  if (buffer == NULL)
    {
      buffer = g_new0 (ThreadBuffer, 1);
      g_private_set (key, buffer);
    }
  if (buffer->capacity < n)
    {
      g_aligned_free (buffer->data);
      buffer->data = g_aligned_alloc (n, sizeof (float), GESSO_ARENA_ALIGN);
      buffer->capacity = n;
    }
  return buffer->data;
}

static float *
thread_buffer (size_t n)
{
  return thread_buffer_of (&thread_buffer_key, n);
}

static void
widen_elements (const void *data, GessoDType dtype, int64_t first, int64_t count, float *dst)
{
  if (dtype == GESSO_DTYPE_F32)
    memcpy (dst + first, (const float *) data + first, (size_t) count * sizeof (float));
  else if (dtype == GESSO_DTYPE_F16)
    gesso_f16_to_f32_array ((const uint16_t *) data + first, dst + first, (size_t) count);
  else
    gesso_bf16_to_f32_array ((const uint16_t *) data + first, dst + first, (size_t) count);
}

void
gesso_weight_release_buffer (void)
{
  g_private_replace (&thread_buffer_key, NULL);
  g_private_replace (&factor_buffer_key, NULL);
}

static void
widen_range (const GessoWeight *w, int64_t first, int64_t count, float *dst)
{
  widen_elements (w->data, w->dtype, first, count, dst);
}

/* DST [rows, cols] += scale * up * down. The factors are small (rank rows or columns), so the
 * product costs rank / pixels of the layer's own: a few percent of a UNet evaluation. */
static void
add_delta (const GessoWeightDelta *d, float *dst)
{
  const size_t n_up = (size_t) (d->rows * d->rank), n_down = (size_t) (d->rank * d->cols);
  float *up = thread_buffer_of (&factor_buffer_key, n_up + n_down), *down = up + n_up;

  widen_elements (d->up, d->up_dtype, 0, (int64_t) n_up, up);
  widen_elements (d->down, d->down_dtype, 0, (int64_t) n_down, down);
  if (omp_in_parallel ())
    gesso_gemm_serial (FALSE, FALSE, d->rows, d->cols, d->rank, d->scale, up, d->rank, down,
                       d->cols, 1.0f, dst, d->cols);
  else
    gesso_gemm (FALSE, FALSE, d->rows, d->cols, d->rank, d->scale, up, d->rank, down, d->cols,
                1.0f, dst, d->cols);
}

const float *
gesso_weight_widened (const GessoWeight *w, int64_t numel)
{
  float *dst;
  const int64_t chunks = (numel + WIDEN_CHUNK - 1) / WIDEN_CHUNK;

  const GessoWeightDelta *delta;

  g_return_val_if_fail (w != NULL && numel >= 0, NULL);
  delta = w->delta != NULL ? *w->delta : NULL;
  if ((w->dtype == GESSO_DTYPE_F32 && delta == NULL) || w->data == NULL || numel == 0)
    return w->data;
  g_return_val_if_fail (w->dtype == GESSO_DTYPE_F32 || w->dtype == GESSO_DTYPE_F16
                        || w->dtype == GESSO_DTYPE_BF16, NULL);

  dst = thread_buffer ((size_t) numel);
#pragma omp parallel for schedule (static) \
  if (!omp_in_parallel () && numel >= PARALLEL_MIN_ELEMENTS)
  for (int64_t c = 0; c < chunks; c++)
    widen_range (w, c * WIDEN_CHUNK, MIN (WIDEN_CHUNK, numel - c * WIDEN_CHUNK), dst);
  for (; delta != NULL; delta = delta->next)
    {
      g_return_val_if_fail (delta->rows * delta->cols == numel, NULL);
      add_delta (delta, dst);
    }
  return dst;
}
