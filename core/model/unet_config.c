/* The UNet's hyperparameters: from a diffusers config.json, or from the weights themselves.
 *
 * A diffusers folder says everything in unet/config.json; a single-file checkpoint says
 * nothing, but the shapes of its tensors fix almost all of it (levels, channels, which levels
 * attend, linear or convolutional projections, context width). What they cannot fix are the
 * attention heads (a [C, C] projection splits into any number of heads) and the scalar
 * settings of the norms and the timestep embedding; for those we take Stable Diffusion's
 * values. When both a config and weights are at hand the two are compared, so a config.json
 * that belongs to another model is caught at load and not as noise in the output.
 */
#include "model/unet.h"

#include <math.h>
#include <string.h>

#include "io/config.h"

/* Upper bounds for untrusted configs: generous for every real model, small enough that
 * products of them cannot overflow the size arithmetic of the forward. */
#define MAX_CHANNELS 8192
#define MAX_IO_CHANNELS 64
#define MAX_CONTEXT_DIM 16384
#define MAX_KERNEL 7

/* SD2-style models use 64-wide heads, SD1-style ones 8 heads per level (CompVis configs:
 * num_head_channels 64 / num_heads 8). */
#define DEFAULT_HEAD_DIM_LINEAR 64
#define DEFAULT_HEADS_CONV 8
#define SDXL_ADDITION_TIME_EMBED_DIM 256

static void
config_defaults (GessoUnetConfig *config)
{
  static const int sd_channels[4] = { 320, 640, 1280, 1280 };

  memset (config, 0, sizeof *config);
  config->in_channels = 4;
  config->out_channels = 4;
  config->n_levels = 4;
  for (int l = 0; l < 4; l++)
    {
      config->block_out_channels[l] = sd_channels[l];
      config->down_cross_attention[l] = l < 3;
      config->up_cross_attention[l] = l < 3;
      config->heads[l] = DEFAULT_HEADS_CONV;
      config->transformer_depth[l] = 1;
      config->up_transformer_depth[l] = 1;
    }
  config->layers_per_block = 2;
  config->mid_heads = DEFAULT_HEADS_CONV;
  config->mid_transformer_depth = 1;
  config->use_linear_projection = FALSE;
  config->cross_attention_dim = 1280;
  config->norm_num_groups = 32;
  config->norm_eps = 1e-5f;
  config->flip_sin_to_cos = TRUE;
  config->freq_shift = 0.0f;
  config->time_proj_dim = 320;
  config->time_embed_dim = 1280;
  config->conv_in_kernel = 3;
  config->conv_out_kernel = 3;
  config->heads_known = TRUE;
}

/* --- config.json ------------------------------------------------------------------------ */

static gboolean
is_unset (JsonObject *json, const char *key)
{
  JsonNode *node = json_object_get_member (json, key);

  return node == NULL || JSON_NODE_HOLDS_NULL (node);
}

/* The optional getters: an absent or null key keeps *OUT (the diffusers default). */
static gboolean
opt_int (JsonObject *json, const char *name, const char *key, gint64 min, gint64 max,
         int *out, GError **error)
{
  gint64 value;

  if (is_unset (json, key))
    return TRUE;
  if (!gesso_config_get_int (json, name, key, min, max, &value, error))
    return FALSE;
  *out = (int) value;
  return TRUE;
}

static gboolean
opt_double (JsonObject *json, const char *name, const char *key, double min, double max,
            double *out, GError **error)
{
  if (is_unset (json, key))
    return TRUE;
  return gesso_config_get_double (json, name, key, min, max, out, error);
}

static gboolean
opt_bool (JsonObject *json, const char *name, const char *key, gboolean *out, GError **error)
{
  if (is_unset (json, key))
    return TRUE;
  return gesso_config_get_bool (json, name, key, out, error);
}

static gboolean
unsupported (GError **error, const char *name, const char *key, const char *why)
{
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               "%s: '%s' %s; Gesso runs Stable Diffusion 1.x, 2.x and XL UNets only", name, key, why);
  return FALSE;
}

/* Settings of UNet2DConditionModel that SD1/SD2 leave at their defaults and Gesso does not
 * implement: refuse a model that changes them rather than compute something else. */
static gboolean
check_unused_features (JsonObject *json, const char *name, GError **error)
{
  static const char *const must_be_unset[] = {
    "class_embed_type", "encoder_hid_dim", "encoder_hid_dim_type",
    "time_cond_proj_dim", "num_class_embeds", "time_embedding_act_fn", "timestep_post_act",
    "cross_attention_norm", "reverse_transformer_layers_per_block",
  };
  static const char *const must_be_false[] = {
    "dual_cross_attention", "center_input_sample", "resnet_skip_time_act",
    "class_embeddings_concat",
  };
  static const struct { const char *key, *value; } strings[] = {
    { "act_fn", "silu" },
    { "resnet_time_scale_shift", "default" },
    { "time_embedding_type", "positional" },
    { "attention_type", "default" },
    { "mid_block_type", "UNetMidBlock2DCrossAttn" },
    { "addition_embed_type", "text_time" },
  };
  static const struct { const char *key; double value; } numbers[] = {
    { "resnet_out_scale_factor", 1.0 },
    { "mid_block_scale_factor", 1.0 },
    { "downsample_padding", 1.0 },
  };
  JsonNode *node;

  for (size_t i = 0; i < G_N_ELEMENTS (must_be_unset); i++)
    if (!is_unset (json, must_be_unset[i]))
      return unsupported (error, name, must_be_unset[i], "is set");
  for (size_t i = 0; i < G_N_ELEMENTS (must_be_false); i++)
    {
      gboolean value = FALSE;
      if (!opt_bool (json, name, must_be_false[i], &value, error))
        return FALSE;
      if (value)
        return unsupported (error, name, must_be_false[i], "is true");
    }
  for (size_t i = 0; i < G_N_ELEMENTS (strings); i++)
    {
      const char *value;
      if (is_unset (json, strings[i].key))
        continue;
      if (!gesso_config_get_string (json, name, strings[i].key, &value, error))
        return FALSE;
      if (strcmp (value, strings[i].value) != 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: '%s' is \"%s\"; Gesso supports only \"%s\"", name, strings[i].key,
                       value, strings[i].value);
          return FALSE;
        }
    }
  for (size_t i = 0; i < G_N_ELEMENTS (numbers); i++)
    {
      double value = numbers[i].value;
      if (!opt_double (json, name, numbers[i].key, -1e9, 1e9, &value, error))
        return FALSE;
      if (value != numbers[i].value)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: '%s' is %g; Gesso supports only %g", name, numbers[i].key, value,
                       numbers[i].value);
          return FALSE;
        }
    }
  /* only_cross_attention may be a bool or a per-level list of bools */
  node = json_object_get_member (json, "only_cross_attention");
  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *e = json_array_get_element (array, i);
          if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_BOOLEAN)
            return unsupported (error, name, "only_cross_attention", "is not a list of booleans");
          if (json_node_get_boolean (e))
            return unsupported (error, name, "only_cross_attention", "is true for a level");
        }
    }
  else
    {
      gboolean value = FALSE;
      if (!opt_bool (json, name, "only_cross_attention", &value, error))
        return FALSE;
      if (value)
        return unsupported (error, name, "only_cross_attention", "is true");
    }
  if (!is_unset (json, "_class_name"))
    {
      const char *value;
      if (!gesso_config_get_string (json, name, "_class_name", &value, error))
        return FALSE;
      if (strcmp (value, "UNet2DConditionModel") != 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: the model is a %s; Gesso runs UNet2DConditionModel UNets", name,
                       value);
          return FALSE;
        }
    }
  return TRUE;
}

/* A per-level integer setting that diffusers accepts as one int or as a list, one per level
 * (attention_head_dim, num_attention_heads, transformer_layers_per_block). */
static gboolean
per_level_int (JsonObject *json, const char *name, const char *key, int n_levels, gint64 min,
               gint64 max, int *out, GError **error)
{
  JsonNode *node = json_object_get_member (json, key);

  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    {
      g_autofree gint64 *values = NULL;
      guint n;

      if (!gesso_config_get_int_array (json, name, key, min, max, &values, &n, error))
        return FALSE;
      if ((int) n != n_levels)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "%s: '%s' has %u entries but the UNet has %d levels "
                       "(block_out_channels)", name, key, n, n_levels);
          return FALSE;
        }
      for (int l = 0; l < n_levels; l++)
        out[l] = (int) values[l];
      return TRUE;
    }
  if (!is_unset (json, key))
    {
      gint64 value;
      if (!gesso_config_get_int (json, name, key, min, max, &value, error))
        return FALSE;
      for (int l = 0; l < n_levels; l++)
        out[l] = (int) value;
    }
  return TRUE;
}

/* down_block_types / up_block_types: a list of N_LEVELS names, each CROSS_NAME or
 * PLAIN_NAME. *CROSS gets TRUE per entry that is CROSS_NAME, in list order. */
static gboolean
block_types (JsonObject *json, const char *name, const char *key, int n_levels,
             const char *cross_name, const char *plain_name, gboolean *cross, GError **error)
{
  JsonNode *node = json_object_get_member (json, key);
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      /* diffusers' defaults are SD1's four levels; they only fit a four-level UNet */
      if (n_levels != 4)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                       "%s: '%s' is missing and the default fits only 4 levels, not %d", name,
                       key, n_levels);
          return FALSE;
        }
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "%s: '%s' must be a list of names",
                   name, key);
      return FALSE;
    }
  array = json_node_get_array (node);
  if ((int) json_array_get_length (array) != n_levels)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s: '%s' has %u entries but block_out_channels has %d", name, key,
                   json_array_get_length (array), n_levels);
      return FALSE;
    }
  for (int i = 0; i < n_levels; i++)
    {
      JsonNode *e = json_array_get_element (array, (guint) i);
      const char *type;

      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "%s: '%s'[%d] must be a block name", name, key, i);
          return FALSE;
        }
      type = json_node_get_string (e);
      if (strcmp (type, cross_name) == 0)
        cross[i] = TRUE;
      else if (strcmp (type, plain_name) == 0)
        cross[i] = FALSE;
      else
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: '%s'[%d] is \"%s\"; Gesso supports %s and %s", name, key, i, type,
                       cross_name, plain_name);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
gesso_unet_config_from_json (JsonObject *json, const char *name, GessoUnetConfig *config,
                             GError **error)
{
  GessoUnetConfig c;
  g_autofree gint64 *channels = NULL;
  gboolean up_cross[GESSO_UNET_MAX_LEVELS] = { 0 };
  double norm_eps = 1e-5, freq_shift = 0.0;
  int heads_field[GESSO_UNET_MAX_LEVELS];
  int time_embedding_dim = 0;
  gint64 addition_time = 0, addition_input = 0;
  guint n_channels = 0;

  g_return_val_if_fail (json != NULL && config != NULL, FALSE);
  if (name == NULL)
    name = "unet config";
  config_defaults (&c);
  if (!check_unused_features (json, name, error))
    return FALSE;

  if (!is_unset (json, "block_out_channels"))
    {
      if (!gesso_config_get_int_array (json, name, "block_out_channels", 1, MAX_CHANNELS,
                                       &channels, &n_channels, error))
        return FALSE;
      if (n_channels < 1 || n_channels > GESSO_UNET_MAX_LEVELS)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: 'block_out_channels' has %u levels; Gesso supports 1 to %d", name,
                       n_channels, GESSO_UNET_MAX_LEVELS);
          return FALSE;
        }
      c.n_levels = (int) n_channels;
      for (int l = 0; l < c.n_levels; l++)
        c.block_out_channels[l] = (int) channels[l];
    }
  c.time_proj_dim = c.block_out_channels[0];
  c.time_embed_dim = 4 * c.block_out_channels[0];

  if (!opt_int (json, name, "in_channels", 1, MAX_IO_CHANNELS, &c.in_channels, error)
      || !opt_int (json, name, "out_channels", 1, MAX_IO_CHANNELS, &c.out_channels, error)
      || !opt_int (json, name, "layers_per_block", 1, GESSO_UNET_MAX_LAYERS_PER_BLOCK,
                   &c.layers_per_block, error)
      || !opt_int (json, name, "cross_attention_dim", 1, MAX_CONTEXT_DIM,
                   &c.cross_attention_dim, error)
      || !opt_int (json, name, "norm_num_groups", 1, MAX_CHANNELS, &c.norm_num_groups, error)
      || !opt_double (json, name, "norm_eps", 0.0, 1.0, &norm_eps, error)
      || !opt_bool (json, name, "flip_sin_to_cos", &c.flip_sin_to_cos, error)
      || !opt_double (json, name, "freq_shift", -1e6, 1e6, &freq_shift, error)
      || !opt_bool (json, name, "use_linear_projection", &c.use_linear_projection, error)
      || !opt_bool (json, name, "upcast_attention", &c.upcast_attention, error)
      || !opt_int (json, name, "time_embedding_dim", 1, 4 * MAX_CHANNELS, &time_embedding_dim,
                   error)
      || !opt_int (json, name, "conv_in_kernel", 1, MAX_KERNEL, &c.conv_in_kernel, error)
      || !opt_int (json, name, "conv_out_kernel", 1, MAX_KERNEL, &c.conv_out_kernel, error))
    return FALSE;
  if (!is_unset (json, "addition_embed_type")
      && (!gesso_config_get_int (json, name, "addition_time_embed_dim", 2, MAX_CHANNELS,
                                 &addition_time, error)
          || !gesso_config_get_int (json, name, "projection_class_embeddings_input_dim", 1,
                                    4 * MAX_CHANNELS, &addition_input, error)))
    return FALSE;
  c.addition_time_embed_dim = (int) addition_time;
  c.addition_input_dim = (int) addition_input;
  c.norm_eps = (float) norm_eps;
  c.freq_shift = (float) freq_shift;
  if (time_embedding_dim > 0)
    c.time_embed_dim = time_embedding_dim;

  /* diffusers' long-standing naming slip: in SD configs "attention_head_dim" holds the number
   * of heads (8 for SD1, (5, 10, 20, 20) for SD2); "num_attention_heads", when set, wins */
  for (int l = 0; l < c.n_levels; l++)
    heads_field[l] = DEFAULT_HEADS_CONV;
  if (!per_level_int (json, name, "attention_head_dim", c.n_levels, 1, MAX_CHANNELS,
                      heads_field, error)
      || !per_level_int (json, name, "num_attention_heads", c.n_levels, 1, MAX_CHANNELS,
                         heads_field, error))
    return FALSE;
  for (int l = 0; l < c.n_levels; l++)
    c.heads[l] = heads_field[l];
  c.mid_heads = c.heads[c.n_levels - 1];

  for (int l = 0; l < c.n_levels; l++)
    c.transformer_depth[l] = 1;
  if (!per_level_int (json, name, "transformer_layers_per_block", c.n_levels, 1,
                      GESSO_UNET_MAX_DEPTH, c.transformer_depth, error))
    return FALSE;
  for (int l = 0; l < c.n_levels; l++)
    c.up_transformer_depth[l] = c.transformer_depth[l];
  c.mid_transformer_depth = c.transformer_depth[c.n_levels - 1];

  if (!block_types (json, name, "down_block_types", c.n_levels, "CrossAttnDownBlock2D",
                    "DownBlock2D", c.down_cross_attention, error)
      || !block_types (json, name, "up_block_types", c.n_levels, "CrossAttnUpBlock2D",
                       "UpBlock2D", up_cross, error))
    return FALSE;
  if (!is_unset (json, "up_block_types"))
    for (int i = 0; i < c.n_levels; i++)       /* listed deepest first */
      c.up_cross_attention[c.n_levels - 1 - i] = up_cross[i];

  c.heads_known = TRUE;
  if (!gesso_unet_config_validate (&c, error))
    {
      g_prefix_error (error, "%s: ", name);
      return FALSE;
    }
  *config = c;
  return TRUE;
}

/* --- Inference from weight shapes -------------------------------------------------------- */

static gboolean
has (const GessoWeights *weights, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
has (const GessoWeights *weights, const char *fmt, ...)
{
  g_autofree char *key = NULL;
  va_list args;

  va_start (args, fmt);
  key = g_strdup_vprintf (fmt, args);
  va_end (args);
  return gesso_weights_has (weights, GESSO_COMPONENT_UNET, key);
}

/* The shape of a weight that must be there, with at least MIN_NDIM dims. */
static gboolean
shape_of (const GessoWeights *weights, int min_ndim, int *ndim, int64_t shape[8],
          GError **error, const char *fmt, ...) G_GNUC_PRINTF (6, 7);

static gboolean
shape_of (const GessoWeights *weights, int min_ndim, int *ndim, int64_t shape[8],
          GError **error, const char *fmt, ...)
{
  g_autofree char *key = NULL;
  va_list args;
  int n = 0;

  va_start (args, fmt);
  key = g_strdup_vprintf (fmt, args);
  va_end (args);
  if (!gesso_weights_shape (weights, GESSO_COMPONENT_UNET, key, &n, shape))
    {
      gesso_weights_set_missing_error (weights, GESSO_COMPONENT_UNET, key, error);
      return FALSE;
    }
  if (n < min_ndim)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "UNet weight '%s' has %d dimensions, expected at least %d", key, n,
                   min_ndim);
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    if (shape[i] < 1 || shape[i] > 4 * MAX_CHANNELS * MAX_KERNEL * MAX_KERNEL)
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                     "UNet weight '%s' has a dimension of %" G_GINT64_FORMAT
                     ", outside what Gesso handles", key, shape[i]);
        return FALSE;
      }
  if (ndim != NULL)
    *ndim = n;
  return TRUE;
}

/* How many UNet blocks STEM.0, STEM.1, ... there are (see gesso_weights_count_blocks: a hole
 * in a block is MISSING by name). */
static gboolean
count_blocks (const GessoWeights *weights, const char *stem, int limit, const char *key,
              int *count, GError **error)
{
  return gesso_weights_count_blocks (weights, GESSO_COMPONENT_UNET, stem, limit, key, count,
                                     error);
}

/* The transformer blocks under PREFIX ("down_blocks.0.attentions.0"), 0 if it is absent;
 * sets *LINEAR and *CONTEXT_DIM from the first one found. */
static gboolean
infer_transformer (const GessoWeights *weights, const char *prefix, int *depth,
                   gboolean *found_any, gboolean *linear, int *context_dim, GError **error)
{
  g_autofree char *blocks = g_strdup_printf ("%s.transformer_blocks", prefix);
  int64_t shape[8];
  int ndim, d;
  gboolean present;

  *depth = 0;
  if (!gesso_weights_probe (weights, GESSO_COMPONENT_UNET, prefix, "proj_in.weight", &present,
                            error))
    return FALSE;
  if (!present)
    return TRUE;
  if (!count_blocks (weights, blocks, GESSO_UNET_MAX_DEPTH, "attn1.to_q.weight", &d, error))
    return FALSE;
  if (d == 0)
    {
      g_autofree char *first = g_strdup_printf ("%s.0.attn1.to_q.weight", blocks);
      gesso_weights_set_missing_error (weights, GESSO_COMPONENT_UNET, first, error);
      return FALSE;
    }
  if (d > GESSO_UNET_MAX_DEPTH)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "UNet attention '%s' has more than %d transformer blocks; Gesso supports 1 "
                   "to %d", prefix, GESSO_UNET_MAX_DEPTH, GESSO_UNET_MAX_DEPTH);
      return FALSE;
    }
  *depth = d;
  if (!*found_any)
    {
      if (!shape_of (weights, 2, &ndim, shape, error, "%s.proj_in.weight", prefix))
        return FALSE;
      /* SD2 checkpoints store proj_in as a Linear [C, C]; SD1 as a 1x1 conv [C, C, 1, 1] */
      *linear = ndim == 2;
      if (!shape_of (weights, 2, NULL, shape, error,
                     "%s.transformer_blocks.0.attn2.to_k.weight", prefix))
        return FALSE;
      *context_dim = (int) shape[1];
      *found_any = TRUE;
    }
  return TRUE;
}

static int
default_heads (gboolean linear, int channels)
{
  if (linear)
    return channels % DEFAULT_HEAD_DIM_LINEAR == 0 ? channels / DEFAULT_HEAD_DIM_LINEAR : 1;
  return channels % DEFAULT_HEADS_CONV == 0 ? DEFAULT_HEADS_CONV : 1;
}

/* SDXL's added embedding reads the pooled text embedding and six size ids of D sinusoids
 * each: the second text encoder's projection width tells D; without it, SDXL's 256. */
static int
infer_addition_time_dim (const GessoWeights *weights, int input_dim)
{
  static const struct { const char *name; int dim; } projections[] = {
    { "text_projection.weight", 0 },    /* transformers: [P, H] */
    { "text_projection", 1 },           /* OpenCLIP: [H, P] */
  };
  int64_t shape[8];
  int ndim;

  for (size_t i = 0; i < G_N_ELEMENTS (projections); i++)
    if (gesso_weights_shape (weights, GESSO_COMPONENT_TEXT_ENCODER_2, projections[i].name,
                             &ndim, shape)
        && ndim == 2 && shape[projections[i].dim] < input_dim
        && (input_dim - shape[projections[i].dim]) % (2 * GESSO_UNET_TIME_IDS) == 0)
      return (int) ((input_dim - shape[projections[i].dim]) / GESSO_UNET_TIME_IDS);
  return SDXL_ADDITION_TIME_EMBED_DIM;
}

gboolean
gesso_unet_config_infer (const GessoWeights *weights, GessoUnetConfig *config,
                         GError **error)
{
  GessoUnetConfig c;
  int64_t shape[8];
  gboolean any_attention = FALSE;
  int n, n_up, lpb;

  g_return_val_if_fail (weights != NULL && config != NULL, FALSE);
  config_defaults (&c);
  if (gesso_weights_count (weights, GESSO_COMPONENT_UNET) == 0)
    {
      gesso_weights_set_absent_error (weights, "UNet", error);
      return FALSE;
    }

  if (!shape_of (weights, 4, NULL, shape, error, "conv_in.weight"))
    return FALSE;
  c.in_channels = (int) shape[1];
  c.conv_in_kernel = (int) shape[2];
  if (!shape_of (weights, 4, NULL, shape, error, "conv_out.weight"))
    return FALSE;
  c.out_channels = (int) shape[0];
  c.conv_out_kernel = (int) shape[2];
  if (!shape_of (weights, 2, NULL, shape, error, "time_embedding.linear_1.weight"))
    return FALSE;
  c.time_embed_dim = (int) shape[0];
  c.time_proj_dim = (int) shape[1];
  if (has (weights, "add_embedding.linear_1.weight"))
    {
      if (!shape_of (weights, 2, NULL, shape, error, "add_embedding.linear_1.weight"))
        return FALSE;
      c.addition_input_dim = (int) shape[1];
      c.addition_time_embed_dim = infer_addition_time_dim (weights, c.addition_input_dim);
    }

  /* A whole block missing would hide a level or a resnet from one side only: the structure
   * is the most that either side shows, and the builder then names what the other lacks. */
  if (!count_blocks (weights, "down_blocks", GESSO_UNET_MAX_LEVELS, "resnets.0.conv1.weight",
                     &n, error)
      || !count_blocks (weights, "up_blocks", GESSO_UNET_MAX_LEVELS, "resnets.0.conv1.weight",
                        &n_up, error))
    return FALSE;
  n = MAX (n, n_up);
  if (n == 0)
    {
      gesso_weights_set_missing_error (weights, GESSO_COMPONENT_UNET,
                                       "down_blocks.0.resnets.0.conv1.weight", error);
      return FALSE;
    }
  if (n > GESSO_UNET_MAX_LEVELS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the UNet has more than %d down levels; Gesso supports 1 to %d",
                   GESSO_UNET_MAX_LEVELS, GESSO_UNET_MAX_LEVELS);
      return FALSE;
    }
  c.n_levels = n;
  /* down levels have layers_per_block resnets, up levels one more */
  lpb = 0;
  for (int l = 0; l < n; l++)
    {
      g_autofree char *down_stem = g_strdup_printf ("down_blocks.%d.resnets", l);
      g_autofree char *up_stem = g_strdup_printf ("up_blocks.%d.resnets", l);
      int n_down_resnets, n_up_resnets;

      if (!count_blocks (weights, down_stem, GESSO_UNET_MAX_LAYERS_PER_BLOCK, "conv1.weight",
                         &n_down_resnets, error)
          || !count_blocks (weights, up_stem, GESSO_UNET_MAX_LAYERS_PER_BLOCK + 1,
                            "conv1.weight", &n_up_resnets, error))
        return FALSE;
      lpb = MAX (lpb, MAX (n_down_resnets, n_up_resnets - 1));
    }
  if (lpb > GESSO_UNET_MAX_LAYERS_PER_BLOCK)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the UNet has more than %d resnets per level", GESSO_UNET_MAX_LAYERS_PER_BLOCK);
      return FALSE;
    }
  c.layers_per_block = lpb;

  for (int l = 0; l < n; l++)
    {
      g_autofree char *down = g_strdup_printf ("down_blocks.%d.attentions.0", l);
      g_autofree char *up = g_strdup_printf ("up_blocks.%d.attentions.0", n - 1 - l);

      if (!shape_of (weights, 4, NULL, shape, error, "down_blocks.%d.resnets.0.conv1.weight",
                     l))
        return FALSE;
      c.block_out_channels[l] = (int) shape[0];
      if (!infer_transformer (weights, down, &c.transformer_depth[l], &any_attention,
                              &c.use_linear_projection, &c.cross_attention_dim, error)
          || !infer_transformer (weights, up, &c.up_transformer_depth[l], &any_attention,
                                 &c.use_linear_projection, &c.cross_attention_dim, error))
        return FALSE;
      c.down_cross_attention[l] = c.transformer_depth[l] > 0;
      c.up_cross_attention[l] = c.up_transformer_depth[l] > 0;
      /* levels without attention keep a nominal depth so configs compare equal */
      if (!c.down_cross_attention[l])
        c.transformer_depth[l] = c.up_cross_attention[l] ? c.up_transformer_depth[l] : 1;
      if (!c.up_cross_attention[l])
        c.up_transformer_depth[l] = c.transformer_depth[l];
    }
  for (int l = n; l < GESSO_UNET_MAX_LEVELS; l++)
    {
      c.block_out_channels[l] = 0;
      c.down_cross_attention[l] = c.up_cross_attention[l] = FALSE;
      c.heads[l] = c.transformer_depth[l] = c.up_transformer_depth[l] = 0;
    }

  if (!has (weights, "mid_block.resnets.0.conv1.weight"))
    {
      gesso_weights_set_missing_error (weights, GESSO_COMPONENT_UNET,
                                       "mid_block.resnets.0.conv1.weight", error);
      return FALSE;
    }
  if (!infer_transformer (weights, "mid_block.attentions.0", &c.mid_transformer_depth,
                          &any_attention, &c.use_linear_projection, &c.cross_attention_dim,
                          error))
    return FALSE;
  if (c.mid_transformer_depth == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the UNet's middle block has no attention; Gesso runs the "
                   "UNetMidBlock2DCrossAttn of Stable Diffusion only");
      return FALSE;
    }

  for (int l = 0; l < n; l++)
    c.heads[l] = default_heads (c.use_linear_projection, c.block_out_channels[l]);
  c.mid_heads = c.heads[n - 1];
  c.heads_known = FALSE;

  if (!gesso_unet_config_validate (&c, error))
    {
      g_prefix_error (error, "UNet structure inferred from the weights: ");
      return FALSE;
    }
  *config = c;
  return TRUE;
}

/* --- Consistency ------------------------------------------------------------------------- */

static gboolean
invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError **error, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED, message);
  return FALSE;
}

static gboolean
check_attention (const char *where, int channels, int heads, int depth, GError **error)
{
  if (heads < 1 || channels % heads != 0)
    return invalid (error, "%s: %d channels cannot be split into %d attention heads", where,
                    channels, heads);
  if (depth < 1 || depth > GESSO_UNET_MAX_DEPTH)
    return invalid (error, "%s: transformer depth %d is outside 1..%d", where, depth,
                    GESSO_UNET_MAX_DEPTH);
  return TRUE;
}

gboolean
gesso_unet_config_validate (const GessoUnetConfig *c, GError **error)
{
  int n, g;

  g_return_val_if_fail (c != NULL, FALSE);
  n = c->n_levels;
  g = c->norm_num_groups;
  if (n < 1 || n > GESSO_UNET_MAX_LEVELS)
    return invalid (error, "%d levels; Gesso supports 1 to %d", n, GESSO_UNET_MAX_LEVELS);
  if (c->in_channels < 1 || c->in_channels > MAX_IO_CHANNELS || c->out_channels < 1
      || c->out_channels > MAX_IO_CHANNELS)
    return invalid (error, "%d input / %d output channels; Gesso supports 1 to %d",
                    c->in_channels, c->out_channels, MAX_IO_CHANNELS);
  if (c->layers_per_block < 1 || c->layers_per_block > GESSO_UNET_MAX_LAYERS_PER_BLOCK)
    return invalid (error, "%d layers per block; Gesso supports 1 to %d",
                    c->layers_per_block, GESSO_UNET_MAX_LAYERS_PER_BLOCK);
  if (g < 1)
    return invalid (error, "%d norm groups", g);
  if (!(c->norm_eps > 0.0f) || !isfinite (c->norm_eps))
    return invalid (error, "norm_eps %g must be a small positive number", c->norm_eps);
  if (c->cross_attention_dim < 1 || c->cross_attention_dim > MAX_CONTEXT_DIM)
    return invalid (error, "cross_attention_dim %d is outside 1..%d", c->cross_attention_dim,
                    MAX_CONTEXT_DIM);
  if (c->conv_in_kernel % 2 == 0 || c->conv_out_kernel % 2 == 0 || c->conv_in_kernel < 1
      || c->conv_out_kernel < 1 || c->conv_in_kernel > MAX_KERNEL
      || c->conv_out_kernel > MAX_KERNEL)
    return invalid (error, "conv_in/conv_out kernels %d/%d must be odd and at most %d",
                    c->conv_in_kernel, c->conv_out_kernel, MAX_KERNEL);
  if (c->time_proj_dim != c->block_out_channels[0] || c->time_proj_dim < 2)
    return invalid (error, "the timestep embedding takes %d sinusoids; UNet2DConditionModel "
                    "uses block_out_channels[0] = %d", c->time_proj_dim,
                    c->block_out_channels[0]);
  if ((float) (c->time_proj_dim / 2) == c->freq_shift || !isfinite (c->freq_shift))
    return invalid (error, "freq_shift %g would divide by zero in the timestep embedding",
                    c->freq_shift);
  if (c->time_embed_dim < 1 || c->time_embed_dim > 4 * MAX_CHANNELS)
    return invalid (error, "time embedding width %d is outside 1..%d", c->time_embed_dim,
                    4 * MAX_CHANNELS);
  if (c->addition_input_dim != 0
      && (c->addition_time_embed_dim < 2 || c->addition_time_embed_dim % 2 != 0
          || gesso_unet_config_pooled_dim (c) < 1))
    return invalid (error, "the added embedding reads %d values, which cannot hold %d size "
                    "ids of %d sinusoids and a pooled text embedding", c->addition_input_dim,
                    GESSO_UNET_TIME_IDS, c->addition_time_embed_dim);

  for (int l = 0; l < n; l++)
    {
      int ch = c->block_out_channels[l];
      int below = c->block_out_channels[l > 0 ? l - 1 : 0];
      int above = c->block_out_channels[l < n - 1 ? l + 1 : n - 1];
      char where[48];

      if (ch < 1 || ch > MAX_CHANNELS)
        return invalid (error, "level %d has %d channels; Gesso supports 1 to %d", l, ch,
                        MAX_CHANNELS);
      /* GroupNorm runs over the level's channels and over the up path's concatenations
       * (previous output + skip); each must split into the groups */
      if (ch % g != 0 || (ch + ch) % g != 0 || (ch + below) % g != 0
          || (above + ch) % g != 0)
        return invalid (error, "level %d: %d channels (and the skip concatenations with %d "
                        "and %d) do not divide into %d norm groups", l, ch, below, above, g);
      g_snprintf (where, sizeof where, "level %d", l);
      if ((c->down_cross_attention[l]
           && !check_attention (where, ch, c->heads[l], c->transformer_depth[l], error))
          || (c->up_cross_attention[l]
              && !check_attention (where, ch, c->heads[l], c->up_transformer_depth[l],
                                   error)))
        return FALSE;
    }
  return check_attention ("middle block", c->block_out_channels[n - 1], c->mid_heads,
                          c->mid_transformer_depth, error);
}

static void
append_ints (GString *s, const int *values, int n)
{
  g_string_append_c (s, '(');
  for (int i = 0; i < n; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "", values[i]);
  g_string_append_c (s, ')');
}

static char *
ints_string (const int *values, int n)
{
  GString *s = g_string_new (NULL);

  append_ints (s, values, n);
  return g_string_free (s, FALSE);
}

static char *
bools_string (const gboolean *values, int n)
{
  GString *s = g_string_new ("(");

  for (int i = 0; i < n; i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "", values[i] ? "yes" : "no");
  g_string_append_c (s, ')');
  return g_string_free (s, FALSE);
}

/* Starts the next item of a list of differences, which stays on one line. */
static GString *
next_item (GString *s)
{
  if (s->len > 0)
    g_string_append (s, "; ");
  return s;
}

static void
differ_int (GString *s, const char *what, int declared, int found)
{
  if (declared != found)
    g_string_append_printf (next_item (s), "%s: %d in the config, %d in the weights", what,
                            declared, found);
}

gboolean
gesso_unet_config_check (const GessoUnetConfig *config, const GessoUnetConfig *inferred,
                         const char *config_name, GError **error)
{
  g_autoptr (GString) s = NULL;
  int n;

  g_return_val_if_fail (config != NULL && inferred != NULL, FALSE);
  s = g_string_new (NULL);
  n = config->n_levels;
  differ_int (s, "input channels (conv_in)", config->in_channels, inferred->in_channels);
  differ_int (s, "output channels (conv_out)", config->out_channels, inferred->out_channels);
  differ_int (s, "conv_in kernel", config->conv_in_kernel, inferred->conv_in_kernel);
  differ_int (s, "conv_out kernel", config->conv_out_kernel, inferred->conv_out_kernel);
  differ_int (s, "time embedding width", config->time_embed_dim, inferred->time_embed_dim);
  differ_int (s, "timestep sinusoids", config->time_proj_dim, inferred->time_proj_dim);
  if (config->n_levels != inferred->n_levels
      || memcmp (config->block_out_channels, inferred->block_out_channels,
                 (size_t) n * sizeof (int)) != 0)
    {
      g_autofree char *a = ints_string (config->block_out_channels, config->n_levels);
      g_autofree char *b = ints_string (inferred->block_out_channels, inferred->n_levels);
      g_string_append_printf (next_item (s), "block_out_channels: %s in the config, %s in the "
                              "weights", a, b);
    }
  else
    {
      if (memcmp (config->down_cross_attention, inferred->down_cross_attention,
                  (size_t) n * sizeof (gboolean)) != 0)
        {
          g_autofree char *a = bools_string (config->down_cross_attention, n);
          g_autofree char *b = bools_string (inferred->down_cross_attention, n);
          g_string_append_printf (next_item (s), "cross-attention per down level: %s in the "
                                  "config, %s in the weights", a, b);
        }
      if (memcmp (config->up_cross_attention, inferred->up_cross_attention,
                  (size_t) n * sizeof (gboolean)) != 0)
        {
          g_autofree char *a = bools_string (config->up_cross_attention, n);
          g_autofree char *b = bools_string (inferred->up_cross_attention, n);
          g_string_append_printf (next_item (s), "cross-attention per up level: %s in the "
                                  "config, %s in the weights", a, b);
        }
      for (int l = 0; l < n; l++)
        {
          char what[64];
          if (config->down_cross_attention[l] && inferred->down_cross_attention[l])
            {
              g_snprintf (what, sizeof what, "transformer depth, down level %d", l);
              differ_int (s, what, config->transformer_depth[l],
                          inferred->transformer_depth[l]);
            }
          if (config->up_cross_attention[l] && inferred->up_cross_attention[l])
            {
              g_snprintf (what, sizeof what, "transformer depth, up level %d", l);
              differ_int (s, what, config->up_transformer_depth[l],
                          inferred->up_transformer_depth[l]);
            }
        }
    }
  differ_int (s, "layers_per_block", config->layers_per_block, inferred->layers_per_block);
  differ_int (s, "middle block transformer depth", config->mid_transformer_depth,
              inferred->mid_transformer_depth);
  differ_int (s, "cross_attention_dim (attn2.to_k input)", config->cross_attention_dim,
              inferred->cross_attention_dim);
  differ_int (s, "added embedding input (add_embedding.linear_1)", config->addition_input_dim,
              inferred->addition_input_dim);
  if (config->use_linear_projection != inferred->use_linear_projection)
    g_string_append_printf (next_item (s), "use_linear_projection: %s in the config, but "
                            "proj_in is stored as a %s",
                            config->use_linear_projection ? "true" : "false",
                            inferred->use_linear_projection ? "Linear [C, C] (SD2 style)"
                            : "1x1 conv [C, C, 1, 1] (SD1 style)");
  if (s->len > 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s does not describe this UNet's weights (%s); it may be the config of "
                   "another model: use the one that came with these weights",
                   config_name ? config_name : "the UNet config", s->str);
      return FALSE;
    }
  return TRUE;
}

char *
gesso_unet_config_describe (const GessoUnetConfig *c)
{
  GString *s = g_string_new (NULL);
  int n = c->n_levels;
  int heads[GESSO_UNET_MAX_LEVELS];

  g_string_append_printf (s, "%d levels ", n);
  append_ints (s, c->block_out_channels, n);
  g_string_append_printf (s, ", %d resnets per level, cross-attention at levels",
                          c->layers_per_block);
  for (int l = 0; l < n; l++)
    if (c->down_cross_attention[l] || c->up_cross_attention[l])
      g_string_append_printf (s, " %d", l);
  g_string_append (s, " and the middle, heads ");
  for (int l = 0; l < n; l++)
    heads[l] = c->heads[l];
  append_ints (s, heads, n);
  g_string_append_printf (s, "%s, %s projections, context width %d, %d -> %d channels",
                          c->heads_known ? "" : " (assumed)",
                          c->use_linear_projection ? "linear" : "1x1-conv",
                          c->cross_attention_dim, c->in_channels, c->out_channels);
  if (c->addition_input_dim > 0)
    g_string_append_printf (s, ", added embedding of a %d-wide pooled text embedding and %d "
                            "size ids", gesso_unet_config_pooled_dim (c), GESSO_UNET_TIME_IDS);
  return g_string_free (s, FALSE);
}

int
gesso_unet_config_pooled_dim (const GessoUnetConfig *config)
{
  g_return_val_if_fail (config != NULL, 0);
  if (config->addition_input_dim == 0)
    return 0;
  return config->addition_input_dim - GESSO_UNET_TIME_IDS * config->addition_time_embed_dim;
}
