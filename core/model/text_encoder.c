/* The CLIP text encoder; see text_encoder.h for the maths and the clip-skip convention. */
#include "model/text_encoder.h"

#include <math.h>
#include <string.h>

#include "io/config.h"
#include "ops/ops.h"
#include "tensor/arena.h"

#define CONFIG_NAME "text_encoder/config.json"
#define TOKEN_EMBEDDING "text_model.embeddings.token_embedding.weight"

typedef struct
{
  const float *ln1_w, *ln1_b;
  GessoWeight q_w, k_w, v_w, o_w;   /* as stored: widened at each product (and LoRA) */
  const float *q_b, *k_b, *v_b, *o_b;
  const float *ln2_w, *ln2_b;
  GessoWeight fc1_w, fc2_w;
  const float *fc1_b, *fc2_b;
} Layer;

struct GessoTextEncoder
{
  GessoWeights *weights;
  GessoComponent component;
  GessoTextEncoderConfig config;
  const float *position_embedding;      /* [max_positions, hidden] */
  const float *final_w, *final_b;
  Layer *layers;
  /* text_projection as [projection_dim, hidden] (transformers' orientation; OpenCLIP's is
   * transposed into PROJECTION_OWNED), or NULL for an encoder without one */
  const float *projection;
  float *projection_owned;
  int projection_dim;
  float *last_state;            /* [T, hidden] for the pooled output; NULL without projection */
  GessoAttentionShape attention;
  GessoArena *arena;
  GArray *extra_rows;           /* float: rows of ids vocab_size.. (embeddings); NULL: none */
};

void
gesso_text_encoder_config_init (GessoTextEncoderConfig *config)
{
  memset (config, 0, sizeof *config);
  config->activation = GESSO_TEXT_ACT_AUTO;
}

/* --- Hyperparameters --------------------------------------------------------------------- */

/* KEY of CONFIG_JSON into *OUT when present and *OUT is still 0; a present key of the wrong
 * type or range is an error, an absent one is not (the weights will tell). */
static gboolean
json_int (JsonObject *json, const char *key, gint64 max, int *out, GError **error)
{
  gint64 v;

  if (json == NULL || *out != 0 || !json_object_has_member (json, key))
    return TRUE;
  if (!gesso_config_get_int (json, CONFIG_NAME, key, 1, max, &v, error))
    return FALSE;
  *out = (int) v;
  return TRUE;
}

static gboolean
activation_from_name (const char *name, GessoTextActivation *out, GError **error)
{
  /* transformers' ACT2FN names; "gelu" is the exact erf form there. */
  if (strcmp (name, "quick_gelu") == 0)
    *out = GESSO_TEXT_ACT_QUICK_GELU;
  else if (strcmp (name, "gelu") == 0)
    *out = GESSO_TEXT_ACT_GELU;
  else if (strcmp (name, "gelu_new") == 0 || strcmp (name, "gelu_pytorch_tanh") == 0)
    *out = GESSO_TEXT_ACT_GELU_TANH;
  else
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "%s: hidden_act \"%s\" is not supported; Gesso's text encoder knows "
                   "quick_gelu, gelu and gelu_new", CONFIG_NAME, name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_json (JsonObject *json, GessoTextEncoderConfig *c, GError **error)
{
  if (!json_int (json, "hidden_size", 1 << 16, &c->hidden_size, error)
      || !json_int (json, "num_hidden_layers", 1024, &c->n_layers, error)
      || !json_int (json, "num_attention_heads", 1024, &c->n_heads, error)
      || !json_int (json, "intermediate_size", 1 << 20, &c->intermediate_size, error)
      || !json_int (json, "max_position_embeddings", 1 << 16, &c->max_positions, error)
      || !json_int (json, "vocab_size", 1 << 24, &c->vocab_size, error))
    return FALSE;
  if (json != NULL && c->layer_norm_eps == 0 && json_object_has_member (json, "layer_norm_eps")
      && !gesso_config_get_double (json, CONFIG_NAME, "layer_norm_eps", 1e-30, 1.0,
                                   &c->layer_norm_eps, error))
    return FALSE;
  if (json != NULL && c->activation == GESSO_TEXT_ACT_AUTO
      && json_object_has_member (json, "hidden_act"))
    {
      const char *act;
      if (!gesso_config_get_string (json, CONFIG_NAME, "hidden_act", &act, error)
          || !activation_from_name (act, &c->activation, error))
        return FALSE;
    }
  return TRUE;
}

/* Dimension DIM of the 2-D text encoder weight NAME into *OUT when *OUT is still 0. */
static gboolean
dim_from_weight (const GessoWeights *weights, GessoComponent component, const char *name,
                 int dim, int *out, GError **error)
{
  int ndim;
  int64_t shape[8];

  if (*out != 0)
    return TRUE;
  if (!gesso_weights_shape (weights, component, name, &ndim, shape))
    {
      gesso_weights_set_missing_error (weights, component, name, error);
      return FALSE;
    }
  if (ndim != 2)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s weight '%s' has %d dimensions, expected 2",
                   gesso_component_name (component), name, ndim);
      return FALSE;
    }
  if (shape[dim] < 1 || shape[dim] > G_MAXINT)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s weight '%s' has an impossible size %" G_GINT64_FORMAT,
                   gesso_component_name (component), name, shape[dim]);
      return FALSE;
    }
  *out = (int) shape[dim];
  return TRUE;
}

static int
stored_layers (const GessoWeights *weights, GessoComponent component)
{
  int n = 0;

  for (;; n++)
    {
      g_autofree char *name = g_strdup_printf ("text_model.encoder.layers.%d.layer_norm1.weight",
                                               n);
      if (!gesso_weights_has (weights, component, name))
        return n;
    }
}

static gboolean
resolve_config (GessoWeights *weights, GessoComponent component,
                const GessoTextEncoderConfig *given, JsonObject *json, GessoTextEncoderConfig *c,
                GError **error)
{
  /* SDXL's second encoder is OpenCLIP too, but its SDXL convention reads every block */
  gboolean openclip = component == GESSO_COMPONENT_TEXT_ENCODER_2
                      || gesso_weights_text_keys (weights) == GESSO_TEXT_KEYS_OPENCLIP;
  gboolean spare_block = component == GESSO_COMPONENT_TEXT_ENCODER && openclip;
  int stored;

  if (given != NULL)
    *c = *given;
  else
    gesso_text_encoder_config_init (c);
  if (!read_json (json, c, error)
      || !dim_from_weight (weights, component, TOKEN_EMBEDDING, 0, &c->vocab_size, error)
      || !dim_from_weight (weights, component, TOKEN_EMBEDDING, 1, &c->hidden_size, error)
      || !dim_from_weight (weights, component, "text_model.embeddings.position_embedding.weight",
                           0, &c->max_positions, error)
      || !dim_from_weight (weights, component, "text_model.encoder.layers.0.mlp.fc1.weight", 0,
                           &c->intermediate_size, error))
    return FALSE;

  stored = stored_layers (weights, component);
  if (c->n_layers == 0)
    c->n_layers = spare_block ? stored - 1 : stored;
  if (c->n_layers < 1 || c->n_layers > stored)
    {
      /* An OpenCLIP file needs one block more than it uses (the SD2 convention above). */
      int needed = MAX (c->n_layers, 1) + (spare_block && c->n_layers < 1 ? 1 : 0);
      g_set_error (error, GESSO_ERROR, stored == 0 ? GESSO_ERROR_MISSING : GESSO_ERROR_CORRUPT,
                   "the text encoder in '%s' has %d layers, but %d are needed%s",
                   gesso_weights_path (weights), stored, needed,
                   spare_block ? " (an SD2 checkpoint uses all blocks but the last)" : "");
      return FALSE;
    }
  if (c->n_heads == 0)
    {
      if (c->hidden_size % 64 != 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "cannot tell the number of attention heads of the %d-wide text encoder "
                       "in '%s'; give num_attention_heads in a text_encoder/config.json",
                       c->hidden_size, gesso_weights_path (weights));
          return FALSE;
        }
      c->n_heads = c->hidden_size / 64;
    }
  if (c->n_heads < 1 || c->hidden_size % c->n_heads != 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "text encoder: hidden size %d is not a multiple of %d attention heads",
                   c->hidden_size, c->n_heads);
      return FALSE;
    }
  if (c->layer_norm_eps == 0)
    c->layer_norm_eps = 1e-5;
  if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "text encoder: layer norm epsilon %g is outside (0, 1)", c->layer_norm_eps);
      return FALSE;
    }
  if (c->activation == GESSO_TEXT_ACT_AUTO)
    c->activation = openclip ? GESSO_TEXT_ACT_GELU : GESSO_TEXT_ACT_QUICK_GELU;
  return TRUE;
}

/* --- Weights ----------------------------------------------------------------------------- */

static const float *
get_1d (GessoWeights *weights, GessoComponent component, const char *name, int64_t n,
        GError **error)
{
  return gesso_weights_get (weights, component, name, 1, &n, error);
}

static const float *
get_2d (GessoWeights *weights, GessoComponent component, const char *name, int64_t rows,
        int64_t cols, GError **error)
{
  const int64_t shape[2] = { rows, cols };

  return gesso_weights_get (weights, component, name, 2, shape, error);
}

/* A linear layer's weight [OUT, IN] and bias [OUT] under PREFIX ("...mlp.fc1"). */
static gboolean
get_linear (GessoWeights *weights, GessoComponent component, const char *prefix, int64_t out,
            int64_t in, GessoWeight *w, const float **b, GError **error)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);
  const int64_t shape[2] = { out, in };

  *b = gesso_weights_get_stored (weights, component, wn, 2, shape, w, error)
         ? get_1d (weights, component, bn, out, error) : NULL;
  return *b != NULL;
}

static gboolean
get_norm (GessoWeights *weights, GessoComponent component, const char *prefix, int64_t n,
          const float **w, const float **b, GError **error)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);

  *w = get_1d (weights, component, wn, n, error);
  *b = *w ? get_1d (weights, component, bn, n, error) : NULL;
  return *b != NULL;
}

static gboolean
get_layer (GessoWeights *weights, GessoComponent component, int index, const GessoTextEncoderConfig *c,
           Layer *l, GError **error)
{
  g_autofree char *p = g_strdup_printf ("text_model.encoder.layers.%d", index);
  g_autofree char *ln1 = g_strconcat (p, ".layer_norm1", NULL);
  g_autofree char *ln2 = g_strconcat (p, ".layer_norm2", NULL);
  g_autofree char *q = g_strconcat (p, ".self_attn.q_proj", NULL);
  g_autofree char *k = g_strconcat (p, ".self_attn.k_proj", NULL);
  g_autofree char *v = g_strconcat (p, ".self_attn.v_proj", NULL);
  g_autofree char *o = g_strconcat (p, ".self_attn.out_proj", NULL);
  g_autofree char *fc1 = g_strconcat (p, ".mlp.fc1", NULL);
  g_autofree char *fc2 = g_strconcat (p, ".mlp.fc2", NULL);
  int64_t h = c->hidden_size, f = c->intermediate_size;

  return get_norm (weights, component, ln1, h, &l->ln1_w, &l->ln1_b, error)
         && get_linear (weights, component, q, h, h, &l->q_w, &l->q_b, error)
         && get_linear (weights, component, k, h, h, &l->k_w, &l->k_b, error)
         && get_linear (weights, component, v, h, h, &l->v_w, &l->v_b, error)
         && get_linear (weights, component, o, h, h, &l->o_w, &l->o_b, error)
         && get_norm (weights, component, ln2, h, &l->ln2_w, &l->ln2_b, error)
         && get_linear (weights, component, fc1, f, h, &l->fc1_w, &l->fc1_b, error)
         && get_linear (weights, component, fc2, h, f, &l->fc2_w, &l->fc2_b, error);
}

/* --- Scratch plan ------------------------------------------------------------------------ */

/* Per encode: x (the residual stream), n (normed input / sub-layer output), q, k, v and the
 * attention output, each [T, C], the MLP activation [T, F], and the attention kernel's own
 * scratch. Everything is taken from the arena in this order on every call. */
static size_t
scratch_bytes (const GessoTextEncoderConfig *c, const GessoAttentionShape *attention)
{
  size_t tc = (size_t) c->max_positions * (size_t) c->hidden_size * sizeof (float);
  size_t tf = (size_t) c->max_positions * (size_t) c->intermediate_size * sizeof (float);

  return 6 * gesso_arena_block_size (tc) + gesso_arena_block_size (tf)
         + gesso_arena_block_size (gesso_attention_scratch_bytes (attention));
}

/* SDXL's pooled output goes through text_projection: transformers stores it as a Linear
 * weight [P, H], OpenCLIP as the matrix [H, P] that multiplies from the right, which is
 * transposed here once so that both run as one linear layer. */
static gboolean
get_projection (GessoTextEncoder *enc, GError **error)
{
  const int64_t h = enc->config.hidden_size;
  int64_t shape[8];
  int ndim;

  if (gesso_weights_shape (enc->weights, enc->component, "text_projection.weight", &ndim, shape)
      && ndim == 2)
    {
      enc->projection_dim = (int) shape[0];
      enc->projection = get_2d (enc->weights, enc->component, "text_projection.weight",
                                shape[0], h, error);
    }
  else if (gesso_weights_shape (enc->weights, enc->component, "text_projection", &ndim, shape)
           && ndim == 2)
    {
      const float *stored = get_2d (enc->weights, enc->component, "text_projection", h,
                                    shape[1], error);
      const int64_t p = shape[1];

      if (stored == NULL)
        return FALSE;
      enc->projection_dim = (int) p;
      enc->projection_owned = g_new (float, (size_t) (p * h));
      for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < p; j++)
          enc->projection_owned[j * h + i] = stored[i * p + j];
      enc->projection = enc->projection_owned;
    }
  else
    return TRUE;
  if (enc->projection == NULL)
    return FALSE;
  enc->last_state = g_new (float, (size_t) (enc->config.max_positions * h));
  return TRUE;
}

GessoTextEncoder *
gesso_text_encoder_new (GessoWeights *weights, const GessoTextEncoderConfig *config,
                        JsonObject *config_json, GError **error)
{
  return gesso_text_encoder_new_for (weights, GESSO_COMPONENT_TEXT_ENCODER, config,
                                     config_json, error);
}

GessoTextEncoder *
gesso_text_encoder_new_for (GessoWeights *weights, GessoComponent component,
                            const GessoTextEncoderConfig *config, JsonObject *config_json,
                            GError **error)
{
  GessoTextEncoder *enc;
  const GessoTextEncoderConfig *c;

  g_return_val_if_fail (weights != NULL, NULL);
  g_return_val_if_fail (component == GESSO_COMPONENT_TEXT_ENCODER
                        || component == GESSO_COMPONENT_TEXT_ENCODER_2, NULL);
  enc = g_new0 (GessoTextEncoder, 1);
  enc->weights = weights;
  enc->component = component;
  if (!resolve_config (weights, component, config, config_json, &enc->config, error))
    goto err_free_encoder;
  c = &enc->config;

  /* The token table is gathered row by row per prompt (see weights.h); gathering no rows
   * checks its shape and dtype now. */
  if (!gesso_weights_gather_rows (weights, component, TOKEN_EMBEDDING,
                                  (const int64_t[2]) { c->vocab_size, c->hidden_size }, NULL, 0,
                                  NULL, error))
    goto err_free_encoder;
  enc->position_embedding = get_2d (weights, component,
                                    "text_model.embeddings.position_embedding.weight",
                                    c->max_positions, c->hidden_size, error);
  if (enc->position_embedding == NULL
      || !get_norm (weights, component, "text_model.final_layer_norm", c->hidden_size,
                    &enc->final_w, &enc->final_b, error))
    goto err_free_encoder;
  enc->layers = g_new0 (Layer, c->n_layers);
  for (int i = 0; i < c->n_layers; i++)
    if (!get_layer (weights, component, i, c, &enc->layers[i], error))
      goto err_free_layers;
  if (!get_projection (enc, error))
    goto err_free_layers;

  enc->attention = (GessoAttentionShape) {
    .batch = 1,
    .heads = c->n_heads,
    .head_dim = c->hidden_size / c->n_heads,
    .q_len = c->max_positions,
    .kv_len = c->max_positions,
    .q_stride = c->hidden_size,
    .k_stride = c->hidden_size,
    .v_stride = c->hidden_size,
    .scale = (float) (1.0 / sqrt ((double) (c->hidden_size / c->n_heads))),
    .causal = TRUE,
  };
  enc->arena = gesso_arena_new (scratch_bytes (c, &enc->attention), error);
  if (enc->arena == NULL)
    goto err_free_layers;
  return enc;

err_free_layers:
  g_free (enc->last_state);
  g_free (enc->projection_owned);
  g_free (enc->layers);
err_free_encoder:
  g_free (enc);
  return NULL;
}

void
gesso_text_encoder_free (GessoTextEncoder *encoder)
{
  if (encoder == NULL)
    return;
  gesso_arena_free (encoder->arena);
  g_free (encoder->last_state);
  g_free (encoder->projection_owned);
  if (encoder->extra_rows != NULL)
    g_array_unref (encoder->extra_rows);
  g_free (encoder->layers);
  g_free (encoder);
}

const GessoTextEncoderConfig *
gesso_text_encoder_get_config (const GessoTextEncoder *encoder)
{
  return &encoder->config;
}

/* --- Forward ----------------------------------------------------------------------------- */

static void
activate (GessoTextActivation act, float *x, size_t n)
{
  switch (act)
    {
    case GESSO_TEXT_ACT_GELU:
      gesso_gelu_erf (x, n);
      break;
    case GESSO_TEXT_ACT_GELU_TANH:
      gesso_gelu_tanh (x, n);
      break;
    case GESSO_TEXT_ACT_QUICK_GELU:
    case GESSO_TEXT_ACT_AUTO:
    default:
      gesso_quick_gelu (x, n);
      break;
    }
}

static int64_t
n_extra_rows (const GessoTextEncoder *enc)
{
  return enc->extra_rows != NULL ? enc->extra_rows->len / enc->config.hidden_size : 0;
}

int64_t
gesso_text_encoder_add_rows (GessoTextEncoder *encoder, const float *rows, int64_t n_rows)
{
  const int64_t first = encoder->config.vocab_size + n_extra_rows (encoder);

  g_return_val_if_fail (rows != NULL && n_rows > 0, -1);
  if (encoder->extra_rows == NULL)
    encoder->extra_rows = g_array_new (FALSE, FALSE, sizeof (float));
  g_array_append_vals (encoder->extra_rows, rows, (guint) (n_rows * encoder->config.hidden_size));
  return first;
}

/* X [T, hidden] = the token table's rows of IDS, ids past the vocabulary from the added rows
 * (the table's row 0 is gathered in their place first, then overwritten). */
static gboolean
embed_tokens (GessoTextEncoder *enc, const int64_t *ids, float *x, GError **error)
{
  const GessoTextEncoderConfig *c = &enc->config;
  const int64_t token_shape[2] = { c->vocab_size, c->hidden_size };
  g_autofree int64_t *table_ids = g_memdup2 (ids, (size_t) c->max_positions * sizeof *ids);

  for (int t = 0; t < c->max_positions; t++)
    if (ids[t] >= c->vocab_size)
      table_ids[t] = 0;
  if (!gesso_weights_gather_rows (enc->weights, enc->component, TOKEN_EMBEDDING, token_shape,
                                  table_ids,
                                  (size_t) c->max_positions, x, error))
    return FALSE;
  for (int t = 0; t < c->max_positions; t++)
    if (ids[t] >= c->vocab_size)
      memcpy (x + (size_t) t * c->hidden_size,
              &g_array_index (enc->extra_rows, float,
                              (size_t) (ids[t] - c->vocab_size) * c->hidden_size),
              (size_t) c->hidden_size * sizeof (float));
  return TRUE;
}

static gboolean
check_inputs (const GessoTextEncoder *enc, const int64_t *ids, int clip_skip, GError **error)
{
  const GessoTextEncoderConfig *c = &enc->config;

  if (clip_skip < 0 || clip_skip >= c->n_layers)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "clip skip %d is out of range: this text encoder has %d layers, so it "
                   "can skip 0 to %d of them", clip_skip, c->n_layers, c->n_layers - 1);
      return FALSE;
    }
  for (int t = 0; t < c->max_positions; t++)
    if (ids[t] < 0 || ids[t] >= c->vocab_size + n_extra_rows (enc))
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     "token id %" G_GINT64_FORMAT " at position %d is outside the text "
                     "encoder's vocabulary of %d tokens; was the prompt tokenized for "
                     "another model?", ids[t], t, c->vocab_size);
        return FALSE;
      }
  return TRUE;
}

/* Runs the embeddings and the first n_layers - CLIP_SKIP layers; leaves the hidden state in
 * OUT, through final_layer_norm when FINAL_NORM. */
static gboolean
run (GessoTextEncoder *enc, const int64_t *ids, int clip_skip, gboolean final_norm, float *out,
     GError **error)
{
  const GessoTextEncoderConfig *c = &enc->config;
  const int64_t t = c->max_positions, h = c->hidden_size, f = c->intermediate_size;
  const float eps = (float) c->layer_norm_eps;
  const size_t tc = (size_t) (t * h);
  float *x, *n, *q, *k, *v, *a, *m;

  if (!check_inputs (enc, ids, clip_skip, error))
    return FALSE;
  gesso_arena_reset (enc->arena, 0);
  x = gesso_arena_alloc_floats (enc->arena, tc);
  n = gesso_arena_alloc_floats (enc->arena, tc);
  q = gesso_arena_alloc_floats (enc->arena, tc);
  k = gesso_arena_alloc_floats (enc->arena, tc);
  v = gesso_arena_alloc_floats (enc->arena, tc);
  a = gesso_arena_alloc_floats (enc->arena, tc);
  m = gesso_arena_alloc_floats (enc->arena, (size_t) (t * f));
  g_assert (m != NULL);         /* sized in gesso_text_encoder_new: a planning bug otherwise */

  if (!embed_tokens (enc, ids, x, error))
    return FALSE;
  gesso_add (x, enc->position_embedding, tc);

  for (int l = 0; l < c->n_layers - clip_skip; l++)
    {
      const Layer *layer = &enc->layers[l];

      gesso_layer_norm (x, t, h, eps, layer->ln1_w, layer->ln1_b, n);
      gesso_linear_weight (n, t, h, &layer->q_w, layer->q_b, h, q);
      gesso_linear_weight (n, t, h, &layer->k_w, layer->k_b, h, k);
      gesso_linear_weight (n, t, h, &layer->v_w, layer->v_b, h, v);
      if (!gesso_attention (&enc->attention, q, k, v, a, enc->arena, error))
        return FALSE;
      gesso_linear_weight (a, t, h, &layer->o_w, layer->o_b, h, n);
      gesso_add (x, n, tc);

      gesso_layer_norm (x, t, h, eps, layer->ln2_w, layer->ln2_b, n);
      gesso_linear_weight (n, t, h, &layer->fc1_w, layer->fc1_b, f, m);
      activate (c->activation, m, (size_t) (t * f));
      gesso_linear_weight (m, t, f, &layer->fc2_w, layer->fc2_b, h, n);
      gesso_add (x, n, tc);
    }

  if (final_norm)
    gesso_layer_norm (x, t, h, eps, enc->final_w, enc->final_b, out);
  else
    memcpy (out, x, tc * sizeof (float));
  return TRUE;
}

gboolean
gesso_text_encoder_encode (GessoTextEncoder *encoder, const int64_t *ids, int clip_skip,
                           float *out, GError **error)
{
  g_return_val_if_fail (encoder != NULL && ids != NULL && out != NULL, FALSE);
  return run (encoder, ids, clip_skip, TRUE, out, error);
}

gboolean
gesso_text_encoder_hidden_state (GessoTextEncoder *encoder, const int64_t *ids, int clip_skip,
                                 float *out, GError **error)
{
  g_return_val_if_fail (encoder != NULL && ids != NULL && out != NULL, FALSE);
  return run (encoder, ids, clip_skip, FALSE, out, error);
}

int
gesso_text_encoder_pooled_dim (const GessoTextEncoder *encoder)
{
  g_return_val_if_fail (encoder != NULL, 0);
  return encoder->projection_dim;
}

gboolean
gesso_text_encoder_pooled (GessoTextEncoder *encoder, const int64_t *ids, float *pooled,
                           GError **error)
{
  const GessoTextEncoderConfig *c;
  int eos = 0;

  g_return_val_if_fail (encoder != NULL && ids != NULL && pooled != NULL, FALSE);
  c = &encoder->config;
  if (encoder->projection == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "the %s in '%s' has no text_projection, so it gives no pooled embedding",
                   gesso_component_name (encoder->component), gesso_weights_path (encoder->weights));
      return FALSE;
    }
  if (!run (encoder, ids, 0, TRUE, encoder->last_state, error))
    return FALSE;
  /* end of text has the largest id of the vocabulary: transformers' argmax finds its first
   * occurrence, which is also the first eos_token_id it looks for in newer configs */
  for (int t = 1; t < c->max_positions; t++)
    if (ids[t] > ids[eos])
      eos = t;
  gesso_linear (encoder->last_state + (size_t) eos * (size_t) c->hidden_size, 1,
                c->hidden_size, encoder->projection, NULL, encoder->projection_dim, pooled);
  return TRUE;
}
