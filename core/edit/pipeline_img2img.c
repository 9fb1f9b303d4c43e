/* SDEdit (Meng et al. 2022, "SDEdit: Guided Image Synthesis and Editing with Stochastic
 * Differential Equations"), as StableDiffusionImg2ImgPipeline: the image's latent z_0 (a VAE
 * posterior sample) is noised to the start timestep, x = add_noise (z_0, noise, t_start),
 * and denoised from there under the prompt; strength picks t_start (pipeline.h).
 *
 * With a latent mask (1 = change) the cells outside it are held to z_0 forward-noised to
 * each step's level and the last step leaves them exactly z_0 (RePaint-style, with soft
 * masks per noise level as denoise.h describes), so strokes are realised where they were
 * painted and nowhere else.
 */
#include "edit/pipeline-private.h"

#include <string.h>
#include <glib/gi18n-lib.h>

gboolean
gesso_pipeline_img2img (const GessoPipelineParams *p, const GessoPipelineInput *in,
                        float *latents, GError **error)
{
  float *z0 = NULL;
  GessoSamplerConfig config;
  PipelineJob job;
  guint first;
  int k;
  gboolean ok = FALSE;

  g_return_val_if_fail (p != NULL && in != NULL && latents != NULL, FALSE);
  if (in->image == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("SDEdit needs an input image"));
      return FALSE;
    }
  pipeline_strength_config (p, &config);
  if (!pipeline_job_init (&job, p, in, &config, error))
    return FALSE;
  z0 = g_try_new (float, job.numel);
  if (z0 == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY, _("not enough memory for a latent"));
      goto out;
    }
  if (!gesso_pipeline_encode (p->model, in->image, in->height, in->width, p->noise, z0, error))
    goto out;
  pipeline_observe (p, "z0", 0, z0, job.numel);

  k = pipeline_strength_start (&job, &first);
  if (k == 0)
    {
      /* nothing to denoise: the image's own latent */
      memcpy (latents, z0, job.numel * sizeof (float));
      ok = TRUE;
      goto out;
    }
  {
    const double *ts = gesso_sampler_get_timesteps (job.sampler, NULL);
    int64_t shape[4] = { 1, (int64_t) (job.numel / (size_t) (job.latent_h * job.latent_w)),
                         job.latent_h, job.latent_w };
    GessoTensor orig = gesso_tensor_view (z0, 4, shape);
    GessoTensor noise = gesso_tensor_view (latents, 4, shape);

    /* diffusers sets the begin index so that samplers find their place in the schedule */
    if (!gesso_sampler_set_begin_index (job.sampler, (int) first, error)
        || !pipeline_job_draw (&job, latents, error)
        || !gesso_sampler_add_noise (job.sampler, &orig, &noise, ts[first], &noise, error))
      goto out;
  }
  if (in->latent_mask != NULL)
    {
      job.denoise.original = z0;
      job.denoise.change = in->latent_mask;
    }
  ok = pipeline_job_run (&job, first, latents, error);

out:
  g_free (z0);
  pipeline_job_clear (&job);
  return ok;
}
