/* GessoModel: a checkpoint opened for inference.
 *
 * PATH is a diffusers folder (its unet/, vae/, text_encoder/, tokenizer/ and scheduler/
 * sub-folders give every config) or one .safetensors file, which carries weights only. For
 * a single file the configs come from, in order:
 *   1. params->config_dir, a diffusers-style folder the user names;
 *   2. a diffusers-style folder beside the file: the file's own folder, a folder named like
 *      the file without ".safetensors", or a "diffusers" folder there (the first of them with
 *      a model_index.json or a unet/config.json);
 *   3. nothing: the UNet and VAE are inferred from the weights' shapes, the text encoder from
 *      its key layout, and the scheduler is Stable Diffusion's.
 * The tokenizer of a single file is the config folder's tokenizer/, else vocab.json and
 * merges.txt beside the file or in a tokenizer/ folder beside it; when none is found (the
 * usual case for a downloaded checkpoint, and for a diffusers folder without tokenizer/) the
 * CLIP table Gesso ships, with the padding of the text encoder's family (model/clip_vocab.h).
 *
 * Opening plans first (files mapped, configs chosen and checked against the weight shapes,
 * tokenizer loaded; no weight read), then builds the components. gesso_model_probe stops
 * after the plan, which is what describing a model needs.
 *
 * Prediction type: params->prediction when not AUTO; else, for a single file, the
 * "parameterization" of the LDM .yaml named like it (model.yaml beside model.safetensors, as
 * A1111 keeps v2-inference-v.yaml); else the scheduler config's "prediction_type"; else
 * epsilon (SD 1.x and SD 2.x base). The weights cannot tell an SD 2.x v-prediction model
 * apart, so a bare single file of one needs one of the three.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include "edit/model-private.h"
#include "io/config.h"
#include "io/io-private.h"
#include "io/ldm_yaml.h"
#include "ops/ops.h"
#include <glib/gi18n-lib.h>

#define PROMPT_CACHE_CAPACITY 16

#define SDXL_VAE_SCALING_FACTOR GESSO_VAE_SDXL_SCALING_FACTOR
/* SDXL's training resolution, 1024 px, in latent cells */
#define SDXL_SAMPLE_SIZE 128

/* SD's training schedule: what a model without a scheduler config was trained with. */
#define SD_BETA_START 0.00085
#define SD_BETA_END 0.012
#define SD_TRAIN_STEPS 1000

void
gesso_model_params_init (GessoModelParams *params)
{
  g_return_if_fail (params != NULL);
  memset (params, 0, sizeof *params);
  params->prediction = GESSO_PREDICTION_TYPE_AUTO;
  params->n_threads = 0;
}

void
gesso_model_free (GessoModel *model)
{
  if (model == NULL)
    return;
  gesso_model_free_loras (model);     /* its deltas are set on the weights */
  if (model->embedding_rows != NULL)
    g_array_unref (model->embedding_rows);
  gesso_prompt_cache_free (model->prompts);
  gesso_vae_free (model->vae);
  gesso_taesd_free (model->taesd);
  gesso_unet_free (model->unet);
  gesso_text_encoder_free (model->text_encoder_2);
  gesso_text_encoder_free (model->text_encoder);
  gesso_tokenizer_free (model->tokenizer_2);
  gesso_tokenizer_free (model->tokenizer);
  gesso_weights_free (model->weights);
  gesso_model_files_free (model->files);
  if (model->scheduler_json != NULL)
    json_object_unref (model->scheduler_json);
  g_free (model->scheduler_json_name);
  g_free (model->prediction_source);
  g_free (model->config_dir);
  g_free (model->vae_path);
  g_free (model->tokenizer_dir);
  g_free (model->architecture);
  g_free (model->preview_map);
  gesso_vae_free (model->preview_taesd);
  if (model->controlnets != NULL)
    g_hash_table_unref (model->controlnets);
  g_free (model);
}

GessoControlNet *
gesso_model_controlnet (GessoModel *model, const char *path, GError **error)
{
  GessoControlNet *cn;

  g_return_val_if_fail (model != NULL && path != NULL, NULL);
  if (model->controlnets == NULL)
    model->controlnets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify) gesso_controlnet_free);
  cn = g_hash_table_lookup (model->controlnets, path);
  if (cn != NULL)
    return cn;
  cn = gesso_controlnet_open (path, model->unet, error);
  if (cn != NULL)
    g_hash_table_insert (model->controlnets, g_strdup (path), cn);
  return cn;
}

const char *
gesso_model_get_architecture (const GessoModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->architecture;
}

int
gesso_model_get_native_size (const GessoModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->native_size;
}

int
gesso_model_get_latent_factor (const GessoModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return gesso_vae_latent_factor (model->vae);
}

/* From the configs, so that a model being planned can tell too. */
static gboolean
configs_say_inpainting (const GessoModel *m)
{
  return m->unet_config.in_channels == 2 * m->vae_config.latent_channels + 1;
}

gboolean
gesso_model_is_inpainting (const GessoModel *model)
{
  g_return_val_if_fail (model != NULL, FALSE);
  return configs_say_inpainting (model);
}

int64_t
gesso_model_context_tokens (const GessoModel *model)
{
  return gesso_prompt_cache_tokens (model->prompts);
}

int64_t
gesso_model_context_width (const GessoModel *model)
{
  return gesso_prompt_cache_width (model->prompts);
}

void
gesso_model_apply_threads (const GessoModel *model)
{
  gesso_ops_set_threads (model->n_threads);
}

/* --- finding configs ---------------------------------------------------------------------- */

static gboolean
is_config_folder (const char *dir)
{
  g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);
  g_autofree char *unet = g_build_filename (dir, "unet", "config.json", NULL);

  return g_file_test (index, G_FILE_TEST_IS_REGULAR) || g_file_test (unet, G_FILE_TEST_IS_REGULAR);
}

/* "model" of ".../model.safetensors": the name sidecar files share with a single file. */
static char *
single_file_stem (GessoModelFiles *files)
{
  g_autofree char *base = g_path_get_basename (gesso_model_files_path (files));

  if (g_str_has_suffix (base, ".safetensors"))
    return g_strndup (base, strlen (base) - strlen (".safetensors"));
  return g_steal_pointer (&base);
}

/* The config folder of a single file, or NULL (configs are then inferred). */
static gboolean
find_config_dir (const GessoModelParams *params, GessoModelFiles *files, char **out,
                 GError **error)
{
  const char *dir = gesso_model_files_dir (files);
  g_autofree char *stem = single_file_stem (files);
  char *candidates[3];

  *out = NULL;
  if (params->config_dir != NULL && params->config_dir[0] != '\0')
    {
      if (!g_file_test (params->config_dir, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                       _("the config folder '%s' does not exist or is not a folder"),
                       params->config_dir);
          return FALSE;
        }
      *out = g_strdup (params->config_dir);
      return TRUE;
    }
  candidates[0] = g_strdup (dir);
  candidates[1] = g_build_filename (dir, stem, NULL);
  candidates[2] = g_build_filename (dir, "diffusers", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
    {
      if (*out == NULL && is_config_folder (candidates[i]))
        *out = g_steal_pointer (&candidates[i]);
      g_free (candidates[i]);
    }
  return TRUE;
}

/* CONFIG_DIR/SUB/FILE parsed, or NULL without an error when the file is not there. */
static gboolean
load_sidecar (const char *config_dir, const char *sub, const char *file, JsonObject **out,
              char **name, GError **error)
{
  g_autofree char *path = NULL;

  *out = NULL;
  if (config_dir == NULL)
    return TRUE;
  path = g_build_filename (config_dir, sub, file, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  *out = gesso_config_load (path, error);
  if (*out == NULL)
    return FALSE;
  if (name != NULL)
    *name = g_steal_pointer (&path);
  return TRUE;
}

static gboolean
has_tokenizer_files (const char *dir)
{
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);

  return g_file_test (vocab, G_FILE_TEST_IS_REGULAR)
         && g_file_test (merges, G_FILE_TEST_IS_REGULAR);
}

/* What a folder lacks of a tokenizer, for the error message. */
static void
describe_missing (GString *text, const char *dir)
{
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  gboolean has_vocab = g_file_test (vocab, G_FILE_TEST_IS_REGULAR);
  gboolean has_merges = g_file_test (merges, G_FILE_TEST_IS_REGULAR);

  if (text->len > 0)
    g_string_append (text, "; ");
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    g_string_append_printf (text, "%s does not exist", dir);
  else if (has_vocab)
    g_string_append_printf (text, "%s has vocab.json but no merges.txt", dir);
  else if (has_merges)
    g_string_append_printf (text, "%s has merges.txt but no vocab.json", dir);
  else
    g_string_append_printf (text, "%s has neither vocab.json nor merges.txt", dir);
}

static GessoTokenizer *
tokenizer_from_folder (const char *dir, gboolean openclip, GError **error)
{
  g_autofree char *config = g_build_filename (dir, "tokenizer_config.json", NULL);
  g_autofree char *special = g_build_filename (dir, "special_tokens_map.json", NULL);
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  GessoTokenizerConfig tc;

  if (g_file_test (config, G_FILE_TEST_EXISTS) || g_file_test (special, G_FILE_TEST_EXISTS))
    return gesso_tokenizer_new_from_dir (dir, error);
  /* bare vocab.json + merges.txt: CLIPTokenizer's defaults, except that SD 2.x (OpenCLIP)
   * pads with "!" */
  gesso_tokenizer_config_init (&tc);
  if (openclip)
    tc.pad_token = "!";
  return gesso_tokenizer_new_from_files (vocab, merges, &tc, error);
}

/* Whether DIR holds one of the two tokenizer files without the other: someone meant to give a
 * tokenizer there, and falling back to the bundled one would hide the mistake. */
static gboolean
has_half_tokenizer (const char *dir)
{
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);

  return g_file_test (vocab, G_FILE_TEST_IS_REGULAR) != g_file_test (merges,
                                                                     G_FILE_TEST_IS_REGULAR);
}

/* Where the tokenizer's files are: a diffusers folder's tokenizer/; for a single file the
 * config folder's tokenizer/, else beside the file, else a tokenizer/ folder beside it. NULL
 * without an error when none of those holds either file: the model then uses the CLIP table
 * Gesso ships, as A1111, ComfyUI and stable-diffusion.cpp do. A place with only one of
 * vocab.json and merges.txt is an error naming every place looked at. */
static gboolean
find_tokenizer_dir (const GessoModel *m, char **out, GError **error)
{
  const char *dir = gesso_model_files_dir (m->files);
  g_autoptr (GString) looked = g_string_new (NULL);
  g_autofree char *sub = g_build_filename (dir, "tokenizer", NULL);
  g_autofree char *from_config = NULL;
  const char *places[3] = { NULL, NULL, NULL };
  gboolean half = FALSE;

  *out = NULL;
  if (gesso_model_files_layout (m->files) == GESSO_MODEL_LAYOUT_DIFFUSERS)
    places[0] = sub;
  else
    {
      if (m->config_dir != NULL)
        from_config = g_build_filename (m->config_dir, "tokenizer", NULL);
      places[0] = from_config;
      places[1] = dir;
      places[2] = sub;
    }
  for (guint i = 0; i < G_N_ELEMENTS (places); i++)
    if (places[i] != NULL && has_tokenizer_files (places[i]))
      {
        *out = g_strdup (places[i]);
        return TRUE;
      }
  for (guint i = 0; i < G_N_ELEMENTS (places); i++)
    half = half || (places[i] != NULL && has_half_tokenizer (places[i]));
  if (!half)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (places); i++)
    if (places[i] != NULL)
      describe_missing (looked, places[i]);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               _("incomplete tokenizer for '%s': %s. Put both of the model's vocab.json and "
               "merges.txt there, or remove the one to use the CLIP vocabulary Gesso ships"),
               gesso_model_files_path (m->files), looked->str);
  return FALSE;
}

/* The bundled table has CLIP's 49408 ids; a text encoder with a smaller embedding table (the
 * demo model's, any custom one) was trained with a vocabulary of its own, which only its
 * files can give. */
static gboolean
check_bundled_fits (const GessoModel *m, GError **error)
{
  int64_t shape[8];
  int ndim;

  if (!gesso_weights_shape (m->weights, GESSO_COMPONENT_TEXT_ENCODER,
                            "text_model.embeddings.token_embedding.weight", &ndim, shape)
      || ndim != 2 || shape[0] >= GESSO_CLIP_VOCAB_SIZE)
    return TRUE;
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               "no tokenizer for '%s': its text encoder knows %" G_GINT64_FORMAT " tokens, not "
               "CLIP's %d, so it needs its own; put the model's vocab.json and merges.txt "
               "beside the file", gesso_model_files_path (m->files), shape[0],
               GESSO_CLIP_VOCAB_SIZE);
  return FALSE;
}

/* --- planning: what the configs and weight names say, before any weight is read --------- */

/* Whether an SDXL pipeline forces zeros for an absent negative prompt (model_index.json;
 * true by default, as StableDiffusionXLPipeline has it). */
static gboolean
plan_sdxl (GessoModel *m, GError **error)
{
  g_autoptr (JsonObject) sidecar = NULL;
  JsonObject *index = gesso_model_files_config (m->files, "model_index");

  if (index == NULL)
    {
      if (!load_sidecar (m->config_dir, ".", "model_index.json", &sidecar, NULL, error))
        return FALSE;
      index = sidecar;
    }
  m->force_zeros_for_empty_prompt = TRUE;
  if (index != NULL && json_object_has_member (index, "force_zeros_for_empty_prompt")
      && !gesso_config_get_bool (index, "model_index.json", "force_zeros_for_empty_prompt",
                                 &m->force_zeros_for_empty_prompt, error))
    return FALSE;
  return TRUE;
}

static gboolean
plan_unet (GessoModel *m, GError **error)
{
  g_autoptr (JsonObject) sidecar = NULL;
  g_autofree char *name = NULL;
  JsonObject *json = gesso_model_files_config (m->files, "unet");
  gint64 size = 0;

  if (json == NULL)
    {
      if (!load_sidecar (m->config_dir, "unet", "config.json", &sidecar, &name, error))
        return FALSE;
      json = sidecar;
    }
  if (!gesso_unet_config_for_model (m->files, m->weights, sidecar, &m->unet_config, error))
    return FALSE;
  /* the training resolution in latent cells; 0 until known (see native_sample_size) */
  m->sample_size = 0;
  if (json != NULL && json_object_has_member (json, "sample_size")
      && !json_object_get_null_member (json, "sample_size"))
    {
      /* in latent cells: 512 is 4096 pixels, far beyond any Stable Diffusion (64 to 128); a
       * larger value is a damaged config that would make every job's working size huge */
      if (!gesso_config_get_int (json, name ? name : "unet/config.json", "sample_size", 1, 512,
                                 &size, error))
        return FALSE;
      m->sample_size = (int) size;
    }
  return TRUE;
}

static gboolean
plan_vae (GessoModel *m, GError **error)
{
  g_autoptr (JsonObject) sidecar = NULL;
  g_autofree char *name = NULL;
  GessoVaeConfig config;

  if (m->taesd != NULL)
    {
      gesso_vae_config_for_taesd (m->taesd, &m->vae_config);
      return TRUE;
    }
  /* a separate VAE brings its own config or none: the config folder's describes the
   * checkpoint's VAE */
  if (gesso_model_files_config (m->files, "vae") == NULL
      && gesso_model_files_vae_path (m->files) == NULL
      && !load_sidecar (m->config_dir, "vae", "config.json", &sidecar, &name, error))
    return FALSE;
  if (sidecar != NULL)
    {
      gesso_vae_config_init (&config);
      if (!gesso_vae_config_from_json (&config, sidecar, name, error))
        return FALSE;
    }
  if (!gesso_vae_config_for_model (m->files, m->weights, sidecar ? &config : NULL,
                                   &m->vae_config, error))
    return FALSE;
  /* a standalone VAE file without a config scales latents as the model's family does: SDXL's
   * VAE has SD's shapes and other weights */
  if (m->sdxl && sidecar == NULL && gesso_model_files_config (m->files, "vae") == NULL)
    m->vae_config.scaling_factor = SDXL_VAE_SCALING_FACTOR;
  return TRUE;
}

/* The LDM .yaml named like a single file, if there is one, may say "parameterization: v"
 * (SD 2.x 768-v models come with v2-inference-v.yaml). *FOUND: it said eps or v. */
static gboolean
prediction_from_ldm_yaml (GessoModel *m, gboolean *found, GError **error)
{
  static const char *const key_path[] = { "model", "params", "parameterization", NULL };
  g_autofree char *stem = NULL;
  g_autofree char *file = NULL;
  g_autofree char *path = NULL;
  g_autofree char *value = NULL;

  *found = FALSE;
  if (gesso_model_files_layout (m->files) != GESSO_MODEL_LAYOUT_SINGLE_FILE)
    return TRUE;
  stem = single_file_stem (m->files);
  file = g_strconcat (stem, ".yaml", NULL);
  path = g_build_filename (gesso_model_files_dir (m->files), file, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  if (!gesso_ldm_yaml_get_scalar (path, key_path, &value, error))
    return FALSE;
  if (value == NULL)
    return TRUE;
  if (strcmp (value, "v") == 0)
    m->prediction = GESSO_PREDICTION_V;
  else if (strcmp (value, "eps") == 0)
    m->prediction = GESSO_PREDICTION_EPSILON;
  else
    {
      g_autofree char *shown_path = gesso_io_display (path);
      g_autofree char *shown_value = gesso_io_display (value);

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("%s says parameterization '%s'; Gesso runs eps and v models"), shown_path,
                   shown_value);
      return FALSE;
    }
  m->prediction_source = g_steal_pointer (&path);
  *found = TRUE;
  return TRUE;
}

/* The scheduler config (the folder's, or the config folder's for a single file) and the
 * prediction type: PARAMS's when not AUTO, else the LDM .yaml beside a single file, else
 * the scheduler config's, else epsilon. */
static gboolean
plan_scheduler (GessoModel *m, const GessoModelParams *params, GError **error)
{
  JsonObject *json = gesso_model_files_config (m->files, "scheduler");
  GessoSamplerConfig probe;
  gboolean from_yaml;

  if (json != NULL)
    {
      m->scheduler_json = json_object_ref (json);
      m->scheduler_json_name = g_build_filename (gesso_model_files_dir (m->files), "scheduler",
                                                 "scheduler_config.json", NULL);
    }
  else if (!load_sidecar (m->config_dir, "scheduler", "scheduler_config.json",
                          &m->scheduler_json, &m->scheduler_json_name, error))
    return FALSE;
  /* read it once now so that a broken config fails at open, not in the first job */
  gesso_sampler_config_init (&probe, GESSO_SAMPLER_DDIM);
  if (m->scheduler_json != NULL
      && !gesso_sampler_config_from_json (&probe, m->scheduler_json, m->scheduler_json_name,
                                          error))
    return FALSE;

  switch (params->prediction)
    {
    case GESSO_PREDICTION_TYPE_EPSILON:
      m->prediction = GESSO_PREDICTION_EPSILON;
      return TRUE;
    case GESSO_PREDICTION_TYPE_V:
      m->prediction = GESSO_PREDICTION_V;
      return TRUE;
    case GESSO_PREDICTION_TYPE_AUTO:
    default:
      break;
    }
  if (!prediction_from_ldm_yaml (m, &from_yaml, error))
    return FALSE;
  if (from_yaml)
    return TRUE;
  m->prediction = GESSO_PREDICTION_EPSILON;
  if (m->scheduler_json != NULL)
    {
      m->prediction = probe.prediction_type;
      m->prediction_source = g_strdup (m->scheduler_json_name);
    }
  return TRUE;
}

/* SD 1.x and 2.x were trained on the one KL-f8 autoencoder, whose latents diffusers scales by
 * 0.18215; SDXL's VAE has the same shapes but other weights and 0.13025, and SD 3 and Flux
 * have 16 latent channels. A separate VAE from another family would decode noise, so what
 * tells it apart (its latent, its config's scaling factor) is checked. A standalone file
 * carries no scaling factor: then, as in A1111 and ComfyUI, the shapes decide. */
#define SD_VAE_SCALING_FACTOR 0.18215

static gboolean
check_separate_sdxl_vae (const GessoModel *m, const char *shown, GError **error)
{
  if (m->vae_config.latent_channels == m->unet_config.out_channels
      && fabs (m->vae_config.scaling_factor - SDXL_VAE_SCALING_FACTOR) < 1e-6)
    return TRUE;
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               "the VAE '%s' (%d-channel latents scaled by %g) is not an SDXL VAE (4 channels, "
               "%g); choose one made for SDXL, such as sdxl_vae", shown,
               m->vae_config.latent_channels, m->vae_config.scaling_factor,
               SDXL_VAE_SCALING_FACTOR);
  return FALSE;
}

static gboolean
check_separate_vae (const GessoModel *m, GError **error)
{
  const char *path = m->taesd != NULL ? m->vae_path : gesso_model_files_vae_path (m->files);
  g_autofree char *shown = NULL;

  if (path == NULL)
    return TRUE;
  shown = gesso_io_display (path);
  if (m->taesd != NULL && m->vae_config.latent_channels != m->unet_config.out_channels)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the TAESD '%s' makes %d-channel latents but the model works on %d: it is "
                   "made for another model family (taesd3 and taef1 have 16); choose taesd "
                   "(SD 1.x/2.x) or taesdxl (SDXL)", shown, m->vae_config.latent_channels,
                   m->unet_config.out_channels);
      return FALSE;
    }
  if (m->taesd != NULL)
    return TRUE;
  if (m->sdxl)
    return check_separate_sdxl_vae (m, shown, error);
  if (m->vae_config.latent_channels != m->unet_config.out_channels)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("the VAE '%s' makes %d-channel latents but the model works on %d: it "
                   "belongs to another model family (SD 3 and Flux VAEs have 16); choose a "
                   "Stable Diffusion 1.x/2.x VAE"), shown, m->vae_config.latent_channels,
                   m->unet_config.out_channels);
      return FALSE;
    }
  if (fabs (m->vae_config.scaling_factor - SD_VAE_SCALING_FACTOR) > 1e-6)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("the VAE '%s' scales latents by %g, not Stable Diffusion 1.x/2.x's %g: it "
                   "is %s VAE; choose one made for SD 1.x/2.x (such as "
                   "vae-ft-mse-840000-ema-pruned)"), shown, m->vae_config.scaling_factor,
                   SD_VAE_SCALING_FACTOR,
                   fabs (m->vae_config.scaling_factor - 0.13025) < 1e-6 ? "an SDXL"
                                                                        : "another model's");
      return FALSE;
    }
  return TRUE;
}

static gboolean
is_sd2 (const GessoModel *m)
{
  const GessoUnetConfig *u = &m->unet_config;

  return !m->sdxl && (u->cross_attention_dim == 1024 || u->use_linear_projection
         || gesso_weights_text_keys (m->weights) == GESSO_TEXT_KEYS_OPENCLIP);
}

/* The training resolution in latent cells when no UNet config says: the weights do not
 * tell, but Stability's SD 2.x v-prediction models (2.0-v, 2.1-v) were trained at 768 px and
 * every other SD 1.x/2.x model at 512. */
static int
native_sample_size (const GessoModel *m)
{
  if (m->sample_size > 0)
    return m->sample_size;
  if (m->sdxl)
    return SDXL_SAMPLE_SIZE;
  return is_sd2 (m) && m->prediction == GESSO_PREDICTION_V ? 96 : 64;
}

static char *
describe_architecture (const GessoModel *m)
{
  return g_strdup_printf ("Stable Diffusion %s%s%s",
                          m->sdxl ? "XL" : is_sd2 (m) ? "2.x" : "1.x",
                          configs_say_inpainting (m) ? " inpainting" : "",
                          m->prediction == GESSO_PREDICTION_V ? " (v-prediction)" : "");
}

static gboolean
check_params (const GessoModelParams *params, GError **error)
{
  if (params->path == NULL || params->path[0] == '\0')
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("no model given: name a .safetensors file or a diffusers folder"));
      return FALSE;
    }
  if (params->n_threads < 0 || params->n_threads > 4096)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%d threads requested; use 0 (all cores) or 1 to 4096"),
                   params->n_threads);
      return FALSE;
    }
  if ((unsigned) params->prediction > GESSO_PREDICTION_TYPE_V)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("unknown prediction type %d"), (int) params->prediction);
      return FALSE;
    }
  return TRUE;
}

/* A model with its files mapped, weight names mapped, every config chosen and checked
 * against the weight shapes, and its tokenizer loaded, but no weight read: what describing a
 * model needs, and the first half of opening one. */
static GessoModel *
model_plan (const GessoModelParams *params, GError **error)
{
  g_autoptr (GessoModel) m = NULL;
  gboolean openclip;

  if (!check_params (params, error))
    return NULL;
  m = g_new0 (GessoModel, 1);
  m->n_threads = params->n_threads;
  m->release_weights = params->release_weights;
  m->files = gesso_model_files_open (params->path, error);
  if (m->files == NULL)
    return NULL;
  if (params->vae != NULL && params->vae[0] != '\0')
    {
      /* a tiny autoencoder stands beside the model's files; an AutoencoderKL replaces the
       * model's VAE tensors in them */
      if (gesso_taesd_detect (params->vae))
        {
          m->taesd = gesso_taesd_open (params->vae, error);
          m->vae_path = g_strdup (params->vae);
          if (m->taesd == NULL)
            return NULL;
        }
      else if (!gesso_model_files_set_vae (m->files, params->vae, error))
        return NULL;
    }
  m->weights = gesso_weights_new (m->files, error);
  if (m->weights == NULL)
    return NULL;
  if (gesso_model_files_layout (m->files) == GESSO_MODEL_LAYOUT_SINGLE_FILE
      && !find_config_dir (params, m->files, &m->config_dir, error))
    return NULL;
  if (gesso_weights_text_keys (m->weights) == GESSO_TEXT_KEYS_NONE)
    {
      gesso_weights_set_absent_error (m->weights, "text encoder", error);
      return NULL;
    }
  if (!find_tokenizer_dir (m, &m->tokenizer_dir, error))
    return NULL;
  /* the model's own tokenizer files may be wrong, which describing it must say; the bundled
   * table is not, and is built when the model is opened (a fifth of a second) */
  openclip = gesso_weights_text_keys (m->weights) == GESSO_TEXT_KEYS_OPENCLIP;
  if (m->tokenizer_dir != NULL
        ? (m->tokenizer = tokenizer_from_folder (m->tokenizer_dir, openclip, error)) == NULL
        : !check_bundled_fits (m, error))
    return NULL;
  m->sdxl = gesso_weights_is_sdxl (m->weights);
  if ((m->sdxl && !plan_sdxl (m, error)) || !plan_unet (m, error)
      || !plan_vae (m, error)
      || !check_separate_vae (m, error) || !plan_scheduler (m, params, error))
    return NULL;
  m->native_size = native_sample_size (m) * gesso_vae_config_latent_factor (&m->vae_config);
  m->architecture = describe_architecture (m);
  return g_steal_pointer (&m);
}

/* --- building: the components, every weight fetched and shape-checked ------------------- */

/* SDXL's second tokenizer: the folder's tokenizer_2/ (a single file's config folder's, or a
 * tokenizer_2/ beside it), else the CLIP table Gesso ships with OpenCLIP's "!" padding. Read
 * when the model is opened, not planned: describing a model needs only the first. */
static gboolean
open_tokenizer_2 (GessoModel *m, GError **error)
{
  const char *base = m->config_dir != NULL ? m->config_dir : gesso_model_files_dir (m->files);
  g_autofree char *dir = g_build_filename (base, "tokenizer_2", NULL);

  if (has_tokenizer_files (dir))
    m->tokenizer_2 = tokenizer_from_folder (dir, TRUE, error);
  else
    m->tokenizer_2 = gesso_tokenizer_new_bundled (GESSO_CLIP_FLAVOR_OPENCLIP, error);
  return m->tokenizer_2 != NULL;
}

/* SDXL's second text encoder, built like the first from its config (the folder's
 * text_encoder_2/, a single file's config folder's) or from its weights. */
static gboolean
open_text_encoder_2 (GessoModel *m, GError **error)
{
  g_autoptr (JsonObject) sidecar = NULL;
  JsonObject *json = gesso_model_files_config (m->files, "text_encoder_2");

  if (json == NULL)
    {
      if (!load_sidecar (m->config_dir, "text_encoder_2", "config.json", &sidecar, NULL, error))
        return FALSE;
      json = sidecar;
    }
  m->text_encoder_2 = gesso_text_encoder_new_for (m->weights, GESSO_COMPONENT_TEXT_ENCODER_2,
                                                  NULL, json, error);
  return m->text_encoder_2 != NULL;
}

static gboolean
open_text_encoder (GessoModel *m, GError **error)
{
  g_autoptr (JsonObject) sidecar = NULL;
  JsonObject *json = gesso_model_files_config (m->files, "text_encoder");

  if (json == NULL)
    {
      if (!load_sidecar (m->config_dir, "text_encoder", "config.json", &sidecar, NULL, error))
        return FALSE;
      json = sidecar;
    }
  m->text_encoder = gesso_text_encoder_new (m->weights, NULL, json, error);
  return m->text_encoder != NULL;
}

gboolean
gesso_model_encode_prompt (GessoModel *m, const char *text, int clip_skip, float *out,
                           float *pooled, GError **error)
{
  if (m->text_encoder == NULL && !gesso_prompt_cache_has (m->prompts, text, clip_skip))
    {
      if (!open_text_encoder (m, error) || (m->sdxl && !open_text_encoder_2 (m, error)))
        return FALSE;
      /* the embeddings' rows come back with the same ids the tokenizer gives their triggers */
      if (m->embedding_rows != NULL)
        {
          const int64_t width = gesso_text_encoder_get_config (m->text_encoder)->hidden_size;

          gesso_text_encoder_add_rows (m->text_encoder,
                                       (const float *) (void *) m->embedding_rows->data,
                                       (int64_t) m->embedding_rows->len / width);
        }
      gesso_prompt_cache_set_encoders (m->prompts, m->text_encoder, m->text_encoder_2);
    }
  return gesso_prompt_cache_encode_pooled (m->prompts, text, clip_skip, out, pooled, error);
}

void
gesso_model_prompts_encoded (GessoModel *m)
{
  if (!m->release_weights || m->text_encoder == NULL)
    return;
  gesso_prompt_cache_set_encoders (m->prompts, NULL, NULL);
  g_clear_pointer (&m->text_encoder, gesso_text_encoder_free);
  g_clear_pointer (&m->text_encoder_2, gesso_text_encoder_free);
  gesso_weights_release (m->weights, GESSO_COMPONENT_TEXT_ENCODER);
  gesso_weights_release (m->weights, GESSO_COMPONENT_TEXT_ENCODER_2);
}

gboolean
gesso_model_prepare_job (GessoModel *m, GError **error)
{
  if (m->unet_released && !gesso_unet_reload (m->unet, error))
    return FALSE;
  m->unet_released = FALSE;
  return TRUE;
}

void
gesso_model_sampling_done (GessoModel *m)
{
  /* the buffer the UNet's biggest weights grew, 113 MiB for SD 1.5 */
  gesso_weight_release_buffer ();
  if (!m->release_weights)
    return;
  gesso_weights_release (m->weights, GESSO_COMPONENT_UNET);
  m->unet_released = TRUE;
}

/* The components must fit together: text width = cross-attention width, VAE latent = UNet
 * latent (4 channels in, or 9 for inpainting models). */
static gboolean
check_fit (GessoModel *m, GError **error)
{
  const GessoUnetConfig *u = &m->unet_config;
  int64_t width = gesso_prompt_cache_width (m->prompts);
  int latent = m->vae_config.latent_channels;

  if (width != u->cross_attention_dim)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the text encoder makes %" G_GINT64_FORMAT "-wide embeddings but the UNet "
                   "reads %d; '%s' mixes components of different models",
                   width, u->cross_attention_dim, gesso_model_files_path (m->files));
      return FALSE;
    }
  if (gesso_prompt_cache_pooled_width (m->prompts) != gesso_unet_config_pooled_dim (u))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the text encoders make a %" G_GINT64_FORMAT "-wide pooled embedding but "
                   "the UNet reads %d; '%s' mixes components of different models",
                   gesso_prompt_cache_pooled_width (m->prompts), gesso_unet_config_pooled_dim (u),
                   gesso_model_files_path (m->files));
      return FALSE;
    }
  if (u->out_channels != latent || (u->in_channels != latent && u->in_channels != 2 * latent + 1))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("the UNet maps %d channels to %d but the VAE's latent has %d; Gesso runs "
                   "%d -> %d (or %d -> %d inpainting) UNets"), u->in_channels, u->out_channels,
                   latent, latent, latent, 2 * latent + 1, latent);
      return FALSE;
    }
  return TRUE;
}

GessoModel *
gesso_model_open (const GessoModelParams *params, GError **error)
{
  g_autoptr (GessoModel) m = NULL;

  g_return_val_if_fail (params != NULL, NULL);
  m = model_plan (params, error);
  if (m == NULL)
    return NULL;
  gesso_model_apply_threads (m);
  if (m->tokenizer == NULL
      && (m->tokenizer = gesso_tokenizer_new_bundled (
            gesso_weights_text_keys (m->weights) == GESSO_TEXT_KEYS_OPENCLIP
              ? GESSO_CLIP_FLAVOR_OPENCLIP : GESSO_CLIP_FLAVOR_OPENAI, error)) == NULL)
    return NULL;
  if (!open_text_encoder (m, error) || !gesso_model_add_embeddings (m, params->embeddings, error))
    return NULL;
  m->unet = gesso_unet_new (m->weights, &m->unet_config, error);
  if (m->unet == NULL)
    return NULL;
  m->vae = m->taesd != NULL ? gesso_vae_new_taesd (g_steal_pointer (&m->taesd))
                             : gesso_vae_new (m->weights, &m->vae_config, error);
  if (m->vae == NULL)
    return NULL;
  m->prompts = gesso_prompt_cache_new (m->tokenizer, m->text_encoder, PROMPT_CACHE_CAPACITY,
                                       error);
  if (m->prompts == NULL
      || (m->sdxl && (!open_tokenizer_2 (m, error) || !open_text_encoder_2 (m, error)
                      || !gesso_prompt_cache_set_second (m->prompts, m->tokenizer_2,
                                                         m->text_encoder_2, error)))
      || !check_fit (m, error))
    return NULL;
  return g_steal_pointer (&m);
}

/* --- probing: describing a model without loading it ------------------------------------ */

static const char *const tokenizer_file_names[] = {
  "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
};

GessoModelProbe *
gesso_model_probe (const GessoModelParams *params, GError **error)
{
  g_autoptr (GessoModel) m = NULL;
  g_autoptr (GStrvBuilder) files = g_strv_builder_new ();
  GessoModelProbe *probe;

  g_return_val_if_fail (params != NULL, NULL);
  m = model_plan (params, error);
  if (m == NULL)
    return NULL;
  probe = g_new0 (GessoModelProbe, 1);
  probe->architecture = g_strdup (m->architecture);
  probe->prediction = m->prediction == GESSO_PREDICTION_V ? GESSO_PREDICTION_TYPE_V
                                                           : GESSO_PREDICTION_TYPE_EPSILON;
  probe->prediction_source = g_strdup (m->prediction_source);
  probe->native_size = m->native_size;
  probe->latent_factor = gesso_vae_config_latent_factor (&m->vae_config);
  probe->inpainting = configs_say_inpainting (m);
  probe->config_dir = g_strdup (m->config_dir);
  probe->tokenizer_bundled = m->tokenizer_dir == NULL;
  for (guint i = 0; m->tokenizer_dir != NULL && i < G_N_ELEMENTS (tokenizer_file_names); i++)
    {
      g_autofree char *path = g_build_filename (m->tokenizer_dir, tokenizer_file_names[i], NULL);

      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_strv_builder_add (files, path);
    }
  probe->tokenizer_files = g_strv_builder_end (files);
  return probe;
}

void
gesso_model_probe_free (GessoModelProbe *probe)
{
  if (probe == NULL)
    return;
  g_free (probe->architecture);
  g_free (probe->prediction_source);
  g_free (probe->config_dir);
  g_strfreev (probe->tokenizer_files);
  g_free (probe);
}

gboolean
gesso_model_sampler_config (const GessoModel *model, GessoSamplerKind kind,
                            GessoSamplerConfig *config, GError **error)
{
  g_return_val_if_fail (model != NULL && config != NULL, FALSE);
  gesso_sampler_config_init (config, kind);
  config->num_train_timesteps = SD_TRAIN_STEPS;
  config->beta_start = SD_BETA_START;
  config->beta_end = SD_BETA_END;
  config->beta_schedule = GESSO_BETA_SCALED_LINEAR;
  config->steps_offset = 1;
  config->set_alpha_to_one = FALSE;
  config->clip_sample = FALSE;
  if (model->scheduler_json != NULL
      && !gesso_sampler_config_from_json (config, model->scheduler_json,
                                          model->scheduler_json_name, error))
    return FALSE;
  config->prediction_type = model->prediction;
  return TRUE;
}
