/* DDPM ancestral sampling (Ho, Jain & Abbeel 2020), as diffusers' DDPMScheduler, on a spaced
 * schedule: the step from t to the previous scheduled timestep p samples the Gaussian
 * posterior q(x_p | x_t, x0) of eqs. 6-7 with the spaced betas
 *   alpha = abar_t / abar_p,  beta = 1 - alpha,
 *   mean  = sqrt(abar_p) beta / (1 - abar_t) x0 + sqrt(alpha) (1 - abar_p) / (1 - abar_t) x_t,
 *   var   = (1 - abar_p) / (1 - abar_t) beta           ("fixed_small", beta~ of eq. 7)
 *         = beta                                       ("fixed_large")
 * and adds sqrt(var) z except at t = 0.
 */
#include "sampling/sampler-private.h"
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static guint
ddpm_noise_count (const GessoSampler *s, double t)
{
  return t > 0 ? 1 : 0;
}

/* The scheduled timestep after T, or -1 at the end (diffusers' previous_timestep). */
static gboolean
previous_timestep (GessoSampler *s, double t, int *prev, GError **error)
{
  for (guint i = 0; i < s->n_timesteps; i++)
    if (s->timesteps[i] == t)
      {
        *prev = i + 1 < s->n_timesteps ? (int) s->timesteps[i + 1] : -1;
        return TRUE;
      }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
               _("timestep %g is not in the ddpm schedule; pass one of get_timesteps()"), t);
  return FALSE;
}

static gboolean
ddpm_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int t, p;
  double a, a_p, b, b_p, alpha, beta, sa, sb, c_x0, c_x, std = 0;

  if (!sampler_train_index (s, st->t, &t, error) || !previous_timestep (s, st->t, &p, error))
    return FALSE;
  a = s->schedule.alphas_cumprod[t];
  a_p = p >= 0 ? s->schedule.alphas_cumprod[p] : 1.0;
  b = 1 - a;
  b_p = 1 - a_p;
  alpha = a / a_p;
  beta = 1 - alpha;
  sa = sqrt (a);
  sb = sqrt (b);

  for (size_t i = 0; i < st->numel; i++)
    st->x0[i] = (float) sampler_x0 (c->prediction_type, st->sample[i], st->model_output[i], sa,
                                    sb);
  sampler_clip_x0 (s, st->x0, st->numel, st->batch);

  /* eq. 7 */
  c_x0 = sqrt (a_p) * beta / b;
  c_x = sqrt (alpha) * b_p / b;
  if (t > 0)
    {
      double var = b_p / b * beta;

      var = var < 1e-20 ? 1e-20 : var;
      switch (c->variance_type)
        {
        case GESSO_DDPM_VARIANCE_FIXED_SMALL_LOG:
          std = exp (0.5 * log (var));
          break;
        case GESSO_DDPM_VARIANCE_FIXED_LARGE:
          std = sqrt (beta);
          break;
        case GESSO_DDPM_VARIANCE_FIXED_SMALL:
        default:
          std = sqrt (var);
          break;
        }
    }
  for (size_t i = 0; i < st->numel; i++)
    {
      double x = c_x0 * st->x0[i] + c_x * st->sample[i];

      if (t > 0)
        x += std * st->noise[i];
      st->prev[i] = (float) x;
    }
  return TRUE;
}

const SamplerClass gesso_ddpm_class = {
  .set_timesteps = sampler_alpha_timesteps,
  .noise_count = ddpm_noise_count,
  .step = ddpm_step,
  .add_noise_coeffs = sampler_alpha_add_noise_coeffs,
};
