/* Small element-wise helpers: residual adds and per-channel bias.
 *
 * Both are memory-bound: the loops only need to be vectorised, and split across threads only
 * when the arrays are large enough that the second core adds bandwidth (large feature maps),
 * not fork/join latency.
 */
#include <omp.h>

#include "ops/ops.h"

#define PARALLEL_MIN_VALUES ((int64_t) 1 << 17)
#define SPAN_VALUES ((int64_t) 1 << 14)

__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
add_span (float *dst, const float *src, int64_t n)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    dst[i] += src[i];
}

__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
add_scalar_span (float *x, int64_t n, float value)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    x[i] += value;
}

void
gesso_add (float *dst, const float *src, size_t n)
{
  int n_threads = gesso_ops_get_threads ();
  int64_t count = (int64_t) n;
  int64_t n_spans = (count + SPAN_VALUES - 1) / SPAN_VALUES;
  gboolean parallel;

  g_return_if_fail ((dst != NULL && src != NULL) || n == 0);
  parallel = n_threads > 1 && count >= PARALLEL_MIN_VALUES;

#pragma omp parallel for num_threads (n_threads) schedule (static) if (parallel)
  for (int64_t s = 0; s < n_spans; s++)
    {
      int64_t start = s * SPAN_VALUES;
      int64_t len = count - start < SPAN_VALUES ? count - start : SPAN_VALUES;

      add_span (dst + start, src + start, len);
    }
}

void
gesso_add_channel_bias (float *x, int64_t batch, int64_t channels, int64_t spatial,
                        const float *bias)
{
  int n_threads = gesso_ops_get_threads ();
  int64_t planes = batch * channels;
  gboolean parallel;

  g_return_if_fail (batch >= 0 && channels >= 0 && spatial >= 0);
  g_return_if_fail ((x != NULL && bias != NULL) || planes * spatial == 0);

  parallel = n_threads > 1 && planes > 1 && planes * spatial >= PARALLEL_MIN_VALUES;

#pragma omp parallel for num_threads (n_threads) schedule (static) if (parallel)
  for (int64_t p = 0; p < planes; p++)
    add_scalar_span (x + p * spatial, spatial, bias[p % channels]);
}
