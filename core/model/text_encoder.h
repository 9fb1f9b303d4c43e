/* The CLIP text encoders of Stable Diffusion 1.x, 2.x and XL (transformers' CLIPTextModel, and
 * CLIPTextModelWithProjection for SDXL's second, whose pooled output it also gives).
 *
 *   x = token_embedding[ids] + position_embedding[0..T)
 *   per layer:  x += out_proj (causal_self_attention (layer_norm1 (x)))
 *               x += fc2 (act (fc1 (layer_norm2 (x))))
 *   last_hidden_state = final_layer_norm (x)
 * with act quick_gelu for OpenAI CLIP (SD1) and the exact erf GELU for OpenCLIP (SD2),
 * attention scale head_dim^-0.5, a causal mask and no padding mask (what SD pipelines do).
 *
 * Clip skip k uses the output of layer N-k instead of the last (diffusers' clip_skip; A1111's
 * "CLIP skip" k+1), still through final_layer_norm. The layer count N is decided when the
 * encoder is made: a diffusers folder or an SD1 file uses every stored layer, while an SD2
 * single file stores OpenCLIP's last block although SD2 was trained on ln_final(output of the
 * penultimate block) - diffusers' SD2 text encoder simply has one layer fewer. So an OpenCLIP
 * layout means N = blocks - 1 unless a config says otherwise, and the folder and the single
 * file of one SD2 model give the same embedding for the same clip skip.
 *
 * An encoder borrows its GessoWeights and owns a scratch arena sized when it is made; like the
 * weights it is used by one job at a time.
 */
#ifndef GESSO_TEXT_ENCODER_H
#define GESSO_TEXT_ENCODER_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdint.h>

#include "model/weights.h"

G_BEGIN_DECLS

typedef enum
{
  GESSO_TEXT_ACT_AUTO,          /* config.json's hidden_act, else by the key layout */
  GESSO_TEXT_ACT_QUICK_GELU,    /* x * sigmoid(1.702 x): OpenAI CLIP ViT-L (SD1) */
  GESSO_TEXT_ACT_GELU,          /* x * Phi(x), erf form: OpenCLIP ViT-H (SD2) */
  GESSO_TEXT_ACT_GELU_TANH,     /* tanh approximation ("gelu_new") */
} GessoTextActivation;

/* Hyperparameters; 0 (or AUTO) means "from config.json, else from the weights":
 * hidden_size, vocab_size and max_positions from the embedding shapes, intermediate_size from
 * fc1, n_layers from the layers stored (OpenCLIP: all but the last), n_heads hidden_size / 64
 * (true of every CLIP text tower SD uses; a model narrower than 64 needs it given),
 * layer_norm_eps 1e-5, activation quick_gelu (or gelu for OpenCLIP). */
typedef struct
{
  int hidden_size;
  int n_layers;
  int n_heads;
  int intermediate_size;
  int max_positions;
  int vocab_size;
  double layer_norm_eps;
  GessoTextActivation activation;
} GessoTextEncoderConfig;

typedef struct GessoTextEncoder GessoTextEncoder;

void gesso_text_encoder_config_init (GessoTextEncoderConfig *config);

/* Builds the encoder over WEIGHTS (borrowed; must outlive it). CONFIG (may be NULL) overrides
 * CONFIG_JSON (a text_encoder/config.json, may be NULL), which overrides what the weights
 * imply. Every weight is checked (and widened if it needs to be) here, so a wrong or
 * incomplete model fails now with the weight's name, not in the middle of a job. */
GessoTextEncoder *gesso_text_encoder_new (GessoWeights *weights,
                                          const GessoTextEncoderConfig *config,
                                          JsonObject *config_json, GError **error);
/* The same for COMPONENT: GESSO_COMPONENT_TEXT_ENCODER, or SDXL's GESSO_COMPONENT_TEXT_ENCODER_2
 * (OpenCLIP bigG, whose every stored block is used: no SD2 spare block). */
GessoTextEncoder *gesso_text_encoder_new_for (GessoWeights *weights, GessoComponent component,
                                              const GessoTextEncoderConfig *config,
                                              JsonObject *config_json, GError **error);
void gesso_text_encoder_free (GessoTextEncoder *encoder);

/* The resolved hyperparameters (no zeros, no AUTO). */
const GessoTextEncoderConfig *gesso_text_encoder_get_config (const GessoTextEncoder *encoder);

/* IDS: max_positions token ids (77 for SD), each in [0, vocab_size). CLIP_SKIP in
 * [0, n_layers). OUT: max_positions * hidden_size floats, [tokens, hidden]:
 * final_layer_norm (output of layer n_layers - clip_skip). */
gboolean gesso_text_encoder_encode (GessoTextEncoder *encoder, const int64_t *ids, int clip_skip,
                                    float *out, GError **error);
/* The same without final_layer_norm: the raw hidden state after layer n_layers - clip_skip
 * (transformers' hidden_states[-(clip_skip + 1)]). */
gboolean gesso_text_encoder_hidden_state (GessoTextEncoder *encoder, const int64_t *ids,
                                          int clip_skip, float *out, GError **error);

/* Width of the pooled embedding: text_projection's output (SDXL's second encoder), or 0 for an
 * encoder without text_projection. */
int gesso_text_encoder_pooled_dim (const GessoTextEncoder *encoder);
/* POOLED (pooled_dim floats) = text_projection (final_layer_norm (last layer's output) at the
 * first end-of-text token), as CLIPTextModelWithProjection's text_embeds. */
gboolean gesso_text_encoder_pooled (GessoTextEncoder *encoder, const int64_t *ids,
                                    float *pooled, GError **error);
/* Appends N_ROWS rows ([N_ROWS, hidden_size], copied) to the token table, for textual-inversion
 * embeddings; returns the id of the first (vocab_size, then on). encode then takes ids up to
 * vocab_size + all rows added. */
int64_t gesso_text_encoder_add_rows (GessoTextEncoder *encoder, const float *rows,
                                     int64_t n_rows);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoTextEncoder, gesso_text_encoder_free)

G_END_DECLS

#endif /* GESSO_TEXT_ENCODER_H */
