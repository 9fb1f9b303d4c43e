/* ControlNet (diffusers ControlNetModel; lllyasviel's original layout read through the same
 * names): a copy of a UNet's encoder that also sees a control image and hands the UNet one
 * residual per skip connection and one for its middle block.
 *
 *   hint      = cond_embedding(control image): conv SiLU, (conv SiLU, conv/2 SiLU) x n, conv
 *   skips     = the UNet encoder's down path on the latent, with hint added after conv_in
 *   residuals = zero_conv_k(skip_k) * scale, and controlnet_mid_block(middle) * scale
 *
 * The control image is RGB in [0, 1] (not [-1, 1]), as many pixels per latent cell as the
 * conditioning embedding has stride-2 convolutions (8 for every published ControlNet). The
 * residuals are packed as gesso_unet_residual_floats() describes, so several ControlNets sum
 * into one buffer and gesso_unet_forward_controlled() adds them.
 */
#ifndef GESSO_CONTROLNET_H
#define GESSO_CONTROLNET_H

#include <glib.h>
#include <stdint.h>

#include "model/unet.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

typedef struct GessoControlNet GessoControlNet;

/* Opens the ControlNet at PATH (a diffusers ControlNetModel folder or an original-layout
 * .safetensors) for use with BASE: its encoder must have BASE's structure, which is also what
 * a file without a config is assumed to have. A ControlNet made for another family fails
 * with GESSO_ERROR_INVALID_ARGUMENT naming what differs. */
GessoControlNet *gesso_controlnet_open (const char *path, const GessoUnet *base,
                                        GError **error);
void gesso_controlnet_free (GessoControlNet *controlnet);

/* Control image pixels per latent cell (8 for published ControlNets). */
int gesso_controlnet_get_image_factor (const GessoControlNet *controlnet);
/* Channels of the control image (3, RGB). */
int gesso_controlnet_get_image_channels (const GessoControlNet *controlnet);

/* One evaluation: SAMPLE [B, in, h, w] at TIMESTEPS [B] under CONTEXT [B, L, dim] with
 * IMAGE [B, channels, h * factor, w * factor] -> RESIDUALS (gesso_unet_residual_floats()
 * floats for this size) = the residuals times SCALE, or RESIDUALS + that when ACCUMULATE.
 * SCRATCH: an arena to work in, or NULL for the ControlNet's own. */
gboolean gesso_controlnet_forward (GessoControlNet *controlnet, const float *sample,
                                   const float *timesteps, const float *context,
                                   const float *image, float scale, int64_t batch,
                                   int64_t height, int64_t width, int64_t context_len,
                                   gboolean accumulate, float *residuals, GessoArena *scratch,
                                   GError **error);

/* The control image's embedding (the conditioning network's output) depends on the image
 * alone, so a sampling loop makes it once and hands it to every step: EMBEDDING holds
 * gesso_controlnet_embedding_floats() floats for a BATCH of HEIGHT x WIDTH latents. The
 * results are bit for bit those of gesso_controlnet_forward. */
size_t gesso_controlnet_embedding_floats (const GessoControlNet *controlnet, int64_t batch,
                                          int64_t height, int64_t width);
gboolean gesso_controlnet_embed (GessoControlNet *controlnet, const float *image,
                                 int64_t batch, int64_t height, int64_t width,
                                 float *embedding, GessoArena *scratch, GError **error);
gboolean gesso_controlnet_forward_embedded (GessoControlNet *controlnet, const float *sample,
                                            const float *timesteps, const float *context,
                                            const float *embedding, float scale, int64_t batch,
                                            int64_t height, int64_t width, int64_t context_len,
                                            gboolean accumulate, float *residuals,
                                            GessoArena *scratch, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoControlNet, gesso_controlnet_free)

G_END_DECLS

#endif /* GESSO_CONTROLNET_H */
