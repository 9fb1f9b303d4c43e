/* Noise schedules, reproduced operation by operation from diffusers 0.36 (see schedule.h).
 *
 * Float32 values are computed with float arithmetic on purpose: (float) a * (float) b here is
 * the same rounding torch's float32 kernels do. Nothing in this file may be contracted into
 * fused multiply-adds, which would change last bits (GCC keeps ISO C11 contraction off; clang
 * is told below).
 */
#include "sampling/schedule.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "gesso.h"
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The largest beta the cosine schedule allows (diffusers' max_beta), so abar never hits 0. */
#define COSINE_MAX_BETA 0.999

void
gesso_torch_linspace_f32 (float start, float end, int64_t steps, float *out)
{
  /* torch's CPU kernel: step in float; the first half counts up from START, the second half
   * down from END, so both ends are exact. Its x86-64 build contracts start + step * i into
   * one fused multiply-add (single rounding), which the betas' last bits show: fmaf. */
  float step;
  int64_t halfway = steps / 2;

  if (steps <= 0)
    return;
  if (steps == 1)
    {
      out[0] = start;
      return;
    }
  step = (end - start) / (float) (steps - 1);
  for (int64_t i = 0; i < steps; i++)
    out[i] = i < halfway ? fmaf (step, (float) i, start)
                         : fmaf (-step, (float) (steps - i - 1), end);
}

void
gesso_np_linspace (double start, double stop, int64_t num, double *out)
{
  int64_t div = num - 1;
  double delta = stop - start;

  if (num <= 0)
    return;
  if (div > 0)
    {
      double step = delta / (double) div;

      for (int64_t i = 0; i < num; i++)
        out[i] = (step == 0 ? (double) i / (double) div * delta : (double) i * step) + start;
      out[num - 1] = stop;
    }
  else
    out[0] = 0.0 * delta + start;
}

int64_t
gesso_np_arange_length (double start, double stop, double step)
{
  double len = ceil ((stop - start) / step);

  return len > 0 ? (int64_t) len : 0;
}

void
gesso_np_arange (double start, double step, int64_t length, double *out)
{
  /* numpy stores start and start + step, then fills the rest as start + i * delta with
   * delta = (start + step) - start, which may differ from step in its last bit. */
  double delta;

  if (length <= 0)
    return;
  out[0] = start;
  if (length == 1)
    return;
  out[1] = start + step;
  delta = out[1] - start;
  for (int64_t i = 2; i < length; i++)
    out[i] = start + (double) i * delta;
}

double
gesso_np_interp (double x, const float *fp, int64_t n)
{
  int64_t j;
  double slope;

  if (isnan (x))
    return x;
  if (x < 0)
    return fp[0];
  if (x >= (double) (n - 1))
    return fp[n - 1];
  j = (int64_t) floor (x);
  if ((double) j == x)
    return fp[j];
  slope = ((double) fp[j + 1] - (double) fp[j]) / 1.0;
  return slope * (x - (double) j) + (double) fp[j];
}

/* numpy's float32 log (its AVX2/AVX-512 kernel, which every x86-64 numpy of the last years
 * runs for float32 arrays): log(x) = e ln 2 + log(1 + y), with x = 2^e (1 + y), sqrt(1/2) <
 * 1 + y <= sqrt(2), and log(1 + y) a 5/5 rational minimax approximation in fused
 * multiply-adds. It is not correctly rounded (up to 3.8 ulp), and diffusers' Karras and
 * exponential timesteps inherit its last bits. For positive normal X only. */
float
gesso_np_logf (float x)
{
  static const float p[6] = { 0.0f, 9.999999999999998702752e-01f, 2.112677543073053063722e+00f,
                              1.480000633576506585156e+00f, 3.808837741388407920751e-01f,
                              2.589979117907922693523e-02f };
  static const float q[6] = { 1.0f, 2.612677543073109236779e+00f, 2.453006071784736363091e+00f,
                              9.864942958519418960339e-01f, 1.546476374983906719538e-01f,
                              5.875095403124574342950e-03f };
  uint32_t bits, mbits;
  float e, m, num, den;

  if (!(x >= FLT_MIN) || isinf (x))
    return logf (x);
  memcpy (&bits, &x, sizeof bits);
  e = (float) ((int32_t) (bits >> 23) - 126);
  mbits = (bits & 0x7fffffu) | (126u << 23);   /* the mantissa in [0.5, 1) */
  memcpy (&m, &mbits, sizeof m);
  if (m <= 0.707106781186547524400844362104849039f)
    {
      m = m + m;
      e = e - 1.0f;
    }
  m = m - 1.0f;
  num = fmaf (p[5], m, p[4]);
  num = fmaf (num, m, p[3]);
  num = fmaf (num, m, p[2]);
  num = fmaf (num, m, p[1]);
  num = fmaf (num, m, p[0]);
  den = fmaf (q[5], m, q[4]);
  den = fmaf (den, m, q[3]);
  den = fmaf (den, m, q[2]);
  den = fmaf (den, m, q[1]);
  den = fmaf (den, m, q[0]);
  return fmaf (e, 0.693147180559945309417232121458176568f, num / den);
}

double
gesso_np_round (double x)
{
  return nearbyint (x);   /* the default rounding mode is to nearest, ties to even */
}

float
gesso_schedule_sigma (const GessoSchedule *schedule, int t)
{
  float abar = schedule->alphas_cumprod[t];
  float ratio = (1.0f - abar) / abar;

  return sqrtf (ratio);
}

/* Nichol & Dhariwal 2021, eq. 17: abar(t) = cos^2(((t/T + s) / (1 + s)) pi/2), s = 0.008, and
 * beta_t = 1 - abar(t+1)/abar(t) capped at 0.999, in double, then stored as float32. */
static void
cosine_betas (int n, float *betas)
{
  for (int i = 0; i < n; i++)
    {
      double t1 = (double) i / n, t2 = (double) (i + 1) / n;
      double a1 = cos ((t1 + 0.008) / 1.008 * G_PI / 2), a2 = cos ((t2 + 0.008) / 1.008 * G_PI / 2);
      double beta = 1 - (a2 * a2) / (a1 * a1);

      betas[i] = (float) (beta < COSINE_MAX_BETA ? beta : COSINE_MAX_BETA);
    }
}

/* torch.cumprod on the CPU accumulates float32 products in double and rounds each prefix. */
static void
cumprod_of_one_minus (const float *betas, int n, float *out)
{
  double acc = 1.0;

  for (int i = 0; i < n; i++)
    {
      float alpha = 1.0f - betas[i];
      acc *= alpha;
      out[i] = (float) acc;
    }
}

/* Lin et al. 2024, Algorithm 1, in float32 as diffusers' rescale_zero_terminal_snr. */
static void
rescale_zero_terminal_snr (float *betas, int n, float *scratch)
{
  float s0, sT, scale;

  cumprod_of_one_minus (betas, n, scratch);
  for (int i = 0; i < n; i++)
    scratch[i] = sqrtf (scratch[i]);
  s0 = scratch[0];
  sT = scratch[n - 1];
  scale = s0 / (s0 - sT);
  for (int i = 0; i < n; i++)
    {
      float s = scratch[i] - sT;
      s = s * scale;
      scratch[i] = s * s;         /* abar, now with abar_{T-1} = 0 */
    }
  /* back from the cumulative product to per-step betas */
  for (int i = n - 1; i >= 1; i--)
    betas[i] = 1.0f - scratch[i] / scratch[i - 1];
  betas[0] = 1.0f - scratch[0];
}

gboolean
gesso_schedule_init (GessoSchedule *schedule, int num_train_timesteps, GessoBetaSchedule kind,
                     double beta_start, double beta_end, gboolean rescale_zero_snr,
                     GError **error)
{
  int n = num_train_timesteps;

  g_return_val_if_fail (schedule != NULL, FALSE);
  memset (schedule, 0, sizeof *schedule);
  if (n < 2 || n > 100000)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("num_train_timesteps is %d; it must be between 2 and 100000"), n);
      return FALSE;
    }
  if (kind != GESSO_BETA_SQUAREDCOS_CAP_V2
      && !(isfinite (beta_start) && isfinite (beta_end) && beta_start >= 0 && beta_end < 1
           && beta_start <= beta_end))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("beta_start %g and beta_end %g must satisfy 0 <= beta_start <= beta_end < 1"),
                   beta_start, beta_end);
      return FALSE;
    }

  schedule->num_train_timesteps = n;
  schedule->betas = g_new (float, n);
  schedule->alphas_cumprod = g_new (float, n);
  switch (kind)
    {
    case GESSO_BETA_LINEAR:
      gesso_torch_linspace_f32 ((float) beta_start, (float) beta_end, n, schedule->betas);
      break;
    case GESSO_BETA_SCALED_LINEAR:
      /* linspace in sqrt(beta), squared in float32 */
      gesso_torch_linspace_f32 ((float) pow (beta_start, 0.5), (float) pow (beta_end, 0.5), n,
                                schedule->betas);
      for (int i = 0; i < n; i++)
        schedule->betas[i] = schedule->betas[i] * schedule->betas[i];
      break;
    case GESSO_BETA_SQUAREDCOS_CAP_V2:
      cosine_betas (n, schedule->betas);
      break;
    case GESSO_BETA_SIGMOID:
      {
        float range = (float) (beta_end - beta_start), lo = (float) beta_start;

        gesso_torch_linspace_f32 (-6.0f, 6.0f, n, schedule->betas);
        for (int i = 0; i < n; i++)
          {
            float sig = 1.0f / (1.0f + expf (-schedule->betas[i]));
            schedule->betas[i] = sig * range + lo;
          }
      }
      break;
    default:
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED, _("unknown beta schedule %d"),
                   (int) kind);
      gesso_schedule_clear (schedule);
      return FALSE;
    }
  if (rescale_zero_snr)
    rescale_zero_terminal_snr (schedule->betas, n, schedule->alphas_cumprod);
  cumprod_of_one_minus (schedule->betas, n, schedule->alphas_cumprod);
  for (int i = 0; i < n; i++)
    if (!(schedule->betas[i] >= 0.0f && schedule->betas[i] <= 1.0f))
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     _("the beta schedule gives beta[%d] = %g, outside [0, 1]; check beta_start "
                     "and beta_end"), i, (double) schedule->betas[i]);
        gesso_schedule_clear (schedule);
        return FALSE;
      }
  return TRUE;
}

void
gesso_schedule_clear (GessoSchedule *schedule)
{
  if (schedule == NULL)
    return;
  g_clear_pointer (&schedule->betas, g_free);
  g_clear_pointer (&schedule->alphas_cumprod, g_free);
  schedule->num_train_timesteps = 0;
}

gboolean
gesso_schedule_timesteps (GessoTimestepSpacing spacing, int num_train_timesteps, int n,
                          int steps_offset, gboolean round_linspace, double **out,
                          guint *n_out, GError **error)
{
  int T = num_train_timesteps;
  double *ts = NULL;
  int64_t len = n;

  *out = NULL;
  *n_out = 0;
  if (n < 1 || n > T)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%d inference steps requested; the model was trained with %d timesteps, so "
                   "use between 1 and %d"), n, T, T);
      return FALSE;
    }
  switch (spacing)
    {
    case GESSO_SPACING_LINSPACE:
      {
        g_autofree double *grid = g_new (double, n);

        gesso_np_linspace (0, T - 1, n, grid);
        ts = g_new (double, n);
        for (int i = 0; i < n; i++)
          {
            double v = grid[n - 1 - i];
            ts[i] = round_linspace ? gesso_np_round (v) : (double) (float) v;
          }
      }
      break;
    case GESSO_SPACING_LEADING:
      {
        int ratio = T / n;

        ts = g_new (double, n);
        for (int i = 0; i < n; i++)
          ts[i] = (double) (n - 1 - i) * ratio + steps_offset;
      }
      break;
    case GESSO_SPACING_TRAILING:
      {
        double ratio = (double) T / n;

        len = gesso_np_arange_length (T, 0, -ratio);
        ts = g_new (double, MAX (len, 1));
        gesso_np_arange (T, -ratio, len, ts);
        for (int64_t i = 0; i < len; i++)
          ts[i] = gesso_np_round (ts[i]) - 1;
      }
      break;
    default:
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED, _("unknown timestep spacing %d"),
                   (int) spacing);
      return FALSE;
    }
  *out = ts;
  *n_out = (guint) len;
  return TRUE;
}

double
gesso_sigma_to_t (double sigma, const float *log_sigmas, int64_t n)
{
  double log_sigma = log (sigma > 1e-10 ? sigma : 1e-10);
  int64_t low = -1;
  float lo, hi;
  double w;

  /* the last table entry not above log_sigma (numpy: argmax of the cumulative count) */
  for (int64_t i = 0; i < n; i++)
    if (log_sigma - (double) log_sigmas[i] >= 0)
      low = i;
  if (low < 0)
    low = 0;
  if (low > n - 2)
    low = n - 2;
  lo = log_sigmas[low];
  hi = log_sigmas[low + 1];
  /* numpy mixes dtypes here: the numerator is float64, the denominator float32 */
  w = ((double) lo - log_sigma) / (double) (float) (lo - hi);
  w = w < 0 ? 0 : w > 1 ? 1 : w;
  return (1 - w) * (double) low + w * (double) (low + 1);
}

void
gesso_karras_sigmas (double sigma_min, double sigma_max, int n, double *out)
{
  const double rho = 7.0;   /* Karras et al. 2022, Table 1 */
  double min_inv_rho = pow (sigma_min, 1 / rho), max_inv_rho = pow (sigma_max, 1 / rho);

  gesso_np_linspace (0, 1, n, out);
  for (int i = 0; i < n; i++)
    out[i] = pow (max_inv_rho + out[i] * (min_inv_rho - max_inv_rho), rho);
}

void
gesso_exponential_sigmas (double sigma_min, double sigma_max, int n, double *out)
{
  gesso_np_linspace (log (sigma_max), log (sigma_min), n, out);
  for (int i = 0; i < n; i++)
    out[i] = exp (out[i]);
}
