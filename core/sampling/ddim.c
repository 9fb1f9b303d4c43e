/* DDIM (Song, Meng & Ermon 2020, "Denoising Diffusion Implicit Models") and its inversion,
 * as diffusers' DDIMScheduler and DDIMInverseScheduler.
 *
 * Eq. 12 takes x_t to x_{t-1} (here "prev" = the next timestep down the spaced schedule):
 *   x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - s^2) eps + s z,
 *   x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t),
 *   s  = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)   (eq. 16),
 * eta = 0 being the deterministic DDIM and eta = 1 the DDPM posterior. Past the end of the
 * chain abar_prev is 1 (set_alpha_to_one) or abar_0.
 *
 * Inversion runs eq. 12 with eta = 0 the other way: from the timestep one spacing below t to
 * t, using the model output at the lower point. That is diffusers' quirk too: step(t) reads
 * abar at t - T/n (the "initial" abar, 1 or abar_0, when that is negative) as the current
 * point and writes x at t.
 */
#include "sampling/sampler-private.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* DDIM, DDIM inverse and DDPM space their integer timesteps the same way. */
gboolean
sampler_alpha_timesteps (GessoSampler *s, int n, GError **error)
{
  double *ts;
  guint len;

  if (!gesso_schedule_timesteps (s->config.timestep_spacing, s->config.num_train_timesteps, n,
                                 s->config.steps_offset, TRUE, &ts, &len, error))
    return FALSE;
  sampler_take_timesteps (s, ts, len);
  s->num_inference_steps = n;
  return sampler_check_train_range (s, error);
}

static guint
ddim_noise_count (const GessoSampler *s, double t)
{
  return s->config.eta > 0 ? 1 : 0;
}

static gboolean
ddim_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int t, prev_t;
  double a, a_prev, sa, sb, variance, std, dir;

  if (!sampler_train_index (s, st->t, &t, error))
    return FALSE;
  prev_t = t - c->num_train_timesteps / s->num_inference_steps;
  a = s->schedule.alphas_cumprod[t];
  a_prev = prev_t >= 0 ? s->schedule.alphas_cumprod[prev_t] : s->final_alpha_cumprod;
  sa = sqrt (a);
  sb = sqrt (1 - a);

  for (size_t i = 0; i < st->numel; i++)
    st->x0[i] = (float) sampler_x0 (c->prediction_type, st->sample[i], st->model_output[i], sa,
                                    sb);
  sampler_clip_x0 (s, st->x0, st->numel, st->batch);

  /* eq. 16 */
  variance = ((1 - a_prev) / (1 - a)) * (1 - a / a_prev);
  std = c->eta * sqrt (variance);
  dir = sqrt (1 - a_prev - std * std);
  for (size_t i = 0; i < st->numel; i++)
    {
      double eps = sampler_eps (c->prediction_type, st->sample[i], st->model_output[i], sa, sb);
      double x = sqrt (a_prev) * st->x0[i] + dir * eps;

      if (c->eta > 0)
        x += std * st->noise[i];
      st->prev[i] = (float) x;
    }
  return TRUE;
}

const SamplerClass gesso_ddim_class = {
  .set_timesteps = sampler_alpha_timesteps,
  .noise_count = ddim_noise_count,
  .step = ddim_step,
  .add_noise_coeffs = sampler_alpha_add_noise_coeffs,
};

/* --- inversion ----------------------------------------------------------------------------- */

static gboolean
inverse_set_timesteps (GessoSampler *s, int n, GError **error)
{
  if (!sampler_alpha_timesteps (s, n, error))
    return FALSE;
  /* the same grid, walked upwards */
  for (guint i = 0; i < s->n_timesteps / 2; i++)
    {
      double tmp = s->timesteps[i];
      s->timesteps[i] = s->timesteps[s->n_timesteps - 1 - i];
      s->timesteps[s->n_timesteps - 1 - i] = tmp;
    }
  return TRUE;
}

static gboolean
inverse_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int t, from;
  double a, a_next, sa, sb, sa_next, sb_next;

  if (!sampler_train_index (s, st->t, &t, error))
    return FALSE;
  from = MIN (t - c->num_train_timesteps / s->num_inference_steps, c->num_train_timesteps - 1);
  a = from >= 0 ? s->schedule.alphas_cumprod[from] : s->final_alpha_cumprod;
  a_next = s->schedule.alphas_cumprod[t];
  sa = sqrt (a);
  sb = sqrt (1 - a);
  sa_next = sqrt (a_next);
  sb_next = sqrt (1 - a_next);

  for (size_t i = 0; i < st->numel; i++)
    st->x0[i] = (float) sampler_x0 (c->prediction_type, st->sample[i], st->model_output[i], sa,
                                    sb);
  if (c->clip_sample)
    sampler_clip_x0 (s, st->x0, st->numel, st->batch);
  for (size_t i = 0; i < st->numel; i++)
    {
      double eps = sampler_eps (c->prediction_type, st->sample[i], st->model_output[i], sa, sb);

      st->prev[i] = (float) (sa_next * st->x0[i] + sb_next * eps);
    }
  return TRUE;
}

const SamplerClass gesso_ddim_inverse_class = {
  .set_timesteps = inverse_set_timesteps,
  .step = inverse_step,
  .add_noise_coeffs = sampler_alpha_add_noise_coeffs,
};
