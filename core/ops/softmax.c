/* Softmax over the last axis, in place.
 *
 * The row maximum is subtracted before exponentiating, so no exp overflows and the largest
 * term is exactly 1; the sum is then at least 1 and dividing by it is safe. A row that is all
 * -inf has no maximum to subtract and gives NaN, as in PyTorch.
 */
#include <math.h>
#include <omp.h>

#include "ops/fastmath.h"
#include "ops/ops.h"

#define PARALLEL_MIN_VALUES ((int64_t) 1 << 15)

/* Reductions keep LANES partial results in an array and fold them in a fixed tree at the end:
 * the inner loops are plain element-wise code that every compiler vectorises at any width
 * (clang will not vectorise a float max reduction without -ffast-math), and the result has
 * the same bits whatever vector width the loader picked. */
#define LANES 16

__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
softmax_row (float *x, int64_t n)
{
  float lane[LANES];
  int64_t body = n - n % LANES;
  float max, sum, inv;

  for (int l = 0; l < LANES; l++)
    lane[l] = -INFINITY;
  for (int64_t i = 0; i < body; i += LANES)
    {
#pragma omp simd
      for (int l = 0; l < LANES; l++)
        lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    }
  for (int64_t i = body; i < n; i++)
    lane[i - body] = x[i] > lane[i - body] ? x[i] : lane[i - body];
  for (int w = LANES / 2; w > 0; w /= 2)
    for (int l = 0; l < w; l++)
      lane[l] = lane[l + w] > lane[l] ? lane[l + w] : lane[l];
  max = lane[0];

  for (int l = 0; l < LANES; l++)
    lane[l] = 0.0f;
  for (int64_t i = 0; i < body; i += LANES)
    {
#pragma omp simd
      for (int l = 0; l < LANES; l++)
        {
          float e = ops_expf (x[i + l] - max);

          x[i + l] = e;
          lane[l] += e;
        }
    }
  for (int64_t i = body; i < n; i++)
    {
      float e = ops_expf (x[i] - max);

      x[i] = e;
      lane[i - body] += e;
    }
  for (int w = LANES / 2; w > 0; w /= 2)
    for (int l = 0; l < w; l++)
      lane[l] += lane[l + w];
  sum = lane[0];

  inv = 1.0f / sum;
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    x[i] *= inv;
}

void
gesso_softmax (float *x, int64_t rows, int64_t cols)
{
  int n_threads = gesso_ops_get_threads ();
  gboolean parallel;

  g_return_if_fail (rows >= 0 && cols >= 0);
  g_return_if_fail (x != NULL || rows * cols == 0);
  if (rows * cols == 0)
    return;

  parallel = n_threads > 1 && rows > 1 && rows * cols >= PARALLEL_MIN_VALUES;

#pragma omp parallel for num_threads (n_threads) schedule (static) if (parallel)
  for (int64_t r = 0; r < rows; r++)
    softmax_row (x + r * cols, cols);
}
