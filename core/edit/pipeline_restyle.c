/* Restyle: DDIM inversion, then guided DDIM sampling.
 *
 *   z_0 = scaling_factor * the VAE posterior mean of the image (no sampling);
 *   inversion: for t in the DDIM-inverse timesteps (ascending), the first k of them:
 *     z = ddim_inverse.step (unet (z, t, source prompt), t, z)
 *   with no guidance (w = 1: the conditional pass alone). That is DDIM's eq. 12 with eta = 0
 *   run from t - T/n up to t (Song et al. 2020; the "DDIM inversion" of Mokady et al. 2023),
 *   which retraces the deterministic sampler's path in reverse;
 *   regeneration from the inverted latent: for t in the DDIM timesteps (descending) from
 *   index steps - k, where the inversion stopped:
 *     eps = u + w (c - u),  u = unet (x, t, negative prompt), c = unet (x, t, target prompt)
 *     x = ddim.step (eps, t, x)   (eta as configured; 0 is the deterministic path)
 * k follows the strength rule (pipeline.h); strength 1 inverts all the way.
 *
 * With the same prompt for both halves and w = 1, inversion then sampling reconstructs z_0
 * up to the inversion's first-order error, which shrinks as the step count grows.
 */
#include "edit/pipeline-private.h"

#include <string.h>
#include <glib/gi18n-lib.h>

gboolean
gesso_pipeline_restyle (const GessoPipelineParams *p, const GessoPipelineInput *in,
                        float *latents, GError **error)
{
  GessoSampler *inverse = NULL;
  GessoDenoise inversion;
  PipelineJob job;
  guint n_inverse, first;
  int k;
  gboolean ok = FALSE;

  g_return_val_if_fail (p != NULL && in != NULL && latents != NULL, FALSE);
  if (in->image == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("restyle needs an input image"));
      return FALSE;
    }
  if (p->sampler.kind != GESSO_SAMPLER_DDIM || p->inverse.kind != GESSO_SAMPLER_DDIM_INVERSE)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("restyle inverts with DDIM and must sample with DDIM, not \"%s\"; use the "
                   "ddim sampler"), gesso_sampler_kind_name (p->sampler.kind));
      return FALSE;
    }
  memset (&inversion, 0, sizeof inversion);
  /* the source prompt into the cache before the job's own prompts, after which the text
   * encoder may be released (gesso_model_prompts_encoded) */
  {
    g_autofree float *source = g_new (float, gesso_model_context_tokens (p->model)
                                             * gesso_model_context_width (p->model));

    if (!gesso_model_encode_prompt (p->model, p->source_prompt, p->clip_skip, source, NULL,
                                    error))
      return FALSE;
  }
  if (!pipeline_job_init (&job, p, in, &p->sampler, error))
    return FALSE;
  inverse = gesso_sampler_new (&p->inverse, error);
  if (inverse == NULL || !gesso_sampler_set_timesteps (inverse, p->steps, error)
      || !gesso_denoise_init (&inversion, inverse, &job.guider, p->noise, p->model->prediction,
                              error))
    goto out;
  inversion.phase = "inversion";
  inversion.progress = &job.progress;
  inversion.observe = p->observe;
  inversion.observe_data = p->observe_data;

  if (!gesso_pipeline_encode (p->model, in->image, in->height, in->width, NULL, latents, error))
    goto out;
  pipeline_observe (p, "z0", 0, latents, job.numel);
  k = gesso_pipeline_strength_steps (p->steps, p->strength);
  gesso_sampler_get_timesteps (inverse, &n_inverse);
  k = MIN (k, (int) n_inverse);
  if (k == 0)
    {
      ok = TRUE;
      goto out;
    }
  first = pipeline_start_index (&job, k);
  job.progress.total = k + gesso_denoise_count_steps (&job.denoise) - (int) first;

  /* inversion: the source prompt alone; the guider's conditional slot holds it for now */
  if (!pipeline_encode_prompt (&job, p->source_prompt, TRUE, error))
    goto out;
  gesso_guider_set_scale (&job.guider, 1.0f, 0.0f);
  inversion.end = (guint) k;
  /* no reference inverts through a ControlNet: it steers the regeneration only */
  if (!gesso_guider_set_controls (&job.guider, NULL, 0, 0, 1, error)
      || !gesso_denoise_run (&inversion, latents, error)
      || !gesso_guider_set_controls (&job.guider, p->controls, p->n_controls, p->control_start,
                                     p->control_end, error))
    goto out;

  /* regeneration: negative and target prompts with guidance */
  if (!pipeline_encode_prompt (&job, p->prompt, TRUE, error))
    goto out;
  gesso_guider_set_scale (&job.guider, p->guidance, p->guidance_rescale);
  if (!gesso_sampler_set_begin_index (job.sampler, (int) first, error))
    goto out;
  ok = pipeline_job_run (&job, first, latents, error);

out:
  gesso_denoise_clear (&inversion);
  gesso_sampler_free (inverse);
  pipeline_job_clear (&job);
  return ok;
}
