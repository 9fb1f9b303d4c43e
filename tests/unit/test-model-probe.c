/* gesso_model_probe: what opening a model would use, told without loading it.
 *
 * The truth is read here, with json-glib, from the configs the models ship (sample_size and
 * in_channels of unet/config.json, the VAE's levels, the scheduler's prediction_type), and
 * every probe is compared with what gesso_model_open then reports for the same path. Runs on
 * the bundled demo model always and on the conformance models when ../shared is there.
 */
#include "gesso-config.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "gesso.h"
#include "io/model_files.h"
#include "io-fixtures.h"

typedef struct
{
  int native_size;
  int latent_factor;
  gboolean inpainting;
  GessoPredictionType prediction;
} Truth;

static JsonObject *
read_config (const char *folder, const char *sub, const char *file)
{
  g_autofree char *path = g_build_filename (folder, sub, file, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* What FOLDER's (a diffusers folder's) own config files say. */
static void
truth_from_configs (const char *folder, Truth *truth)
{
  g_autoptr (JsonObject) unet = read_config (folder, "unet", "config.json");
  g_autoptr (JsonObject) vae = read_config (folder, "vae", "config.json");
  g_autoptr (JsonObject) scheduler = read_config (folder, "scheduler", "scheduler_config.json");
  guint levels = json_array_get_length (json_object_get_array_member (vae, "block_out_channels"));
  const char *prediction = json_object_get_string_member_with_default (scheduler,
                                                                       "prediction_type",
                                                                       "epsilon");

  truth->latent_factor = 1 << (levels - 1);
  truth->native_size = (int) json_object_get_int_member (unet, "sample_size")
                       * truth->latent_factor;
  truth->inpainting = json_object_get_int_member (unet, "in_channels") == 9;
  truth->prediction = strcmp (prediction, "v_prediction") == 0 ? GESSO_PREDICTION_TYPE_V
                                                                 : GESSO_PREDICTION_TYPE_EPSILON;
}

static GessoModelProbe *
probe_path (const char *path, GessoPredictionType prediction)
{
  g_autoptr (GError) error = NULL;
  GessoModelParams params;
  GessoModelProbe *probe;

  gesso_model_params_init (&params);
  params.path = path;
  params.prediction = prediction;
  probe = gesso_model_probe (&params, &error);
  g_assert_no_error (error);
  g_assert_nonnull (probe);
  return probe;
}

/* The probe of PATH says what CONFIGS (the diffusers folder of its configs) say, names the
 * tokenizer files in TOKENIZER_DIR, and agrees with the model gesso_model_open makes. */
static void
check_model (const char *path, const char *configs, const char *tokenizer_dir)
{
  g_autoptr (GessoModelProbe) probe = probe_path (path, GESSO_PREDICTION_TYPE_AUTO);
  g_autofree char *vocab = g_build_filename (tokenizer_dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (tokenizer_dir, "merges.txt", NULL);
  g_autofree char *scheduler = g_build_filename (configs, "scheduler", "scheduler_config.json",
                                                 NULL);
  g_autoptr (GessoModel) model = NULL;
  g_autoptr (GError) error = NULL;
  GessoModelParams params;
  Truth truth;

  truth_from_configs (configs, &truth);
  g_test_message ("%s: %s, %d px", path, probe->architecture, probe->native_size);
  g_assert_cmpint (probe->native_size, ==, truth.native_size);
  g_assert_cmpint (probe->latent_factor, ==, truth.latent_factor);
  g_assert_cmpint (probe->inpainting, ==, truth.inpainting);
  g_assert_cmpint (probe->prediction, ==, truth.prediction);
  g_assert_cmpstr (probe->prediction_source, ==, scheduler);
  g_assert_nonnull (strstr (probe->architecture, truth.inpainting ? "inpainting" : "Stable"));
  g_assert_cmpint (strstr (probe->architecture, "(v-prediction)") != NULL, ==,
                   truth.prediction == GESSO_PREDICTION_TYPE_V);
  g_assert_true (g_strv_contains ((const char *const *) probe->tokenizer_files, vocab));
  g_assert_true (g_strv_contains ((const char *const *) probe->tokenizer_files, merges));

  gesso_model_params_init (&params);
  params.path = path;
  model = gesso_model_open (&params, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gesso_model_get_architecture (model), ==, probe->architecture);
  g_assert_cmpint (gesso_model_get_native_size (model), ==, probe->native_size);
  g_assert_cmpint (gesso_model_get_latent_factor (model), ==, probe->latent_factor);
  g_assert_cmpint (gesso_model_is_inpainting (model), ==, probe->inpainting);
}

static char *
demo_model_dir (void)
{
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  return g_build_filename (source ? source : GESSO_SOURCE_DIR, "data", "models",
                           "gesso-emoji-64", NULL);
}

static void
test_demo_model (void)
{
  g_autofree char *dir = demo_model_dir ();
  g_autofree char *tokenizer = g_build_filename (dir, "tokenizer", NULL);
  g_autoptr (GessoModelProbe) probe = NULL;

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("the demo model is not in data/models");
      return;
    }
  check_model (dir, dir, tokenizer);
  probe = probe_path (dir, GESSO_PREDICTION_TYPE_AUTO);
  /* a folder's configs are its own: no separate config folder */
  g_assert_null (probe->config_dir);
}

/* A prediction type the caller sets wins over the scheduler config, and says so. */
static void
test_explicit_prediction (void)
{
  g_autofree char *dir = demo_model_dir ();
  g_autoptr (GessoModelProbe) probe = NULL;

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("the demo model is not in data/models");
      return;
    }
  probe = probe_path (dir, GESSO_PREDICTION_TYPE_V);
  g_assert_cmpint (probe->prediction, ==, GESSO_PREDICTION_TYPE_V);
  g_assert_null (probe->prediction_source);
  g_assert_nonnull (strstr (probe->architecture, "(v-prediction)"));
}

static char *
conformance_models_dir (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  if (env != NULL && *env != '\0')
    return g_build_filename (env, "models", NULL);
  return g_build_filename (source ? source : GESSO_SOURCE_DIR, "..", "shared", "conformance",
                           "models", NULL);
}

/* FALSE, with the engine's reason as the test's message, for a conformance model that is no
 * checkpoint (a ControlNet) or of a kind the engine does not run yet (TAESD). */
static gboolean
engine_runs (const char *folder)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelProbe) probe = NULL;
  g_autoptr (GessoModelFiles) controlnet = gesso_model_files_open_controlnet (folder, NULL);
  GessoModelParams params;

  gesso_model_params_init (&params);
  params.path = folder;
  probe = gesso_model_probe (&params, &error);
  if (g_error_matches (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED) || controlnet != NULL)
    {
      g_test_message ("skipped: %s", error->message);
      return FALSE;
    }
  return TRUE;
}

/* Every conformance model, as a folder and as each of its single files (whose configs and
 * tokenizer are found in the diffusers folder beside them). */
static void
test_conformance_models (void)
{
  g_autofree char *models = conformance_models_dir ();
  g_autoptr (GDir) dir = g_dir_open (models, 0, NULL);
  const char *name;
  guint checked = 0;

  if (dir == NULL)
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *model_dir = g_build_filename (models, name, NULL);
      g_autofree char *folder = g_build_filename (model_dir, "diffusers", NULL);
      g_autofree char *tokenizer = g_build_filename (folder, "tokenizer", NULL);
      g_autoptr (GDir) files = NULL;
      const char *file;

      if (!g_file_test (folder, G_FILE_TEST_IS_DIR) || !engine_runs (folder))
        continue;
      check_model (folder, folder, tokenizer);
      checked++;
      files = g_dir_open (model_dir, 0, NULL);
      while ((file = g_dir_read_name (files)) != NULL)
        {
          g_autofree char *path = g_build_filename (model_dir, file, NULL);
          g_autoptr (GessoModelProbe) probe = NULL;

          if (!g_str_has_suffix (file, ".safetensors"))
            continue;
          check_model (path, folder, tokenizer);
          probe = probe_path (path, GESSO_PREDICTION_TYPE_AUTO);
          g_assert_cmpstr (probe->config_dir, ==, folder);
          checked++;
        }
    }
  g_assert_cmpuint (checked, >, 0);
}

/* The conformance MODEL's single file FILE linked as model.safetensors into a new temporary
 * folder, with the model's vocab.json and merges.txt beside it when WITH_TOKENIZER; NULL (the
 * test skipped) without the conformance models. */
static char *
lone_single_file (const char *model, const char *file_name, gboolean with_tokenizer,
                  char **tmp)
{
  static const char *const tokenizer_files[] = { "vocab.json", "merges.txt" };
  g_autofree char *models = conformance_models_dir ();
  g_autofree char *model_dir = g_build_filename (models, model, NULL);
  g_autofree char *source = g_build_filename (model_dir, file_name, NULL);
  char *file;

  if (!g_file_test (source, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      return NULL;
    }
  *tmp = fixture_make_tmpdir ();
  file = g_build_filename (*tmp, "model.safetensors", NULL);
  g_assert_cmpint (symlink (source, file), ==, 0);
  for (guint i = 0; with_tokenizer && i < G_N_ELEMENTS (tokenizer_files); i++)
    {
      g_autofree char *from = g_build_filename (model_dir, "diffusers", "tokenizer",
                                                tokenizer_files[i], NULL);
      g_autofree char *to = g_build_filename (*tmp, tokenizer_files[i], NULL);

      g_assert_cmpint (symlink (from, to), ==, 0);
    }
  return file;
}

/* PATH fails to probe and to open with the same one-line error, of CODE; returns it. */
static GError *
assert_probe_fails_like_open (const char *path, int code)
{
  g_autoptr (GError) open_error = NULL;
  GError *probe_error = NULL;
  GessoModelParams params;

  gesso_model_params_init (&params);
  params.path = path;
  g_assert_null (gesso_model_probe (&params, &probe_error));
  g_assert_null (gesso_model_open (&params, &open_error));
  g_assert_error (probe_error, GESSO_ERROR, code);
  g_assert_cmpstr (probe_error->message, ==, open_error->message);
  g_assert_null (strchr (probe_error->message, '\n'));
  return probe_error;
}

/* A single file alone in its folder brings no tokenizer: it gets the bundled CLIP table, and
 * the probe says so instead of naming files. */
static void
test_single_file_without_tokenizer (void)
{
  g_autofree char *tmp = NULL;
  g_autofree char *file = lone_single_file ("tiny-sd1", "tiny-sd1.safetensors", FALSE, &tmp);
  g_autoptr (GessoModelProbe) probe = NULL;

  if (file == NULL)
    return;
  probe = probe_path (file, GESSO_PREDICTION_TYPE_AUTO);
  g_assert_true (probe->tokenizer_bundled);
  g_assert_null (probe->tokenizer_files[0]);
  g_assert_cmpstr (probe->architecture, ==, "Stable Diffusion 1.x");
  fixture_remove_tree (tmp);
}

/* A single file with the LDM .yaml named like it: "parameterization: v" makes it a
 * v-prediction model (as SD 2.x 768-v files come), unless the caller says otherwise; a broken
 * .yaml fails the probe and the open alike, naming the file. */
static void
test_single_file_with_ldm_yaml (void)
{
  g_autofree char *tmp = NULL;
  g_autofree char *file = lone_single_file ("tiny-sd1", "tiny-sd1.safetensors", TRUE, &tmp);
  g_autofree char *yaml = NULL;
  g_autoptr (GessoModelProbe) v = NULL;
  g_autoptr (GessoModelProbe) asked = NULL;
  g_autoptr (GError) error = NULL;

  if (file == NULL)
    return;
  yaml = g_build_filename (tmp, "model.yaml", NULL);
  g_assert_true (g_file_set_contents (yaml, "model:\n  params:\n    parameterization: \"v\"\n",
                                      -1, NULL));
  v = probe_path (file, GESSO_PREDICTION_TYPE_AUTO);
  g_assert_cmpint (v->prediction, ==, GESSO_PREDICTION_TYPE_V);
  g_assert_cmpstr (v->prediction_source, ==, yaml);
  g_assert_cmpstr (v->architecture, ==, "Stable Diffusion 1.x (v-prediction)");
  asked = probe_path (file, GESSO_PREDICTION_TYPE_EPSILON);
  g_assert_cmpint (asked->prediction, ==, GESSO_PREDICTION_TYPE_EPSILON);
  g_assert_null (asked->prediction_source);

  g_assert_true (g_file_set_contents (yaml, "model: [params\n", -1, NULL));
  error = assert_probe_fails_like_open (file, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, yaml));
  g_clear_error (&error);

  /* a value from the file is shown, control characters escaped, on the one line */
  g_assert_true (g_file_set_contents (yaml, "model: {params: {parameterization: \"x0\\nv\"}}\n",
                                      -1, NULL));
  error = assert_probe_fails_like_open (file, GESSO_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "parameterization 'x0"));
  fixture_remove_tree (tmp);
}

/* With no config to say, the native size is 512 px (64 cells) except for SD 2.x
 * v-prediction models, Stability's 768-v: 96 cells. */
static void
test_native_size_without_config (void)
{
  g_autofree char *tmp = NULL;
  g_autofree char *file = lone_single_file ("tiny-sd2", "tiny-sd2-fp16.safetensors", TRUE,
                                            &tmp);
  g_autoptr (GessoModelProbe) epsilon = NULL;
  g_autoptr (GessoModelProbe) v = NULL;

  if (file == NULL)
    return;
  epsilon = probe_path (file, GESSO_PREDICTION_TYPE_EPSILON);
  v = probe_path (file, GESSO_PREDICTION_TYPE_V);
  g_assert_cmpstr (v->architecture, ==, "Stable Diffusion 2.x (v-prediction)");
  g_assert_cmpint (epsilon->native_size, ==, 64 * epsilon->latent_factor);
  g_assert_cmpint (v->native_size, ==, 96 * v->latent_factor);
  fixture_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model-probe/demo-model", test_demo_model);
  g_test_add_func ("/model-probe/explicit-prediction", test_explicit_prediction);
  g_test_add_func ("/model-probe/conformance-models", test_conformance_models);
  g_test_add_func ("/model-probe/single-file-without-tokenizer",
                   test_single_file_without_tokenizer);
  g_test_add_func ("/model-probe/single-file-with-ldm-yaml", test_single_file_with_ldm_yaml);
  g_test_add_func ("/model-probe/native-size-without-config", test_native_size_without_config);
  return g_test_run ();
}
