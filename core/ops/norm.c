/* Group and layer normalisation, PyTorch semantics: biased variance, eps inside the square
 * root, affine parameters per channel (group norm) or per feature (layer norm).
 *
 * Statistics are accumulated in double, in two passes (mean, then the mean of squared
 * deviations). A group of a 64x64 SD feature map holds 40960 values with 320 channels and
 * 32 groups, and a VAE decoder group at 512x512 holds 2.6 million: a float sum loses about
 * log2(n) bits there, and the one-pass E[x^2] - E[x]^2 loses everything when the mean is large
 * next to the spread. Double sums of float inputs stay exact to ~1e-16 relative; two passes
 * avoid the cancellation. The group is read from cache on the second and third pass, so
 * the cost is a few cycles per value against a convolution's hundreds.
 */
#include <math.h>
#include <omp.h>

#include "ops/ops.h"

/* Fork/join costs a few microseconds; normalisation runs at about a nanosecond per value. */
#define PARALLEL_MIN_VALUES ((int64_t) 1 << 15)

/* The mean is kept as a float pair, hi + lo: x - hi is exact for x near the mean (Sterbenz),
 * so a group whose mean is 1000 times its spread still normalises to float accuracy, where a
 * single float mean would be off by half its ulp, 3e-5 of the spread at 1000. */
typedef struct
{
  float mean_hi, mean_lo;
  float rstd;           /* 1 / sqrt(var + eps) */
} Moments;

/* The mean and reciprocal standard deviation of N values. Lanes of the simd reductions are
 * combined in a fixed order by the compiler, so the result depends on the build and the ISA
 * the loader picked, never on threads. */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static Moments
moments (const float *x, int64_t n, float eps)
{
  double sum = 0.0, sq = 0.0, mean, var;
  Moments m;

#pragma omp simd reduction (+:sum)
  for (int64_t i = 0; i < n; i++)
    sum += (double) x[i];
  mean = sum / (double) n;

#pragma omp simd reduction (+:sq)
  for (int64_t i = 0; i < n; i++)
    {
      double d = (double) x[i] - mean;
      sq += d * d;
    }
  var = sq / (double) n;

  m.mean_hi = (float) mean;
  m.mean_lo = (float) (mean - (double) m.mean_hi);
  m.rstd = (float) (1.0 / sqrt (var + (double) eps));
  return m;
}

/* out = (x - mean) * scale + shift over N values. (x - mean) is formed first, as PyTorch
 * does, so a large mean cancels exactly instead of through two large products. */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
normalize_span (const float *x, int64_t n, Moments m, float scale, float shift, float *out)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    out[i] = ((x[i] - m.mean_hi) - m.mean_lo) * scale + shift;
}

/* The same with a scale and shift per value (layer norm's gamma and beta). */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
normalize_affine_span (const float *x, int64_t n, Moments m, const float *gamma,
                       const float *beta, float *out)
{
  const float mean_hi = m.mean_hi, mean_lo = m.mean_lo, rstd = m.rstd;

  if (gamma != NULL && beta != NULL)
    {
#pragma omp simd
      for (int64_t i = 0; i < n; i++)
        out[i] = ((x[i] - mean_hi) - mean_lo) * rstd * gamma[i] + beta[i];
    }
  else if (gamma != NULL)
    {
#pragma omp simd
      for (int64_t i = 0; i < n; i++)
        out[i] = ((x[i] - mean_hi) - mean_lo) * rstd * gamma[i];
    }
  else
    {
#pragma omp simd
      for (int64_t i = 0; i < n; i++)
        out[i] = ((x[i] - mean_hi) - mean_lo) * rstd + beta[i];
    }
}

static void
group_norm_one (const float *x, int64_t channels_per_group, int64_t spatial, float eps,
                const float *gamma, const float *beta, float *out)
{
  Moments m = moments (x, channels_per_group * spatial, eps);

  for (int64_t c = 0; c < channels_per_group; c++)
    {
      /* PyTorch multiplies (x - mean) * rstd by gamma; folding rstd * gamma into one factor
       * changes the last bit at most, and saves a multiply per value. */
      float scale = gamma != NULL ? m.rstd * gamma[c] : m.rstd;
      float shift = beta != NULL ? beta[c] : 0.0f;

      normalize_span (x + c * spatial, spatial, m, scale, shift, out + c * spatial);
    }
}

void
gesso_group_norm (const float *x, int64_t batch, int64_t channels, int64_t spatial,
                  int64_t groups, float eps, const float *gamma, const float *beta, float *out)
{
  int n_threads = gesso_ops_get_threads ();
  int64_t per_group, items;
  gboolean parallel;

  g_return_if_fail (batch >= 0 && channels >= 0 && spatial >= 0);
  g_return_if_fail (groups > 0 && channels % groups == 0);
  g_return_if_fail ((x != NULL && out != NULL) || batch * channels * spatial == 0);
  if (batch * channels * spatial == 0)
    return;

  per_group = channels / groups;
  items = batch * groups;
  parallel = n_threads > 1 && items > 1 && batch * channels * spatial >= PARALLEL_MIN_VALUES;

  /* One (image, group) per iteration: its statistics and its output are computed by one
   * thread, whatever the thread count. */
#pragma omp parallel for num_threads (n_threads) schedule (static) if (parallel)
  for (int64_t it = 0; it < items; it++)
    {
      int64_t g = it % groups;
      int64_t offset = it * per_group * spatial;

      group_norm_one (x + offset, per_group, spatial, eps,
                      gamma != NULL ? gamma + g * per_group : NULL,
                      beta != NULL ? beta + g * per_group : NULL, out + offset);
    }
}

static void
layer_norm_row (const float *x, int64_t dim, float eps, const float *gamma, const float *beta,
                float *out)
{
  Moments m = moments (x, dim, eps);

  if (gamma == NULL && beta == NULL)
    normalize_span (x, dim, m, m.rstd, 0.0f, out);
  else
    normalize_affine_span (x, dim, m, gamma, beta, out);
}

void
gesso_layer_norm (const float *x, int64_t rows, int64_t dim, float eps, const float *gamma,
                  const float *beta, float *out)
{
  int n_threads = gesso_ops_get_threads ();
  gboolean parallel;

  g_return_if_fail (rows >= 0 && dim >= 0);
  g_return_if_fail ((x != NULL && out != NULL) || rows * dim == 0);
  if (rows * dim == 0)
    return;

  parallel = n_threads > 1 && rows > 1 && rows * dim >= PARALLEL_MIN_VALUES;

#pragma omp parallel for num_threads (n_threads) schedule (static) if (parallel)
  for (int64_t r = 0; r < rows; r++)
    layer_norm_row (x + r * dim, dim, eps, gamma, beta, out + r * dim);
}
