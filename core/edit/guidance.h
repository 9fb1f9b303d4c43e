/* One guided model evaluation: classifier-free guidance (Ho & Salimans 2022).
 *
 *   eps = eps(x, t, uncond) + w (eps(x, t, cond) - eps(x, t, uncond))
 *
 * The unconditional and conditional passes run as ONE batch-2 UNet call, batch order
 * [unconditional, conditional] as diffusers runs it; w = 1 needs only the conditional pass
 * and runs batch 1. "eps" stands for whatever the model predicts (epsilon or v): the formula
 * is linear, so it applies to either. Optional guidance rescale (Lin et al. 2023, "Common
 * Diffusion Noise Schedules and Sample Steps are Flawed", eqs. 15-16):
 *   x_rescaled = x_cfg * std(x_cond) / std(x_cfg),  x = phi x_rescaled + (1 - phi) x_cfg,
 * with std over all of an item's values (unbiased, as torch.std).
 *
 * Inpainting UNets (9 channels) read [latent | mask | masked-image latent]: the guider puts
 * the conditioning channels after the sample's in both batch items.
 *
 * ControlNets (Zhang et al. 2023), when set, see the same batch as the UNet (the 4-channel
 * latent, both prompts, the control image repeated for both items, as diffusers runs them
 * without guess mode) and their residuals, summed, go into the UNet; outside the start/end
 * fraction of the schedule they are off for the step (A1111's guidance start/end, diffusers'
 * control_guidance_start/end).
 *
 * Everything a prediction needs is allocated by gesso_guider_init (inputs, outputs, the UNet's
 * arena for batch 2) and gesso_guider_set_controls, so the sampling loop allocates nothing.
 */
#ifndef GESSO_GUIDANCE_H
#define GESSO_GUIDANCE_H

#include <glib.h>
#include <stdint.h>

#include "model/controlnet.h"
#include "model/unet.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

typedef struct
{
  GessoControlNet *net;
  const float *image;           /* [1, channels, h * factor, w * factor] in [0, 1], borrowed */
  float scale;
} GessoGuiderControl;

typedef struct
{
  GessoUnet *unet;
  int64_t height, width;        /* latent cells */
  int64_t tokens, hidden;       /* text context */
  int latent_channels;          /* channels of the sample and of the prediction */
  int in_channels;              /* the UNet's input: latent channels + conditioning */
  float guidance;
  float rescale;
  const float *conditioning;    /* [1, in - latent, h, w], borrowed; NULL: none */
  float *context;               /* [2, tokens, hidden]: unconditional, conditional */
  int64_t pooled_dim;           /* SDXL's pooled text embedding; 0 for other models */
  float *pooled;                /* [2, pooled_dim]: unconditional, conditional */
  float time_ids[2 * GESSO_UNET_TIME_IDS];      /* SDXL's size conditioning, both rows */
  float *input;                 /* [2, in_channels, h, w] */
  float *output;                /* [2, latent_channels, h, w] */
  GessoArena *arena;
  const GessoGuiderControl *controls;   /* borrowed, N_CONTROLS of them */
  int n_controls;
  double control_start, control_end;    /* fractions of the schedule they act in */
  gboolean control_on;                  /* in this step */
  float *control_embeddings;    /* per control, its image's embedding for a batch of 2 */
  float *control_sample;        /* [2, latent_channels, h, w]: the latent an inpainting UNet's
                                 * input holds among its conditioning channels */
  float *residuals;             /* gesso_unet_residual_floats (batch 2) */
} GessoGuider;

gboolean gesso_guider_init (GessoGuider *guider, GessoUnet *unet, int64_t height, int64_t width,
                            int64_t tokens, int64_t hidden, GError **error);
void gesso_guider_clear (GessoGuider *guider);

/* Where the embeddings go (tokens * hidden floats each); fill them before predicting. */
float *gesso_guider_unconditional (GessoGuider *guider);
float *gesso_guider_conditional (GessoGuider *guider);

/* SDXL: where the pooled embeddings go (pooled_dim floats each), and the size ids both batch
 * rows get (original h, w, crop top, left, target h, w). Other models ignore them. */
float *gesso_guider_unconditional_pooled (GessoGuider *guider);
float *gesso_guider_conditional_pooled (GessoGuider *guider);
void gesso_guider_set_time_ids (GessoGuider *guider, const float time_ids[GESSO_UNET_TIME_IDS]);

/* W (1 = conditional only) and PHI (0 = no rescale). */
void gesso_guider_set_scale (GessoGuider *guider, float guidance, float rescale);
/* The extra input channels of an inpainting UNet (borrowed). */
void gesso_guider_set_conditioning (GessoGuider *guider, const float *conditioning);

/* N ControlNets for every prediction from now on, acting in the fraction [START, END] of the
 * schedule. Their images must be sized for this guider's latent (h * factor by w * factor). */
gboolean gesso_guider_set_controls (GessoGuider *guider, const GessoGuiderControl *controls,
                                    int n, double start, double end, GError **error);
/* The next prediction spans the fraction [FROM, TO] of the schedule: the ControlNets act when
 * it lies within their start and end, as diffusers' controlnet_keep decides. */
void gesso_guider_set_progress (GessoGuider *guider, double from, double to);

/* OUT [1, latent_channels, h, w] = the guided prediction for SAMPLE [1, latent_channels, h, w]
 * (already scaled by the sampler's scale_model_input) at timestep T. */
gboolean gesso_guider_predict (GessoGuider *guider, const float *sample, double t, float *out,
                               GError **error);

G_END_DECLS

#endif /* GESSO_GUIDANCE_H */
