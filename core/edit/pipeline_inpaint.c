/* Inpainting, two ways.
 *
 * 9-channel inpainting checkpoints (the UNet reads [latent | mask | masked-image latent]), as
 * StableDiffusionInpaintPipeline: the pixel mask (1 = repaint) is binarised at 0.5; the
 * masked image is the image with the repainted pixels set to 0 (mid-grey in [-1, 1]),
 * encoded by the VAE (posterior sample) and scaled; the mask is brought to latent size by
 * nearest-neighbour sampling (torch's interpolate: source index floor(i * in / out)). The
 * loop is the ordinary guided loop with those five channels after the latent's in both
 * guidance passes; nothing is pasted back here (the edit's pixel blend does that).
 *
 * Any other model: RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising
 * Diffusion Probabilistic Models") in latent space. The known latent z_0 is the VAE
 * posterior mean of the image; the sampler walks the jump schedule (jump length j, resample
 * count r, sec. 4.2) and at every reverse step the held cells are z_0 forward-noised to the
 * step's target level, the others the model's DDIM step (Algorithm 1, lines 4-8). Soft mask
 * values are honoured per noise level, "differential diffusion" style: a cell with change
 * value m is held while the remaining noise fraction of the run is above m and follows the
 * model once it has come down to m (denoise.h has the rule and why), so a feathered edge
 * blends in over the last part of the schedule, a hard mask gives RePaint exactly, and a
 * cell with m = 0 ends exactly at z_0.
 */
#include "edit/pipeline-private.h"

#include <string.h>
#include <glib/gi18n-lib.h>

static gboolean
inpaint_9ch (const GessoPipelineParams *p, const GessoPipelineInput *in, float *latents,
             GError **error)
{
  const size_t pixels = (size_t) (in->height * in->width);
  float *masked = NULL, *z0 = NULL, *conditioning = NULL;
  GessoSamplerConfig config;
  PipelineJob job;
  size_t plane;
  guint first;
  int k;
  gboolean ok = FALSE;

  pipeline_strength_config (p, &config);
  if (!pipeline_job_init (&job, p, in, &config, error))
    return FALSE;
  plane = (size_t) (job.latent_h * job.latent_w);
  masked = g_try_new (float, 3 * pixels);
  z0 = g_try_new (float, job.numel);
  conditioning = g_try_new (float, plane + job.numel);
  if (masked == NULL || z0 == NULL || conditioning == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory for the inpainting inputs"));
      goto out;
    }

  /* the binarised mask (>= 0.5 repaints) and the image without the repainted pixels */
  for (size_t c = 0; c < 3; c++)
    for (size_t i = 0; i < pixels; i++)
      {
        gboolean repaint = in->pixel_mask == NULL || in->pixel_mask[i] >= 0.5f;
        masked[c * pixels + i] = repaint ? 0.0f : in->image[c * pixels + i];
      }
  for (int64_t y = 0; y < job.latent_h; y++)
    for (int64_t x = 0; x < job.latent_w; x++)
      {
        int64_t sy = (int64_t) ((float) y * ((float) in->height / (float) job.latent_h));
        int64_t sx = (int64_t) ((float) x * ((float) in->width / (float) job.latent_w));
        size_t src = (size_t) (MIN (sy, in->height - 1) * in->width + MIN (sx, in->width - 1));
        gboolean repaint = in->pixel_mask == NULL || in->pixel_mask[src] >= 0.5f;

        conditioning[y * job.latent_w + x] = repaint ? 1.0f : 0.0f;
      }

  k = pipeline_strength_start (&job, &first);
  if (p->strength >= 1.0f)
    {
      float sigma = (float) gesso_sampler_get_init_noise_sigma (job.sampler);

      if (!pipeline_job_draw (&job, latents, error))
        goto out;
      for (size_t i = 0; i < job.numel; i++)
        latents[i] = latents[i] * sigma;
    }
  else
    {
      const double *ts = gesso_sampler_get_timesteps (job.sampler, NULL);
      int64_t shape[4] = { 1, (int64_t) (job.numel / plane), job.latent_h, job.latent_w };
      GessoTensor orig = gesso_tensor_view (z0, 4, shape);
      GessoTensor noise = gesso_tensor_view (latents, 4, shape);

      if (!gesso_pipeline_encode (p->model, in->image, in->height, in->width, p->noise, z0,
                                  error))
        goto out;
      pipeline_observe (p, "z0", 0, z0, job.numel);
      if (k == 0)
        {
          memcpy (latents, z0, job.numel * sizeof (float));
          ok = TRUE;
          goto out;
        }
      if (!gesso_sampler_set_begin_index (job.sampler, (int) first, error)
          || !pipeline_job_draw (&job, latents, error)
          || !gesso_sampler_add_noise (job.sampler, &orig, &noise, ts[first], &noise, error))
        goto out;
    }
  if (!gesso_pipeline_encode (p->model, masked, in->height, in->width, p->noise,
                              conditioning + plane, error))
    goto out;
  gesso_guider_set_conditioning (&job.guider, conditioning);
  ok = pipeline_job_run (&job, first, latents, error);

out:
  pipeline_job_clear (&job);
  g_free (conditioning);
  g_free (z0);
  g_free (masked);
  return ok;
}

static gboolean
inpaint_repaint (const GessoPipelineParams *p, const GessoPipelineInput *in, float *latents,
                 GError **error)
{
  float *z0 = NULL;
  PipelineJob job;
  guint first = 0;
  int k;
  gboolean ok = FALSE;

  if (p->sampler.kind != GESSO_SAMPLER_REPAINT)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("inpainting with a %s model runs RePaint; its sampler must be \"repaint\", "
                   "not \"%s\""), gesso_model_get_architecture (p->model),
                   gesso_sampler_kind_name (p->sampler.kind));
      return FALSE;
    }
  if (!pipeline_job_init (&job, p, in, &p->sampler, error))
    return FALSE;
  z0 = g_try_new (float, job.numel);
  if (z0 == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY, _("not enough memory for a latent"));
      goto out;
    }
  if (!gesso_pipeline_encode (p->model, in->image, in->height, in->width, NULL, z0, error))
    goto out;
  pipeline_observe (p, "z0", 0, z0, job.numel);

  k = gesso_pipeline_strength_steps (p->steps, p->strength);
  if (k == 0)
    {
      memcpy (latents, z0, job.numel * sizeof (float));
      ok = TRUE;
      goto out;
    }
  if (k >= p->steps)
    {
      /* x_T: pure noise (RePaint's init_noise_sigma is 1) */
      if (!pipeline_job_draw (&job, latents, error))
        goto out;
    }
  else
    {
      const double *ts = gesso_sampler_get_timesteps (job.sampler, NULL);
      int64_t shape[4] = { 1, (int64_t) (job.numel / (size_t) (job.latent_h * job.latent_w)),
                           job.latent_h, job.latent_w };
      GessoTensor orig = gesso_tensor_view (z0, 4, shape);
      GessoTensor noise = gesso_tensor_view (latents, 4, shape);

      /* start where the schedule first comes down to level k - 1, from z_0 noised there */
      if (!gesso_denoise_repaint_first (&job.denoise, k - 1, &first))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                       _("the RePaint schedule never reaches level %d"), k - 1);
          goto out;
        }
      if (!pipeline_job_draw (&job, latents, error)
          || !gesso_sampler_add_noise (job.sampler, &orig, &noise, ts[first], &noise, error))
        goto out;
    }
  job.denoise.original = z0;
  job.denoise.change = in->latent_mask;
  ok = pipeline_job_run (&job, first, latents, error);

out:
  pipeline_job_clear (&job);
  g_free (z0);
  return ok;
}

gboolean
gesso_pipeline_inpaint (const GessoPipelineParams *p, const GessoPipelineInput *in,
                        float *latents, GError **error)
{
  g_return_val_if_fail (p != NULL && in != NULL && latents != NULL, FALSE);
  if (in->image == NULL || p->model == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("inpainting needs a model and an input image"));
      return FALSE;
    }
  if (gesso_model_is_inpainting (p->model))
    return inpaint_9ch (p, in, latents, error);
  return inpaint_repaint (p, in, latents, error);
}
