/* What the UNet's files share: its layers' weights and the execution context that either
 * computes a forward or only plans its memory.
 *
 * The forward's memory is planned by running the very same code with no arena: allocations
 * only move a counter and kernels only report their scratch needs. So the plan cannot drift
 * from what the forward really does, and the real forward never runs out of arena.
 */
#ifndef GESSO_UNET_PRIVATE_H
#define GESSO_UNET_PRIVATE_H

#include <glib.h>
#include <stdint.h>

#include "model/unet.h"
#include "ops/ops.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

/* --- Weights ---------------------------------------------------------------------------- */

typedef struct
{
  const float *gamma;
  const float *beta;
} UnetNorm;

/* A linear or convolution layer: weight in PyTorch's layout as the file stores it, bias or
 * NULL. */
typedef struct
{
  GessoWeight weight;
  const float *bias;
} UnetLayer;

/* diffusers ResnetBlock2D */
typedef struct
{
  int64_t in_channels, out_channels;
  UnetNorm norm1, norm2;
  UnetLayer conv1, conv2;
  UnetLayer time_emb_proj;
  UnetLayer conv_shortcut;      /* 1x1, when the channel count changes */
} UnetResnet;

/* diffusers BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward */
typedef struct
{
  UnetNorm norm1, norm2, norm3;
  UnetLayer q1, k1, v1, out1;
  UnetLayer q2, k2, v2, out2;
  UnetLayer ff_in, ff_out;
} UnetTransformerBlock;

/* diffusers Transformer2DModel */
typedef struct
{
  int64_t channels, heads, depth;
  UnetNorm norm;
  UnetLayer proj_in, proj_out;  /* weights served as [C, C] whether stored linear or 1x1 */
  UnetTransformerBlock *blocks;
} UnetTransformer;

/* Settings every layer needs. */
typedef struct
{
  int64_t groups;
  float resnet_eps;             /* config norm_eps */
  int64_t time_embed_dim;
  int64_t context_dim;
} UnetGlobals;

/* --- Execution ------------------------------------------------------------------------ */

typedef struct
{
  GessoArena *arena;            /* NULL: planning, nothing is computed */
  size_t used;                  /* planning: bytes taken, as the arena would count them */
  size_t peak;                  /* planning: the most taken at any time, scratch included */
} UnetExec;

static inline gboolean
unet_exec_computing (const UnetExec *x)
{
  return x->arena != NULL;
}

/* N floats from the arena. While planning, returns a non-NULL dummy that is never read. */
float *unet_exec_alloc (UnetExec *x, size_t n, GError **error);
size_t unet_exec_mark (const UnetExec *x);
void unet_exec_reset (UnetExec *x, size_t mark);
/* Planning: a kernel will take BYTES of scratch above what is taken now. */
void unet_exec_scratch (UnetExec *x, size_t bytes);

/* Convolution with square kernel K (padding K/2) on [B, cin, h, w]. */
gboolean unet_conv (UnetExec *x, const UnetLayer *layer, const float *in, float *out,
                    int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                    int64_t out_channels, int64_t kernel, int64_t stride, GError **error);

/* --- The encoder half, shared with ControlNets ------------------------------------------ */

/* Skip connections: conv_in, then per level its resnets and its downsampler. */
#define UNET_MAX_SKIPS (1 + GESSO_UNET_MAX_LEVELS * (GESSO_UNET_MAX_LAYERS_PER_BLOCK + 1))

typedef struct
{
  float *data;
  int64_t channels, height, width;
} UnetSkip;

/* A UNet of CONFIG with only its time embedding, down path and middle block, as a ControlNet
 * has them; the loaded weights are checked against CONFIG's shapes. */
GessoUnet *unet_build_encoder (GessoWeights *weights, const GessoUnetConfig *config,
                               GError **error);

/* SiLU(time embedding) [B, time_embed_dim], from the arena, with SDXL's added embedding of
 * ADDED (NULL: none; while planning, any non-NULL value counts its buffers); NULL on
 * failure. */
float *unet_time_embedding (GessoUnet *u, UnetExec *x, const float *timesteps,
                            const GessoUnetAdded *added, int64_t batch, GError **error);

/* conv_in(SAMPLE) (+ HINT [B, c0, h, w] when not NULL, a ControlNet's conditioning), then the
 * down levels; every output is pushed on SKIPS (UNET_MAX_SKIPS long) in diffusers'
 * down_block_res_samples order. *HEIGHT, *WIDTH become the deepest level's. */
gboolean unet_run_down (GessoUnet *u, UnetExec *x, const float *sample, const float *hint,
                        const float *temb, const float *context, int64_t batch,
                        int64_t *height, int64_t *width, int64_t context_len, UnetSkip *skips,
                        int *n_skips, GError **error);

/* The middle block: IN -> OUT, TMP as large as either. */
gboolean unet_run_mid (GessoUnet *u, UnetExec *x, const float *in, float *tmp, float *out,
                       int64_t batch, int64_t height, int64_t width, const float *temb,
                       const float *context, int64_t context_len, GError **error);

/* --- Layers ----------------------------------------------------------------------------- */

/* IN [B, in_channels, hw] -> OUT [B, out_channels, hw] (distinct buffers). TEMB_ACT is
 * SiLU(time embedding) [B, time_embed_dim], shared by every resnet of a forward. */
gboolean unet_resnet_forward (UnetExec *x, const UnetGlobals *g, const UnetResnet *r,
                              const float *in, float *out, int64_t batch, int64_t height,
                              int64_t width, const float *temb_act, GError **error);

/* In place on X [B, channels, hw]; CONTEXT [B, context_len, context_dim]. */
gboolean unet_transformer_forward (UnetExec *x, const UnetGlobals *g, const UnetTransformer *t,
                                   float *inout, int64_t batch, int64_t hw,
                                   const float *context, int64_t context_len, GError **error);

G_END_DECLS

#endif /* GESSO_UNET_PRIVATE_H */
