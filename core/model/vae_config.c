/* The VAE's hyperparameters: from a diffusers config.json, or from the weights' shapes when
 * the model is a single file that carries no config. */
#include <math.h>
#include <string.h>

#include "io/config.h"
#include "model/vae.h"
#include "model/vae_private.h"

/* Upper bounds that no real VAE comes near; they keep sizes computed from an untrusted
 * config far from overflow. */
#define MAX_CHANNELS 4096
#define MAX_LAYERS 16
#define MAX_LATENT_CHANNELS 64

void
gesso_vae_config_init (GessoVaeConfig *config)
{
  g_return_if_fail (config != NULL);

  /* diffusers' AutoencoderKL.__init__ defaults, except the scaling factor, which is SD's
   * (the same in diffusers) */
  memset (config, 0, sizeof *config);
  config->in_channels = 3;
  config->out_channels = 3;
  config->latent_channels = 4;
  config->n_levels = 1;
  config->block_out_channels[0] = 64;
  config->layers_per_block = 1;
  config->norm_num_groups = 32;
  config->norm_eps = 1e-6f;
  config->scaling_factor = GESSO_VAE_SD_SCALING_FACTOR;
  config->shift_factor = 0.0;
  config->mid_attention = TRUE;
  config->use_quant_conv = TRUE;
  config->use_post_quant_conv = TRUE;
}

/* diffusers writes null for unset optional keys ("shift_factor": null); treat it as absent */
static gboolean
has_value (JsonObject *json, const char *key)
{
  JsonNode *node = json_object_get_member (json, key);

  return node != NULL && !JSON_NODE_HOLDS_NULL (node);
}

static gboolean
read_int (JsonObject *json, const char *name, const char *key, gint64 min, gint64 max,
          int *out, GError **error)
{
  gint64 value;

  if (!has_value (json, key))
    return TRUE;
  if (!gesso_config_get_int (json, name, key, min, max, &value, error))
    return FALSE;
  *out = (int) value;
  return TRUE;
}

static gboolean
read_bool (JsonObject *json, const char *name, const char *key, gboolean *out, GError **error)
{
  if (!has_value (json, key))
    return TRUE;
  return gesso_config_get_bool (json, name, key, out, error);
}

/* Every entry of the string array KEY must be WANT: the builder knows one block type. */
static gboolean
check_block_types (JsonObject *json, const char *name, const char *key, const char *want,
                   int n_levels, GError **error)
{
  JsonNode *node;
  JsonArray *array;

  if (!has_value (json, key))
    return TRUE;
  node = json_object_get_member (json, key);
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s: \"%s\" should be a list of block type names", name, key);
      return FALSE;
    }
  array = json_node_get_array (node);
  if ((int) json_array_get_length (array) != n_levels)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s: \"%s\" has %u entries but \"block_out_channels\" has %d", name, key,
                   json_array_get_length (array), n_levels);
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      const char *type = JSON_NODE_HOLDS_VALUE (item)
                             && json_node_get_value_type (item) == G_TYPE_STRING
                           ? json_node_get_string (item)
                           : NULL;

      if (type == NULL || strcmp (type, want) != 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: \"%s\"[%u] is %s; Gesso's VAE supports only %s blocks "
                       "(the Stable Diffusion 1.x/2.x AutoencoderKL)",
                       name, key, i, type ? type : "not a string", want);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
gesso_vae_config_from_json (GessoVaeConfig *config, JsonObject *json, const char *name,
                            GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (json != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  GessoVaeConfig c;
  const char *text;

  gesso_vae_config_init (&c);
  if (name == NULL)
    name = "vae/config.json";

  if (has_value (json, "_class_name"))
    {
      if (!gesso_config_get_string (json, name, "_class_name", &text, error))
        return FALSE;
      if (strcmp (text, "AutoencoderKL") != 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s describes a %s; Gesso's VAE is the AutoencoderKL of Stable "
                       "Diffusion 1.x/2.x", name, text);
          return FALSE;
        }
    }
  if (has_value (json, "act_fn"))
    {
      if (!gesso_config_get_string (json, name, "act_fn", &text, error))
        return FALSE;
      if (strcmp (text, "silu") != 0 && strcmp (text, "swish") != 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: act_fn \"%s\" is not supported; the VAE uses \"silu\"", name, text);
          return FALSE;
        }
    }

  if (has_value (json, "block_out_channels"))
    {
      g_autofree gint64 *channels = NULL;
      guint n = 0;

      if (!gesso_config_get_int_array (json, name, "block_out_channels", 1, MAX_CHANNELS,
                                       &channels, &n, error))
        return FALSE;
      if (n < 1 || n > GESSO_VAE_MAX_LEVELS)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "%s: \"block_out_channels\" has %u levels; Gesso supports 1 to %d",
                       name, n, GESSO_VAE_MAX_LEVELS);
          return FALSE;
        }
      c.n_levels = (int) n;
      for (guint i = 0; i < n; i++)
        c.block_out_channels[i] = (int) channels[i];
    }

  if (!read_int (json, name, "in_channels", 1, MAX_CHANNELS, &c.in_channels, error)
      || !read_int (json, name, "out_channels", 1, MAX_CHANNELS, &c.out_channels, error)
      || !read_int (json, name, "latent_channels", 1, MAX_LATENT_CHANNELS, &c.latent_channels,
                    error)
      || !read_int (json, name, "layers_per_block", 1, MAX_LAYERS, &c.layers_per_block, error)
      || !read_int (json, name, "norm_num_groups", 1, MAX_CHANNELS, &c.norm_num_groups, error)
      || !read_bool (json, name, "mid_block_add_attention", &c.mid_attention, error)
      || !read_bool (json, name, "use_quant_conv", &c.use_quant_conv, error)
      || !read_bool (json, name, "use_post_quant_conv", &c.use_post_quant_conv, error))
    return FALSE;

  if (has_value (json, "scaling_factor")
      && !gesso_config_get_double (json, name, "scaling_factor", 1e-6, 1e6, &c.scaling_factor,
                                   error))
    return FALSE;
  if (has_value (json, "shift_factor")
      && !gesso_config_get_double (json, name, "shift_factor", -1e6, 1e6, &c.shift_factor,
                                   error))
    return FALSE;

  if (!check_block_types (json, name, "down_block_types", "DownEncoderBlock2D", c.n_levels,
                          error)
      || !check_block_types (json, name, "up_block_types", "UpDecoderBlock2D", c.n_levels,
                             error))
    return FALSE;

  if (!gesso_vae_config_validate (&c, error))
    {
      g_prefix_error (error, "%s: ", name);
      return FALSE;
    }
  *config = c;
  return TRUE;
}

/* --- Inference from shapes --------------------------------------------------------------- */

static gboolean
shape_of (const GessoWeights *weights, const char *name, int want_ndim, int64_t shape[8],
          GError **error)
{
  int ndim;

  if (!gesso_weights_shape (weights, GESSO_COMPONENT_VAE, name, &ndim, shape))
    {
      gesso_weights_set_missing_error (weights, GESSO_COMPONENT_VAE, name, error);
      return FALSE;
    }
  if (ndim != want_ndim)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "VAE weight '%s' has %d dimensions, expected %d", name, ndim, want_ndim);
      return FALSE;
    }
  return TRUE;
}

static gboolean
has_weight (const GessoWeights *weights, const char *name)
{
  return gesso_weights_has (weights, GESSO_COMPONENT_VAE, name);
}

static gboolean
channel_count (int64_t value, const char *name, int max, int *out, GError **error)
{
  if (value < 1 || value > max)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "VAE weight '%s' implies %" G_GINT64_FORMAT " channels; Gesso supports "
                   "1 to %d", name, value, max);
      return FALSE;
    }
  *out = (int) value;
  return TRUE;
}

/* Whether SIDE ("encoder") has its middle attention, maybe under the names diffusers used
 * before 0.14. */
static gboolean
probe_mid_attention (const GessoWeights *weights, const char *side, gboolean *present,
                     GError **error)
{
  g_autofree char *block = g_strconcat (side, ".mid_block.attentions.0", NULL);
  g_autofree char *legacy = g_strconcat (block, ".query.weight", NULL);

  *present = has_weight (weights, legacy);
  return *present
         || gesso_weights_probe (weights, GESSO_COMPONENT_VAE, block, "to_q.weight", present,
                                 error);
}

gboolean
vae_config_infer_shapes (GessoVaeConfig *config, const GessoWeights *weights, GError **error)
{
  GessoVaeConfig c;
  int64_t shape[8];
  char name[128];
  int n_levels = 0, layers = 0, latent_x2 = 0, count;
  gboolean decoder_attention;

  gesso_vae_config_init (&c);
  if (gesso_weights_count (weights, GESSO_COMPONENT_VAE) == 0)
    {
      gesso_weights_set_absent_error (weights, "VAE", error);
      return FALSE;
    }

  /* levels: encoder.down_blocks.<i> exist for i < n_levels (a block missing whole would hide
   * a level from one side, so the decoder's count too); each level's width is the output
   * channel count of its first resnet's first conv */
  if (!gesso_weights_count_blocks (weights, GESSO_COMPONENT_VAE, "encoder.down_blocks",
                                   GESSO_VAE_MAX_LEVELS, "resnets.0.conv1.weight", &n_levels,
                                   error)
      || !gesso_weights_count_blocks (weights, GESSO_COMPONENT_VAE, "decoder.up_blocks",
                                      GESSO_VAE_MAX_LEVELS, "resnets.0.conv1.weight", &count,
                                      error))
    return FALSE;
  n_levels = MAX (n_levels, count);
  if (n_levels > GESSO_VAE_MAX_LEVELS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the VAE has more than %d levels; Gesso supports at most %d",
                   GESSO_VAE_MAX_LEVELS, GESSO_VAE_MAX_LEVELS);
      return FALSE;
    }
  if (n_levels == 0)
    {
      gesso_weights_set_missing_error (weights, GESSO_COMPONENT_VAE,
                                       "encoder.down_blocks.0.resnets.0.conv1.weight", error);
      return FALSE;
    }
  for (int l = 0; l < n_levels; l++)
    {
      g_snprintf (name, sizeof name, "encoder.down_blocks.%d.resnets.0.conv1.weight", l);
      if (!shape_of (weights, name, 4, shape, error)
          || !channel_count (shape[0], name, MAX_CHANNELS, &c.block_out_channels[l], error))
        return FALSE;
    }
  c.n_levels = n_levels;

  /* encoder levels have layers_per_block resnets, decoder levels one more */
  for (int l = 0; l < n_levels; l++)
    {
      g_snprintf (name, sizeof name, "encoder.down_blocks.%d.resnets", l);
      if (!gesso_weights_count_blocks (weights, GESSO_COMPONENT_VAE, name, MAX_LAYERS,
                                       "conv1.weight", &count, error))
        return FALSE;
      layers = MAX (layers, count);
      g_snprintf (name, sizeof name, "decoder.up_blocks.%d.resnets", l);
      if (!gesso_weights_count_blocks (weights, GESSO_COMPONENT_VAE, name, MAX_LAYERS + 1,
                                       "conv1.weight", &count, error))
        return FALSE;
      layers = MAX (layers, count - 1);
    }
  if (layers > MAX_LAYERS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the VAE has more than %d resnets per level; Gesso supports at most %d",
                   MAX_LAYERS, MAX_LAYERS);
      return FALSE;
    }
  c.layers_per_block = layers;

  if (!shape_of (weights, "encoder.conv_in.weight", 4, shape, error)
      || !channel_count (shape[1], "encoder.conv_in.weight", MAX_CHANNELS, &c.in_channels,
                         error)
      || !shape_of (weights, "decoder.conv_out.weight", 4, shape, error)
      || !channel_count (shape[0], "decoder.conv_out.weight", MAX_CHANNELS, &c.out_channels,
                         error)
      || !shape_of (weights, "decoder.conv_in.weight", 4, shape, error)
      || !channel_count (shape[1], "decoder.conv_in.weight", MAX_LATENT_CHANNELS,
                         &c.latent_channels, error)
      || !shape_of (weights, "encoder.conv_out.weight", 4, shape, error)
      || !channel_count (shape[0], "encoder.conv_out.weight", 2 * MAX_LATENT_CHANNELS,
                         &latent_x2, error))
    return FALSE;
  if (latent_x2 != 2 * c.latent_channels)
    {
      /* AutoencoderKL always encodes mean and logvar (double_z) */
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the VAE encoder puts out %d channels for a %d-channel latent; Gesso "
                   "expects a mean and a log-variance per channel (%d)", latent_x2,
                   c.latent_channels, 2 * c.latent_channels);
      return FALSE;
    }

  /* optional parts, each present or absent whole (a part with a hole is MISSING); the
   * attention is in both halves or in neither, so one half's is enough to tell */
  if (!probe_mid_attention (weights, "encoder", &c.mid_attention, error)
      || !probe_mid_attention (weights, "decoder", &decoder_attention, error)
      || !gesso_weights_probe (weights, GESSO_COMPONENT_VAE, "quant_conv", "weight",
                               &c.use_quant_conv, error)
      || !gesso_weights_probe (weights, GESSO_COMPONENT_VAE, "post_quant_conv", "weight",
                               &c.use_post_quant_conv, error))
    return FALSE;
  c.mid_attention = c.mid_attention || decoder_attention;
  *config = c;
  return TRUE;
}

gboolean
gesso_vae_config_infer (GessoVaeConfig *config, const GessoWeights *weights, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (weights != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  GessoVaeConfig c;

  if (!vae_config_infer_shapes (&c, weights, error))
    return FALSE;
  if (gesso_weights_is_sdxl (weights))
    c.scaling_factor = GESSO_VAE_SDXL_SCALING_FACTOR;
  if (!gesso_vae_config_validate (&c, error))
    {
      g_prefix_error (error, "the VAE's architecture inferred from its weights is not "
                             "usable without a config.json: ");
      return FALSE;
    }
  *config = c;
  return TRUE;
}

/* --- Checks ---------------------------------------------------------------------------- */

gboolean
gesso_vae_config_validate (const GessoVaeConfig *config, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);

  const GessoVaeConfig *c = config;

  if (c->n_levels < 1 || c->n_levels > GESSO_VAE_MAX_LEVELS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the VAE has %d levels; Gesso supports 1 to %d", c->n_levels,
                   GESSO_VAE_MAX_LEVELS);
      return FALSE;
    }
  if (c->in_channels < 1 || c->in_channels > MAX_CHANNELS || c->out_channels < 1
      || c->out_channels > MAX_CHANNELS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the VAE's image channels (%d in, %d out) must be 1 to %d", c->in_channels,
                   c->out_channels, MAX_CHANNELS);
      return FALSE;
    }
  if (c->latent_channels < 1 || c->latent_channels > MAX_LATENT_CHANNELS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the VAE's latent_channels (%d) must be 1 to %d", c->latent_channels,
                   MAX_LATENT_CHANNELS);
      return FALSE;
    }
  if (c->layers_per_block < 1 || c->layers_per_block > MAX_LAYERS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the VAE's layers_per_block (%d) must be 1 to %d", c->layers_per_block,
                   MAX_LAYERS);
      return FALSE;
    }
  if (c->norm_num_groups < 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the VAE's norm_num_groups (%d) must be positive", c->norm_num_groups);
      return FALSE;
    }
  for (int i = 0; i < c->n_levels; i++)
    {
      int ch = c->block_out_channels[i];

      if (ch < 1 || ch > MAX_CHANNELS)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       "the VAE's block_out_channels[%d] (%d) must be 1 to %d", i, ch,
                       MAX_CHANNELS);
          return FALSE;
        }
      if (ch % c->norm_num_groups != 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       "the VAE's block_out_channels[%d] (%d) is not a multiple of "
                       "norm_num_groups (%d); GroupNorm needs whole groups", i, ch,
                       c->norm_num_groups);
          return FALSE;
        }
    }
  if (!(c->norm_eps > 0.0f) || !isfinite (c->norm_eps))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the VAE's GroupNorm eps (%g) must be a positive number", c->norm_eps);
      return FALSE;
    }
  if (!(c->scaling_factor > 0.0) || !isfinite (c->scaling_factor) || !isfinite (c->shift_factor))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the VAE's scaling_factor (%g) must be a positive number and its "
                   "shift_factor (%g) finite", c->scaling_factor, c->shift_factor);
      return FALSE;
    }
  return TRUE;
}

gboolean
gesso_vae_config_same_architecture (const GessoVaeConfig *a, const GessoVaeConfig *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  if (a->in_channels != b->in_channels || a->out_channels != b->out_channels
      || a->latent_channels != b->latent_channels || a->n_levels != b->n_levels
      || a->layers_per_block != b->layers_per_block || a->mid_attention != b->mid_attention
      || a->use_quant_conv != b->use_quant_conv
      || a->use_post_quant_conv != b->use_post_quant_conv)
    return FALSE;
  for (int i = 0; i < a->n_levels && i < GESSO_VAE_MAX_LEVELS; i++)
    if (a->block_out_channels[i] != b->block_out_channels[i])
      return FALSE;
  return TRUE;
}

char *
gesso_vae_config_to_string (const GessoVaeConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "levels %d (", config->n_levels);
  for (int i = 0; i < config->n_levels && i < GESSO_VAE_MAX_LEVELS; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "", config->block_out_channels[i]);
  g_string_append_printf (s, "), %d resnets/level, channels %d -> latent %d -> %d, "
                          "groups %d, %s mid attention, scale %g",
                          config->layers_per_block, config->in_channels,
                          config->latent_channels, config->out_channels,
                          config->norm_num_groups, config->mid_attention ? "with" : "no",
                          config->scaling_factor);
  if (config->shift_factor != 0.0)
    g_string_append_printf (s, ", shift %g", config->shift_factor);
  if (!config->use_quant_conv || !config->use_post_quant_conv)
    g_string_append_printf (s, ", quant_conv %s, post_quant_conv %s",
                            config->use_quant_conv ? "yes" : "no",
                            config->use_post_quant_conv ? "yes" : "no");
  return g_string_free (s, FALSE);
}

int
gesso_vae_config_latent_factor (const GessoVaeConfig *config)
{
  g_return_val_if_fail (config != NULL, 0);
  g_return_val_if_fail (config->n_levels >= 1 && config->n_levels <= GESSO_VAE_MAX_LEVELS, 0);

  return 1 << (config->n_levels - 1);
}
