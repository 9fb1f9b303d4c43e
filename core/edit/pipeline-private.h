/* What the pipeline files share: a job's sampler, guider and loop, set up in one place. */
#ifndef GESSO_PIPELINE_PRIVATE_H
#define GESSO_PIPELINE_PRIVATE_H

#include "edit/denoise.h"
#include "edit/guidance.h"
#include "edit/model-private.h"
#include "edit/pipeline.h"

G_BEGIN_DECLS

typedef struct
{
  const GessoPipelineParams *params;
  GessoModel *model;
  int64_t latent_h, latent_w;
  size_t numel;                 /* of one latent */
  GessoSampler *sampler;
  GessoGuider guider;
  GessoDenoise denoise;
  GessoJobProgress progress;
} PipelineJob;

/* Checks the sizes, makes the sampler of CONFIG with params->steps timesteps, the guider
 * (with the negative and positive prompts' embeddings and the guidance scale) and the
 * loop's buffers. */
gboolean pipeline_job_init (PipelineJob *job, const GessoPipelineParams *params,
                            const GessoPipelineInput *input, const GessoSamplerConfig *config,
                            GError **error);
void pipeline_job_clear (PipelineJob *job);

/* TEXT's embedding (and SDXL's pooled embedding) into the guider's CONDITIONAL or
 * unconditional slot; a NULL negative of a model that forces zeros for it gives zeros. */
gboolean pipeline_encode_prompt (PipelineJob *job, const char *text, gboolean conditional,
                                 GError **error);

/* Runs the job's loop from FIRST on X; PROGRESS total = the loop's steps plus EXTRA_STEPS. */
gboolean pipeline_job_run (PipelineJob *job, guint first, float *x, GError **error);

/* Draws the next noise tensor into OUT (numel floats). */
gboolean pipeline_job_draw (PipelineJob *job, float *out, GError **error);

void pipeline_observe (const GessoPipelineParams *params, const char *phase, guint index,
                       const float *latents, size_t numel);

/* The sampler config a pipeline with a strength runs: the params' own, with the strength in
 * LCM's schedule (pipeline.h). */
void pipeline_strength_config (const GessoPipelineParams *params, GessoSamplerConfig *config);

/* start index = steps - k (see pipeline.h); clamps to the sampler's timestep count. */
guint pipeline_start_index (const PipelineJob *job, int k);

/* The strength rule of pipeline.h for the job's sampler: returns k, the steps to run, and sets
 * FIRST to the timestep index they start at (LCM: all steps from index 0). */
int pipeline_strength_start (const PipelineJob *job, guint *first);

G_END_DECLS

#endif /* GESSO_PIPELINE_PRIVATE_H */
