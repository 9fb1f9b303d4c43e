/* Text to image (StableDiffusionPipeline): x_T = init_noise_sigma * noise, then the shared
 * loop with classifier-free guidance from the first timestep to the last. */
#include "edit/pipeline-private.h"

gboolean
gesso_pipeline_txt2img (const GessoPipelineParams *p, const GessoPipelineInput *in,
                        float *latents, GError **error)
{
  PipelineJob job;
  float sigma;
  gboolean ok;

  g_return_val_if_fail (p != NULL && in != NULL && latents != NULL, FALSE);
  if (!pipeline_job_init (&job, p, in, &p->sampler, error))
    return FALSE;
  ok = pipeline_job_draw (&job, latents, error);
  if (ok)
    {
      sigma = (float) gesso_sampler_get_init_noise_sigma (job.sampler);
      for (size_t i = 0; i < job.numel; i++)
        latents[i] = latents[i] * sigma;
      ok = pipeline_job_run (&job, 0, latents, error);
    }
  pipeline_job_clear (&job);
  return ok;
}
