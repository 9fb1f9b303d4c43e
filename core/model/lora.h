/* LoRA files as they circulate, read and matched to a model's weights.
 *
 * A LoRA changes a weight matrix W [out, in] (a convolution's [out, in, kh, kw] seen as
 * [out, in * kh * kw]) into W + scale * up * down, with up [out, rank] and down [rank, in]:
 *
 *   kohya / A1111   lora_unet_<diffusers module path, '.' as '_'>.lora_down.weight,
 *                   .lora_up.weight, .alpha (absent: alpha = rank); lora_te_ (lora_te1_,
 *                   lora_te2_ for SDXL) for the text encoders. LoCon: down is the layer's own
 *                   kernel [rank, in, kh, kw], up [out, rank, 1, 1]. scale = alpha / rank.
 *   diffusers PEFT  unet.<module>.lora_A.weight (down) / .lora_B.weight (up), text_encoder.…;
 *                   scale = lora_alpha / r from the file's lora_adapter_metadata when it has
 *                   them, else 1.
 *   diffusers, old  unet.<module>.lora.down.weight / .lora.up.weight (scale 1).
 *   attn processor  <attention module>.processor.to_q_lora.down.weight (to_k, to_v, to_out;
 *                   to_out_lora is to_out.0), no prefix: the UNet; scale 1.
 *
 * The user's weight multiplies the scale. LyCORIS' other kinds (LoHa, LoKr, GLoRA, …) are
 * refused by name: read as plain LoRAs they would paint something else without a word.
 */
#ifndef GESSO_LORA_H
#define GESSO_LORA_H

#include <glib.h>
#include <stdint.h>

#include "gesso.h"
#include "model/weights.h"

G_BEGIN_DECLS

typedef enum
{
  GESSO_LORA_KOHYA,
  GESSO_LORA_PEFT,
  GESSO_LORA_DIFFUSERS_OLD,
  GESSO_LORA_ATTN_PROCESSOR,
} GessoLoraLayout;

/* One changed weight: the model weight NAME of COMPONENT (diffusers names, as GessoWeights
 * serves them) and its factors as the file stores them (F32, F16 or BF16: a 16-bit LoRA costs
 * its file's size in memory, no more), widened where they are used
 * (gesso_lora_module_widen). */
typedef struct
{
  GessoComponent component;
  char *name;                   /* "down_blocks.0.attentions.0.proj_in.weight" */
  char *key;                    /* the module's key in the file, for messages */
  int64_t rank;
  int64_t out_features;         /* rows of W */
  int64_t in_features;          /* columns of W (in * kh * kw for a convolution) */
  void *up;                     /* [out_features, rank] */
  void *down;                   /* [rank, in_features] */
  GessoDType up_dtype, down_dtype;
  float scale;                  /* alpha / rank, before the user's weight */
} GessoLoraModule;

/* M's factors as float32 into UP (out_features * rank floats) and DOWN (rank * in_features). */
void gesso_lora_module_widen (const GessoLoraModule *m, float *up, float *down);

typedef struct GessoLora GessoLora;

/* Reads the LoRA at PATH (a .safetensors; pickle files are refused as checkpoints are) and
 * pairs its down/up factors by module. Fails with one line for a file that is no LoRA, a
 * LyCORIS kind other than LoRA/LoCon, a module missing a factor, or factors whose ranks
 * disagree. Matches nothing to a model yet. */
GessoLora *gesso_lora_open (const char *path, GError **error);
void gesso_lora_free (GessoLora *lora);

const char *gesso_lora_path (const GessoLora *lora);
GessoLoraLayout gesso_lora_layout (const GessoLora *lora);
const char *gesso_lora_layout_name (GessoLoraLayout layout);
guint gesso_lora_count (const GessoLora *lora);
/* The largest rank of its modules. */
int64_t gesso_lora_max_rank (const GessoLora *lora);
/* How many modules change COMPONENT. */
guint gesso_lora_count_for (const GessoLora *lora, GessoComponent component);
/* Whether LORA is a latent-consistency (LCM) LoRA, made for the lcm sampler: its file name or
 * its kohya/modelspec title says "lcm" (the released ones, renamed as A1111's and ComfyUI's
 * guides tell, and every fine-tuned one; the weights themselves do not show it). */
gboolean gesso_lora_is_lcm (const GessoLora *lora);
/* "Stable Diffusion 1.x" (768-wide text conditioning), "Stable Diffusion 2.x" (1024), "SDXL"
 * (two text encoders, 2048), or NULL when the file does not tell. */
const char *gesso_lora_family_guess (const GessoLora *lora);

/* Matches every module to a weight of WEIGHTS: fills each module's name, shapes and factors
 * (read now, as stored). A module that matches no weight, or whose factors' shapes
 * disagree with its weight's, fails with one line naming its key and the family the LoRA seems
 * made for (GESSO_ERROR_INVALID_ARGUMENT). */
gboolean gesso_lora_bind (GessoLora *lora, GessoWeights *weights, GError **error);

/* Module INDEX (after gesso_lora_bind). */
const GessoLoraModule *gesso_lora_module (const GessoLora *lora, guint index);

/* Sets on WEIGHTS the deltas of the N LoRAs LORAS (each bound to WEIGHTS; a NULL one is left
 * out) at the user's weights SCALES: one delta per module, chained per weight, so that several
 * LoRAs on one layer add up. Returns the deltas, which the caller frees with g_free() after
 * gesso_weights_clear_deltas(); *CHANGES_TEXT (may be NULL) tells whether a text encoder is
 * among the layers changed. */
GessoWeightDelta *gesso_lora_set_deltas (GessoLora *const *loras, const float *scales, int n,
                                         GessoWeights *weights, gboolean *changes_text,
                                         GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoLora, gesso_lora_free)

G_END_DECLS

#endif /* GESSO_LORA_H */
