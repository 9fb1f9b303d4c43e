/* Element-wise, normalisation, softmax, resampling and linear kernels against plain
 * double-precision references written here from the PyTorch definitions. Tolerances are in
 * the test paths: atol + rtol * |reference| per value. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/fastmath.h"
#include "ops/ops.h"
#include "ops-testutil.h"

/* Sizes around every SIMD width (4, 8, 16) and the parallel thresholds. */
static const size_t odd_sizes[] = { 0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 77, 129, 1000,
                                    65535, 65536, 65537, 300001 };

/* Runs FN over the same input with 1 and with 2 threads and asserts identical bits. */
typedef void (*InPlaceFunc) (float *x, size_t n);

static void
assert_thread_invariant_inplace (InPlaceFunc fn, const float *x, size_t n)
{
  g_autofree float *a = test_floats_dup (x, n);
  g_autofree float *b = test_floats_dup (x, n);

  gesso_ops_set_threads (1);
  fn (a, n);
  gesso_ops_set_threads (2);
  fn (b, n);
  gesso_ops_set_threads (0);
  g_assert_cmpmem (a, n * sizeof (float), b, n * sizeof (float));
}

/* --- fastmath ----------------------------------------------------------------------- */

static double
ulp_of (double v)
{
  float f = (float) fabs (v);

  if (f < FLT_MIN)
    return 0x1.0p-149;
  return (double) nextafterf (f, INFINITY) - (double) f;
}

static void
test_expf_sweep (void)
{
  double worst = 0.0;
  size_t count = 0;

  /* Every 61st float from -104 to 89 (and so every exponent, both signs, the subnormal
   * results near -87..-104 and the overflow edge), about 35 million values. */
  for (uint32_t bits = 0; bits < 0x7f800000u; bits += 61)
    for (int sign = 0; sign < 2; sign++)
      {
        float x = ops_bits_float (bits | (sign ? 0x80000000u : 0));
        double want, err;
        float got;

        if (x > 89.0f || x < -104.0f)
          continue;
        want = exp ((double) x);
        got = ops_expf (x);
        if (want > FLT_MAX)
          {
            g_assert_true (isinf (got));
            continue;
          }
        err = fabs ((double) got - want) / ulp_of (want);
        if (err > worst)
          worst = err;
        count++;
        if (err > 2.0)
          g_error ("expf(%a) = %a, want %a (%.2f ulp)", (double) x, (double) got, want, err);
      }
  g_test_message ("expf: %zu values, worst %.3f ulp", count, worst);

  g_assert_cmpfloat (ops_expf (0.0f), ==, 1.0f);
  g_assert_cmpfloat (ops_expf (-INFINITY), ==, 0.0f);
  g_assert_true (isinf (ops_expf (INFINITY)));
  g_assert_true (isinf (ops_expf (88.73f)));
  g_assert_cmpfloat (ops_expf (88.72f), <, INFINITY);
  g_assert_cmpfloat (ops_expf (-200.0f), ==, 0.0f);
  g_assert_true (isnan (ops_expf (NAN)));
}

/* x Phi(x) in double; erfc for the negative side, where 1 + erf cancels even in double. */
static double
ref_gelu_erf (double x)
{
  if (x < 0.0)
    return -(-x) * 0.5 * erfc (-x / sqrt (2.0));
  return x * 0.5 * (1.0 + erf (x / sqrt (2.0)));
}

static void
test_gelu_erf_sweep (void)
{
  double worst = 0.0;
  float worst_x = 0.0f;
  size_t count = 0;

  /* Every 101st float of magnitude up to 20 (beyond, GELU is x or below 1e-80), both signs:
   * 21 million values over the polynomial and tail branches and their border at |x| = 1. */
  for (uint32_t bits = 0; bits <= 0x41a00000u; bits += 101)
    for (int sign = 0; sign < 2; sign++)
      {
        float x = ops_bits_float (bits | (sign ? 0x80000000u : 0));
        double want = ref_gelu_erf (x), err;
        float got = ops_gelu_erff (x);

        if (fabs (want) < FLT_MIN)
          {
            /* subnormal results carry fewer bits; only their size matters */
            g_assert_cmpfloat (fabs ((double) got - want), <=, 2.0 * FLT_MIN);
            continue;
          }
        err = fabs ((double) got - want) / ulp_of (want);
        if (err > worst)
          {
            worst = err;
            worst_x = x;
          }
        count++;
        if (err > 4.0)
          g_error ("gelu(%a) = %a, want %a (%.2f ulp)", (double) x, (double) got, want, err);
      }
  g_test_message ("gelu_erf: %zu values, worst %.3f ulp at %a", count, worst, (double) worst_x);

  g_assert_cmpfloat (ops_gelu_erff (0.0f), ==, 0.0f);
  g_assert_cmpfloat (ops_gelu_erff (INFINITY), ==, INFINITY);
  g_assert_cmpfloat (ops_gelu_erff (-INFINITY), ==, 0.0f);
  g_assert_cmpfloat (ops_gelu_erff (1e30f), ==, 1e30f);
  g_assert_true (isnan (ops_gelu_erff (NAN)));
}

/* --- activations ------------------------------------------------------------------ */

static double
ref_silu (double x)
{
  return x / (1.0 + exp (-x));
}

static double
ref_gelu_tanh (double x)
{
  return 0.5 * x * (1.0 + tanh (sqrt (2.0 / G_PI) * (x + 0.044715 * x * x * x)));
}

/* PyTorch evaluates 1.702 * x with the constant converted to the tensor's float type. */
static double
ref_quick_gelu (double x)
{
  return x / (1.0 + exp (-(double) 1.702f * x));
}

typedef struct
{
  const char *name;
  InPlaceFunc fn;
  double (*ref) (double x);
  double atol, rtol;
} Activation;

static void
check_activation (const Activation *act)
{
  TestRng rng = { 1 };
  double worst = 0.0;

  for (size_t s = 0; s < G_N_ELEMENTS (odd_sizes); s++)
    {
      size_t n = odd_sizes[s];
      g_autofree float *x = test_floats_uniform (&rng, n, -12.0f, 12.0f);
      g_autofree float *y = test_floats_dup (x, n);
      g_autofree double *want = g_new (double, n + 1);

      for (size_t i = 0; i < n; i++)
        want[i] = act->ref (x[i]);
      act->fn (y, n);
      worst = MAX (worst, test_check_close (act->name, y, want, n, act->atol, act->rtol));
    }

  /* Edges: zero, tiny, the exp overflow region, and large magnitudes. */
  {
    const float edge[] = { 0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, -1e-6f, 0.5f, -0.5f, 3.0f,
                           -3.0f, 5.5f, -5.5f, 20.0f, -20.0f, 50.0f, -50.0f, 87.0f, -87.0f,
                           89.0f, -89.0f, 100.0f, -100.0f, 1e4f, -1e4f, 1e30f, -1e30f };
    const size_t n = G_N_ELEMENTS (edge);
    float y[G_N_ELEMENTS (edge)];
    double want[G_N_ELEMENTS (edge)];

    memcpy (y, edge, sizeof edge);
    for (size_t i = 0; i < n; i++)
      want[i] = act->ref (edge[i]);
    act->fn (y, n);
    worst = MAX (worst, test_check_close (act->name, y, want, n, act->atol, act->rtol));
  }
  g_test_message ("%s: worst error %.3f of the bound", act->name, worst);

  {
    g_autofree float *x = test_floats_uniform (&rng, 300001, -8.0f, 8.0f);
    assert_thread_invariant_inplace (act->fn, x, 300001);
  }
}

static void
test_silu (void)
{
  const Activation act = { "silu", gesso_silu, ref_silu, 1e-30, 4e-7 };
  check_activation (&act);
}

static void
test_gelu_erf (void)
{
  const Activation act = { "gelu_erf", gesso_gelu_erf, ref_gelu_erf, 1e-37, 4e-7 };
  check_activation (&act);
}

static void
test_gelu_tanh (void)
{
  const Activation act = { "gelu_tanh", gesso_gelu_tanh, ref_gelu_tanh, 1e-7, 4e-7 };
  check_activation (&act);
}

static void
test_quick_gelu (void)
{
  const Activation act = { "quick_gelu", gesso_quick_gelu, ref_quick_gelu, 1e-7, 4e-7 };
  check_activation (&act);
}

static void
test_geglu (void)
{
  const int64_t shapes[][2] = { { 1, 1 }, { 1, 3 }, { 3, 17 }, { 77, 40 }, { 5, 129 },
                                { 64, 1280 }, { 1, 0 }, { 0, 5 } };
  TestRng rng = { 2 };

  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      int64_t rows = shapes[s][0], dim = shapes[s][1];
      size_t n = (size_t) (rows * dim);
      g_autofree float *x = test_floats_normal (&rng, 2 * n, 0.0f, 3.0f);
      g_autofree float *y = g_new (float, n + 1);
      g_autofree float *y1 = g_new (float, n + 1);
      g_autofree double *want = g_new (double, n + 1);

      /* diffusers GEGLU: hidden, gate = proj(x).chunk(2, -1); hidden * gelu(gate) */
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < dim; j++)
          want[r * dim + j] = (double) x[r * 2 * dim + j] * ref_gelu_erf (x[r * 2 * dim + dim + j]);

      gesso_geglu (x, rows, dim, y);
      test_check_close ("geglu", y, want, n, 1e-37, 5e-7);

      gesso_ops_set_threads (1);
      gesso_geglu (x, rows, dim, y1);
      gesso_ops_set_threads (0);
      g_assert_cmpmem (y, n * sizeof (float), y1, n * sizeof (float));
    }
}

/* --- normalisation ---------------------------------------------------------------- */

static void
ref_group_norm (const float *x, int64_t batch, int64_t channels, int64_t spatial,
                int64_t groups, double eps, const float *gamma, const float *beta, double *out)
{
  int64_t per = channels / groups, len = per * spatial;

  for (int64_t b = 0; b < batch; b++)
    for (int64_t g = 0; g < groups; g++)
      {
        const float *xg = x + (b * channels + g * per) * spatial;
        double *og = out + (b * channels + g * per) * spatial;
        double mean = 0.0, var = 0.0;

        for (int64_t i = 0; i < len; i++)
          mean += xg[i];
        mean /= (double) len;
        for (int64_t i = 0; i < len; i++)
          var += ((double) xg[i] - mean) * ((double) xg[i] - mean);
        var /= (double) len;
        for (int64_t c = 0; c < per; c++)
          for (int64_t i = 0; i < spatial; i++)
            {
              double v = ((double) xg[c * spatial + i] - mean) / sqrt (var + eps);

              if (gamma != NULL)
                v *= gamma[g * per + c];
              if (beta != NULL)
                v += beta[g * per + c];
              og[c * spatial + i] = v;
            }
      }
}

typedef struct
{
  int64_t batch, channels, spatial, groups;
  float mean, std;              /* of the input */
} GroupNormCase;

static void
check_group_norm (const GroupNormCase *c, gboolean affine, double atol, double rtol)
{
  TestRng rng = { 3 };
  size_t n = (size_t) (c->batch * c->channels * c->spatial);
  g_autofree float *x = test_floats_normal (&rng, n, c->mean, c->std);
  g_autofree float *gamma = test_floats_uniform (&rng, (size_t) c->channels, 0.5f, 1.5f);
  g_autofree float *beta = test_floats_uniform (&rng, (size_t) c->channels, -1.0f, 1.0f);
  g_autofree float *y = g_new (float, n + 1);
  g_autofree double *want = g_new (double, n + 1);
  const float eps = 1e-5f;

  for (int variant = 0; variant < (affine ? 3 : 1); variant++)
    {
      /* affine: gamma and beta, gamma only, beta only; else neither */
      const float *gm = affine && variant != 2 ? gamma : NULL;
      const float *bt = affine && variant != 1 ? beta : NULL;

      ref_group_norm (x, c->batch, c->channels, c->spatial, c->groups, eps, gm, bt, want);
      gesso_group_norm (x, c->batch, c->channels, c->spatial, c->groups, eps, gm, bt, y);
      test_check_close ("group_norm", y, want, n, atol, rtol);
    }
}

static void
test_group_norm_odd_shapes (void)
{
  const GroupNormCase cases[] = {
    { 1, 1, 1, 1, 0.0f, 1.0f },
    { 1, 3, 1, 3, 0.0f, 1.0f },         /* one value per group: var 0, output beta */
    { 2, 6, 17, 3, 0.5f, 2.0f },
    { 3, 32, 9, 32, -1.0f, 0.1f },
    { 1, 4, 129, 2, 0.0f, 1.0f },
    { 2, 64, 77, 32, 3.0f, 1.0f },
    { 1, 0, 5, 1, 0.0f, 1.0f },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    check_group_norm (&cases[i], TRUE, 1e-6, 1e-6);
}

/* SD 1.5 at 512x512: 320 channels of 64x64 in 32 groups, 40960 values per group; and a group
 * whose mean is 1000 times its spread, where one-pass float statistics collapse. */
static void
test_group_norm_large (void)
{
  const GroupNormCase sd = { 2, 320, 64 * 64, 32, 0.3f, 2.0f };
  const GroupNormCase offset = { 1, 64, 4096, 4, 1000.0f, 1.0f };

  check_group_norm (&sd, TRUE, 1e-6, 1e-6);
  check_group_norm (&offset, FALSE, 1e-6, 1e-6);
}

static void
test_group_norm_alias_and_threads (void)
{
  TestRng rng = { 4 };
  const int64_t batch = 2, channels = 128, spatial = 33 * 31, groups = 32;
  size_t n = (size_t) (batch * channels * spatial);
  g_autofree float *x = test_floats_normal (&rng, n, 0.0f, 1.0f);
  g_autofree float *gamma = test_floats_uniform (&rng, channels, 0.5f, 1.5f);
  g_autofree float *beta = test_floats_uniform (&rng, channels, -1.0f, 1.0f);
  g_autofree float *a = g_new (float, n);
  g_autofree float *b = test_floats_dup (x, n);

  gesso_ops_set_threads (1);
  gesso_group_norm (x, batch, channels, spatial, groups, 1e-6f, gamma, beta, a);
  gesso_ops_set_threads (2);
  gesso_group_norm (b, batch, channels, spatial, groups, 1e-6f, gamma, beta, b);
  gesso_ops_set_threads (0);
  g_assert_cmpmem (a, n * sizeof (float), b, n * sizeof (float));
}

static void
ref_layer_norm (const float *x, int64_t rows, int64_t dim, double eps, const float *gamma,
                const float *beta, double *out)
{
  for (int64_t r = 0; r < rows; r++)
    {
      const float *xr = x + r * dim;
      double mean = 0.0, var = 0.0;

      for (int64_t i = 0; i < dim; i++)
        mean += xr[i];
      mean /= (double) dim;
      for (int64_t i = 0; i < dim; i++)
        var += ((double) xr[i] - mean) * ((double) xr[i] - mean);
      var /= (double) dim;
      for (int64_t i = 0; i < dim; i++)
        {
          double v = ((double) xr[i] - mean) / sqrt (var + eps);

          if (gamma != NULL)
            v *= gamma[i];
          if (beta != NULL)
            v += beta[i];
          out[r * dim + i] = v;
        }
    }
}

static void
test_layer_norm (void)
{
  const int64_t shapes[][2] = { { 1, 1 }, { 1, 3 }, { 7, 17 }, { 77, 768 }, { 3, 129 },
                                { 4096, 320 }, { 2, 1024 }, { 0, 8 } };
  TestRng rng = { 5 };

  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      int64_t rows = shapes[s][0], dim = shapes[s][1];
      size_t n = (size_t) (rows * dim);
      g_autofree float *x = test_floats_normal (&rng, n, 2.0f, 3.0f);
      g_autofree float *gamma = test_floats_uniform (&rng, (size_t) dim, 0.5f, 1.5f);
      g_autofree float *beta = test_floats_uniform (&rng, (size_t) dim, -1.0f, 1.0f);
      g_autofree float *y = g_new (float, n + 1);
      g_autofree float *y1 = test_floats_dup (x, n);
      g_autofree double *want = g_new (double, n + 1);

      for (int variant = 0; variant < 4; variant++)
        {
          const float *gm = variant & 1 ? gamma : NULL;
          const float *bt = variant & 2 ? beta : NULL;

          ref_layer_norm (x, rows, dim, 1e-5, gm, bt, want);
          gesso_layer_norm (x, rows, dim, 1e-5f, gm, bt, y);
          test_check_close ("layer_norm", y, want, n, 1e-6, 1e-6);
        }

      /* aliasing out == x, one thread, same bits as the two-thread run above */
      gesso_ops_set_threads (1);
      gesso_layer_norm (y1, rows, dim, 1e-5f, gamma, beta, y1);
      gesso_ops_set_threads (0);
      g_assert_cmpmem (y, n * sizeof (float), y1, n * sizeof (float));
    }
}

/* --- softmax ---------------------------------------------------------------------- */

static void
test_softmax (void)
{
  const int64_t shapes[][2] = { { 1, 1 }, { 1, 2 }, { 3, 17 }, { 8, 77 }, { 5, 129 },
                                { 64, 4096 }, { 1000, 33 }, { 0, 4 }, { 4, 0 } };
  TestRng rng = { 6 };

  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int shifted = 0; shifted < 2; shifted++)
      {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t) (rows * cols);
        /* shifted rows sit near 100, where e^x alone overflows float */
        g_autofree float *x = test_floats_normal (&rng, n, shifted ? 100.0f : 0.0f, 4.0f);
        g_autofree float *y = test_floats_dup (x, n);
        g_autofree float *y1 = test_floats_dup (x, n);
        g_autofree double *want = g_new (double, n + 1);

        for (int64_t r = 0; r < rows; r++)
          {
            double max = -INFINITY, sum = 0.0;

            for (int64_t j = 0; j < cols; j++)
              max = MAX (max, (double) x[r * cols + j]);
            for (int64_t j = 0; j < cols; j++)
              sum += exp ((double) x[r * cols + j] - max);
            for (int64_t j = 0; j < cols; j++)
              want[r * cols + j] = exp ((double) x[r * cols + j] - max) / sum;
          }
        gesso_softmax (y, rows, cols);
        /* x - max is rounded to float, as in any float softmax: a relative error of
         * |x - max| 2^-24 in the small terms, up to 2e-6 for these rows */
        test_check_close ("softmax", y, want, n, 1e-30, 4e-6);

        gesso_ops_set_threads (1);
        gesso_softmax (y1, rows, cols);
        gesso_ops_set_threads (0);
        g_assert_cmpmem (y, n * sizeof (float), y1, n * sizeof (float));
      }

  /* -inf entries are masked out exactly */
  {
    float row[] = { -INFINITY, 0.0f, -INFINITY, 0.0f };

    gesso_softmax (row, 1, 4);
    g_assert_cmpfloat (row[0], ==, 0.0f);
    g_assert_cmpfloat (row[1], ==, 0.5f);
    g_assert_cmpfloat (row[2], ==, 0.0f);
    g_assert_cmpfloat (row[3], ==, 0.5f);
  }
}

/* --- resampling and helpers ----------------------------------------------------------- */

static void
test_upsample_nearest2x (void)
{
  const int64_t shapes[][3] = { { 1, 1, 1 }, { 2, 3, 5 }, { 3, 1, 17 }, { 4, 17, 1 },
                                { 320, 32, 32 }, { 5, 33, 129 }, { 0, 3, 3 }, { 2, 0, 3 } };
  TestRng rng = { 7 };

  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      int64_t planes = shapes[s][0], h = shapes[s][1], w = shapes[s][2];
      size_t n = (size_t) (planes * h * w);
      g_autofree float *x = test_floats_uniform (&rng, n, -1.0f, 1.0f);
      g_autofree float *y = g_new (float, 4 * n + 1);
      g_autofree float *y1 = g_new (float, 4 * n + 1);

      gesso_upsample_nearest2x (x, planes, h, w, y);
      for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < 2 * h; i++)
          for (int64_t j = 0; j < 2 * w; j++)
            g_assert_cmpfloat (y[(p * 2 * h + i) * 2 * w + j], ==, x[(p * h + i / 2) * w + j / 2]);

      gesso_ops_set_threads (1);
      gesso_upsample_nearest2x (x, planes, h, w, y1);
      gesso_ops_set_threads (0);
      g_assert_cmpmem (y, 4 * n * sizeof (float), y1, 4 * n * sizeof (float));
    }
}

static void
test_add (void)
{
  TestRng rng = { 8 };

  for (size_t s = 0; s < G_N_ELEMENTS (odd_sizes); s++)
    {
      size_t n = odd_sizes[s];
      g_autofree float *a = test_floats_uniform (&rng, n, -1.0f, 1.0f);
      g_autofree float *b = test_floats_uniform (&rng, n, -1.0f, 1.0f);
      g_autofree float *y = test_floats_dup (a, n);

      gesso_add (y, b, n);
      for (size_t i = 0; i < n; i++)
        g_assert_cmpfloat (y[i], ==, a[i] + b[i]);
    }
}

static void
test_add_channel_bias (void)
{
  const int64_t shapes[][3] = { { 1, 1, 1 }, { 2, 3, 17 }, { 2, 320, 4096 }, { 1, 5, 0 },
                                { 0, 4, 4 } };
  TestRng rng = { 9 };

  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      int64_t batch = shapes[s][0], channels = shapes[s][1], spatial = shapes[s][2];
      size_t n = (size_t) (batch * channels * spatial);
      g_autofree float *x = test_floats_uniform (&rng, n, -1.0f, 1.0f);
      g_autofree float *bias = test_floats_uniform (&rng, (size_t) channels, -1.0f, 1.0f);
      g_autofree float *y = test_floats_dup (x, n);

      gesso_add_channel_bias (y, batch, channels, spatial, bias);
      for (int64_t b = 0; b < batch; b++)
        for (int64_t c = 0; c < channels; c++)
          for (int64_t i = 0; i < spatial; i++)
            {
              size_t at = (size_t) ((b * channels + c) * spatial + i);

              g_assert_cmpfloat (y[at], ==, x[at] + bias[c]);
            }
    }
}

/* --- linear ------------------------------------------------------------------------- */

static void
test_linear (void)
{
  const int64_t shapes[][3] = { { 1, 1, 1 }, { 3, 17, 5 }, { 77, 768, 768 }, { 129, 40, 33 },
                                { 4096, 320, 320 }, { 2, 0, 3 }, { 0, 4, 4 }, { 4, 4, 0 } };
  TestRng rng = { 10 };

  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int with_bias = 0; with_bias < 2; with_bias++)
      {
        int64_t rows = shapes[s][0], in = shapes[s][1], outf = shapes[s][2];
        g_autofree float *x = test_floats_uniform (&rng, (size_t) (rows * in), -1.0f, 1.0f);
        g_autofree float *w = test_floats_uniform (&rng, (size_t) (outf * in), -1.0f, 1.0f);
        g_autofree float *bias = test_floats_uniform (&rng, (size_t) outf, -1.0f, 1.0f);
        g_autofree float *y = g_new (float, (size_t) (rows * outf) + 1);
        g_autofree double *want = g_new (double, (size_t) (rows * outf) + 1);
        double atol = 1e-6 * (double) (in + 1);    /* sum of IN products of values in [-1,1) */

        for (size_t i = 0; i < (size_t) (rows * outf); i++)
          y[i] = NAN;          /* the kernel must overwrite, not accumulate */
        for (int64_t r = 0; r < rows; r++)
          for (int64_t o = 0; o < outf; o++)
            {
              double acc = with_bias ? bias[o] : 0.0;

              for (int64_t i = 0; i < in; i++)
                acc += (double) x[r * in + i] * w[o * in + i];
              want[r * outf + o] = acc;
            }
        gesso_linear (x, rows, in, w, with_bias ? bias : NULL, outf, y);
        test_check_close ("linear", y, want, (size_t) (rows * outf), atol, 0.0);
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/core/ops/fastmath/expf-sweep-2ulp", test_expf_sweep);
  g_test_add_func ("/core/ops/fastmath/gelu-erf-sweep-4ulp", test_gelu_erf_sweep);
  g_test_add_func ("/core/ops/silu/sizes-edges-rtol4e-7", test_silu);
  g_test_add_func ("/core/ops/gelu-erf/sizes-edges-rtol4e-7", test_gelu_erf);
  g_test_add_func ("/core/ops/gelu-tanh/sizes-edges-atol1e-7-rtol4e-7", test_gelu_tanh);
  g_test_add_func ("/core/ops/quick-gelu/sizes-edges-atol1e-7-rtol4e-7", test_quick_gelu);
  g_test_add_func ("/core/ops/geglu/shapes-rtol5e-7", test_geglu);
  g_test_add_func ("/core/ops/group-norm/odd-shapes-tol1e-6", test_group_norm_odd_shapes);
  g_test_add_func ("/core/ops/group-norm/sd-64x64x320-and-offset-tol1e-6",
                   test_group_norm_large);
  g_test_add_func ("/core/ops/group-norm/alias-threads-bitwise", test_group_norm_alias_and_threads);
  g_test_add_func ("/core/ops/layer-norm/shapes-alias-tol1e-6", test_layer_norm);
  g_test_add_func ("/core/ops/softmax/shapes-shifted-rtol4e-6", test_softmax);
  g_test_add_func ("/core/ops/upsample-nearest2x/exact", test_upsample_nearest2x);
  g_test_add_func ("/core/ops/add/exact", test_add);
  g_test_add_func ("/core/ops/add-channel-bias/exact", test_add_channel_bias);
  g_test_add_func ("/core/ops/linear/shapes-atol1e-6xK", test_linear);

  return g_test_run ();
}
