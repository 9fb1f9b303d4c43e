/* The CLIP text encoder against the reference outputs in the conformance data
 * ($GESSO_CONFORMANCE_DIR, else $GESSO_SOURCE_DIR/../shared/conformance; skipped without
 * it), for every file of each model, and its argument checks. The conformance harness runs
 * the same cases through tests/conformance/family-text_encoder.c; this suite is the quick
 * loop while working on the encoder and keeps the error paths covered. */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "io/config.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "model/text_encoder.h"
#include "model/weights.h"

static char *
conformance_dir (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  char *dir;

  if (env != NULL && *env != '\0')
    dir = g_strdup (env);
  else if (source != NULL)
    dir = g_build_filename (source, "..", "shared", "conformance", NULL);
  else
    return NULL;
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_free (dir);
      return NULL;
    }
  return dir;
}

/* The model's diffusers folder and its single files, in name order. */
static GPtrArray *
model_variants (const char *dir, const char *model)
{
  g_autofree char *model_dir = g_build_filename (dir, "models", model, NULL);
  g_autoptr (GDir) d = g_dir_open (model_dir, 0, NULL);
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_ptr_array_add (paths, g_build_filename (model_dir, "diffusers", NULL));
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".safetensors"))
      g_ptr_array_add (paths, g_build_filename (model_dir, name, NULL));
  return paths;
}

static float *
case_floats (GessoSafetensors *st, const char *name, size_t *n)
{
  const GessoSafetensorsEntry *e = gesso_safetensors_lookup (st, name);
  g_autoptr (GError) error = NULL;
  float *out;

  if (e == NULL)
    return NULL;
  out = g_new (float, e->numel);
  g_assert_true (gesso_safetensors_entry_to_f32 (e, out, &error));
  g_assert_no_error (error);
  *n = (size_t) e->numel;
  return out;
}

static double
max_abs_diff (const float *a, const float *b, size_t n)
{
  double m = 0;

  for (size_t i = 0; i < n; i++)
    {
      double d = fabs ((double) a[i] - (double) b[i]);
      if (isnan (d))
        return NAN;
      m = MAX (m, d);
    }
  return m;
}

typedef struct
{
  const char *output;           /* tensor name in the case */
  int clip_skip;
  gboolean final_norm;
} Output;

static const Output outputs[] = {
  { "last_hidden_state", 0, TRUE },
  { "penultimate_hidden_state", 1, FALSE },
  { "penultimate_ln", 1, TRUE },
};

static void
check_case (const char *dir, const char *manifest_path, guint *n_checked)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) manifest = gesso_config_load (manifest_path, &error);
  g_autofree char *base = g_strndup (manifest_path, strlen (manifest_path) - strlen (".json"));
  g_autofree char *tensors_path = g_strconcat (base, ".safetensors", NULL);
  g_autoptr (GessoSafetensors) st = NULL;
  g_autoptr (GPtrArray) variants = NULL;
  const GessoSafetensorsEntry *ids_entry;
  g_autofree int64_t *ids = NULL;
  const char *model;
  double tol;

  g_assert_no_error (error);
  g_assert_true (gesso_config_get_string (manifest, "manifest", "model", &model, &error));
  tol = json_object_get_double_member (json_object_get_object_member (manifest, "tolerance"),
                                       "max_abs");
  st = gesso_safetensors_open (tensors_path, &error);
  g_assert_no_error (error);
  ids_entry = gesso_safetensors_lookup (st, "input_ids");
  g_assert_nonnull (ids_entry);
  ids = g_new (int64_t, ids_entry->numel);
  g_assert_true (gesso_safetensors_entry_to_i64 (ids_entry, ids, &error));

  variants = model_variants (dir, model);
  for (guint v = 0; v < variants->len; v++)
    {
      const char *path = variants->pdata[v];
      g_autofree char *folder = g_build_filename (dir, "models", model, "diffusers", NULL);
      g_autofree char *config_path = g_build_filename (folder, "text_encoder", "config.json",
                                                       NULL);
      g_autoptr (GessoModelFiles) files = gesso_model_files_open (path, &error);
      g_autoptr (GessoWeights) weights = NULL;
      g_autoptr (GessoTextEncoder) enc = NULL;
      g_autoptr (JsonObject) sidecar = NULL;
      g_autofree char *label = g_path_get_basename (path);
      JsonObject *config;

      g_assert_no_error (error);
      weights = gesso_weights_new (files, &error);
      /* the conformance set also holds families the engine does not run yet (SDXL) */
      if (g_error_matches (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED))
        {
          g_test_message ("%s %s: skipped: %s", manifest_path, label, error->message);
          g_clear_error (&error);
          continue;
        }
      g_assert_no_error (error);
      /* A single file carries no config: take the folder's, as a user's sidecar would. */
      config = gesso_model_files_config (files, "text_encoder");
      if (config == NULL)
        {
          sidecar = gesso_config_load (config_path, &error);
          g_assert_no_error (error);
          config = sidecar;
        }
      enc = gesso_text_encoder_new (weights, NULL, config, &error);
      g_assert_no_error (error);

      for (size_t o = 0; o < G_N_ELEMENTS (outputs); o++)
        {
          size_t n = 0;
          g_autofree float *want = case_floats (st, outputs[o].output, &n);
          g_autofree float *got = NULL;
          double d;

          if (want == NULL)
            continue;
          got = g_new (float, n);
          if (outputs[o].final_norm)
            g_assert_true (gesso_text_encoder_encode (enc, ids, outputs[o].clip_skip, got,
                                                      &error));
          else
            g_assert_true (gesso_text_encoder_hidden_state (enc, ids, outputs[o].clip_skip, got,
                                                            &error));
          g_assert_no_error (error);
          d = max_abs_diff (want, got, n);
          g_test_message ("%s %s %s: max_abs %.3g (tol %.3g)", manifest_path, label,
                          outputs[o].output, d, tol);
          if (!(d <= tol))
            g_error ("%s: %s of %s differs by %g > %g", manifest_path, outputs[o].output, path,
                     d, tol);
          (*n_checked)++;
        }
    }
}

static void
test_conformance (void)
{
  g_autofree char *dir = conformance_dir ();
  g_autofree char *te_dir = NULL;
  g_autoptr (GDir) d = NULL;
  const char *name;
  guint n_checked = 0;

  if (dir == NULL)
    {
      g_test_skip ("no conformance data");
      return;
    }
  te_dir = g_build_filename (dir, "text_encoder", NULL);
  d = g_dir_open (te_dir, 0, NULL);
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "te-") && g_str_has_suffix (name, ".json"))
      {
        g_autofree char *path = g_build_filename (te_dir, name, NULL);
        check_case (dir, path, &n_checked);
      }
  g_assert_cmpuint (n_checked, >, 0);
}

/* Opens tiny-sd1's single file (no config) or skips. */
static gboolean
open_sd1_file (GessoModelFiles **files, GessoWeights **weights)
{
  g_autofree char *dir = conformance_dir ();
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;

  if (dir == NULL)
    {
      g_test_skip ("no conformance data");
      return FALSE;
    }
  path = g_build_filename (dir, "models", "tiny-sd1", "tiny-sd1-fp16.safetensors", NULL);
  *files = gesso_model_files_open (path, &error);
  g_assert_no_error (error);
  *weights = gesso_weights_new (*files, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
test_errors (void)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoTextEncoder) enc = NULL;
  g_autoptr (GError) error = NULL;
  GessoTextEncoderConfig config;
  int64_t ids[77] = { 0 };
  float out[77 * 32];

  if (!open_sd1_file (&files, &weights))
    return;

  /* 32 wide: too narrow to infer heads from the head size 64 every real CLIP uses. */
  enc = gesso_text_encoder_new (weights, NULL, NULL, &error);
  g_assert_null (enc);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "num_attention_heads"));
  g_clear_error (&error);

  gesso_text_encoder_config_init (&config);
  config.n_heads = 5;
  g_assert_null (gesso_text_encoder_new (weights, &config, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  config.n_heads = 4;
  config.n_layers = 3;
  g_assert_null (gesso_text_encoder_new (weights, &config, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_clear_error (&error);

  config.n_layers = 0;
  config.intermediate_size = 128;
  g_assert_null (gesso_text_encoder_new (weights, &config, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "mlp.fc1.weight' has shape [64, 32], expected"));
  g_clear_error (&error);

  config.intermediate_size = 0;
  enc = gesso_text_encoder_new (weights, &config, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_text_encoder_get_config (enc)->n_layers, ==, 2);
  g_assert_cmpint (gesso_text_encoder_get_config (enc)->activation, ==,
                   GESSO_TEXT_ACT_QUICK_GELU);

  g_assert_false (gesso_text_encoder_encode (enc, ids, 2, out, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_text_encoder_encode (enc, ids, -1, out, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  ids[5] = 49408;
  g_assert_false (gesso_text_encoder_encode (enc, ids, 0, out, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "49408"));
  g_clear_error (&error);
  ids[5] = 49407;
  g_assert_true (gesso_text_encoder_encode (enc, ids, 1, out, &error));
  g_assert_no_error (error);
}

/* Bad config.json values are refused with the key's name, not clamped. */
static void
test_bad_config (void)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GError) error = NULL;
  static const char *const bad[] = {
    "{\"num_attention_heads\": 0}",
    "{\"num_attention_heads\": \"four\"}",
    "{\"num_attention_heads\": 4, \"hidden_act\": \"relu\"}",
    "{\"num_attention_heads\": 4, \"layer_norm_eps\": -1}",
    "{\"num_attention_heads\": 4, \"hidden_size\": 48}",
  };

  if (!open_sd1_file (&files, &weights))
    return;
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (JsonObject) json = gesso_config_load_from_data (bad[i], -1, "config.json",
                                                                 &error);
      g_assert_no_error (error);
      g_assert_null (gesso_text_encoder_new (weights, NULL, json, &error));
      g_assert_nonnull (error);
      g_test_message ("%s -> %s", bad[i], error->message);
      g_clear_error (&error);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/text-encoder/conformance", test_conformance);
  g_test_add_func ("/model/text-encoder/errors", test_errors);
  g_test_add_func ("/model/text-encoder/bad-config", test_bad_config);
  return g_test_run ();
}
