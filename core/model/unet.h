/* The denoising UNet of Stable Diffusion 1.x / 2.x / XL (diffusers UNet2DConditionModel).
 *
 * One builder serves every SD-shaped UNet: the structure (levels, channels, which levels have
 * cross-attention, heads, linear or 1x1-conv projections, 4 or 9 input channels) comes from a
 * GessoUnetConfig, which is read from a diffusers unet/config.json or, for single files that
 * carry no config, inferred from the weight shapes. Weights are read by their diffusers names
 * through GessoWeights, so folders and single files load the same way.
 *
 * Layout: sample [B, in_channels, h, w] NCHW, timesteps [B] (float, may be fractional),
 * context [B, context_len, cross_attention_dim] -> out [B, out_channels, h, w], the raw model
 * output (epsilon or v, as the model was trained). Run the guidance pair as B = 2.
 */
#ifndef GESSO_UNET_H
#define GESSO_UNET_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gesso.h"
#include "io/model_files.h"
#include "model/weights.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

/* SD1/SD2 have 4 levels, SDXL 3; anything deeper is not a UNet we know. */
#define GESSO_UNET_MAX_LEVELS 6
/* Resnets per down level (SD: 2). */
#define GESSO_UNET_MAX_LAYERS_PER_BLOCK 8
/* BasicTransformerBlocks per Transformer2DModel (SD: 1; SDXL uses up to 10). */
#define GESSO_UNET_MAX_DEPTH 16

/* Per-level arrays are indexed by level in down order: level 0 is full resolution. The up
 * block that serves level L is up_blocks.(n_levels - 1 - L) in diffusers names. */
typedef struct
{
  int in_channels;                                /* 4; 9 = [latent 4 | mask 1 | masked 4] */
  int out_channels;
  int n_levels;
  int block_out_channels[GESSO_UNET_MAX_LEVELS];
  int layers_per_block;                           /* resnets per down level (up: one more) */
  gboolean down_cross_attention[GESSO_UNET_MAX_LEVELS];  /* CrossAttnDownBlock2D */
  gboolean up_cross_attention[GESSO_UNET_MAX_LEVELS];    /* CrossAttnUpBlock2D */
  int heads[GESSO_UNET_MAX_LEVELS];               /* head dim = channels / heads */
  int transformer_depth[GESSO_UNET_MAX_LEVELS];
  int up_transformer_depth[GESSO_UNET_MAX_LEVELS];
  int mid_heads;
  int mid_transformer_depth;
  gboolean use_linear_projection;                 /* proj_in/out Linear (SD2) or 1x1 conv (SD1) */
  int cross_attention_dim;                        /* width of the text embeddings */
  int norm_num_groups;
  float norm_eps;                                 /* resnets and the final norm */
  gboolean flip_sin_to_cos;                       /* timestep embedding as [cos | sin] */
  float freq_shift;
  int time_proj_dim;                              /* sinusoid width: block_out_channels[0] */
  int time_embed_dim;                             /* 4 * block_out_channels[0] by default */
  int conv_in_kernel;
  int conv_out_kernel;
  gboolean upcast_attention;                      /* recorded only: we compute in float32 */
  /* SDXL's "text_time" added embedding, 0 when the UNet has none: add_embedding reads the
   * pooled text embedding and the six size ids, each as addition_time_embed_dim sinusoids */
  int addition_input_dim;                         /* projection_class_embeddings_input_dim */
  int addition_time_embed_dim;
  /* FALSE when the heads are the documented defaults because nothing said otherwise (shape
   * inference): SD1-style (conv projections) 8 heads per level, SD2-style (linear
   * projections) head dim 64. */
  gboolean heads_known;
} GessoUnetConfig;

/* Reads a diffusers UNet2DConditionModel config.json; NAME is used in messages. Keys that are
 * absent or null take diffusers' defaults; features Gesso does not implement (class or
 * addition embeddings, other block types, ...) are refused with GESSO_ERROR_UNSUPPORTED. */
gboolean gesso_unet_config_from_json (JsonObject *json, const char *name,
                                      GessoUnetConfig *config, GError **error);

/* Infers the structure from the UNet weights' shapes. What shapes cannot tell takes SD's
 * values: 32 norm groups, eps 1e-5, flip_sin_to_cos, freq_shift 0, heads as described at
 * heads_known. A weight the structure is counted by (a block's first conv, proj_in, attn1.to_q)
 * that is absent while the rest of its block is there fails as MISSING, by name. */
gboolean gesso_unet_config_infer (const GessoWeights *weights, GessoUnetConfig *config,
                                  GError **error);

/* Internal consistency: channel counts divisible by heads and groups, sane ranges. */
gboolean gesso_unet_config_validate (const GessoUnetConfig *config, GError **error);

/* Compares a declared config (from CONFIG_NAME) with one inferred from weight shapes, field by
 * field for everything shapes determine (not heads, norms or the timestep embedding's
 * frequencies). On mismatch, one error listing every difference on one line. */
gboolean gesso_unet_config_check (const GessoUnetConfig *config,
                                  const GessoUnetConfig *inferred, const char *config_name,
                                  GError **error);

/* One line for logs and `gesso info`, e.g. "4 levels (320, 640, 1280, 1280), ...". */
char *gesso_unet_config_describe (const GessoUnetConfig *config);

/* Width of the pooled text embedding an SDXL UNet reads (addition_input_dim less the six
 * embedded size ids), 0 for a UNet without the added embedding. */
int gesso_unet_config_pooled_dim (const GessoUnetConfig *config);

/* SDXL's size conditioning, the six time ids per batch row, in this order. */
#define GESSO_UNET_TIME_IDS 6   /* original h, w, crop top, crop left, target h, w */

typedef struct GessoUnet GessoUnet;

/* SDXL's added conditioning, per batch row: the pooled text embedding
 * [B, gesso_unet_config_pooled_dim] and the time ids [B, GESSO_UNET_TIME_IDS]. */
typedef struct
{
  const float *text_embeds;
  const float *time_ids;
} GessoUnetAdded;

/* Builds the UNet from WEIGHTS (borrowed; must outlive the result) with CONFIG, or with the
 * config inferred from the weights when CONFIG is NULL. A given CONFIG is checked against the
 * weight shapes first. Every weight is fetched and shape-checked here, so a forward never
 * fails for a missing tensor. */
GessoUnet *gesso_unet_new (GessoWeights *weights, const GessoUnetConfig *config,
                           GError **error);

/* The config a model's UNet is built with: OVERRIDE (e.g. a config.json the user put next to
 * a single file) if not NULL, else the model's own unet/config.json, else inference from the
 * weights; a declared config is checked against the weight shapes. Reads no weight data, so
 * it is cheap enough to describe a model without loading it. */
gboolean gesso_unet_config_for_model (GessoModelFiles *files, const GessoWeights *weights,
                                      JsonObject *override, GessoUnetConfig *config,
                                      GError **error);

/* The usual way in: builds the UNet with gesso_unet_config_for_model's config. */
GessoUnet *gesso_unet_new_for_model (GessoModelFiles *files, GessoWeights *weights,
                                     JsonObject *override, GError **error);

void gesso_unet_free (GessoUnet *unet);
/* Fetches every weight again, for a UNet whose weights were freed (gesso_weights_release of
 * GESSO_COMPONENT_UNET), which must not be evaluated until then. */
gboolean gesso_unet_reload (GessoUnet *unet, GError **error);

const GessoUnetConfig *gesso_unet_get_config (const GessoUnet *unet);

/* Whether a forward of this size is possible: batch >= 1, context_len >= 1, height and width
 * positive multiples of 2^(n_levels - 1) (each down level halves the latent and the up path
 * must meet the skip connections at equal sizes). */
gboolean gesso_unet_check_size (const GessoUnet *unet, int64_t batch, int64_t height,
                                int64_t width, int64_t context_len, GError **error);

/* Working memory one forward of this size takes from its arena, in bytes (found by running
 * the forward's allocation schedule without computing); 0 when the size is not valid. The
 * kernels' scratch depends on the thread count: plan after gesso_ops_set_threads(). */
size_t gesso_unet_scratch_bytes (const GessoUnet *unet, int64_t batch, int64_t height,
                                 int64_t width, int64_t context_len);

/* The same from a config alone, before any weights are loaded (to tell a user what a size
 * will cost); 0 when the config or the size is not valid. */
size_t gesso_unet_config_scratch_bytes (const GessoUnetConfig *config, int64_t batch,
                                        int64_t height, int64_t width, int64_t context_len);

/* One evaluation. SCRATCH must have gesso_unet_scratch_bytes() free (it is returned to its
 * mark on exit); when NULL the UNet uses an arena of its own, sized before the first forward
 * of each new size and kept for the next (so a sampling loop allocates once); a GessoUnet
 * then runs one forward at a time. OUT must not alias the inputs. The forward allocates
 * nothing else. */
gboolean gesso_unet_forward (GessoUnet *unet, const float *sample, const float *timesteps,
                             const float *context, int64_t batch, int64_t height, int64_t width,
                             int64_t context_len, float *out, GessoArena *scratch,
                             GError **error);

/* ControlNet residuals for a forward of this size, packed in diffusers' order: one per skip
 * connection (conv_in, then per level its resnets and its downsampler, [B, C, h, w] each),
 * then the middle block's; the number of floats. */
size_t gesso_unet_residual_floats (const GessoUnet *unet, int64_t batch, int64_t height,
                                   int64_t width);

/* gesso_unet_forward with RESIDUALS (gesso_unet_residual_floats() long, or NULL) added to
 * the skip connections and the middle block's output, as diffusers' UNet adds
 * down_block_additional_residuals and mid_block_additional_residual. */
gboolean gesso_unet_forward_controlled (GessoUnet *unet, const float *sample,
                                        const float *timesteps, const float *context,
                                        int64_t batch, int64_t height, int64_t width,
                                        int64_t context_len, const float *residuals, float *out,
                                        GessoArena *scratch, GError **error);

/* gesso_unet_forward_controlled with ADDED, SDXL's added conditioning, which a UNet with the
 * added embedding requires and any other ignores (NULL there). */
gboolean gesso_unet_forward_full (GessoUnet *unet, const float *sample, const float *timesteps,
                                  const float *context, const GessoUnetAdded *added,
                                  int64_t batch, int64_t height, int64_t width,
                                  int64_t context_len, const float *residuals, float *out,
                                  GessoArena *scratch, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoUnet, gesso_unet_free)

G_END_DECLS

#endif /* GESSO_UNET_H */
