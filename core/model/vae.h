/* The VAE of Stable Diffusion 1.x/2.x: diffusers' AutoencoderKL, built from its config.
 *
 * One builder serves every size: the number of levels, their channels, the resnets per level,
 * the latent channels and the presence of the mid-block attention and of quant_conv /
 * post_quant_conv all come from a GessoVaeConfig, read from vae/config.json or inferred from
 * the weights' shapes. The latent is 2^(levels-1) times smaller than the image (8 for SD, 2
 * for the tiny conformance models); nothing here assumes 8.
 *
 * Encoder: conv_in; per level layers_per_block resnets, then (all but the last level) a
 * stride-2 3x3 conv after a zero pad of one row and one column on the bottom and right only
 * (diffusers' Downsample2D with padding=0); mid block (resnet, attention, resnet);
 * GroupNorm, SiLU, conv_out to 2 * latent_channels; quant_conv (1x1) gives the moments of a
 * diagonal Gaussian: mean and logvar, logvar clamped to [-30, 20], std = exp(logvar / 2).
 * Decoder: post_quant_conv (1x1), conv_in, mid block, per level layers_per_block + 1
 * resnets and (all but the last) a nearest 2x upsample followed by a 3x3 conv; GroupNorm,
 * SiLU, conv_out. GroupNorm eps is 1e-6 throughout, as diffusers hard-codes it.
 *
 * Latents in and out of this module are unscaled: the caller (the pipeline) multiplies by
 * the scaling factor after encoding and divides by it before decoding.
 *
 * Memory: a call plans its scratch before it computes (the same code runs once to measure,
 * once to compute), so an arena of gesso_vae_*_scratch_bytes() is all it ever touches.
 * Activations live in three rotating buffers sized by that plan, plus the scratch of one
 * kernel at a time (convolution or the tiled attention). For SD (128, 256, 512, 512) the
 * 512x512 decode's buffers are 256 + 256 + 128 MiB (the upsampled 256-channel map, the conv
 * after it, the 128-channel maps of the last level), the 512x512 encode's 128 MiB each;
 * whatever the convolution kernel asks for as scratch comes on top.
 *
 * Tiled decoding (not done yet) fits this design as a loop around the same forward: decode
 * latent tiles with a halo into one planned arena and blend their overlaps. GroupNorm takes
 * statistics over the whole image, so tiles change the result slightly (diffusers'
 * tiled_decode has the same property); an exact variant would compute each GroupNorm's
 * statistics over all tiles first. Both only need the per-call plan to take a tile size
 * instead of the image size.
 */
#ifndef GESSO_VAE_H
#define GESSO_VAE_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gesso.h"
#include "io/model_files.h"
#include "model/taesd.h"
#include "model/weights.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

#define GESSO_VAE_MAX_LEVELS 8
/* SD 1.x and 2.x; the value a config without "scaling_factor" (or a single file) gets. */
#define GESSO_VAE_SD_SCALING_FACTOR 0.18215
#define GESSO_VAE_SDXL_SCALING_FACTOR 0.13025

typedef struct
{
  int in_channels;                              /* image channels in (3) */
  int out_channels;                             /* image channels out (3) */
  int latent_channels;                          /* 4 for SD */
  int n_levels;                                 /* length of block_out_channels */
  int block_out_channels[GESSO_VAE_MAX_LEVELS]; /* SD: 128, 256, 512, 512 */
  int layers_per_block;                         /* encoder resnets per level; decoder + 1 */
  int norm_num_groups;                          /* 32 */
  float norm_eps;                               /* 1e-6 */
  double scaling_factor;                        /* latent = scaling_factor * (z - shift) */
  double shift_factor;                          /* 0 for SD */
  gboolean mid_attention;                       /* mid_block_add_attention */
  gboolean use_quant_conv;
  gboolean use_post_quant_conv;
} GessoVaeConfig;

/* diffusers' AutoencoderKL defaults with SD's scaling factor: what a config.json key that is
 * absent takes (as diffusers' from_pretrained does). */
void gesso_vae_config_init (GessoVaeConfig *config);

/* Reads a diffusers vae/config.json object into CONFIG; NAME names the file in messages.
 * Keys absent (or null) keep diffusers' defaults. Other VAE classes (AutoencoderTiny, ...),
 * block types other than DownEncoderBlock2D/UpDecoderBlock2D and activations other than
 * SiLU are refused as unsupported. */
gboolean gesso_vae_config_from_json (GessoVaeConfig *config, JsonObject *json, const char *name,
                                     GError **error);

/* Infers the architecture from the VAE weights' shapes (a single file carries no config).
 * Shapes cannot tell the norm group count or the scaling factor: the rule is SD's, 32 groups
 * and GESSO_VAE_SD_SCALING_FACTOR (every SD 1.x/2.x VAE uses both), or
 * GESSO_VAE_SDXL_SCALING_FACTOR in an SDXL checkpoint; a model that differs needs its
 * config.json or an override. */
gboolean gesso_vae_config_infer (GessoVaeConfig *config, const GessoWeights *weights,
                                 GError **error);

/* Ranges and consistency (every channel count divisible by the group count, ...). */
gboolean gesso_vae_config_validate (const GessoVaeConfig *config, GError **error);

/* TRUE when A and B describe the same network: every field that the weights' shapes
 * determine (not the group count, eps, or the scaling/shift factors). */
gboolean gesso_vae_config_same_architecture (const GessoVaeConfig *a, const GessoVaeConfig *b);

/* "levels 2 (32, 64), 2 resnets/level, latent 4, groups 32, mid attention, scale 0.18215"
 * for messages and `gesso info`; caller frees. */
char *gesso_vae_config_to_string (const GessoVaeConfig *config);

/* 2^(n_levels - 1). */
int gesso_vae_config_latent_factor (const GessoVaeConfig *config);

/* --- The model ------------------------------------------------------------------------ */

typedef struct GessoVae GessoVae;

/* Builds the VAE of CONFIG from WEIGHTS (borrowed; must outlive the result), checking every
 * weight's presence and shape now so that encode/decode cannot fail on a missing tensor. */
GessoVae *gesso_vae_new (GessoWeights *weights, const GessoVaeConfig *config, GError **error);

/* The config chosen for a model's VAE: OVERRIDE when given; else the model's vae/config.json
 * (diffusers folder); else the config inferred from the weights (single file). Reads no
 * weight data. */
gboolean gesso_vae_config_for_model (GessoModelFiles *files, const GessoWeights *weights,
                                     const GessoVaeConfig *override, GessoVaeConfig *config,
                                     GError **error);

/* The VAE built with gesso_vae_config_for_model's config. A config.json that disagrees with
 * the weights fails with the weights' message. */
GessoVae *gesso_vae_new_for_model (GessoModelFiles *files, GessoWeights *weights,
                                   const GessoVaeConfig *override, GError **error);

/* A GessoVae that runs TAESD (taken over: freed with the result) in place of an
 * AutoencoderKL: encode gives its latent as the mean (std 0, logvar the clamp's floor), and
 * the scaling factor is 1, since TAESD's latents are already in the diffusion model's scale.
 * Its config says so (latent channels, levels for the latent factor, scaling factor 1). */
GessoVae *gesso_vae_new_taesd (GessoTaesd *taesd);
/* The config gesso_vae_new_taesd gives its result. */
void gesso_vae_config_for_taesd (const GessoTaesd *taesd, GessoVaeConfig *config);
gboolean gesso_vae_is_taesd (const GessoVae *vae);

void gesso_vae_free (GessoVae *vae);

const GessoVaeConfig *gesso_vae_get_config (const GessoVae *vae);
double gesso_vae_scaling_factor (const GessoVae *vae);
int gesso_vae_latent_factor (const GessoVae *vae);
int gesso_vae_latent_channels (const GessoVae *vae);

/* Scratch bytes an encode of a HEIGHT x WIDTH image / a decode of a LATENT_H x LATENT_W
 * latent needs from its arena (alignment included). FALSE when the size is refused (not a
 * multiple of the latent factor, zero, or too large). */
gboolean gesso_vae_encode_scratch_bytes (const GessoVae *vae, int64_t height, int64_t width,
                                         size_t *bytes, GError **error);
gboolean gesso_vae_decode_scratch_bytes (const GessoVae *vae, int64_t latent_h,
                                         int64_t latent_w, size_t *bytes, GError **error);

/* The same from a config alone, before any weights are loaded: lets a caller choose a tile
 * size or refuse a job that would not fit in memory. */
gboolean gesso_vae_config_encode_scratch_bytes (const GessoVaeConfig *config, int64_t height,
                                                int64_t width, size_t *bytes, GError **error);
gboolean gesso_vae_config_decode_scratch_bytes (const GessoVaeConfig *config, int64_t latent_h,
                                                int64_t latent_w, size_t *bytes,
                                                GError **error);

/* IMAGE [1, in_channels, HEIGHT, WIDTH] in [-1, 1] -> the posterior's MEAN and, where not
 * NULL, LOGVAR (clamped to [-30, 20]) and STD, each [1, latent_channels, HEIGHT / f,
 * WIDTH / f] with f the latent factor; unscaled. HEIGHT and WIDTH must be multiples of f.
 * SCRATCH may be NULL (an arena of the planned size is made for the call); a caller's
 * arena must have gesso_vae_encode_scratch_bytes() free and is returned to its mark. */
gboolean gesso_vae_encode (GessoVae *vae, const float *image, int64_t height, int64_t width,
                           float *mean, float *logvar, float *std, GessoArena *scratch,
                           GError **error);

/* LATENT [1, latent_channels, LATENT_H, LATENT_W] (unscaled) -> IMAGE [1, out_channels,
 * LATENT_H * f, LATENT_W * f], raw: not clamped to [-1, 1]. SCRATCH as for encode. */
gboolean gesso_vae_decode (GessoVae *vae, const float *latent, int64_t latent_h,
                           int64_t latent_w, float *image, GessoArena *scratch, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoVae, gesso_vae_free)

G_END_DECLS

#endif /* GESSO_VAE_H */
