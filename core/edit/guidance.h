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
 * Everything a prediction needs is allocated by gesso_guider_init (inputs, outputs, the UNet's
 * arena for batch 2), so the sampling loop allocates nothing.
 */
#ifndef GESSO_GUIDANCE_H
#define GESSO_GUIDANCE_H

#include <glib.h>
#include <stdint.h>

#include "model/unet.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

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
  float *input;                 /* [2, in_channels, h, w] */
  float *output;                /* [2, latent_channels, h, w] */
  GessoArena *arena;
} GessoGuider;

gboolean gesso_guider_init (GessoGuider *guider, GessoUnet *unet, int64_t height, int64_t width,
                            int64_t tokens, int64_t hidden, GError **error);
void gesso_guider_clear (GessoGuider *guider);

/* Where the embeddings go (tokens * hidden floats each); fill them before predicting. */
float *gesso_guider_unconditional (GessoGuider *guider);
float *gesso_guider_conditional (GessoGuider *guider);

/* W (1 = conditional only) and PHI (0 = no rescale). */
void gesso_guider_set_scale (GessoGuider *guider, float guidance, float rescale);
/* The extra input channels of an inpainting UNet (borrowed). */
void gesso_guider_set_conditioning (GessoGuider *guider, const float *conditioning);

/* OUT [1, latent_channels, h, w] = the guided prediction for SAMPLE [1, latent_channels, h, w]
 * (already scaled by the sampler's scale_model_input) at timestep T. */
gboolean gesso_guider_predict (GessoGuider *guider, const float *sample, double t, float *out,
                               GError **error);

G_END_DECLS

#endif /* GESSO_GUIDANCE_H */
