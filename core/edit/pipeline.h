/* The four edits in latent space.
 *
 * Each pipeline takes a working-size image (already cropped and resized by the edit planner,
 * edit.c), runs its sampling loop (denoise.h) and writes the final latent; decoding is a
 * separate call. They are the engine's inner API, also driven directly by the conformance
 * tests, which inject the noise a reference run recorded (noise.h) and the sampler
 * configuration the reference used.
 *
 *   txt2img   StableDiffusionPipeline: x_T = init_noise_sigma * noise, then the loop.
 *   img2img   SDEdit (Meng et al. 2022) as StableDiffusionImg2ImgPipeline: the image's latent
 *             (VAE posterior sample) is noised to the start timestep and denoised from there.
 *             With a latent mask the cells outside it are held RePaint-style (denoise.h).
 *   inpaint   9-channel inpainting UNets as StableDiffusionInpaintPipeline; any other model
 *             by RePaint (Lugmayr et al. 2022) in latent space, with soft masks (denoise.h).
 *   restyle   DDIM inversion (Song et al. 2020, eq. 12 run backwards; Mokady et al. 2023's
 *             "DDIM inversion") under the source prompt without guidance, up to the start
 *             timestep, then DDIM sampling back down under the target prompt with guidance.
 *
 * Strength (img2img, 9-channel inpaint, RePaint, restyle) picks the start as diffusers'
 * img2img does: k = min(int(steps * strength), steps) steps are run, starting at timestep
 * index steps - k; k = 0 returns the image's latent unchanged. The product is taken on the
 * shortest decimal that gives the float strength (0.7f -> 0.7), so that 10 steps at 0.7 run
 * 7 steps as they do in Python, not 6.
 * LCM (img2img and 9-channel inpaint) instead takes the strength into its schedule, as
 * LatentConsistencyModelImg2ImgPipeline does (sampling/lcm.c): all steps run, spread over
 * the first strength fraction of the distillation schedule, from timestep index 0. Its few
 * steps are each worth much, and skipping the top ones would leave 2 of 4 at strength 0.5.
 *
 * Noise draws, in order (each one tensor shaped like the latent unless said otherwise):
 *   txt2img   the initial noise; then the loop's draws.
 *   img2img   the VAE posterior sample; the add_noise noise (none when k = 0); the loop's.
 *   inpaint   9-channel: strength 1: the initial noise, the masked image's posterior sample;
 *             strength < 1: the image's posterior sample, the add_noise noise, the masked
 *             image's posterior sample. Then the loop's.
 *             RePaint (the image latent is the posterior mean): strength 1: the initial x_T;
 *             else the add_noise noise. Then the loop's.
 *   restyle   none (the posterior mean; DDIM with eta 0 draws nothing) unless the sampler's
 *             steps draw.
 */
#ifndef GESSO_PIPELINE_H
#define GESSO_PIPELINE_H

#include <glib.h>
#include <stdint.h>

#include "edit/denoise.h"
#include "edit/guidance.h"
#include "edit/noise.h"
#include "gesso.h"
#include "sampling/sampler.h"

G_BEGIN_DECLS

typedef struct
{
  GessoModel *model;
  GessoSamplerConfig sampler;   /* the sampler to denoise with (gesso_model_sampler_config) */
  GessoSamplerConfig inverse;   /* restyle: the inversion's (kind ddim_inverse) */
  int steps;
  float guidance;               /* w; 1 = the conditional pass only */
  float guidance_rescale;       /* phi; 0 = off */
  float strength;
  const char *prompt;
  /* NULL = "", except for an SDXL model whose pipeline forces zeros for it (diffusers'
   * force_zeros_for_empty_prompt): then NULL means all-zero negative embeddings */
  const char *negative_prompt;
  const char *source_prompt;    /* restyle */
  int clip_skip;
  GessoNoiseSource *noise;
  GessoProgressFunc progress;
  gpointer progress_data;
  GessoPreviewer *previewer;    /* per-step previews for PROGRESS (its latent the job's size);
                                 * NULL: none */
  GessoLatentObserver observe;  /* phases "z0", "inversion", "denoise" */
  gpointer observe_data;
  /* ControlNets with their images at the job's size (latent times their factor), borrowed;
   * restyle's inversion runs without them. START/END: the fraction of the run they act in. */
  const GessoGuiderControl *controls;
  int n_controls;
  double control_start, control_end;
  /* SDXL's size conditioning in pixels, (height, width) / (top, left): 0 0 means the
   * pipelines' defaults, original = target = the working size, crop (0, 0) */
  int original_size[2];
  int crop_top_left[2];
  int target_size[2];
} GessoPipelineParams;

typedef struct
{
  int64_t height, width;        /* pixels: multiples of the latent factor */
  const float *image;           /* [1, 3, H, W] in [-1, 1]; NULL for txt2img */
  const float *pixel_mask;      /* [H * W], 1 = regenerate: what 9-channel inpainting reads */
  const float *latent_mask;     /* [h * w], 1 = regenerate, soft: RePaint and SDEdit */
} GessoPipelineInput;

/* Each writes the final latent [1, C, H / f, W / f] (scaled, as the UNet sees it) to LATENTS. */
gboolean gesso_pipeline_txt2img (const GessoPipelineParams *params,
                                 const GessoPipelineInput *input, float *latents,
                                 GError **error);
gboolean gesso_pipeline_img2img (const GessoPipelineParams *params,
                                 const GessoPipelineInput *input, float *latents,
                                 GError **error);
gboolean gesso_pipeline_inpaint (const GessoPipelineParams *params,
                                 const GessoPipelineInput *input, float *latents,
                                 GError **error);
gboolean gesso_pipeline_restyle (const GessoPipelineParams *params,
                                 const GessoPipelineInput *input, float *latents,
                                 GError **error);

/* IMAGE [1, 3, H, W] in [-1, 1] -> LATENT = scaling_factor * (the posterior's mean, or a
 * sample mean + std * noise with one draw from NOISE when NOISE is not NULL). */
gboolean gesso_pipeline_encode (GessoModel *model, const float *image, int64_t height,
                                int64_t width, GessoNoiseSource *noise, float *latent,
                                GError **error);
/* LATENT (scaled) [1, C, h, w] -> IMAGE [1, 3, h f, w f] = vae.decode (latent /
 * scaling_factor), raw (not clamped). */
gboolean gesso_pipeline_decode (GessoModel *model, const float *latent, int64_t latent_h,
                                int64_t latent_w, float *image, GError **error);

/* k of the strength rule above. */
int gesso_pipeline_strength_steps (int steps, float strength);

G_END_DECLS

#endif /* GESSO_PIPELINE_H */
