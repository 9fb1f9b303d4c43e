/* Euler samplers in sigma space, as diffusers' EulerDiscreteScheduler and
 * EulerAncestralDiscreteScheduler.
 *
 * Karras et al. 2022 write the diffusion as x = x0 + sigma n; its probability-flow ODE is
 * dx/dsigma = (x - D(x; sigma)) / sigma with D the denoiser (the predicted x0). The model
 * sees x / sqrt(sigma^2 + 1), the variance-preserving x_t of the DDPM parameterisation, and
 * its output converts to x0 as
 *   eps:  x0 = x - sigma eps
 *   v:    x0 = x / (sigma^2 + 1) - sigma / sqrt(sigma^2 + 1) v
 * Euler (Algorithm 2 without churn): x_next = x + (sigma_next - sigma) (x - x0) / sigma.
 * Ancestral Euler (k-diffusion's sample_euler_ancestral) splits the move to sigma_next into
 * a deterministic part to sigma_down and fresh noise of size sigma_up, with
 *   sigma_up = sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2),
 *   sigma_down = sqrt(sigma_next^2 - sigma_up^2),
 * which is the DDPM posterior expressed in sigmas.
 */
#include "sampling/sampler-private.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

float *
sampler_train_sigmas (const GessoSampler *s, float **log_sigmas)
{
  int T = s->config.num_train_timesteps;
  float *sig = g_new (float, T);

  for (int t = 0; t < T; t++)
    sig[t] = gesso_schedule_sigma (&s->schedule, t);
  if (log_sigmas != NULL)
    {
      *log_sigmas = g_new (float, T);
      for (int t = 0; t < T; t++)
        (*log_sigmas)[t] = gesso_np_logf (sig[t]);
    }
  return sig;
}

gboolean
sampler_sigma_timesteps (GessoSampler *s, int n, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int T = c->num_train_timesteps;
  g_autofree float *sig = NULL, *log_sig = NULL;
  g_autofree double *d = NULL;
  double *ts;
  float *sigmas;
  guint len, n_d;
  float max_sigma = 0;

  if (!gesso_schedule_timesteps (c->timestep_spacing, T, n, c->steps_offset, FALSE, &ts, &len,
                                 error))
    return FALSE;
  sig = sampler_train_sigmas (s, &log_sig);

  /* the sigmas at the (possibly fractional) timesteps, or evenly spaced in log sigma */
  if (c->log_linear_sigmas)
    {
      /* diffusers builds N + 1 of these (and then appends the final sigma too) */
      g_autofree float *lin = g_new (float, n + 1);

      n_d = n + 1;
      d = g_new (double, n_d);
      gesso_torch_linspace_f32 (gesso_np_logf (sig[T - 1]), gesso_np_logf (sig[0]), n + 1, lin);
      for (guint i = 0; i < n_d; i++)
        d[i] = expf (lin[i]);
    }
  else
    {
      n_d = len;
      d = g_new (double, n_d);
      for (guint i = 0; i < len; i++)
        d[i] = gesso_np_interp (ts[i], sig, T);
    }

  if (c->sigma_spacing == GESSO_SIGMAS_KARRAS || c->sigma_spacing == GESSO_SIGMAS_EXPONENTIAL)
    {
      /* config overrides (Euler only), else the ends of the interpolated sigmas */
      double lo = isnan (c->sigma_min) ? d[n_d - 1] : c->sigma_min;
      double hi = isnan (c->sigma_max) ? d[0] : c->sigma_max;

      g_free (d);
      n_d = n;
      d = g_new (double, n_d);
      if (c->sigma_spacing == GESSO_SIGMAS_KARRAS)
        gesso_karras_sigmas (lo, hi, n, d);
      else
        gesso_exponential_sigmas (lo, hi, n, d);
      g_free (ts);
      len = n;
      ts = g_new (double, len);
      for (guint i = 0; i < len; i++)
        ts[i] = (float) gesso_sigma_to_t (d[i], log_sig, T);
    }
  else if (c->sigma_spacing != GESSO_SIGMAS_DEFAULT)
    {
      g_free (ts);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("%s supports default, Karras or exponential sigmas only"),
                   gesso_sampler_kind_name (c->kind));
      return FALSE;
    }

  sigmas = g_new (float, n_d + 1);
  for (guint i = 0; i < n_d; i++)
    sigmas[i] = (float) d[i];
  sigmas[n_d] = c->final_sigma_min ? sig[0] : 0.0f;

  if (c->continuous_timesteps && c->prediction_type == GESSO_PREDICTION_V)
    {
      /* timestep_type "continuous": the UNet is conditioned on log(sigma) / 4 */
      g_free (ts);
      len = n_d;
      ts = g_new (double, len);
      for (guint i = 0; i < len; i++)
        ts[i] = 0.25f * logf (sigmas[i]);
    }

  sampler_take_timesteps (s, ts, len);
  sampler_take_sigmas (s, sigmas, n_d + 1);
  s->num_inference_steps = n;
  for (guint i = 0; i < s->n_sigmas; i++)
    max_sigma = MAX (max_sigma, s->sigmas[i]);
  /* with "leading" spacing the first sigma is below the top one, so diffusers scales the
   * initial noise to the variance-preserving sqrt(sigma^2 + 1) instead */
  if (c->timestep_spacing == GESSO_SPACING_LEADING)
    s->init_noise_sigma = sqrtf (max_sigma * max_sigma + 1.0f);
  else
    s->init_noise_sigma = max_sigma;
  return TRUE;
}

static gboolean
euler_set_timesteps (GessoSampler *s, int n, GError **error)
{
  return sampler_sigma_timesteps (s, n, error);
}

static gboolean
euler_scale_divisor (GessoSampler *s, double t, double *divisor, GError **error)
{
  float sigma;

  if (!sampler_current_index (s, t, error))
    return FALSE;
  sigma = s->sigmas[s->step_index];
  *divisor = sqrtf (sigma * sigma + 1.0f);
  return TRUE;
}

static double
euler_x0 (GessoPrediction prediction, double x, double m, double sigma)
{
  switch (prediction)
    {
    case GESSO_PREDICTION_EPSILON:
      return x - sigma * m;
    case GESSO_PREDICTION_V:
      return m * (-sigma / sqrt (sigma * sigma + 1)) + x / (sigma * sigma + 1);
    case GESSO_PREDICTION_SAMPLE:
    default:
      return m;
    }
}

static gboolean
euler_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  double sigma, dt;

  if (!sampler_current_index (s, st->t, error))
    return FALSE;
  sigma = s->sigmas[s->step_index];
  dt = (double) s->sigmas[s->step_index + 1] - sigma;
  for (size_t i = 0; i < st->numel; i++)
    {
      double x = st->sample[i];
      double x0 = euler_x0 (s->config.prediction_type, x, st->model_output[i], sigma);

      st->x0[i] = (float) x0;
      st->prev[i] = (float) (x + (x - x0) / sigma * dt);
    }
  s->step_index++;
  return TRUE;
}

static gboolean
sigma_add_noise_index (GessoSampler *s, double t, int *index, GError **error)
{
  /* diffusers: look T up unless a begin index is set, then use the current step */
  if (s->begin_index < 0)
    return sampler_index_for_timestep (s, t, index, error);
  *index = s->step_index >= 0 ? s->step_index : s->begin_index;
  if ((guint) *index >= s->n_timesteps)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("add_noise after the last step"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
euler_add_noise_coeffs (GessoSampler *s, double t, double *a, double *b, GError **error)
{
  int index;

  if (!sigma_add_noise_index (s, t, &index, error))
    return FALSE;
  *a = 1.0;
  *b = s->sigmas[index];
  return TRUE;
}

const SamplerClass gesso_euler_class = {
  .set_timesteps = euler_set_timesteps,
  .scale_divisor = euler_scale_divisor,
  .step = euler_step,
  .add_noise_coeffs = euler_add_noise_coeffs,
};

/* --- ancestral ----------------------------------------------------------------------------- */

static guint
ancestral_noise_count (const GessoSampler *s, double t)
{
  return 1;     /* diffusers draws every step, the last (sigma_up = 0) included */
}

static gboolean
ancestral_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  double sigma, next, up, down, dt;

  if (!sampler_current_index (s, st->t, error))
    return FALSE;
  sigma = s->sigmas[s->step_index];
  next = s->sigmas[s->step_index + 1];
  up = sqrt (next * next * (sigma * sigma - next * next) / (sigma * sigma));
  down = sqrt (next * next - up * up);
  dt = down - sigma;
  for (size_t i = 0; i < st->numel; i++)
    {
      double x = st->sample[i];
      double x0 = euler_x0 (s->config.prediction_type, x, st->model_output[i], sigma);

      st->x0[i] = (float) x0;
      st->prev[i] = (float) (x + (x - x0) / sigma * dt + st->noise[i] * up);
    }
  s->step_index++;
  return TRUE;
}

const SamplerClass gesso_euler_ancestral_class = {
  .set_timesteps = euler_set_timesteps,
  .scale_divisor = euler_scale_divisor,
  .noise_count = ancestral_noise_count,
  .step = ancestral_step,
  .add_noise_coeffs = euler_add_noise_coeffs,
};

/* Shared with LMS, which scales and noises exactly like Euler. */
gboolean
sampler_sigma_scale_divisor (GessoSampler *s, double t, double *divisor, GError **error)
{
  return euler_scale_divisor (s, t, divisor, error);
}

gboolean
sampler_sigma_add_noise_coeffs (GessoSampler *s, double t, double *a, double *b, GError **error)
{
  return euler_add_noise_coeffs (s, t, a, b, error);
}
