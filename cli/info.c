/* `gesso info PATH...`: what a model file or folder holds and how Gesso would use it, without
 * loading it for inference.
 *
 * The inventory comes from gesso_model_summary_new(), which validates every tensor entry, so
 * `gesso info` doubles as a check that a download is complete and safe to load; the usage
 * (architecture, prediction type, resolution, configs, tokenizer files) from
 * gesso_model_probe(), which chooses configs and checks them against the weight shapes the
 * way opening the model does, without reading any weight. The status is non-zero when either
 * fails, so scripts can ask "can Gesso use this?".
 */
#include "gesso-config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/parameters.h"
#include "gesso.h"

/* 123456789 -> "123.5M": what people call model sizes (decimal units, like "860M"). */
static char *
format_count (guint64 n)
{
  static const char *const units[] = { "K", "M", "B", "T" };
  double value = (double) n;
  int unit = -1;

  if (n < 1000)
    return g_strdup_printf ("%" G_GUINT64_FORMAT, n);
  /* switch unit when the rounded figure would read 1000.0 */
  while (unit + 1 < (int) G_N_ELEMENTS (units) && value >= 999.95)
    {
      value /= 1000.0;
      unit++;
    }
  return g_strdup_printf ("%.1f%s", value, units[unit]);
}

static void
print_field (const char *label, const char *value)
{
  g_autofree char *with_colon = g_strdup_printf ("%s:", label);

  g_print ("%-13s %s\n", with_colon, value);
}

static char *
format_component (const GessoComponentSummary *c)
{
  g_autofree char *human = format_count (c->n_params);
  /* the count as text: xgettext cannot read a msgid built with G_GUINT64_FORMAT */
  g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, c->n_params);
  GString *text = g_string_new (NULL);
  gboolean first = TRUE;

  g_string_append_printf (text,
                          g_dngettext (GETTEXT_PACKAGE, "%u tensor", "%u tensors", c->n_tensors),
                          c->n_tensors);
  g_string_append (text, ", ");
  g_string_append_printf (text,
                          g_dngettext (GETTEXT_PACKAGE, "%s parameter (%s)", "%s parameters (%s)",
                                       (gulong) MIN (c->n_params, G_MAXULONG)),
                          count, human);
  for (int d = 0; d < GESSO_DTYPE_COUNT; d++)
    {
      if (c->n_tensors_by_dtype[d] == 0)
        continue;
      g_string_append_printf (text, "%s %s %u", first ? ";" : ",", gesso_dtype_name (d),
                              c->n_tensors_by_dtype[d]);
      first = FALSE;
    }
  return g_string_free (text, FALSE);
}

static char *
format_prediction (const GessoModelProbe *probe, GessoPredictionType asked)
{
  const char *name = probe->prediction == GESSO_PREDICTION_TYPE_V ? "v" : "epsilon";

  if (asked != GESSO_PREDICTION_TYPE_AUTO)
    return g_strdup_printf (_("%s (as --prediction says)"), name);
  if (probe->prediction_source != NULL)
    return g_strdup_printf (_("%s (from %s)"), name, probe->prediction_source);
  return g_strdup_printf (_("%s (no scheduler config says; --prediction sets it)"), name);
}

static void
print_probe (const GessoModelProbe *probe, GessoModelLayout layout, GessoPredictionType asked)
{
  g_autofree char *prediction = format_prediction (probe, asked);
  int cells = probe->native_size / probe->latent_factor;
  g_autofree char *resolution = g_strdup_printf (_("%d x %d pixels (latent %d x %d, %d pixels "
                                                   "a cell)"), probe->native_size,
                                                 probe->native_size, cells, cells,
                                                 probe->latent_factor);
  const char *configs = probe->config_dir;

  if (configs == NULL)
    configs = layout == GESSO_MODEL_LAYOUT_DIFFUSERS ? _("the folder's own")
                                                     : _("none found: inferred from the weight "
                                                         "shapes, with Stable Diffusion's "
                                                         "schedule");
  print_field (_("architecture"), probe->architecture);
  print_field (_("prediction"), prediction);
  print_field (_("resolution"), resolution);
  print_field (_("configs"), configs);
  if (probe->tokenizer_bundled)
    print_field (_("tokenizer"), _("none with the model: the CLIP vocabulary Gesso ships"));
  for (guint i = 0; probe->tokenizer_files[i] != NULL; i++)
    if (i == 0)
      print_field (_("tokenizer"), probe->tokenizer_files[i]);
    else
      g_print ("%-14s%s\n", "", probe->tokenizer_files[i]);
}

static void
print_summary (const GessoModelSummary *s, const GessoModelProbe *probe,
               GessoPredictionType asked)
{
  g_autofree char *files = NULL;
  g_autofree char *tensors = g_strdup_printf ("%u", s->n_tensors);
  g_autofree char *human = format_count (s->n_params);
  g_autofree char *params = g_strdup_printf ("%" G_GUINT64_FORMAT " (%s)", s->n_params, human);

  files = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u safetensors file",
                                        "%u safetensors files", s->n_files), s->n_files);
  print_field (_("path"), s->path);
  print_field (_("layout"), s->layout == GESSO_MODEL_LAYOUT_DIFFUSERS ? _("diffusers folder")
                                                                      : _("single file"));
  print_field (_("files"), files);
  if (probe != NULL)
    print_probe (probe, s->layout, asked);
  else
    print_field (_("architecture"), s->architecture);
  print_field (_("tensors"), tensors);
  print_field (_("parameters"), params);
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    {
      g_autofree char *line = format_component (&s->components[c]);
      /* component names are identifiers (as in the diffusers folders), not translated */
      print_field (gesso_component_name (c), line);
    }
}

/* Whether PATH starts like a PNG file: `gesso info` then prints the settings stored in it. */
static gboolean
is_png (const char *path)
{
  static const guchar magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  guchar head[8] = { 0 };
  FILE *file = g_file_test (path, G_FILE_TEST_IS_REGULAR) ? fopen (path, "rb") : NULL;
  gboolean png;

  if (file == NULL)
    return FALSE;
  png = fread (head, 1, sizeof head, file) == sizeof head && memcmp (head, magic, 8) == 0;
  fclose (file);
  return png;
}

/* The "parameters" text of a PNG (A1111's, or Gesso's in the same form), as stored. */
static gboolean
describe_image (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  if (!gesso_cli_parameters_read (path, &text, &error))
    {
      gesso_cli_error ("%s", error->message);
      return FALSE;
    }
  print_field (_("path"), path);
  if (text == NULL)
    {
      print_field (_("parameters"), _("none (the image carries no generation settings)"));
      return TRUE;
    }
  print_field (_("parameters"), "");
  g_print ("%s\n", text);
  return TRUE;
}

/* "abcdef1234 (SHA-256 abcdef...)" for a model file; NULL for a folder. */
static char *
format_hash (const char *path, GessoModelCache *cache)
{
  g_autofree char *sha256 = NULL;
  g_autofree char *autov2 = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  sha256 = gesso_model_hash_sha256 (path, cache, NULL, NULL);
  if (sha256 == NULL)
    return NULL;
  autov2 = gesso_model_hash_autov2 (sha256);
  return g_strdup_printf (_("%s (A1111 and civitai's AutoV2; SHA-256 %s)"), autov2, sha256);
}

/* Describes PATH; FALSE (after the one-line error) when it is unreadable or unusable. A
 * readable model that Gesso cannot use is still described. */
/* A ControlNet: what it steers and which models it fits. */
static gboolean
describe_controlnet (const char *path, const GessoControlNetInfo *cn, GessoModelCache *cache)
{
  g_autofree char *params = format_count (cn->parameters);
  g_autofree char *hash = format_hash (path, cache);
  g_autofree char *text = NULL;

  print_field (_("path"), path);
  print_field (_("kind"), cn->has_config ? _("ControlNet (diffusers folder)")
                                         : _("ControlNet (original layout)"));
  print_field (_("fits"), cn->family != NULL ? cn->family : _("unknown"));
  text = g_strdup_printf (_("%d-channel image, %d pixels per latent cell"), cn->image_channels,
                          cn->image_factor);
  print_field (_("control"), text);
  g_free (text);
  text = g_strdup_printf (_("%d levels, text width %d, %s parameters"), cn->levels,
                          cn->text_width, params);
  print_field (_("encoder"), text);
  if (hash != NULL)
    print_field (_("model hash"), hash);
  return TRUE;
}

/* A tiny autoencoder: its layout, halves and the latent it fits. */
static gboolean
describe_taesd (const char *path, const GessoTaesdInfo *t)
{
  g_autofree char *params = format_count (t->parameters);
  g_autofree char *text = NULL;

  print_field (_("path"), path);
  print_field (_("kind"), _("TAESD tiny autoencoder (fast, approximate VAE)"));
  print_field (_("layout"), t->layout);
  print_field (_("fits"), t->fits);
  text = g_strdup_printf (_("%s%s%s; %d-channel latent, %d pixels per cell, width %d, %s "
                            "parameters"), t->has_encoder ? _("encoder") : "",
                          t->has_encoder && t->has_decoder ? _(" and ") : "",
                          t->has_decoder ? _("decoder") : "", t->latent_channels,
                          t->latent_factor, t->width, params);
  print_field (_("network"), text);
  print_field (_("use"), _("--vae PATH (a whole edit), or beside the model for previews"));
  return TRUE;
}

/* A textual-inversion embedding: its trigger word, size and family. */
static gboolean
describe_embedding (const char *path, const GessoEmbeddingInfo *e)
{
  g_autofree char *text = NULL;

  print_field (_("path"), path);
  print_field (_("kind"), _("textual-inversion embedding"));
  print_field (_("layout"), e->layout);
  print_field (_("trigger"), e->trigger);
  text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%d vector of width %d",
                                       "%d vectors of width %d", e->n_vectors),
                          e->n_vectors, e->width);
  print_field (_("vectors"), text);
  print_field (_("fits"), e->family != NULL ? e->family : _("unknown"));
  return TRUE;
}

/* A LoRA: its layout, what it changes and the family it seems made for. */
static gboolean
describe_lora (const char *path, const GessoLoraInfo *l)
{
  g_autofree char *text = NULL;

  print_field (_("path"), path);
  print_field (_("kind"), _("LoRA"));
  print_field (_("layout"), l->layout);
  text = g_strdup_printf (_("%u UNet layers, %u text-encoder layers, rank up to %d"),
                          l->unet_layers, l->text_layers, (int) l->max_rank);
  print_field (_("changes"), text);
  print_field (_("fits"), l->family != NULL ? l->family : _("unknown"));
  print_field (_("use"), _("--lora PATH[:WEIGHT], or <lora:NAME:WEIGHT> in the prompt"));
  return TRUE;
}

/* PATH described as a ControlNet, TAESD, LoRA or embedding when it is one (*DESCRIBED set;
 * the result is then the outcome), else left for the checkpoint description. */
static gboolean
describe_addon (const char *path, GessoModelCache *cache, gboolean *described)
{
  GessoControlNetInfo controlnet;
  GessoTaesdInfo taesd;
  GessoEmbeddingInfo embedding = { 0 };
  GessoLoraInfo lora;
  g_autoptr (GError) lora_error = NULL;
  gboolean ok;

  *described = TRUE;
  if (gesso_controlnet_probe (path, &controlnet, NULL))
    return describe_controlnet (path, &controlnet, cache);
  if (gesso_taesd_probe (path, &taesd, NULL))
    return describe_taesd (path, &taesd);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      *described = FALSE;
      return TRUE;
    }
  if (gesso_lora_probe (path, &lora, &lora_error))
    return describe_lora (path, &lora);
  /* a LyCORIS kind Gesso refuses, or a LoRA missing a factor: say that, not "no UNet" */
  if (g_error_matches (lora_error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED)
      || g_error_matches (lora_error, GESSO_ERROR, GESSO_ERROR_CORRUPT))
    {
      gesso_cli_error ("%s", lora_error->message);
      return FALSE;
    }
  if (gesso_embedding_probe (path, &embedding, NULL))
    {
      ok = describe_embedding (path, &embedding);
      gesso_embedding_info_clear (&embedding);
      return ok;
    }
  *described = FALSE;
  return TRUE;
}

static gboolean
describe (const char *path, const GessoModelParams *defaults, GessoModelCache *cache)
{
  g_autofree char *hash = NULL;
  g_autofree char *family = NULL;
  GessoAssetKind kind = GESSO_ASSET_UNKNOWN;
  gboolean described = FALSE, ok;

  /* the header (cached) says what the file is: a checkpoint is not also read as each add-on
   * (a FIFO or device is left to the readers below, which refuse it without blocking) */
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR | G_FILE_TEST_IS_DIR)
      || !gesso_asset_identify (path, cache, &kind, &family, NULL)
      || kind != GESSO_ASSET_CHECKPOINT)
    {
      ok = describe_addon (path, cache, &described);
      if (described)
        return ok;
    }

  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelSummary) summary = gesso_model_summary_new (path, &error);
  g_autoptr (GessoModelProbe) probe = NULL;
  GessoModelParams params = *defaults;

  if (summary == NULL)
    {
      gesso_cli_error ("%s", error->message);
      return FALSE;
    }
  params.path = path;
  probe = gesso_model_probe (&params, &error);
  print_summary (summary, probe, params.prediction);
  hash = format_hash (path, cache);
  if (hash != NULL)
    print_field (_("model hash"), hash);
  if (probe == NULL)
    {
      /* most messages name the file already; say which one when they do not */
      if (strstr (error->message, path) != NULL)
        gesso_cli_error ("%s", error->message);
      else
        gesso_cli_error (_("cannot use '%s': %s"), path, error->message);
      return FALSE;
    }
  return TRUE;
}

int
gesso_cli_info (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new (_("PATH…"));
  g_autofree char *config_dir = NULL;
  g_autofree char *prediction = NULL;
  GOptionEntry entries[] = {
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &config_dir,
      N_("A diffusers folder with the configs of a single-file model"), N_("DIR") },
    { "prediction", 0, 0, G_OPTION_ARG_STRING, &prediction,
      N_("What the model predicts: auto, epsilon or v"), N_("TYPE") },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GessoModelCache) cache = gesso_cli_model_cache_new ();
  GessoModelParams params;
  int status = GESSO_CLI_EXIT_OK;

  g_option_context_set_summary (context,
                                _("Describe models: a .safetensors file or a diffusers folder "
                                  "each. Every tensor entry is validated; pickle checkpoints "
                                  "(.ckpt, .pt, .pth, .bin) are refused. The status is 0 only "
                                  "when Gesso can use every model named. A model file's hash "
                                  "is A1111's \"Model hash\". For a PNG image, prints the "
                                  "settings it was made with (its \"parameters\" text)."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  if (!gesso_cli_parse (context, "info", &argc, &argv))
    return GESSO_CLI_EXIT_USAGE;
  if (argc < 2)
    {
      gesso_cli_error (_("info needs a model: a .safetensors file or a diffusers folder"));
      return GESSO_CLI_EXIT_USAGE;
    }
  gesso_model_params_init (&params);
  params.config_dir = config_dir;
  if (!gesso_cli_parse_prediction (prediction, &params.prediction))
    return GESSO_CLI_EXIT_USAGE;

  for (int i = 1; i < argc; i++)
    {
      if (i > 1)
        g_print ("\n");
      if (is_png (argv[i]) ? !describe_image (argv[i]) : !describe (argv[i], &params, cache))
        status = GESSO_CLI_EXIT_FAILURE;
    }
  return status;
}
