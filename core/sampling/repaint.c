/* RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic
 * Models"), as diffusers' RePaintScheduler.
 *
 * Algorithm 1: at each reverse step the known region is the original image forward-noised
 * to the previous timestep (line 5), the unknown region is the model's reverse step (line 7,
 * here DDIM's eq. 12 with eta, as diffusers does), and the two are joined by the mask
 * (line 8). Every jump_length steps the sample is re-noised jump_length steps forward
 * (line 10, "undo") and denoised again, jump_n_sample - 1 extra times, which lets the
 * generated region harmonise with the known one (the resampling schedule of sec. 4.2).
 *
 * Unlike the other samplers this one works in float32, operation for operation as diffusers
 * does: its reference outputs carry no float64 error margin, and a resampling schedule
 * chains hundreds of steps (every undo re-noises one training step at a time).
 */
#include "sampling/sampler-private.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static gboolean
repaint_set_timesteps (GessoSampler *s, int n, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int jl = c->jump_length, scale;
  g_autofree int *jumps = NULL;
  GArray *ts;
  int t;

  n = MIN (n, c->num_train_timesteps);
  scale = c->num_train_timesteps / n;
  /* jumps back from every jump_length-th step j < n - jump_length, jump_n_sample - 1 times */
  jumps = g_new0 (int, n);
  for (int j = 0; j < n - jl; j += jl)
    jumps[j] = c->jump_n_sample - 1;

  ts = g_array_new (FALSE, FALSE, sizeof (double));
  t = n;
  while (t >= 1)
    {
      double v;

      t--;
      v = (double) t * scale;
      g_array_append_val (ts, v);
      if (jumps[t] > 0)
        {
          jumps[t]--;
          for (int k = 0; k < jl; k++)
            {
              t++;
              v = (double) t * scale;
              g_array_append_val (ts, v);
            }
        }
      if (ts->len > 10000000)
        {
          g_array_unref (ts);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("the RePaint schedule for %d steps, jump length %d and %d resamplings is "
                       "too long; use fewer resamplings"), n, jl, c->jump_n_sample);
          return FALSE;
        }
    }
  s->num_inference_steps = n;
  {
    guint len = ts->len;

    sampler_take_timesteps (s, (double *) (void *) g_array_free (ts, FALSE), len);
  }
  return TRUE;
}

static guint
repaint_noise_count (const GessoSampler *s, double t)
{
  return 1;
}

static gboolean
check_mask (const GessoTensor *sample, const GessoTensor *mask, gboolean *per_channel,
            GError **error)
{
  g_autofree char *a = NULL, *b = NULL;

  if (mask == NULL || mask->data == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the mask tensor is missing"));
      return FALSE;
    }
  if (gesso_tensor_same_shape (sample, mask))
    {
      *per_channel = TRUE;
      return TRUE;
    }
  *per_channel = FALSE;
  if (sample->ndim == 4 && mask->ndim == 4 && mask->shape[1] == 1
      && (mask->shape[0] == sample->shape[0] || mask->shape[0] == 1)
      && mask->shape[2] == sample->shape[2] && mask->shape[3] == sample->shape[3])
    return TRUE;
  a = gesso_tensor_shape_string (sample->ndim, sample->shape);
  b = gesso_tensor_shape_string (mask->ndim, mask->shape);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
               _("the mask is %s; for a sample of shape %s it must have that shape or one "
               "channel ([N or 1, 1, H, W])"), b, a);
  return FALSE;
}

gboolean
gesso_sampler_repaint_step (GessoSampler *sampler, const GessoTensor *model_output, double t,
                            const GessoTensor *sample, const GessoTensor *original,
                            const GessoTensor *mask, const GessoTensor *noise,
                            GessoTensor *prev_sample, GessoTensor *pred_original,
                            GError **error)
{
  const GessoSamplerConfig *c;
  GessoSampler *s = sampler;
  gboolean per_channel;
  gboolean with_variance;
  int ti, prev_t;
  float a, a_prev, sa, sb, variance, std, dir_scale, keep_scale, noise_scale;
  int64_t numel, plane, channels;

  g_return_val_if_fail (sampler != NULL, FALSE);
  c = &s->config;
  if (c->kind != GESSO_SAMPLER_REPAINT)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("repaint_step needs a repaint sampler, not %s"),
                   gesso_sampler_kind_name (c->kind));
      return FALSE;
    }
  if (s->num_inference_steps == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the sampler has no timesteps yet; call set_timesteps first"));
      return FALSE;
    }
  if (sample == NULL || sample->data == NULL || gesso_tensor_numel (sample) <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the sample tensor is missing or empty"));
      return FALSE;
    }
  if (!gesso_tensor_same_shape (sample, model_output) || !gesso_tensor_same_shape (sample, original)
      || !gesso_tensor_same_shape (sample, noise) || !gesso_tensor_same_shape (sample, prev_sample)
      || (pred_original != NULL && !gesso_tensor_same_shape (sample, pred_original))
      || model_output->data == NULL || original->data == NULL || noise->data == NULL
      || prev_sample->data == NULL)
    {
      g_autofree char *shape = gesso_tensor_shape_string (sample->ndim, sample->shape);

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the model output, original, noise and output tensors must all have the "
                   "sample's shape %s"), shape);
      return FALSE;
    }
  if (!check_mask (sample, mask, &per_channel, error) || !sampler_train_index (s, t, &ti, error))
    return FALSE;

  prev_t = ti - c->num_train_timesteps / s->num_inference_steps;
  a = s->schedule.alphas_cumprod[ti];
  a_prev = prev_t >= 0 ? s->schedule.alphas_cumprod[prev_t] : s->final_alpha_cumprod;
  sa = sqrtf (a);
  sb = sqrtf (1.0f - a);
  /* DDIM eq. 16 variance, and the scale of eq. 12's "direction pointing to x_t" */
  variance = ((1.0f - a_prev) / (1.0f - a)) * (1.0f - a / a_prev);
  std = (float) c->eta * sqrtf (variance);
  dir_scale = sqrtf (1.0f - a_prev - std * std);
  keep_scale = sqrtf (a_prev);
  noise_scale = sqrtf (1.0f - a_prev);
  with_variance = ti > 0 && c->eta > 0;

  numel = gesso_tensor_numel (sample);
  plane = sample->ndim == 4 ? sample->shape[2] * sample->shape[3] : numel;
  channels = sample->ndim == 4 ? sample->shape[1] : 1;
  for (int64_t e = 0; e < numel; e++)
    {
      float x = sample->data[e], m = model_output->data[e], z = noise->data[e];
      float x0 = (x - sb * m) / sa;
      float unknown, known, k;
      int64_t mi;

      if (c->clip_sample)
        x0 = x0 < -1.0f ? -1.0f : x0 > 1.0f ? 1.0f : x0;
      /* line 7 (eq. 12) for the unknown part, line 5 for the known part */
      unknown = keep_scale * x0 + dir_scale * m;
      if (with_variance)
        unknown = unknown + std * z;
      known = keep_scale * original->data[e] + noise_scale * z;
      if (per_channel)
        mi = e;
      else
        {
          int64_t item = e / (plane * channels);
          mi = (mask->shape[0] == 1 ? 0 : item) * plane + e % plane;
        }
      k = mask->data[mi];
      if (pred_original != NULL)
        pred_original->data[e] = x0;
      /* line 8 */
      prev_sample->data[e] = k * known + (1.0f - k) * unknown;
    }
  return TRUE;
}

guint
gesso_sampler_repaint_undo_noise_count (const GessoSampler *sampler)
{
  g_return_val_if_fail (sampler != NULL, 0);
  if (sampler->num_inference_steps == 0)
    return 0;
  return (guint) (sampler->config.num_train_timesteps / sampler->num_inference_steps);
}

gboolean
gesso_sampler_repaint_undo_step (GessoSampler *sampler, const GessoTensor *sample, double t,
                                 const GessoTensor *noise, GessoTensor *out, GError **error)
{
  guint count;
  int ti;
  int64_t numel;

  g_return_val_if_fail (sampler != NULL, FALSE);
  if (sampler->config.kind != GESSO_SAMPLER_REPAINT || sampler->num_inference_steps == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("undo_step needs a repaint sampler with its timesteps set"));
      return FALSE;
    }
  if (sample == NULL || sample->data == NULL || out == NULL || out->data == NULL
      || !gesso_tensor_same_shape (sample, out))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("undo_step needs a sample and an output of the same shape"));
      return FALSE;
    }
  count = gesso_sampler_repaint_undo_noise_count (sampler);
  numel = gesso_tensor_numel (sample);
  if (noise == NULL || noise->data == NULL || gesso_tensor_numel (noise) != (int64_t) count * numel)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "undo_step re-noises one training step at a time and needs %u noise tensors "
                   "of %" G_GINT64_FORMAT " values", count, numel);
      return FALSE;
    }
  if (!sampler_train_index (sampler, t, &ti, error))
    return FALSE;
  if (ti + (int) count > sampler->config.num_train_timesteps)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("undo_step from timestep %d would go past the last training timestep"), ti);
      return FALSE;
    }
  if (out->data != sample->data)
    memcpy (out->data, sample->data, (size_t) numel * sizeof (float));
  /* Algorithm 1, line 10: x_{t+1} ~ N(sqrt(1 - beta_t) x_t, beta_t I), one training step at a
   * time, each with its own draw */
  for (guint k = 0; k < count; k++)
    {
      float beta = sampler->schedule.betas[ti + (int) k];
      float keep = sqrtf (1.0f - beta), add = sqrtf (beta);
      const float *z = noise->data + (size_t) k * (size_t) numel;

      for (int64_t e = 0; e < numel; e++)
        out->data[e] = keep * out->data[e] + add * z[e];
    }
  return TRUE;
}

static gboolean
repaint_step_unsupported (GessoSampler *s, const SamplerStep *st, GError **error)
{
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
               _("RePaint steps need the original image and the mask: use "
               "gesso_sampler_repaint_step"));
  return FALSE;
}

const SamplerClass gesso_repaint_class = {
  .set_timesteps = repaint_set_timesteps,
  .noise_count = repaint_noise_count,
  .step = repaint_step_unsupported,
  .add_noise_coeffs = sampler_alpha_add_noise_coeffs,
};
