/* The sampler interface: argument checks, step bookkeeping and helpers shared by the
 * per-scheduler files. */
#include "sampling/sampler-private.h"

#include <stdlib.h>
#include <string.h>
#include <glib/gi18n-lib.h>

static const SamplerClass *const classes[GESSO_SAMPLER_COUNT] = {
  [GESSO_SAMPLER_DDIM] = &gesso_ddim_class,
  [GESSO_SAMPLER_DDIM_INVERSE] = &gesso_ddim_inverse_class,
  [GESSO_SAMPLER_DDPM] = &gesso_ddpm_class,
  [GESSO_SAMPLER_EULER] = &gesso_euler_class,
  [GESSO_SAMPLER_EULER_ANCESTRAL] = &gesso_euler_ancestral_class,
  [GESSO_SAMPLER_DPMPP_2M] = &gesso_dpm_class,
  [GESSO_SAMPLER_LMS] = &gesso_lms_class,
  [GESSO_SAMPLER_LCM] = &gesso_lcm_class,
  [GESSO_SAMPLER_REPAINT] = &gesso_repaint_class,
};

/* --- construction ------------------------------------------------------------------------ */

static gboolean
check_config (const GessoSamplerConfig *c, GError **error)
{
  const char *kind = gesso_sampler_kind_name (c->kind);

  if (!(c->eta >= 0 && c->eta <= 1))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("eta is %g; it must be between 0 (deterministic) and 1"), c->eta);
      return FALSE;
    }
  if (c->steps_offset < 0 || c->steps_offset >= c->num_train_timesteps)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("steps_offset is %d; it must be between 0 and %d"), c->steps_offset,
                   c->num_train_timesteps - 1);
      return FALSE;
    }
  if (c->clip_sample && !(c->clip_sample_range > 0 && isfinite (c->clip_sample_range)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("clip_sample_range is %g; it must be a positive number"),
                   c->clip_sample_range);
      return FALSE;
    }
  if (c->thresholding
      && !(c->dynamic_thresholding_ratio >= 0 && c->dynamic_thresholding_ratio <= 1
           && c->sample_max_value >= 1 && isfinite (c->sample_max_value)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("thresholding needs dynamic_thresholding_ratio in [0, 1] and "
                   "sample_max_value >= 1 (got %g and %g)"), c->dynamic_thresholding_ratio,
                   c->sample_max_value);
      return FALSE;
    }
  if (c->kind == GESSO_SAMPLER_EULER_ANCESTRAL && c->prediction_type == GESSO_PREDICTION_SAMPLE)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("%s does not support prediction_type \"sample\" (diffusers does not "
                   "either); use euler or ddim for x0-predicting models"), kind);
      return FALSE;
    }
  if (c->kind == GESSO_SAMPLER_DDIM_INVERSE && c->timestep_spacing == GESSO_SPACING_LINSPACE)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("ddim_inverse supports timestep_spacing \"leading\" or \"trailing\", not "
                   "\"linspace\""));
      return FALSE;
    }
  if (c->kind == GESSO_SAMPLER_DPMPP_2M)
    {
      if (c->solver_order < 1 || c->solver_order > 3)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       _("solver_order is %d; DPM-Solver supports orders 1, 2 and 3"),
                       c->solver_order);
          return FALSE;
        }
      if ((c->algorithm_type == GESSO_DPM_DPMSOLVER || c->algorithm_type == GESSO_DPM_SDE_DPMSOLVER)
          && !c->final_sigma_min)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       _("final_sigmas_type \"zero\" needs algorithm_type \"dpmsolver++\" or "
                       "\"sde-dpmsolver++\"; use final_sigmas_type \"sigma_min\""));
          return FALSE;
        }
      if (c->algorithm_type == GESSO_DPM_SDE_DPMSOLVER && c->solver_order == 3)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       _("algorithm_type \"sde-dpmsolver\" has no third-order solver; use "
                       "solver_order 1 or 2"));
          return FALSE;
        }
    }
  if (c->kind == GESSO_SAMPLER_LMS && (c->lms_order < 1 || c->lms_order > 8))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the LMS order is %d; it must be between 1 and 8"), c->lms_order);
      return FALSE;
    }
  if (c->kind == GESSO_SAMPLER_LCM
      && (c->original_inference_steps < 1 || c->original_inference_steps > c->num_train_timesteps
          || !(c->timestep_scaling > 0 && isfinite (c->timestep_scaling))))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("LCM needs original_inference_steps between 1 and %d and a positive "
                   "timestep_scaling (got %d and %g)"), c->num_train_timesteps,
                   c->original_inference_steps, c->timestep_scaling);
      return FALSE;
    }
  if (c->kind == GESSO_SAMPLER_LCM && !(c->lcm_strength > 0 && c->lcm_strength <= 1))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the LCM strength is %g; it must be above 0 and at most 1"), c->lcm_strength);
      return FALSE;
    }
  if (c->kind == GESSO_SAMPLER_REPAINT && (c->jump_length < 1 || c->jump_n_sample < 1))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("RePaint needs jump_length >= 1 and jump_n_sample >= 1 (got %d and %d)"),
                   c->jump_length, c->jump_n_sample);
      return FALSE;
    }
  return TRUE;
}

GessoSampler *
gesso_sampler_new (const GessoSamplerConfig *config, GError **error)
{
  GessoSampler *s;

  g_return_val_if_fail (config != NULL, NULL);
  if ((unsigned) config->kind >= GESSO_SAMPLER_COUNT)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT, _("unknown sampler kind %d"),
                   (int) config->kind);
      return NULL;
    }
  if (!check_config (config, error))
    return NULL;

  s = g_new0 (GessoSampler, 1);
  s->config = *config;
  s->klass = classes[config->kind];
  s->step_index = -1;
  s->begin_index = -1;
  s->init_noise_sigma = 1.0;
  if (!gesso_schedule_init (&s->schedule, config->num_train_timesteps, config->beta_schedule,
                            config->beta_start, config->beta_end,
                            config->rescale_betas_zero_snr, error))
    {
      g_free (s);
      return NULL;
    }
  /* The sigma samplers cannot use abar = 0 (infinite sigma); diffusers replaces it. */
  if (config->rescale_betas_zero_snr
      && (config->kind == GESSO_SAMPLER_EULER || config->kind == GESSO_SAMPLER_EULER_ANCESTRAL
          || config->kind == GESSO_SAMPLER_DPMPP_2M))
    s->schedule.alphas_cumprod[config->num_train_timesteps - 1] = 0x1p-24f;
  /* Where the chain ends (DDIM/LCM) or starts (DDIM inverse): abar "at t = -1". RePaint
   * always uses 1. */
  s->final_alpha_cumprod = (config->set_alpha_to_one || config->kind == GESSO_SAMPLER_REPAINT)
                             ? 1.0f : s->schedule.alphas_cumprod[0];
  return s;
}

void
gesso_sampler_free (GessoSampler *sampler)
{
  if (sampler == NULL)
    return;
  gesso_schedule_clear (&sampler->schedule);
  g_free (sampler->timesteps);
  g_free (sampler->sigmas);
  g_free (sampler->history);
  g_free (sampler->scratch);
  g_free (sampler);
}

const GessoSamplerConfig *
gesso_sampler_get_config (const GessoSampler *sampler)
{
  g_return_val_if_fail (sampler != NULL, NULL);
  return &sampler->config;
}

const GessoSchedule *
gesso_sampler_get_schedule (const GessoSampler *sampler)
{
  g_return_val_if_fail (sampler != NULL, NULL);
  return &sampler->schedule;
}

/* --- timesteps --------------------------------------------------------------------------- */

void
sampler_take_timesteps (GessoSampler *s, double *timesteps, guint n)
{
  g_free (s->timesteps);
  s->timesteps = timesteps;
  s->n_timesteps = n;
}

void
sampler_take_sigmas (GessoSampler *s, float *sigmas, guint n)
{
  g_free (s->sigmas);
  s->sigmas = sigmas;
  s->n_sigmas = n;
}

gboolean
gesso_sampler_set_timesteps (GessoSampler *sampler, int num_inference_steps, GError **error)
{
  g_return_val_if_fail (sampler != NULL, FALSE);
  if (num_inference_steps < 1 || num_inference_steps > sampler->config.num_train_timesteps)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%d sampling steps requested; use between 1 and %d (the number of "
                   "timesteps the model was trained with)"), num_inference_steps,
                   sampler->config.num_train_timesteps);
      return FALSE;
    }
  sampler->num_inference_steps = 0;
  sampler->step_index = -1;
  sampler->begin_index = -1;
  sampler->n_history = 0;
  sampler->lower_order_nums = 0;
  sampler->init_noise_sigma = 1.0;
  if (!sampler->klass->set_timesteps (sampler, num_inference_steps, error))
    {
      sampler_take_timesteps (sampler, NULL, 0);
      sampler_take_sigmas (sampler, NULL, 0);
      return FALSE;
    }
  if (sampler->num_inference_steps == 0)
    sampler->num_inference_steps = num_inference_steps;
  return TRUE;
}

const double *
gesso_sampler_get_timesteps (const GessoSampler *sampler, guint *n)
{
  g_return_val_if_fail (sampler != NULL, NULL);
  if (n != NULL)
    *n = sampler->n_timesteps;
  return sampler->timesteps;
}

const float *
gesso_sampler_get_sigmas (const GessoSampler *sampler, guint *n)
{
  g_return_val_if_fail (sampler != NULL, NULL);
  if (n != NULL)
    *n = sampler->n_sigmas;
  return sampler->sigmas;
}

double
gesso_sampler_get_init_noise_sigma (const GessoSampler *sampler)
{
  g_return_val_if_fail (sampler != NULL, 1.0);
  return sampler->init_noise_sigma;
}

gboolean
gesso_sampler_set_begin_index (GessoSampler *sampler, int index, GError **error)
{
  g_return_val_if_fail (sampler != NULL, FALSE);
  if (index < 0 || (guint) index >= sampler->n_timesteps)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("begin index %d is outside the %u timesteps; call set_timesteps first"),
                   index, sampler->n_timesteps);
      return FALSE;
    }
  sampler->begin_index = index;
  sampler->step_index = -1;
  return TRUE;
}

gboolean
sampler_train_index (const GessoSampler *s, double t, int *index, GError **error)
{
  if (!(t >= 0 && t < s->config.num_train_timesteps && t == floor (t)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("timestep %g is not one of the %s sampler's integer timesteps 0..%d"), t,
                   gesso_sampler_kind_name (s->config.kind), s->config.num_train_timesteps - 1);
      return FALSE;
    }
  *index = (int) t;
  return TRUE;
}

gboolean
sampler_index_for_timestep (const GessoSampler *s, double t, int *index, GError **error)
{
  int found = 0;

  for (guint i = 0; i < s->n_timesteps; i++)
    if (s->timesteps[i] == t)
      {
        *index = (int) i;
        if (++found == 2)
          return TRUE;
      }
  if (found == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("timestep %g is not in the sampler's schedule%s"), t,
                   s->n_timesteps == 0 ? " (call set_timesteps first)" : "");
      return FALSE;
    }
  return TRUE;
}

gboolean
sampler_current_index (GessoSampler *s, double t, GError **error)
{
  if (s->n_timesteps == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the sampler has no timesteps yet; call set_timesteps first"));
      return FALSE;
    }
  if (s->step_index < 0)
    {
      if (s->begin_index >= 0)
        s->step_index = s->begin_index;
      else if (!sampler_index_for_timestep (s, t, &s->step_index, error))
        return FALSE;
    }
  if ((guint) s->step_index >= s->n_timesteps)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("all %u steps have been taken; call set_timesteps to start again"),
                   s->n_timesteps);
      return FALSE;
    }
  /* Like diffusers, the step counter (not T) picks the sigma once started; T must still be
   * one of the schedule's timesteps. It differs from the counter's only where the schedule
   * repeats a timestep (Karras sigmas on short schedules), and then diffusers does the same. */
  if (s->timesteps[s->step_index] != t)
    {
      int unused;

      if (!sampler_index_for_timestep (s, t, &unused, error))
        return FALSE;
    }
  return TRUE;
}

static const char *
spacing_name (GessoTimestepSpacing spacing)
{
  switch (spacing)
    {
    case GESSO_SPACING_LEADING:
      return "leading";
    case GESSO_SPACING_TRAILING:
      return "trailing";
    case GESSO_SPACING_LINSPACE:
    default:
      return "linspace";
    }
}

gboolean
sampler_check_train_range (GessoSampler *s, GError **error)
{
  for (guint i = 0; i < s->n_timesteps; i++)
    if (!(s->timesteps[i] >= 0 && s->timesteps[i] < s->config.num_train_timesteps))
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     _("%d steps with %s spacing and steps_offset %d give timestep %g, outside "
                     "the trained 0..%d; choose another step count or spacing"),
                     s->num_inference_steps, spacing_name (s->config.timestep_spacing),
                     s->config.steps_offset, s->timesteps[i], s->config.num_train_timesteps - 1);
        return FALSE;
      }
  return TRUE;
}

gboolean
sampler_alpha_add_noise_coeffs (GessoSampler *s, double t, double *a, double *b,
                                GError **error)
{
  int ti;

  if (!sampler_train_index (s, t, &ti, error))
    return FALSE;
  *a = sqrt ((double) s->schedule.alphas_cumprod[ti]);
  *b = sqrt (1 - (double) s->schedule.alphas_cumprod[ti]);
  return TRUE;
}

/* --- tensors ------------------------------------------------------------------------------ */

static gboolean
check_like (const GessoTensor *ref, const GessoTensor *t, const char *what, int64_t count,
            GError **error)
{
  int64_t numel = gesso_tensor_numel (ref);

  if (t == NULL || t->data == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT, _("the %s tensor is missing"),
                   what);
      return FALSE;
    }
  if (count == 1 ? !gesso_tensor_same_shape (ref, t) : gesso_tensor_numel (t) != count * numel)
    {
      g_autofree char *a = gesso_tensor_shape_string (ref->ndim, ref->shape);
      g_autofree char *b = gesso_tensor_shape_string (t->ndim, t->shape);

      if (count == 1)
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     _("the %s tensor is %s; it must have the sample's shape %s"), what, b, a);
      else
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     "the %s tensor is %s; it must hold %" G_GINT64_FORMAT " tensors of shape %s",
                     what, b, count, a);
      return FALSE;
    }
  return TRUE;
}

static float *
scratch (GessoSampler *s, size_t numel)
{
  if (s->scratch_numel < numel)
    {
      g_free (s->scratch);
      s->scratch = g_new (float, numel);
      s->scratch_numel = numel;
    }
  return s->scratch;
}

static gboolean
check_sample (const GessoTensor *sample, GError **error)
{
  if (sample == NULL || sample->data == NULL || sample->ndim < 1
      || gesso_tensor_numel (sample) <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the sample tensor is missing or empty"));
      return FALSE;
    }
  return TRUE;
}

gboolean
gesso_sampler_scale_model_input (GessoSampler *sampler, const GessoTensor *sample, double t,
                                 GessoTensor *out, GError **error)
{
  double divisor = 1.0;
  size_t n;

  g_return_val_if_fail (sampler != NULL, FALSE);
  if (!check_sample (sample, error) || !check_like (sample, out, "output", 1, error))
    return FALSE;
  if (sampler->klass->scale_divisor != NULL
      && !sampler->klass->scale_divisor (sampler, t, &divisor, error))
    return FALSE;
  n = (size_t) gesso_tensor_numel (sample);
  if (divisor == 1.0)
    {
      if (out->data != sample->data)
        memcpy (out->data, sample->data, n * sizeof (float));
    }
  else
    for (size_t i = 0; i < n; i++)
      out->data[i] = (float) (sample->data[i] / divisor);
  return TRUE;
}

guint
gesso_sampler_step_noise_count (const GessoSampler *sampler, double t)
{
  g_return_val_if_fail (sampler != NULL, 0);
  return sampler->klass->noise_count ? sampler->klass->noise_count (sampler, t) : 0;
}

gboolean
gesso_sampler_step (GessoSampler *sampler, const GessoTensor *model_output, double t,
                    const GessoTensor *sample, const GessoTensor *noise,
                    GessoTensor *prev_sample, GessoTensor *pred_original, GError **error)
{
  SamplerStep step = { 0 };
  guint n_noise;

  g_return_val_if_fail (sampler != NULL, FALSE);
  if (sampler->config.kind == GESSO_SAMPLER_REPAINT)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("RePaint steps need the original image and the mask: use "
                   "gesso_sampler_repaint_step"));
      return FALSE;
    }
  if (sampler->num_inference_steps == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the sampler has no timesteps yet; call set_timesteps first"));
      return FALSE;
    }
  if (!isfinite (t))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT, _("timestep %g is not finite"),
                   t);
      return FALSE;
    }
  if (!check_sample (sample, error)
      || !check_like (sample, model_output, "model output", 1, error)
      || !check_like (sample, prev_sample, "previous-sample", 1, error)
      || (pred_original != NULL
          && !check_like (sample, pred_original, "predicted-original", 1, error)))
    return FALSE;
  n_noise = gesso_sampler_step_noise_count (sampler, t);
  if (n_noise > 0 && !check_like (sample, noise, "noise", n_noise, error))
    return FALSE;

  step.t = t;
  step.numel = (size_t) gesso_tensor_numel (sample);
  step.batch = sample->shape[0] > 0 ? sample->shape[0] : 1;
  step.model_output = model_output->data;
  step.sample = sample->data;
  step.noise = n_noise > 0 ? noise->data : NULL;
  step.prev = prev_sample->data;
  step.x0 = pred_original != NULL ? pred_original->data : scratch (sampler, step.numel);
  return sampler->klass->step (sampler, &step, error);
}

gboolean
gesso_sampler_add_noise (GessoSampler *sampler, const GessoTensor *original,
                         const GessoTensor *noise, double t, GessoTensor *out, GError **error)
{
  double a, b;
  size_t n;

  g_return_val_if_fail (sampler != NULL, FALSE);
  if (!check_sample (original, error) || !check_like (original, noise, "noise", 1, error)
      || !check_like (original, out, "output", 1, error))
    return FALSE;
  if (!sampler->klass->add_noise_coeffs (sampler, t, &a, &b, error))
    return FALSE;
  n = (size_t) gesso_tensor_numel (original);
  for (size_t i = 0; i < n; i++)
    out->data[i] = (float) (a * original->data[i] + b * noise->data[i]);
  return TRUE;
}

/* --- shared numerics ---------------------------------------------------------------------- */

static int
compare_floats (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;

  return (x > y) - (x < y);
}

void
sampler_threshold (GessoSampler *s, float *x0, size_t numel, int64_t batch)
{
  size_t per = numel / (size_t) batch;
  float *sorted = g_new (float, per);

  for (int64_t b = 0; b < batch; b++)
    {
      float *x = x0 + (size_t) b * per;
      double rank, frac, lo, hi, q, limit;
      size_t below;

      for (size_t i = 0; i < per; i++)
        sorted[i] = fabsf (x[i]);
      qsort (sorted, per, sizeof *sorted, compare_floats);
      /* torch.quantile, "linear" interpolation between the two nearest ranks */
      rank = s->config.dynamic_thresholding_ratio * (double) (per - 1);
      below = (size_t) rank;
      frac = rank - (double) below;
      lo = sorted[below];
      hi = sorted[below + 1 < per ? below + 1 : below];
      q = lo + frac * (hi - lo);
      limit = q < 1 ? 1 : q > s->config.sample_max_value ? s->config.sample_max_value : q;
      for (size_t i = 0; i < per; i++)
        {
          double v = x[i] < -limit ? -limit : x[i] > limit ? limit : x[i];
          x[i] = (float) (v / limit);
        }
    }
  g_free (sorted);
}

void
sampler_clip_x0 (GessoSampler *s, float *x0, size_t numel, int64_t batch)
{
  if (s->config.thresholding)
    sampler_threshold (s, x0, numel, batch);
  else if (s->config.clip_sample)
    {
      float r = (float) s->config.clip_sample_range;

      for (size_t i = 0; i < numel; i++)
        x0[i] = x0[i] < -r ? -r : x0[i] > r ? r : x0[i];
    }
}

void
sampler_history_reserve (GessoSampler *s, guint slots, size_t numel)
{
  if (s->history_slots != slots || s->history_numel != numel)
    {
      g_free (s->history);
      s->history = g_new (float, (size_t) slots * numel);
      s->history_slots = slots;
      s->history_numel = numel;
      s->n_history = 0;
    }
}

float *
sampler_history (GessoSampler *s, guint i)
{
  return s->history + (size_t) i * s->history_numel;
}

float *
sampler_history_push (GessoSampler *s)
{
  if (s->n_history == s->history_slots)
    {
      /* drop the oldest entry; a few latents' worth of copying once per step */
      memmove (s->history, s->history + s->history_numel,
               (size_t) (s->history_slots - 1) * s->history_numel * sizeof (float));
      s->n_history--;
    }
  return sampler_history (s, s->n_history++);
}
