/* Latent Consistency Model sampling (Luo et al. 2023, "Latent Consistency Models"), as
 * diffusers' LCMScheduler.
 *
 * The consistency function f(x, t) = c_skip(t) x + c_out(t) x0(x, t) maps any point of the
 * trajectory to its origin (eq. 9); the boundary-condition scalings of Song et al. 2023 with
 * sigma_data = 0.5 and the timestep scaled by timestep_scaling (10) are
 *   c_skip = sigma_data^2 / ((t s)^2 + sigma_data^2),  c_out = t s / sqrt((t s)^2 + sigma_data^2).
 * Multistep sampling (Algorithm 1) alternates denoising with f and re-noising the result
 * forward to the next timestep: x_next = sqrt(abar_next) f + sqrt(1 - abar_next) z; the last
 * step returns f itself. The timesteps are a subset of the distillation schedule
 * {k - 1, 2k - 1, ..., T - 1}, k = T / original_inference_steps, taken at evenly spaced
 * positions from the top ("skipping-step" schedule, eq. 10).
 *
 * Strength (img2img, as LatentConsistencyModelImg2ImgPipeline passes it to set_timesteps):
 * the schedule keeps only its first L = int(original_inference_steps * strength) timesteps
 * {k - 1, ..., L k - 1} and the n steps are spread over those from L k - 1 down, so an
 * img2img run makes all n steps from a lower start instead of skipping the top ones. Fewer
 * than n timesteps left is an error, as in diffusers.
 */
#include "sampling/sampler-private.h"
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define LCM_SIGMA_DATA 0.5

static gboolean
lcm_set_timesteps (GessoSampler *s, int n, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int original = c->original_inference_steps, k = c->num_train_timesteps / original;
  /* int(original_steps * strength) in Python's double arithmetic */
  int kept = (int) ((double) original * c->lcm_strength);
  g_autofree double *positions = NULL;
  double *ts;

  if (n > original)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("LCM can take at most %d steps (original_inference_steps); %d requested"),
                   original, n);
      return FALSE;
    }
  if (n > kept)
    {
      if (kept > 0)
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     _("LCM at strength %g keeps %d of its %d timesteps, fewer than the %d steps "
                     "asked; use at most %d steps or a strength above %g"), c->lcm_strength, kept,
                     original, n, kept, (double) n / original);
      else
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     _("LCM at strength %g keeps none of its %d timesteps; use a strength "
                       "above %g"),
                     c->lcm_strength, original, (double) n / original);
      return FALSE;
    }
  /* positions floor(linspace(0, kept, n, endpoint=False)) into the descending distillation
   * schedule (kept - j) k - 1 */
  positions = g_new (double, n);
  for (int i = 0; i < n; i++)
    positions[i] = floor ((double) i * ((double) kept / n));
  ts = g_new (double, n);
  for (int i = 0; i < n; i++)
    ts[i] = (double) (kept - (int) positions[i]) * k - 1;
  sampler_take_timesteps (s, ts, (guint) n);
  s->num_inference_steps = n;
  return sampler_check_train_range (s, error);
}

/* The step index the next step at T will have, without starting the counter. */
static int
peek_index (const GessoSampler *s, double t)
{
  int index = -1;

  if (s->step_index >= 0)
    return s->step_index;
  if (s->begin_index >= 0)
    return s->begin_index;
  if (!sampler_index_for_timestep (s, t, &index, NULL))
    return -1;
  return index;
}

static guint
lcm_noise_count (const GessoSampler *s, double t)
{
  int index = peek_index (s, t);

  return index >= 0 && index != s->num_inference_steps - 1 ? 1 : 0;
}

static gboolean
lcm_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int t, i, prev_t;
  double a, a_prev, sa, sb, scaled, c_skip, c_out;
  gboolean last;

  if (!sampler_current_index (s, st->t, error) || !sampler_train_index (s, st->t, &t, error))
    return FALSE;
  i = s->step_index;
  last = i == s->num_inference_steps - 1;
  prev_t = (guint) i + 1 < s->n_timesteps ? (int) s->timesteps[i + 1] : t;
  a = s->schedule.alphas_cumprod[t];
  a_prev = prev_t >= 0 ? s->schedule.alphas_cumprod[prev_t] : s->final_alpha_cumprod;
  sa = sqrt (a);
  sb = sqrt (1 - a);

  /* boundary-condition scalings (Song et al. 2023, Appendix C) */
  scaled = t * c->timestep_scaling;
  c_skip = LCM_SIGMA_DATA * LCM_SIGMA_DATA / (scaled * scaled + LCM_SIGMA_DATA * LCM_SIGMA_DATA);
  c_out = scaled / sqrt (scaled * scaled + LCM_SIGMA_DATA * LCM_SIGMA_DATA);

  for (size_t e = 0; e < st->numel; e++)
    st->x0[e] = (float) sampler_x0 (c->prediction_type, st->sample[e], st->model_output[e], sa,
                                    sb);
  sampler_clip_x0 (s, st->x0, st->numel, st->batch);
  for (size_t e = 0; e < st->numel; e++)
    {
      float denoised = (float) (c_out * st->x0[e] + c_skip * st->sample[e]);

      st->x0[e] = denoised;
      st->prev[e] = last ? denoised
                         : (float) (sqrt (a_prev) * denoised + sqrt (1 - a_prev) * st->noise[e]);
    }
  s->step_index++;
  return TRUE;
}

const SamplerClass gesso_lcm_class = {
  .set_timesteps = lcm_set_timesteps,
  .noise_count = lcm_noise_count,
  .step = lcm_step,
  .add_noise_coeffs = sampler_alpha_add_noise_coeffs,
};
