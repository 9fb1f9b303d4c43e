/* Element-wise activations: SiLU, GELU (erf and tanh forms), quick GELU, GEGLU.
 *
 * Each kernel is a span function (one contiguous run of values, vectorised and compiled for
 * AVX-512, AVX2 and the baseline; the loader picks one) and a driver that splits long
 * arrays into spans across OpenMP threads. Every value is computed independently, so the
 * result does not depend on the split.
 */
#include <omp.h>

#include "ops/fastmath.h"
#include "ops/ops.h"

/* Below this many values a parallel region costs more than it saves (fork/join is a few
 * microseconds; these kernels run at a fraction of a nanosecond per value). */
#define PARALLEL_MIN_VALUES ((size_t) 1 << 16)
/* Spans handed to threads: long enough to amortise the call, short enough to balance. */
#define SPAN_VALUES ((size_t) 1 << 14)

typedef void (*SpanFunc) (float *x, size_t n);

/* x * sigmoid(x) = x / (1 + e^-x). For x -> -inf, e^-x overflows to inf and the quotient is
 * -0, where the true value is below 1e-36 in magnitude. */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
silu_span (float *x, size_t n)
{
#pragma omp simd
  for (size_t i = 0; i < n; i++)
    x[i] = x[i] / (1.0f + ops_expf (-x[i]));
}

/* x * sigmoid(1.702 x): the constant of CLIP's QuickGELU, rounded to float as PyTorch does. */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
quick_gelu_span (float *x, size_t n)
{
#pragma omp simd
  for (size_t i = 0; i < n; i++)
    x[i] = x[i] / (1.0f + ops_expf (-1.702f * x[i]));
}

/* 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). The identity
 * 0.5 (1 + tanh(u)) = 1 / (1 + e^(-2u)) gives the same function with one exp and no
 * cancellation in 1 + tanh(u) for negative x, so this is at least as accurate as the
 * textbook form evaluated with tanhf. */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
gelu_tanh_span (float *x, size_t n)
{
  const float two_sqrt_2_over_pi = 1.59576912f;   /* 2 * sqrt(2/pi) */

#pragma omp simd
  for (size_t i = 0; i < n; i++)
    {
      float v = x[i];
      float u2 = two_sqrt_2_over_pi * (v + 0.044715f * v * v * v);

      x[i] = v / (1.0f + ops_expf (-u2));
    }
}

/* x Phi(x) from fastmath.h: within 4 ulp everywhere, and unlike 0.5 x (1 + erff(x / sqrt 2))
 * (off by 100% below x = -5, where 1 + erf cancels) accurate in the negative tail; and it
 * vectorises, where erff is a 7 ns call per value. */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
gelu_erf_span (float *x, size_t n)
{
#pragma omp simd
  for (size_t i = 0; i < n; i++)
    x[i] = ops_gelu_erff (x[i]);
}

static void
run_spans (float *x, size_t n, SpanFunc span)
{
  int n_threads = gesso_ops_get_threads ();
  int64_t n_spans = (int64_t) ((n + SPAN_VALUES - 1) / SPAN_VALUES);

  if (n < PARALLEL_MIN_VALUES || n_threads < 2)
    {
      span (x, n);
      return;
    }

#pragma omp parallel for num_threads (n_threads) schedule (static)
  for (int64_t s = 0; s < n_spans; s++)
    {
      size_t start = (size_t) s * SPAN_VALUES;
      size_t len = n - start < SPAN_VALUES ? n - start : SPAN_VALUES;

      span (x + start, len);
    }
}

void
gesso_silu (float *x, size_t n)
{
  g_return_if_fail (x != NULL || n == 0);
  run_spans (x, n, silu_span);
}

void
gesso_gelu_erf (float *x, size_t n)
{
  g_return_if_fail (x != NULL || n == 0);
  run_spans (x, n, gelu_erf_span);
}

void
gesso_gelu_tanh (float *x, size_t n)
{
  g_return_if_fail (x != NULL || n == 0);
  run_spans (x, n, gelu_tanh_span);
}

void
gesso_quick_gelu (float *x, size_t n)
{
  g_return_if_fail (x != NULL || n == 0);
  run_spans (x, n, quick_gelu_span);
}

/* One row of GEGLU as diffusers computes it: proj(x).chunk(2, dim=-1) gives (hidden, gate),
 * and the output is hidden * gelu(gate). */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
geglu_row (const float *x, int64_t dim, float *out)
{
  const float *gate = x + dim;

#pragma omp simd
  for (int64_t j = 0; j < dim; j++)
    out[j] = x[j] * ops_gelu_erff (gate[j]);
}

void
gesso_geglu (const float *x, int64_t rows, int64_t dim, float *out)
{
  int n_threads = gesso_ops_get_threads ();
  gboolean parallel;

  g_return_if_fail (rows >= 0 && dim >= 0);
  g_return_if_fail ((x != NULL && out != NULL) || rows * dim == 0);
  parallel = n_threads > 1 && (size_t) (rows * dim) >= PARALLEL_MIN_VALUES;

#pragma omp parallel for num_threads (n_threads) schedule (static) if (parallel)
  for (int64_t r = 0; r < rows; r++)
    geglu_row (x + r * 2 * dim, dim, out + r * dim);
}
