/* What a model file is, from its safetensors header (or a diffusers folder's JSON) alone.
 *
 * Users keep checkpoints, LoRAs, embeddings, ControlNets, VAEs and tiny autoencoders side by
 * side and name them as they like, so the kind and the family (which base model a LoRA or a
 * ControlNet is for) are read from tensor names and shapes, never from file names:
 *   checkpoint   model.diffusion_model.* (CompVis/LDM single file); model_index.json
 *   LoRA         *.lora_down / lora_up / lora_A / lora_B, LoHa hada_*, LoKr lokr_*
 *   embedding    emb_params (A1111), clip_l + clip_g (SDXL), string_to_param.*, or one
 *                {token: vector} entry (diffusers' learned_embeds)
 *   ControlNet   control_model.*, input_hint_block.*, controlnet_cond_embedding.*
 *   VAE          encoder.* / decoder.* with quant_conv (CompVis) or diffusers names
 *   TAESD        numbered Sequential layers "N.conv.0.weight" (taesd_decoder.safetensors)
 * The family comes from what tells SD 1.x, 2.x and SDXL apart: the text encoder's naming
 * (transformers CLIP, OpenCLIP, SDXL's conditioner), the cross-attention width (768, 1024,
 * 2048) and kohya's ss_base_model_version metadata. A VAE's 4-channel latent is shared by SD
 * 1.x, 2.x and SDXL and says only that.
 */
#include "gesso-config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "gesso.h"
#include "io/config.h"
#include "io/io-private.h"
#include "io/model_cache.h"
#include "io/header_scan.h"

static const char *const kind_names[] = {
  "checkpoint", "LoRA", "embedding", "ControlNet", "VAE", "TAESD", "unknown",
};

const char *
gesso_asset_kind_name (GessoAssetKind kind)
{
  return (unsigned) kind < G_N_ELEMENTS (kind_names) ? kind_names[kind] : "unknown";
}

static gboolean
kind_from_name (const char *name, GessoAssetKind *kind)
{
  for (guint i = 0; i < G_N_ELEMENTS (kind_names); i++)
    if (g_strcmp0 (name, kind_names[i]) == 0)
      {
        *kind = (GessoAssetKind) i;
        return TRUE;
      }
  return FALSE;
}

/* The family a cross-attention (text embedding) width belongs to. */
static const char *
family_of_width (int64_t width)
{
  switch (width)
    {
    case 768:
      return "SD 1.x";
    case 1024:
      return "SD 2.x";
    case 1280:
      return "SDXL refiner";
    case 2048:
      return "SDXL";
    default:
      return NULL;
    }
}

typedef struct
{
  gboolean unet, sd1_text, sd2_text, sdxl_text;
  gboolean lora, lora_sdxl_text, embedding_clip_l, embedding_clip_g;
  gboolean controlnet, vae_encoder, vae_decoder, taesd;
  int64_t context;              /* an attn2 to_k input width: the text embedding's */
  int64_t lora_context;         /* the same, from a LoRA's down/A matrix */
  int64_t lora_text_width;      /* a LoRA's text encoder MLP input width */
  int64_t embedding_width;
  int64_t token_width;          /* a lone {token: vector} entry's width (diffusers' layout) */
  int64_t latent;               /* the VAE decoder's conv_in input channels */
  int64_t unet_in;              /* input_blocks.0.0 input channels: 9 for inpainting */
  int n_keys, n_numbered;
  char *base_model;             /* kohya's ss_base_model_version */
} Scan;

static void
scan_entry (const char *name, int ndim, const int64_t *shape, gpointer data)
{
  Scan *s = data;
  const char *k = name;

  s->n_keys++;
  if (g_ascii_isdigit (k[0]))
    s->n_numbered++;
  if (g_str_has_prefix (k, "model.diffusion_model."))
    {
      s->unet = TRUE;
      if (strcmp (k, "model.diffusion_model.input_blocks.0.0.weight") == 0 && ndim == 4)
        s->unet_in = shape[1];
    }
  else if (g_str_has_prefix (k, "cond_stage_model.transformer."))
    s->sd1_text = TRUE;
  else if (g_str_has_prefix (k, "cond_stage_model.model."))
    s->sd2_text = TRUE;
  else if (g_str_has_prefix (k, "conditioner.embedders."))
    s->sdxl_text = TRUE;

  if (strstr (k, ".lora_down.") != NULL || strstr (k, ".lora_up.") != NULL
      || strstr (k, ".lora_A.") != NULL || strstr (k, ".lora_B.") != NULL
      || strstr (k, ".hada_w1_a") != NULL || strstr (k, ".lokr_w1") != NULL
      || strstr (k, ".lora.down.") != NULL)
    {
      s->lora = TRUE;
      if (strstr (k, "lora_te1_") != NULL || strstr (k, "lora_te2_") != NULL
          || strstr (k, "text_encoder_2") != NULL)
        s->lora_sdxl_text = TRUE;
      /* kohya "..._attn2_to_k.lora_down.weight", PEFT "...attn2.to_k.lora_A.weight" */
      if ((strstr (k, "attn2_to_k.lora_down.weight") != NULL
           || strstr (k, "attn2.to_k.lora_A.weight") != NULL
           || strstr (k, "attn2.to_k.lora_down.weight") != NULL
           || strstr (k, "attn2.processor.to_k_lora.down.weight") != NULL)
          && ndim == 2)
        s->lora_context = MAX (s->lora_context, shape[1]);
      if ((strstr (k, "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight") != NULL
           || strstr (k, "text_model.encoder.layers.0.mlp.fc1.lora_A.weight") != NULL)
          && ndim == 2)
        s->lora_text_width = shape[1];
    }
  else if (g_str_has_suffix (k, "attn2.to_k.weight") && ndim == 2)
    s->context = MAX (s->context, shape[1]);

  if ((strcmp (k, "emb_params") == 0 || g_str_has_prefix (k, "string_to_param.")) && ndim == 2)
    s->embedding_width = shape[1];
  if ((ndim == 1 || ndim == 2) && strchr (k, '.') == NULL && !g_ascii_isdigit (k[0]))
    s->token_width = shape[ndim - 1];
  if (strcmp (k, "clip_l") == 0)
    s->embedding_clip_l = TRUE;
  if (strcmp (k, "clip_g") == 0)
    s->embedding_clip_g = TRUE;

  if (g_str_has_prefix (k, "control_model.") || g_str_has_prefix (k, "input_hint_block.")
      || g_str_has_prefix (k, "controlnet_cond_embedding."))
    s->controlnet = TRUE;

  if (g_str_has_prefix (k, "first_stage_model."))
    k += strlen ("first_stage_model.");
  if (g_str_has_prefix (k, "encoder.conv_in."))
    s->vae_encoder = TRUE;
  if (strcmp (k, "decoder.conv_in.weight") == 0 && ndim == 4)
    {
      s->vae_decoder = TRUE;
      s->latent = shape[1];
    }
  if (g_ascii_isdigit (name[0]) && strstr (name, ".conv.0.weight") != NULL)
    s->taesd = TRUE;
}

static void
identify_scan (const Scan *s, GessoAssetKind *kind, char **family)
{
  const char *f = NULL;

  *kind = GESSO_ASSET_UNKNOWN;
  if (s->unet && !s->controlnet)
    {
      const char *base = s->sdxl_text ? "SDXL" : s->sd2_text ? "SD 2.x"
                         : s->sd1_text ? "SD 1.x" : family_of_width (s->context);
      *kind = GESSO_ASSET_CHECKPOINT;
      if (base != NULL)
        *family = g_strdup_printf ("%s%s", base, s->unet_in == 9 ? " inpainting" : "");
      return;
    }
  if (s->lora)
    {
      *kind = GESSO_ASSET_LORA;
      f = s->lora_sdxl_text ? "SDXL" : family_of_width (s->lora_context);
      if (f == NULL && s->lora_text_width > 0)
        f = family_of_width (s->lora_text_width);
    }
  else if (s->controlnet)
    {
      *kind = GESSO_ASSET_CONTROLNET;
      f = family_of_width (s->context);
    }
  else if (s->embedding_clip_l && s->embedding_clip_g)
    {
      *kind = GESSO_ASSET_EMBEDDING;
      f = "SDXL";
    }
  else if (s->embedding_width > 0)
    {
      *kind = GESSO_ASSET_EMBEDDING;
      f = family_of_width (s->embedding_width);
    }
  else if (s->n_keys == 1 && s->token_width > 0)
    {
      /* diffusers' learned_embeds.safetensors: {token: vector} */
      *kind = GESSO_ASSET_EMBEDDING;
      f = family_of_width (s->token_width);
    }
  else if (s->vae_decoder || s->vae_encoder)
    {
      *kind = GESSO_ASSET_VAE;
      f = s->latent == 4 ? "SD 1.x/2.x/XL" : s->latent == 16 ? "SD 3/Flux" : NULL;
    }
  else if (s->taesd && s->n_numbered == s->n_keys)
    {
      *kind = GESSO_ASSET_TAESD;
      f = "SD 1.x/2.x/XL";
    }
  *family = g_strdup (f);
}

/* kohya-ss writes the base model a LoRA was trained on into the file's metadata. */
static const char *
family_from_base_model (const char *version)
{
  if (version == NULL)
    return NULL;
  if (g_str_has_prefix (version, "sdxl"))
    return "SDXL";
  if (g_str_has_prefix (version, "sd_v2"))
    return "SD 2.x";
  if (g_str_has_prefix (version, "sd_v1"))
    return "SD 1.x";
  return NULL;
}

static void
scan_metadata (const char *key, const char *value, gpointer data)
{
  Scan *s = data;

  if (strcmp (key, "ss_base_model_version") == 0)
    {
      g_free (s->base_model);
      s->base_model = g_strdup (value);
    }
}

static gboolean
identify_file (const char *path, GessoAssetKind *kind, char **family, GError **error)
{
  Scan s = { 0 };

  if (gesso_io_has_pickle_extension (path))
    {
      gesso_io_set_pickle_error (error, path);
      return FALSE;
    }
  if (!gesso_header_scan_file (path, scan_entry, scan_metadata, &s, error))
    {
      g_free (s.base_model);
      return FALSE;
    }
  identify_scan (&s, kind, family);
  if (*kind == GESSO_ASSET_LORA && family_from_base_model (s.base_model) != NULL)
    {
      g_free (*family);
      *family = g_strdup (family_from_base_model (s.base_model));
    }
  g_free (s.base_model);
  return TRUE;
}

static JsonObject *
load_json (const char *dir, const char *sub, const char *file)
{
  g_autofree char *path = g_build_filename (dir, sub, file, NULL);

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  return gesso_config_load (path, NULL);
}

/* cross_attention_dim of a diffusers config: a number, or one per block (take the first). */
static int64_t
config_context (JsonObject *config)
{
  JsonNode *node = config != NULL ? json_object_get_member (config, "cross_attention_dim")
                                  : NULL;

  if (node == NULL)
    return 0;
  if (JSON_NODE_HOLDS_ARRAY (node) && json_array_get_length (json_node_get_array (node)) > 0)
    return json_array_get_int_element (json_node_get_array (node), 0);
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
    return json_node_get_int (node);
  return 0;
}

static gboolean
has_weights (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "diffusion_pytorch_model") && g_str_has_suffix (name,
                                                                               ".safetensors"))
      return TRUE;
  return FALSE;
}

/* A diffusers folder: a pipeline (model_index.json) or one model saved alone (config.json's
 * _class_name). FALSE without an error when it is neither: a plain folder. */
static gboolean
identify_folder (const char *path, GessoAssetKind *kind, char **family)
{
  g_autofree char *index = g_build_filename (path, "model_index.json", NULL);
  g_autoptr (JsonObject) config = NULL;
  const char *class_name;

  if (g_file_test (index, G_FILE_TEST_IS_REGULAR))
    {
      g_autofree char *second = g_build_filename (path, "text_encoder_2", NULL);
      g_autoptr (JsonObject) unet = load_json (path, "unet", "config.json");
      const char *base = g_file_test (second, G_FILE_TEST_IS_DIR)
                           ? "SDXL" : family_of_width (config_context (unet));
      gint64 in = unet != NULL ? json_object_get_int_member_with_default (unet, "in_channels",
                                                                          4)
                               : 4;

      *kind = GESSO_ASSET_CHECKPOINT;
      *family = base != NULL ? g_strdup_printf ("%s%s", base, in == 9 ? " inpainting" : "")
                             : NULL;
      return TRUE;
    }
  /* a model saved alone has its weights beside its config; a config alone (the configs of a
   * single file, kept in a folder named like it) is no model */
  if (!has_weights (path))
    return FALSE;
  config = load_json (path, ".", "config.json");
  class_name = config != NULL
                 ? json_object_get_string_member_with_default (config, "_class_name", NULL)
                 : NULL;
  if (g_strcmp0 (class_name, "ControlNetModel") == 0)
    {
      *kind = GESSO_ASSET_CONTROLNET;
      *family = g_strdup (family_of_width (config_context (config)));
      return TRUE;
    }
  if (g_strcmp0 (class_name, "AutoencoderTiny") == 0)
    {
      *kind = GESSO_ASSET_TAESD;
      *family = g_strdup ("SD 1.x/2.x/XL");
      return TRUE;
    }
  if (g_strcmp0 (class_name, "AutoencoderKL") == 0)
    {
      double scale = json_object_get_double_member_with_default (config, "scaling_factor",
                                                                  0.18215);
      *kind = GESSO_ASSET_VAE;
      *family = g_strdup (scale > 0.13 && scale < 0.131 ? "SDXL" : "SD 1.x/2.x");
      return TRUE;
    }
  return FALSE;
}

gboolean
gesso_asset_identify (const char *path, GessoModelCache *cache, GessoAssetKind *kind,
                      char **family, GError **error)
{
  g_autofree char *cached_kind = NULL;

  g_return_val_if_fail (path != NULL && kind != NULL && family != NULL, FALSE);
  *family = NULL;
  *kind = GESSO_ASSET_UNKNOWN;
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      if (!identify_folder (path, kind, family))
        *kind = GESSO_ASSET_UNKNOWN;
      return TRUE;
    }
  if (cache != NULL && (cached_kind = gesso_model_cache_get (cache, path, "kind")) != NULL
      && kind_from_name (cached_kind, kind))
    {
      g_autofree char *f = gesso_model_cache_get (cache, path, "family");
      *family = f != NULL && f[0] != '\0' ? g_steal_pointer (&f) : NULL;
      return TRUE;
    }
  if (!identify_file (path, kind, family, error))
    return FALSE;
  if (cache != NULL && gesso_model_cache_set (cache, path, "kind", gesso_asset_kind_name (*kind)))
    gesso_model_cache_set (cache, path, "family", *family != NULL ? *family : "");
  return TRUE;
}
