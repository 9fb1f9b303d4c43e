/* TAESD, the tiny autoencoder (diffusers' AutoencoderTiny, madebyollin's taesd).
 *
 * A plain stack of 3x3 convolutions and ReLUs, no normalization, no attention:
 *   encoder  conv(3->C), Block, then per further level a bias-free stride-2 conv and its
 *            Blocks, conv(C->latent)
 *   decoder  tanh(z/3)*3, conv(latent->C), ReLU, Blocks, then per further level a nearest 2x
 *            upsample, a bias-free conv and its Blocks, conv(C->3)
 *   Block    relu(conv(relu(conv(relu(conv(x))))) + skip(x)), skip a bias-free 1x1 conv
 *            when the width changes, else the identity
 * The layer list is read from the weights (numbered as nn.Sequential numbers them), so the
 * block counts and widths of any TAESD variant (taesd, taesdxl, the tiny conformance model)
 * need no config.
 *
 * Two layouts: a diffusers AutoencoderTiny folder (config.json + one safetensors file,
 * encoder.layers.N / decoder.layers.N) and madebyollin's pair taesd_encoder.safetensors /
 * taesd_decoder.safetensors (keys N.*; the decoder's layer 0 is the weightless clamp, which
 * diffusers drops from its numbering). F32, F16 and BF16 weights are widened once at load.
 *
 * Conventions are diffusers': images in [-1, 1] (madebyollin's own are [0, 1]); encode gives
 * latents already in the diffusion model's scale (scaling factor 1: no 0.18215), without
 * sampling; decode returns raw, unclamped pixels.
 */
#ifndef GESSO_TAESD_H
#define GESSO_TAESD_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gesso.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

typedef struct GessoTaesd GessoTaesd;

typedef enum
{
  GESSO_TAESD_LAYOUT_DIFFUSERS,       /* AutoencoderTiny folder, or its safetensors file */
  GESSO_TAESD_LAYOUT_MADEBYOLLIN,     /* taesd_encoder / taesd_decoder .safetensors */
} GessoTaesdLayout;

/* TRUE when PATH is a TAESD in either layout, judged from config.json's _class_name or the
 * tensor names (nothing is read beyond headers). Never fails: anything else is FALSE. */
gboolean gesso_taesd_detect (const char *path);

/* Opens PATH: a diffusers AutoencoderTiny folder or its weights file; a folder holding
 * taesd_encoder/taesd_decoder .safetensors (or taesdxl_*, ...); or one of those two files,
 * whose partner is looked for beside it (encoder <-> decoder in the name). A half that is not
 * there is allowed (a decoder alone previews); using it is then a MISSING error. */
GessoTaesd *gesso_taesd_open (const char *path, GError **error);
void gesso_taesd_free (GessoTaesd *taesd);

GessoTaesdLayout gesso_taesd_layout (const GessoTaesd *taesd);
const char *gesso_taesd_layout_name (GessoTaesdLayout layout);
gboolean gesso_taesd_has_encoder (const GessoTaesd *taesd);
gboolean gesso_taesd_has_decoder (const GessoTaesd *taesd);
/* Latent channels (4) and pixels per latent cell (8 for every released TAESD). */
int gesso_taesd_latent_channels (const GessoTaesd *taesd);
int gesso_taesd_latent_factor (const GessoTaesd *taesd);
/* Widest layer, and the parameter count of both halves. */
int gesso_taesd_width (const GessoTaesd *taesd);
guint64 gesso_taesd_parameters (const GessoTaesd *taesd);

/* Scratch an encode of HEIGHT x WIDTH pixels / a decode of a LATENT_H x LATENT_W latent takes
 * from its arena (alignment included). Sizes must be positive (image: multiples of the factor). */
gboolean gesso_taesd_encode_scratch_bytes (const GessoTaesd *taesd, int64_t height,
                                           int64_t width, size_t *bytes, GError **error);
gboolean gesso_taesd_decode_scratch_bytes (const GessoTaesd *taesd, int64_t latent_h,
                                           int64_t latent_w, size_t *bytes, GError **error);

/* IMAGE [1, 3, HEIGHT, WIDTH] in [-1, 1] -> LATENT [1, latent, HEIGHT / f, WIDTH / f], in the
 * diffusion model's scale. SCRATCH may be NULL (an arena is made for the call). */
gboolean gesso_taesd_encode (const GessoTaesd *taesd, const float *image, int64_t height,
                             int64_t width, float *latent, GessoArena *scratch, GError **error);
/* LATENT [1, latent, LATENT_H, LATENT_W] -> IMAGE [1, 3, LATENT_H * f, LATENT_W * f], about
 * [-1, 1], not clamped. */
gboolean gesso_taesd_decode (const GessoTaesd *taesd, const float *latent, int64_t latent_h,
                             int64_t latent_w, float *image, GessoArena *scratch,
                             GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoTaesd, gesso_taesd_free)

G_END_DECLS

#endif /* GESSO_TAESD_H */
