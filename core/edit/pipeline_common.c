/* Pieces every pipeline uses: job setup, VAE encode/decode, the strength rule. */
#include "edit/pipeline-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The shortest decimal that reads back as STRENGTH: what the user typed, as Python holds it. */
static double
strength_decimal (float strength)
{
  char text[32];
  double s = strength;

  for (int digits = 6; digits <= 9; digits++)
    {
      snprintf (text, sizeof text, "%.*g", digits, (double) strength);
      s = g_ascii_strtod (text, NULL);
      if ((float) s == strength)
        break;
    }
  return s;
}

int
gesso_pipeline_strength_steps (int steps, float strength)
{
  int k;

  if (!(strength > 0) || steps <= 0)
    return 0;
  /* diffusers: init_timestep = min(int(num_inference_steps * strength), num_inference_steps) */
  k = (int) ((double) steps * strength_decimal (strength));
  return MIN (k, steps);
}

void
pipeline_strength_config (const GessoPipelineParams *p, GessoSamplerConfig *config)
{
  *config = p->sampler;
  /* strength 0 changes nothing and runs no step; the full schedule keeps set_timesteps happy */
  if (config->kind == GESSO_SAMPLER_LCM && p->strength > 0 && p->strength < 1)
    config->lcm_strength = strength_decimal (p->strength);
}

guint
pipeline_start_index (const PipelineJob *job, int k)
{
  guint n;

  gesso_sampler_get_timesteps (job->sampler, &n);
  return (guint) MIN ((int) n, MAX (0, job->params->steps - k));
}

int
pipeline_strength_start (const PipelineJob *job, guint *first)
{
  int k;

  if (gesso_sampler_get_config (job->sampler)->kind == GESSO_SAMPLER_LCM)
    {
      guint n;

      gesso_sampler_get_timesteps (job->sampler, &n);
      *first = 0;
      return job->params->strength > 0 ? (int) n : 0;
    }
  k = gesso_pipeline_strength_steps (job->params->steps, job->params->strength);
  *first = pipeline_start_index (job, k);
  return k;
}

void
pipeline_observe (const GessoPipelineParams *params, const char *phase, guint index,
                  const float *latents, size_t numel)
{
  if (params->observe != NULL)
    params->observe (params->observe_data, phase, index, 0, latents, numel);
}

gboolean
pipeline_job_draw (PipelineJob *job, float *out, GError **error)
{
  return gesso_noise_source_draw (job->params->noise, out, job->numel, error);
}

static gboolean
check_input (const GessoPipelineParams *p, const GessoPipelineInput *in, int factor,
             GError **error)
{
  if (p->model == NULL || p->noise == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("a pipeline needs a model and a noise source"));
      return FALSE;
    }
  if (in->height <= 0 || in->width <= 0 || in->height % factor != 0 || in->width % factor != 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the working size %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT " is not a "
                   "positive multiple of the model's latent factor %d", in->width, in->height,
                   factor);
      return FALSE;
    }
  if (p->steps < 1 || p->steps > 1000)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%d steps requested; use between 1 and 1000"), p->steps);
      return FALSE;
    }
  if (!isfinite (p->guidance) || !isfinite (p->guidance_rescale) || !isfinite (p->strength))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("guidance, guidance rescale and strength must be finite numbers"));
      return FALSE;
    }
  return TRUE;
}

gboolean
pipeline_encode_prompt (PipelineJob *job, const char *text, gboolean conditional,
                        GError **error)
{
  GessoGuider *g = &job->guider;
  float *embedding = conditional ? gesso_guider_conditional (g) : gesso_guider_unconditional (g);
  float *pooled = g->pooled_dim == 0 ? NULL
                  : conditional ? gesso_guider_conditional_pooled (g)
                                : gesso_guider_unconditional_pooled (g);

  if (!conditional && text == NULL && job->model->force_zeros_for_empty_prompt)
    {
      memset (embedding, 0, (size_t) (g->tokens * g->hidden) * sizeof (float));
      if (pooled != NULL)
        memset (pooled, 0, (size_t) g->pooled_dim * sizeof (float));
      return TRUE;
    }
  return gesso_model_encode_prompt (job->model, text, job->params->clip_skip, embedding, pooled,
                                    error);
}

/* SDXL's size ids: the params' where given, else the working size uncropped, as diffusers'
 * pipelines default them (img2img: the input image's size, which is the working size). */
static void
set_time_ids (PipelineJob *job, const GessoPipelineInput *in)
{
  const GessoPipelineParams *p = job->params;
  gboolean original = p->original_size[0] > 0 && p->original_size[1] > 0;
  gboolean target = p->target_size[0] > 0 && p->target_size[1] > 0;
  const float ids[GESSO_UNET_TIME_IDS] = {
    (float) (original ? p->original_size[0] : in->height),
    (float) (original ? p->original_size[1] : in->width),
    (float) p->crop_top_left[0],
    (float) p->crop_top_left[1],
    (float) (target ? p->target_size[0] : in->height),
    (float) (target ? p->target_size[1] : in->width),
  };

  gesso_guider_set_time_ids (&job->guider, ids);
}

gboolean
pipeline_job_init (PipelineJob *job, const GessoPipelineParams *p, const GessoPipelineInput *in,
                   const GessoSamplerConfig *config, GError **error)
{
  GessoModel *m = p->model;
  int factor;

  memset (job, 0, sizeof *job);
  job->params = p;
  job->model = m;
  if (m == NULL)
    return check_input (p, in, 1, error);
  factor = gesso_vae_latent_factor (m->vae);
  if (!check_input (p, in, factor, error))
    return FALSE;
  job->latent_h = in->height / factor;
  job->latent_w = in->width / factor;
  job->numel = (size_t) (gesso_vae_latent_channels (m->vae) * job->latent_h * job->latent_w);
  if (p->previewer != NULL)
    {
      size_t numel;

      gesso_previewer_latent (p->previewer, &numel);
      g_return_val_if_fail (numel == job->numel, FALSE);
    }
  gesso_model_apply_threads (m);
  if (!gesso_model_prepare_job (m, error))
    return FALSE;

  job->sampler = gesso_sampler_new (config, error);
  if (job->sampler == NULL || !gesso_sampler_set_timesteps (job->sampler, p->steps, error))
    goto err_clear;
  if (!gesso_guider_init (&job->guider, m->unet, job->latent_h, job->latent_w,
                          gesso_model_context_tokens (m), gesso_model_context_width (m), error))
    goto err_clear;
  if (!pipeline_encode_prompt (job, p->negative_prompt, FALSE, error)
      || !pipeline_encode_prompt (job, p->prompt, TRUE, error))
    goto err_clear;
  set_time_ids (job, in);
  gesso_model_prompts_encoded (m);
  gesso_guider_set_scale (&job->guider, p->guidance, p->guidance_rescale);
  if (!gesso_guider_set_controls (&job->guider, p->controls, p->n_controls, p->control_start,
                                  p->control_end, error))
    goto err_clear;
  if (!gesso_denoise_init (&job->denoise, job->sampler, &job->guider, p->noise,
                           m->prediction, error))
    goto err_clear;
  job->progress.func = p->progress;
  job->progress.data = p->progress_data;
  job->progress.previewer = p->previewer;
  job->denoise.progress = &job->progress;
  job->denoise.observe = p->observe;
  job->denoise.observe_data = p->observe_data;
  return TRUE;

err_clear:
  pipeline_job_clear (job);
  return FALSE;
}

void
pipeline_job_clear (PipelineJob *job)
{
  gesso_denoise_clear (&job->denoise);
  gesso_guider_clear (&job->guider);
  gesso_sampler_free (job->sampler);
  job->sampler = NULL;
}

gboolean
pipeline_job_run (PipelineJob *job, guint first, float *x, GError **error)
{
  job->denoise.first = first;
  if (job->progress.total == 0)
    job->progress.total = gesso_denoise_count_steps (&job->denoise);
  return gesso_denoise_run (&job->denoise, x, error);
}

gboolean
gesso_pipeline_encode (GessoModel *model, const float *image, int64_t height, int64_t width,
                       GessoNoiseSource *noise, float *latent, GError **error)
{
  int f = gesso_vae_latent_factor (model->vae);
  size_t numel = (size_t) (gesso_vae_latent_channels (model->vae) * (height / f) * (width / f));
  const float sf = (float) gesso_vae_scaling_factor (model->vae);
  g_autofree float *std = NULL;
  g_autofree float *z = NULL;

  gesso_model_apply_threads (model);
  if (noise != NULL)
    {
      std = g_try_new (float, numel);
      z = g_try_new (float, numel);
      if (std == NULL || z == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                       "not enough memory to encode a %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                       " image", width, height);
          return FALSE;
        }
    }
  if (!gesso_vae_encode (model->vae, image, height, width, latent, NULL, std, NULL, error))
    return FALSE;
  if (noise != NULL)
    {
      if (!gesso_noise_source_draw (noise, z, numel, error))
        return FALSE;
      /* DiagonalGaussianDistribution.sample: mean + std * eps, in float32 */
      for (size_t i = 0; i < numel; i++)
        {
          float d = std[i] * z[i];
          latent[i] = latent[i] + d;
        }
    }
  for (size_t i = 0; i < numel; i++)
    latent[i] = sf * latent[i];
  return TRUE;
}

gboolean
gesso_pipeline_decode (GessoModel *model, const float *latent, int64_t latent_h,
                       int64_t latent_w, float *image, GError **error)
{
  size_t numel = (size_t) (gesso_vae_latent_channels (model->vae) * latent_h * latent_w);
  const float sf = (float) gesso_vae_scaling_factor (model->vae);
  g_autofree float *unscaled = g_try_new (float, numel);

  if (unscaled == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory to decode a latent"));
      return FALSE;
    }
  gesso_model_apply_threads (model);
  for (size_t i = 0; i < numel; i++)
    unscaled[i] = latent[i] / sf;
  if (!gesso_vae_decode (model->vae, unscaled, latent_h, latent_w, image, NULL, error))
    return FALSE;
  /* a NaN would be written as black and the run reported as a success */
  {
    size_t n = 3 * (size_t) (latent_h * latent_w * gesso_vae_latent_factor (model->vae)
                             * gesso_vae_latent_factor (model->vae));
    int bad = 0;

    for (size_t i = 0; i < n; i++)
      bad |= !isfinite (image[i]);
    if (bad)
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                     _("the VAE decoder produced NaN or infinite values; the model's VAE weights "
                     "are broken or overflow float32 (a failed float16 conversion?): use "
                     "another copy of the model"));
        return FALSE;
      }
  }
  return TRUE;
}
