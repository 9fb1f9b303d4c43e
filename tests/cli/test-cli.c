/* The `gesso` program as a user meets it: exit statuses, one-line errors on stderr, and
 * `gesso info` counts checked against sums computed here, independently of core/io, from
 * the safetensors headers of every model in the conformance set.
 *
 * The program is $GESSO_EXE (meson sets it), else $GESSO_BUILD_DIR/cli/gesso. The models are
 * in $GESSO_CONFORMANCE_DIR/models, else $GESSO_SOURCE_DIR/../shared/conformance/models; the
 * test is skipped when there are none.
 */
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../unit/io-fixtures.h"

static const char *const component_names[] = {
  "unet", "vae", "text_encoder", "text_encoder_2", "other",
};
#define N_COMPONENTS 5
enum { UNET, VAE, TEXT_ENCODER, TEXT_ENCODER_2, OTHER };

typedef struct
{
  char *out;
  char *err;
  int status;           /* raw wait status */
} Run;

static void
run_clear (Run *run)
{
  g_free (run->out);
  g_free (run->err);
}

static char *
gesso_exe (void)
{
  const char *exe = g_getenv ("GESSO_EXE");
  const char *build = g_getenv ("GESSO_BUILD_DIR");

  if (exe != NULL)
    return g_strdup (exe);
  g_assert_nonnull (build);     /* run through meson test, or set GESSO_EXE */
  return g_build_filename (build, "cli", "gesso", NULL);
}

/* Runs gesso with ARGS (NULL-terminated) in the C locale, so the output is untranslated. */
static void
run_gesso (Run *run, const char *const *args)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) envp = g_get_environ ();

  g_ptr_array_add (argv, gesso_exe ());
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  envp = g_environ_setenv (envp, "LC_ALL", "C", TRUE);
  envp = g_environ_unsetenv (envp, "LANGUAGE");

  memset (run, 0, sizeof *run);
  g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &run->out,
                &run->err, &run->status, &error);
  g_assert_no_error (error);
}

static void
assert_no_signal (const Run *run)
{
  if (WIFSIGNALED (run->status))
    g_error ("gesso died of signal %d; stderr: %s", WTERMSIG (run->status), run->err);
  g_assert_true (WIFEXITED (run->status));
}

/* Exit status STATUS, nothing on stdout, and exactly one line "gesso: ..." on stderr that
 * holds each of the NULL-terminated fragments. */
static void
assert_fails_with (const Run *run, int status, ...)
{
  const char *newline;
  const char *fragment;
  va_list args;

  assert_no_signal (run);
  g_assert_cmpint (WEXITSTATUS (run->status), ==, status);
  g_assert_cmpstr (run->out, ==, "");
  g_assert_true (g_str_has_prefix (run->err, "gesso: "));
  newline = strchr (run->err, '\n');
  g_assert_nonnull (newline);
  g_assert_cmpint (newline[1], ==, '\0');
  va_start (args, status);
  while ((fragment = va_arg (args, const char *)) != NULL)
    if (strstr (run->err, fragment) == NULL)
      g_error ("stderr \"%s\" lacks \"%s\"", run->err, fragment);
  va_end (args);
}

static void
test_usage (void)
{
  Run run;

  run_gesso (&run, (const char *[]) { "--version", NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  g_assert_true (g_str_has_prefix (run.out, "gesso "));
  g_assert_cmpstr (run.err, ==, "");
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "--help", NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  g_assert_nonnull (strstr (run.out, "info"));
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "help", "info", NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  g_assert_nonnull (strstr (run.out, "gesso info"));
  run_clear (&run);

  run_gesso (&run, (const char *[]) { NULL });
  assert_fails_with (&run, 2, "no command", NULL);
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "frobnicate", NULL });
  assert_fails_with (&run, 2, "unknown command 'frobnicate'", NULL);
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "info", NULL });
  assert_fails_with (&run, 2, "info needs a model", NULL);
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "info", "--no-such-option", "x", NULL });
  assert_fails_with (&run, 2, "--no-such-option", NULL);
  run_clear (&run);
}

static char *
write_seed (const char *dir, const char *name, GBytes *bytes)
{
  gsize size;
  const void *data = g_bytes_get_data (bytes, &size);

  fixture_save_seed ("safetensors", name, data, size);
  return fixture_write (dir, name, bytes);
}

static void
test_bad_files (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *folder = g_build_filename (dir, "not-a-model", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.safetensors", NULL);
  g_autoptr (GBytes) whole = NULL;
  g_autoptr (GBytes) truncated = NULL;
  g_autoptr (GBytes) corrupt = fixture_st_raw ("{\"w\": {\"dtype\": ", 16);
  g_autoptr (GBytes) past_end = fixture_st_raw_claiming (1000, "{}", 4);
  g_autoptr (GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr (GBytes) seven = g_bytes_new ("\x08\0\0\0\0\0\0", 7);
  /* pickle protocol 2 of {'a': 1} */
  static const char pickle_data[] = "\x80\x02}q\x00(X\x01\x00\x00\x00" "aq\x01K\x01u.";
  g_autoptr (GBytes) pickle = g_bytes_new (pickle_data, sizeof pickle_data - 1);
  g_autofree char *good = NULL;
  struct
  {
    const char *name;
    GBytes *bytes;
    const char *expected;
  } cases[] = {
    { "truncated.safetensors", NULL, "data ends at byte" },
    { "corrupt-header.safetensors", corrupt, "the header is not valid JSON" },
    { "header-past-end.safetensors", past_end, "the header ends at byte 1008" },
    { "empty.safetensors", empty, "the file is empty" },
    { "seven.safetensors", seven, "only 7 bytes" },
    { "model.ckpt", pickle, "pickle checkpoints can execute arbitrary code" },
    { "renamed.safetensors", pickle, "refusing to load" },
  };
  FixtureSt b;
  Run run;

  fixture_st_init (&b);
  fixture_st_add (&b, "model.diffusion_model.conv_in.weight", "F32", "[4, 4, 3, 3]", NULL);
  fixture_st_add (&b, "first_stage_model.decoder.conv_out.bias", "F16", "[3]", NULL);
  whole = fixture_st_finish (&b);
  truncated = g_bytes_new_from_bytes (whole, 0, g_bytes_get_size (whole) - 3);
  cases[0].bytes = truncated;
  good = write_seed (dir, "good.safetensors", whole);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = write_seed (dir, cases[i].name, cases[i].bytes);

      run_gesso (&run, (const char *[]) { "info", path, NULL });
      assert_fails_with (&run, 1, path, cases[i].expected, NULL);
      run_clear (&run);
    }

  g_assert_cmpint (g_mkdir (folder, 0755), ==, 0);
  run_gesso (&run, (const char *[]) { "info", folder, NULL });
  assert_fails_with (&run, 1, folder, "is not a diffusers model folder: model_index.json is "
                     "missing", NULL);
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "info", missing, NULL });
  assert_fails_with (&run, 1, missing, "No such file or directory", NULL);
  run_clear (&run);

  /* a readable file among missing ones is still described; the status says something failed,
   * one line for each path: here the file is missing, then the readable one is incomplete */
  run_gesso (&run, (const char *[]) { "info", missing, good, NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 1);
  g_assert_nonnull (strstr (run.out, "unet:         1 tensor, 144 parameters (144); F32 1"));
  g_assert_nonnull (strstr (run.out, "vae:          1 tensor, 3 parameters (3); F16 1"));
  {
    g_auto (GStrv) lines = g_strsplit (run.err, "\n", -1);

    g_assert_cmpuint (g_strv_length (lines), ==, 3);
    g_assert_nonnull (strstr (lines[0], missing));
    g_assert_nonnull (strstr (lines[1], good));
    g_assert_nonnull (strstr (lines[1], "has no text encoder weights"));
    g_assert_cmpstr (lines[2], ==, "");
  }
  run_clear (&run);

  fixture_remove_tree (dir);
}

/* --- conformance models ------------------------------------------------------------------ */

typedef struct
{
  guint n_tensors;
  guint64 n_params;
} Count;

typedef struct
{
  Count components[N_COMPONENTS];
  guint n_files;
  gboolean open_clip;           /* the text encoder uses OpenCLIP names (SD2 single files) */
} Expected;

static gboolean
is_float_dtype (const char *dtype)
{
  return dtype[0] == 'F' || strcmp (dtype, "BF16") == 0;
}

static int
classify_key (const char *key)
{
  if (g_str_has_prefix (key, "model.diffusion_model."))
    return UNET;
  if (g_str_has_prefix (key, "first_stage_model."))
    return VAE;
  /* SDXL's second text encoder (OpenCLIP bigG) */
  if (g_str_has_prefix (key, "conditioner.embedders.1."))
    return TEXT_ENCODER_2;
  if (g_str_has_prefix (key, "cond_stage_model.") || g_str_has_prefix (key, "conditioner."))
    return TEXT_ENCODER;
  return OTHER;
}

/* Adds the tensors of the safetensors file PATH to EXPECTED: to COMPONENT, or by key prefix
 * when COMPONENT is -1. Read with plain stdio and json-glib, sharing no code with core/io. */
static void
count_file (const char *path, int component, Expected *expected)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *contents = NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  guint64 header_len;
  gsize size;

  g_assert_true (g_file_get_contents (path, &contents, &size, &error));
  g_assert_cmpuint (size, >=, 8);
  memcpy (&header_len, contents, 8);
  header_len = GUINT64_FROM_LE (header_len);
  g_assert_cmpuint (header_len, <=, size - 8);
  g_assert_true (json_parser_load_from_data (parser, contents + 8, (gssize) header_len,
                                             &error));
  expected->n_files++;
  json_object_iter_init (&iter, json_node_get_object (json_parser_get_root (parser)));
  while (json_object_iter_next (&iter, &name, &node))
    {
      JsonObject *entry;
      JsonArray *shape;
      guint64 numel = 1;
      int c;

      if (strcmp (name, "__metadata__") == 0)
        continue;
      entry = json_node_get_object (node);
      shape = json_object_get_array_member (entry, "shape");
      for (guint i = 0; i < json_array_get_length (shape); i++)
        numel *= (guint64) json_array_get_int_element (shape, i);
      c = component >= 0 ? component : classify_key (name);
      if (c == TEXT_ENCODER && g_str_has_prefix (name, "cond_stage_model.model."))
        expected->open_clip = TRUE;
      expected->components[c].n_tensors++;
      if (is_float_dtype (json_object_get_string_member (entry, "dtype")))
        expected->components[c].n_params += numel;
    }
}

/* Every .safetensors file in a diffusers component folder (the conformance folders hold one
 * each, no variants or shards). */
static void
count_folder (const char *model_dir, const char *sub, int component, Expected *expected)
{
  g_autofree char *folder = g_build_filename (model_dir, sub, NULL);
  GDir *dir = g_dir_open (folder, 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".safetensors"))
      {
        g_autofree char *path = g_build_filename (folder, name, NULL);
        count_file (path, component, expected);
      }
  g_dir_close (dir);
}

/* The text after "LABEL:" and its padding, on the line of OUT that starts with it. */
static const char *
field (const char *out, const char *label)
{
  size_t n = strlen (label);

  for (const char *line = out; line != NULL; line = strchr (line, '\n'))
    {
      if (*line == '\n')
        line++;
      if (strncmp (line, label, n) == 0 && line[n] == ':')
        {
          const char *value = line + n + 1;
          while (*value == ' ')
            value++;
          return value;
        }
    }
  g_error ("no '%s:' line in:\n%s", label, out);
}

/* Runs `gesso info PATH` and checks its counts against EXPECTED. */
static void
check_info (const char *path, const Expected *expected, Count printed[N_COMPONENTS])
{
  guint64 total_params = 0;
  guint total_tensors = 0;
  Run run;

  run_gesso (&run, (const char *[]) { "info", path, NULL });
  assert_no_signal (&run);
  if (WEXITSTATUS (run.status) != 0)
    g_error ("gesso info %s failed: %s", path, run.err);
  g_assert_cmpstr (run.err, ==, "");
  g_test_message ("%s", run.out);

  for (int c = 0; c < N_COMPONENTS; c++)
    {
      const char *value = field (run.out, component_names[c]);
      const char *params = strstr (value, ", ");

      g_assert_nonnull (params);
      printed[c].n_tensors = (guint) strtoul (value, NULL, 10);
      printed[c].n_params = g_ascii_strtoull (params + 2, NULL, 10);
      g_assert_cmpuint (printed[c].n_tensors, ==, expected->components[c].n_tensors);
      g_assert_cmpuint (printed[c].n_params, ==, expected->components[c].n_params);
      total_tensors += printed[c].n_tensors;
      total_params += printed[c].n_params;
    }
  g_assert_cmpuint (strtoul (field (run.out, "tensors"), NULL, 10), ==, total_tensors);
  g_assert_cmpuint (g_ascii_strtoull (field (run.out, "parameters"), NULL, 10), ==,
                    total_params);
  g_assert_cmpuint (strtoul (field (run.out, "files"), NULL, 10), ==, expected->n_files);
  run_clear (&run);
}

static char *
conformance_models_dir (void)
{
  const char *dir = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  if (dir != NULL)
    return g_build_filename (dir, "models", NULL);
  if (source != NULL)
    return g_build_filename (source, "..", "shared", "conformance", "models", NULL);
  return NULL;
}

static void
check_model (const char *model_dir)
{
  g_autofree char *diffusers = g_build_filename (model_dir, "diffusers", NULL);
  Count folder[N_COMPONENTS] = { 0 };
  gboolean have_folder = g_file_test (diffusers, G_FILE_TEST_IS_DIR);
  GDir *dir;
  const char *name;

  if (have_folder)
    {
      Expected expected = { 0 };
      count_folder (diffusers, "unet", UNET, &expected);
      count_folder (diffusers, "vae", VAE, &expected);
      count_folder (diffusers, "text_encoder", TEXT_ENCODER, &expected);
        {
          g_autofree char *second = g_build_filename (diffusers, "text_encoder_2", NULL);
          if (g_file_test (second, G_FILE_TEST_IS_DIR))
            count_folder (diffusers, "text_encoder_2", TEXT_ENCODER_2, &expected);
        }
      check_info (diffusers, &expected, folder);
    }

  dir = g_dir_open (model_dir, 0, NULL);
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      Expected expected = { 0 };
      Count single[N_COMPONENTS];

      if (!g_str_has_suffix (name, ".safetensors"))
        continue;
      path = g_build_filename (model_dir, name, NULL);
      count_file (path, -1, &expected);
      check_info (path, &expected, single);
      if (!have_folder)
        continue;
      /* the same weights in both layouts; the single file adds only LDM buffers (other)
       * and integer position_ids (no parameters) */
      g_assert_cmpuint (single[UNET].n_params, ==, folder[UNET].n_params);
      g_assert_cmpuint (single[VAE].n_params, ==, folder[VAE].n_params);
      g_assert_cmpuint (single[UNET].n_tensors, ==, folder[UNET].n_tensors);
      g_assert_cmpuint (single[VAE].n_tensors, ==, folder[VAE].n_tensors);
      /* an SD2 single file keeps OpenCLIP's unused last block, text_projection and
       * logit_scale, which the folder's CLIPTextModel does not have (conformance README) */
      if (expected.open_clip)
        g_assert_cmpuint (single[TEXT_ENCODER].n_params, >, folder[TEXT_ENCODER].n_params);
      else
        g_assert_cmpuint (single[TEXT_ENCODER].n_params, ==, folder[TEXT_ENCODER].n_params);
      /* SDXL's bigG: fused q/k/v in the single file, the same parameters */
      g_assert_cmpuint (single[TEXT_ENCODER_2].n_params, ==, folder[TEXT_ENCODER_2].n_params);
    }
  g_dir_close (dir);
}

static void
test_conformance_models (void)
{
  g_autofree char *models = conformance_models_dir ();
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GDir *dir;
  const char *name;

  if (models == NULL || !g_file_test (models, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance models (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  dir = g_dir_open (models, 0, NULL);
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_build_filename (models, name, NULL));
  g_dir_close (dir);
  g_assert_cmpuint (names->len, >, 0);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *index = g_build_filename (names->pdata[i], "diffusers",
                                                 "model_index.json", NULL);
      g_autofree char *folder = g_build_filename (names->pdata[i], "diffusers", NULL);
      const char *args[] = { "info", folder, NULL };
      Run run;

      /* checkpoints only: ControlNets and TAESD come as one model folder without an index */
      if (!g_file_test (index, G_FILE_TEST_IS_REGULAR))
        continue;
      /* and of a family the engine runs (SDXL is refused by name until it lands) */
      run_gesso (&run, args);
      if (strstr (run.err, "is not supported yet") != NULL)
        g_test_message ("skipped: %s", run.err);
      else
        check_model (names->pdata[i]);
      run_clear (&run);
    }
}

/* How a model would be used, on the bundled demo model: the values come from its own config
 * files, read here. */
static void
test_info_usage (void)
{
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  g_autofree char *model = g_build_filename (source ? source : ".", "data", "models",
                                             "gesso-emoji-64", NULL);
  g_autofree char *unet_config = g_build_filename (model, "unet", "config.json", NULL);
  g_autofree char *vae_config = g_build_filename (model, "vae", "config.json", NULL);
  g_autofree char *scheduler = g_build_filename (model, "scheduler", "scheduler_config.json",
                                                 NULL);
  g_autofree char *vocab = g_build_filename (model, "tokenizer", "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (model, "tokenizer", "merges.txt", NULL);
  g_autoptr (JsonParser) unet = json_parser_new ();
  g_autoptr (JsonParser) vae = json_parser_new ();
  g_autoptr (JsonParser) sched = json_parser_new ();
  gboolean v;
  g_autofree char *prediction = NULL;
  g_autofree char *resolution = NULL;
  int cells, factor;
  Run run;

  if (!g_file_test (model, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("the demo model is not in data/models");
      return;
    }
  g_assert_true (json_parser_load_from_file (unet, unet_config, NULL));
  g_assert_true (json_parser_load_from_file (vae, vae_config, NULL));
  cells = (int) json_object_get_int_member (json_node_get_object (json_parser_get_root (unet)),
                                            "sample_size");
  factor = 1 << (json_array_get_length (json_object_get_array_member (
                   json_node_get_object (json_parser_get_root (vae)), "block_out_channels")) - 1);
  resolution = g_strdup_printf ("resolution:   %d x %d pixels (latent %d x %d, %d pixels a cell)",
                                cells * factor, cells * factor, cells, cells, factor);
  g_assert_true (json_parser_load_from_file (sched, scheduler, NULL));
  v = g_strcmp0 (json_object_get_string_member_with_default (
                   json_node_get_object (json_parser_get_root (sched)), "prediction_type",
                   "epsilon"), "v_prediction") == 0;
  prediction = g_strdup_printf ("prediction:   %s (from %s)", v ? "v" : "epsilon", scheduler);

  run_gesso (&run, (const char *[]) { "info", model, NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  g_assert_nonnull (strstr (run.out, v ? "architecture: Stable Diffusion 1.x (v-prediction)\n"
                                       : "architecture: Stable Diffusion 1.x\n"));
  g_assert_nonnull (strstr (run.out, prediction));
  g_assert_nonnull (strstr (run.out, resolution));
  g_assert_nonnull (strstr (run.out, "configs:      the folder's own"));
  g_assert_nonnull (strstr (run.out, vocab));
  g_assert_nonnull (strstr (run.out, merges));
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "info", "--prediction", "v", model, NULL });
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  g_assert_nonnull (strstr (run.out, "architecture: Stable Diffusion 1.x (v-prediction)"));
  g_assert_nonnull (strstr (run.out, "prediction:   v (as --prediction says)"));
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "info", "--prediction", "x0", model, NULL });
  assert_fails_with (&run, 2, "--prediction is auto, epsilon or v, not 'x0'", NULL);
  run_clear (&run);
}

/* The first 10 hex digits of `sha256sum PATH`: A1111's model hash, computed by coreutils,
 * independently of Gesso. */
static char *
sha256sum_autov2 (const char *path)
{
  const char *argv[] = { "sha256sum", path, NULL };
  g_autofree char *out = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                     &status, NULL) || status != 0 || strlen (out) < 10)
    return NULL;
  return g_strndup (out, 10);
}

/* A generated PNG carries A1111's "parameters" text, model hash included, and `gesso info`
 * prints it back; the hash is computed once per file: a second look takes it from the cache
 * (proved by planting a value there), and a file changed under the same name is hashed
 * again. */
static void
test_parameters_and_hash (void)
{
  g_autofree char *models = conformance_models_dir ();
  g_autofree char *src = models ? g_build_filename (models, "tiny-sd1", "tiny-sd1.safetensors",
                                                    NULL) : NULL;
  g_autofree char *configs = models ? g_build_filename (models, "tiny-sd1", "diffusers", NULL)
                                    : NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *model = NULL;
  g_autofree char *png = NULL;
  g_autofree char *cache = NULL;
  g_autofree char *cache_file = NULL;
  g_autofree char *autov2 = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *data = NULL;
  gsize length;
  char *at;
  Run run;

  if (src == NULL || !g_file_test (src, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no conformance models (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  tmp = g_dir_make_tmp ("gesso-cli-XXXXXX", NULL);
  model = g_build_filename (tmp, "tiny one.safetensors", NULL);
  png = g_build_filename (tmp, "out.png", NULL);
  cache = g_build_filename (tmp, "cache", NULL);
  cache_file = g_build_filename (cache, "gesso", "models.ini", NULL);
  g_assert_true (g_file_get_contents (src, &data, &length, NULL));
  g_assert_true (g_file_set_contents (model, data, (gssize) length, NULL));
  g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  autov2 = sha256sum_autov2 (model);
  if (autov2 == NULL)
    {
      g_test_skip ("no sha256sum to compare with");
      return;
    }

  run_gesso (&run, (const char *[]) { "generate", "--model", model, "--config-dir", configs,
                                      "--prompt", "a red apple, on a table",
                                      "--negative-prompt", "blurry", "--steps", "2",
                                      "--seed", "42", "--guidance", "7.5", "--width", "32",
                                      "--height", "32", "--sampler", "euler_a", "--out", png,
                                      NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "info", png, NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  expected = g_strdup_printf ("\na red apple, on a table\nNegative prompt: blurry\n"
                              "Steps: 2, Sampler: Euler a, CFG scale: 7.5, Seed: 42, "
                              "Size: 32x32, Model hash: %s, Model: tiny one, Version: gesso ",
                              autov2);
  if (strstr (run.out, expected) == NULL)
    g_error ("gesso info printed \"%s\", which lacks \"%s\"", run.out, expected);
  run_clear (&run);

  /* the model's hash: computed by the run above, read from the cache now */
  g_assert_true (g_file_get_contents (cache_file, &contents, NULL, NULL));
  at = strstr (contents, autov2);
  g_assert_nonnull (at);
  memcpy (at, "0123456789", 10);
  g_assert_true (g_file_set_contents (cache_file, contents, -1, NULL));
  run_gesso (&run, (const char *[]) { "info", model, NULL });
  g_assert_nonnull (strstr (run.out, "model hash:   0123456789 "));
  run_clear (&run);

  /* the same name, other contents: hashed again */
  data[length - 1] ^= 1;
  g_assert_true (g_file_set_contents (model, data, (gssize) length, NULL));
  g_free (autov2);
  autov2 = sha256sum_autov2 (model);
  g_free (expected);
  expected = g_strdup_printf ("model hash:   %s ", autov2);
  run_gesso (&run, (const char *[]) { "info", model, NULL });
  g_assert_nonnull (strstr (run.out, expected));
  run_clear (&run);

  g_unsetenv ("XDG_CACHE_HOME");
  fixture_remove_tree (tmp);
}

/* A minimal safetensors file whose KEYS (shape [1, 1, 1, 1] each) tell its kind. */
static void
write_keys (const char *dir, const char *name, const char *const *keys)
{
  static const float zero[1];
  FixtureSt st;
  g_autoptr (GBytes) bytes = NULL;

  fixture_st_init (&st);
  for (guint i = 0; keys[i] != NULL; i++)
    fixture_st_add (&st, keys[i], "F32", "[1, 1, 1, 1]", zero);
  bytes = fixture_st_finish (&st);
  g_free (fixture_write (dir, name, bytes));
}

/* The line of `gesso models` output OUT that names FILE, or NULL. */
static char *
line_of (const char *out, const char *file)
{
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);

  for (char **l = lines; *l != NULL; l++)
    if (g_str_has_suffix (*l, file))
      return g_strdup (*l);
  return NULL;
}

/* `gesso models` with HOME holding A1111's and ComfyUI's folders and an extra_model_paths.yaml:
 * every file listed with its kind. */
static void
test_models (void)
{
  static const char *const checkpoint[] = {
    "model.diffusion_model.input_blocks.0.0.weight",
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", NULL,
  };
  static const char *const lora[] = { "lora_unet_x_attn2_to_k.lora_down.weight", NULL };
  static const char *const vae[] = { "encoder.conv_in.weight", "decoder.conv_in.weight", NULL };
  g_autofree char *home = fixture_make_tmpdir ();
  g_autofree char *webui = g_build_filename (home, "stable-diffusion-webui", "models", NULL);
  g_autofree char *comfy = g_build_filename (home, "ComfyUI", NULL);
  g_autofree char *dir = NULL;
  g_autofree char *old_home = g_strdup (g_getenv ("HOME"));
  static const struct
  {
    const char *file;
    const char *kind;
  } expected[] = {
    { "/stable-diffusion-webui/models/Stable-diffusion/a.safetensors", "checkpoint " },
    { "/stable-diffusion-webui/models/Lora/b.safetensors", "LoRA " },
    { "/ComfyUI/models/checkpoints/c.safetensors", "checkpoint " },
    { "/ComfyUI/models/vae/d.safetensors", "VAE " },
    { "/elsewhere/e.safetensors", "checkpoint " },
  };
  Run run;

  dir = g_build_filename (webui, "Stable-diffusion", NULL);
  write_keys (dir, "a.safetensors", checkpoint);
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (webui, "Lora", NULL);
  write_keys (dir, "b.safetensors", lora);
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (comfy, "models", "checkpoints", NULL);
  write_keys (dir, "c.safetensors", checkpoint);
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (comfy, "models", "vae", NULL);
  write_keys (dir, "d.safetensors", vae);
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (home, "elsewhere", NULL);
  write_keys (dir, "e.safetensors", checkpoint);
  g_free (fixture_write_text (comfy, "extra_model_paths.yaml",
                              "mine:\n  base_path: ~/\n  checkpoints: elsewhere\n"));

  g_setenv ("HOME", home, TRUE);
  g_setenv ("XDG_CACHE_HOME", home, TRUE);
  g_setenv ("XDG_CONFIG_HOME", home, TRUE);
  g_unsetenv ("GESSO_MODEL_PATH");
  run_gesso (&run, (const char *[]) { "models", NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  g_assert_cmpstr (run.err, ==, "");
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autofree char *line = line_of (run.out, expected[i].file);

      if (line == NULL || !g_str_has_prefix (line, expected[i].kind))
        g_error ("gesso models printed \"%s\": no %s line for %s", run.out, expected[i].kind,
                 expected[i].file);
    }
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "models", "--kind", "vae", NULL });
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  g_assert_nonnull (strstr (run.out, "d.safetensors"));
  g_assert_null (strstr (run.out, "a.safetensors"));
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "models", "--kind", "pickle", NULL });
  assert_fails_with (&run, 2, "--kind", NULL);
  run_clear (&run);
  g_unsetenv ("XDG_CACHE_HOME");
  g_unsetenv ("XDG_CONFIG_HOME");
  if (old_home != NULL)
    g_setenv ("HOME", old_home, TRUE);
  fixture_remove_tree (home);
}

/* --control: usage errors in one line; a run records its ControlNet in the PNG's parameters
 * as sd-webui-controlnet does and says when it stretches the control image; a ControlNet of
 * another family is refused in one line. */
static void
test_control (void)
{
  g_autofree char *models = conformance_models_dir ();
  g_autofree char *sd1 = models ? g_build_filename (models, "tiny-sd1", "diffusers", NULL)
                                : NULL;
  g_autofree char *sd2 = models ? g_build_filename (models, "tiny-sd2", "diffusers", NULL)
                                : NULL;
  g_autofree char *cn = models ? g_build_filename (models, "tiny-controlnet",
                                                   "tiny-controlnet-fp16.safetensors", NULL)
                               : NULL;
  g_autofree char *sketch = g_build_filename (g_getenv ("GESSO_SOURCE_DIR"), "data", "samples",
                                              "sketch.png", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("gesso-cli-XXXXXX", NULL);
  g_autofree char *png = g_build_filename (tmp, "out.png", NULL);
  g_autofree char *spec = NULL;
  Run run;

  run_gesso (&run, (const char *[]) { "generate", "--model", "m", "--prompt", "p", "--out", png,
                                      "--control", "cn.safetensors", NULL });
  assert_fails_with (&run, 2, "--control 'cn.safetensors'", "MODEL:IMAGE[:SCALE]", NULL);
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "generate", "--model", "m", "--prompt", "p", "--out", png,
                                      "--control", "cn:img.png", "--control-preprocess", "depth",
                                      NULL });
  assert_fails_with (&run, 2, "--control-preprocess 'depth'", NULL);
  run_clear (&run);

  if (sd1 == NULL || !g_file_test (cn, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no conformance models (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  spec = g_strdup_printf ("%s:%s:0.8", cn, sketch);
  run_gesso (&run, (const char *[]) { "generate", "--model", sd1, "--prompt", "a house",
                                      "--steps", "2", "--seed", "3", "--width", "32", "--height",
                                      "32", "--control", spec, "--control-preprocess",
                                      "scribble", "--control-end", "0.5", "--out", png, NULL });
  assert_no_signal (&run);
  if (WEXITSTATUS (run.status) != 0)
    g_error ("generate with --control failed: %s", run.err);
  g_assert_nonnull (strstr (run.err, "is 64 x 64; it is stretched to the picture's 32 x 32"));
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "info", png, NULL });
  if (strstr (run.out, "ControlNet 0: \"Module: scribble, Model: tiny-controlnet-fp16, "
                       "Weight: 0.8, Guidance Start: 0, Guidance End: 0.5\"") == NULL)
    g_error ("the parameters lack the ControlNet: %s", run.out);
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "info", cn, NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  if (strstr (run.out, "kind:         ControlNet (original layout)\n") == NULL
      || strstr (run.out, "control:      3-channel image, 8 pixels per latent cell\n") == NULL
      || strstr (run.out, "encoder:      2 levels, text width 32, ") == NULL)
    g_error ("gesso info does not describe the ControlNet: %s", run.out);
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "generate", "--model", sd2, "--prompt", "a house",
                                      "--steps", "1", "--width", "64", "--height", "64",
                                      "--control", spec, "--out", png, NULL });
  assert_fails_with (&run, 1, "does not fit this model", "another model family", NULL);
  run_clear (&run);
  fixture_remove_tree (tmp);
}

/* Decoded RGBA bytes of a PNG (or NULL), to compare pictures whatever their text chunks. */
static GBytes *
png_pixels (const char *path, int *width, int *height)
{
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new_from_file (path, NULL);
  g_autoptr (GdkPixbuf) rgba = NULL;
  GByteArray *rows = g_byte_array_new ();

  if (pixbuf == NULL)
    return NULL;
  rgba = gdk_pixbuf_add_alpha (pixbuf, FALSE, 0, 0, 0);
  *width = gdk_pixbuf_get_width (rgba);
  *height = gdk_pixbuf_get_height (rgba);
  for (int y = 0; y < *height; y++)
    g_byte_array_append (rows, gdk_pixbuf_get_pixels (rgba)
                                 + (gsize) y * (gsize) gdk_pixbuf_get_rowstride (rgba),
                         (guint) *width * 4);
  return g_byte_array_free_to_bytes (rows);
}

static void
assert_same_pixels (const char *a, const char *b)
{
  int wa = 0, ha = 0, wb = 0, hb = 0;
  g_autoptr (GBytes) pa = png_pixels (a, &wa, &ha);
  g_autoptr (GBytes) pb = png_pixels (b, &wb, &hb);

  g_assert_nonnull (pa);
  g_assert_nonnull (pb);
  g_assert_cmpint (wa, ==, wb);
  g_assert_cmpint (ha, ==, hb);
  g_assert_true (g_bytes_equal (pa, pb));
}

static void
run_ok (Run *run, const char *const *args)
{
  run_gesso (run, args);
  assert_no_signal (run);
  if (WEXITSTATUS (run->status) != 0)
    g_error ("gesso %s failed: %s", args[0], run->err);
}

/* SDXL runs every edit: on tiny-sdxl's single file (configs and tokenizers from the diffusers
 * folder beside it) generate, sdedit, inpaint and restyle each write a picture of the asked
 * size; inpaint leaves every pixel outside its mask as it was; `gesso info` names the family,
 * --timestep-spacing overrides the scheduler config, and a refiner is refused in one line. */
static void
test_sdxl_edits (void)
{
  g_autofree char *models = conformance_models_dir ();
  g_autofree char *model = models ? g_build_filename (models, "tiny-sdxl",
                                                      "tiny-sdxl-fp16.safetensors", NULL)
                                  : NULL;
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  g_autofree char *image = g_build_filename (source, "data", "samples", "remove-object.png",
                                             NULL);
  g_autofree char *mask = g_build_filename (source, "data", "samples",
                                            "remove-object-mask.png", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("gesso-cli-XXXXXX", NULL);
  g_autofree char *png = g_build_filename (tmp, "out.png", NULL);
  g_autofree char *refiner = g_build_filename (tmp, "refiner.safetensors", NULL);
  const char *const edits[][12] = {
    { "generate", "--prompt", "a red apple", "--width", "96", "--height", "64", NULL },
    { "sdedit", "--image", image, "--strength", "0.6", "--prompt", "a cat", NULL },
    { "inpaint", "--image", image, "--mask", mask, "--prompt", "a stone wall", NULL },
    { "restyle", "--image", image, "--source-prompt", "a photo", "--prompt", "a painting",
      "--strength", "0.7", NULL },
  };
  FixtureSt st;
  g_autoptr (GBytes) bytes = NULL;
  Run run;

  if (model == NULL || !g_file_test (model, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no tiny-sdxl conformance model (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  run_ok (&run, (const char *[]) { "info", model, NULL });
  g_assert_cmpstr (field (run.out, "architecture"), !=, NULL);
  g_assert_true (g_str_has_prefix (field (run.out, "architecture"), "Stable Diffusion XL\n"));
  run_clear (&run);

  for (size_t e = 0; e < G_N_ELEMENTS (edits); e++)
    {
      g_autoptr (GPtrArray) args = g_ptr_array_new ();
      int w = 0, h = 0;
      g_autoptr (GBytes) pixels = NULL;

      for (size_t i = 0; edits[e][i] != NULL; i++)
        g_ptr_array_add (args, (gpointer) edits[e][i]);
      g_ptr_array_add (args, "--model");
      g_ptr_array_add (args, model);
      g_ptr_array_add (args, "--steps");
      g_ptr_array_add (args, "3");
      g_ptr_array_add (args, "--seed");
      g_ptr_array_add (args, "5");
      g_ptr_array_add (args, "--out");
      g_ptr_array_add (args, png);
      g_ptr_array_add (args, NULL);
      run_ok (&run, (const char *const *) args->pdata);
      g_assert_nonnull (strstr (run.out, "(Stable Diffusion XL)"));
      run_clear (&run);
      pixels = png_pixels (png, &w, &h);
      g_assert_nonnull (pixels);
      g_assert_cmpint (w, ==, e == 0 ? 96 : 64);
      g_assert_cmpint (h, ==, 64);
      if (strcmp (edits[e][0], "inpaint") == 0)
        {
          int iw = 0, ih = 0, mw = 0, mh = 0;
          g_autoptr (GBytes) in = png_pixels (image, &iw, &ih);
          g_autoptr (GBytes) m = png_pixels (mask, &mw, &mh);
          const guint8 *a = g_bytes_get_data (in, NULL), *b = g_bytes_get_data (pixels, NULL);
          const guint8 *k = g_bytes_get_data (m, NULL);
          guint outside = 0, changed_inside = 0;

          for (int i = 0; i < w * h; i++)
            if (k[4 * i] == 0)
              {
                outside++;
                g_assert_cmpmem (a + 4 * i, 3, b + 4 * i, 3);
              }
            else if (memcmp (a + 4 * i, b + 4 * i, 3) != 0)
              changed_inside++;
          g_assert_cmpuint (outside, >, 0);
          g_assert_cmpuint (changed_inside, >, 0);
        }
    }

  /* --timestep-spacing: tiny-sdxl's scheduler config says leading, so naming it changes
   * nothing and trailing (SDXL-Turbo's) other timesteps and another picture */
  {
    const char *spacings[] = { NULL, "leading", "trailing" };
    GBytes *pictures[3] = { NULL, NULL, NULL };

    for (int i = 0; i < 3; i++)
      {
        int w = 0, h = 0;

        run_ok (&run, (const char *[]) { "generate", "--model", model, "--prompt", "a boat",
                                         "--width", "64", "--height", "64", "--steps", "2",
                                         "--sampler", "euler", "--seed", "9", "--out", png,
                                         spacings[i] ? "--timestep-spacing" : NULL,
                                         spacings[i], NULL });
        run_clear (&run);
        pictures[i] = png_pixels (png, &w, &h);
        g_assert_nonnull (pictures[i]);
      }
    g_assert_true (g_bytes_equal (pictures[0], pictures[1]));
    g_assert_false (g_bytes_equal (pictures[0], pictures[2]));
    for (int i = 0; i < 3; i++)
      g_bytes_unref (pictures[i]);
    run_gesso (&run, (const char *[]) { "generate", "--model", model, "--prompt", "a boat",
                                        "--timestep-spacing", "sideways", "--out", png, NULL });
    assert_fails_with (&run, 1, "unknown timestep spacing \"sideways\"", "trailing", NULL);
    run_clear (&run);
  }

  /* an SDXL refiner conditions on OpenCLIP bigG alone, its conditioner's embedder 0 */
  fixture_st_init (&st);
  fixture_st_add (&st, "conditioner.embedders.0.model.ln_final.weight", "F32", "[4]", NULL);
  fixture_st_add (&st, "model.diffusion_model.input_blocks.0.0.weight", "F32", "[8, 4, 3, 3]",
                  NULL);
  bytes = fixture_st_finish (&st);
  g_assert_true (g_file_set_contents (refiner, g_bytes_get_data (bytes, NULL),
                                      (gssize) g_bytes_get_size (bytes), NULL));
  run_gesso (&run, (const char *[]) { "generate", "--model", refiner, "--prompt", "p", "--out",
                                      png, NULL });
  assert_fails_with (&run, 1, "is an SDXL refiner", "use an SDXL base model", NULL);
  run_clear (&run);
  fixture_remove_tree (tmp);
}

/* conv_in of a 4-channel UNet widened to SDXL inpainting's 9 inputs [latent | mask | masked
 * image latent], the new inputs' weights zero (F16 zero is two zero bytes). */
static void
widen_conv_in (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
               const void *values, gpointer user_data)
{
  const int out = 32, in = 4, wide = 9, k = 9;  /* tiny-sdxl: 32 x 4 x 3 x 3 */
  g_autofree guint16 *w = NULL;

  (void) user_data;
  if (strcmp (name, "conv_in.weight") != 0)
    {
      fixture_st_add (st, name, dtype, shape_json, values);
      return;
    }
  g_assert_cmpstr (dtype, ==, "F16");
  w = g_new0 (guint16, out * wide * k);
  for (int o = 0; o < out; o++)
    memcpy (w + o * wide * k, (const guint16 *) values + o * in * k, in * k * sizeof (guint16));
  fixture_st_add (st, name, dtype, "[32, 9, 3, 3]", w);
}

/* A 9-channel SDXL inpainting UNet (tiny-sdxl's, conv_in widened) is told apart and inpaints
 * through its mask channels: everything outside the mask stays as it was. */
static void
test_sdxl_inpainting_model (void)
{
  g_autofree char *models = conformance_models_dir ();
  g_autofree char *folder = models ? g_build_filename (models, "tiny-sdxl", "diffusers", NULL)
                                   : NULL;
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  g_autofree char *image = g_build_filename (source, "data", "samples", "remove-object.png",
                                             NULL);
  g_autofree char *mask = g_build_filename (source, "data", "samples",
                                            "remove-object-mask.png", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("gesso-cli-XXXXXX", NULL);
  g_autofree char *model = g_build_filename (tmp, "inpaint", NULL);
  g_autofree char *png = g_build_filename (tmp, "out.png", NULL);
  g_autofree char *unet = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *config = NULL;
  g_autofree char *wide_config = NULL;
  const char *key;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GBytes) in = NULL, out = NULL, keep = NULL;
  int w = 0, h = 0;
  guint outside = 0, changed = 0;
  FixtureSt st;
  Run run;

  if (folder == NULL || !g_file_test (folder, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no tiny-sdxl conformance model (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  fixture_copy_tree (folder, model);
  unet = g_build_filename (model, "unet", "diffusion_pytorch_model.safetensors", NULL);
  fixture_st_init (&st);
  fixture_st_add_file (&st, unet, widen_conv_in, NULL);
  bytes = fixture_st_finish (&st);
  g_assert_true (g_file_set_contents (unet, g_bytes_get_data (bytes, NULL),
                                      (gssize) g_bytes_get_size (bytes), NULL));
  config_path = g_build_filename (model, "unet", "config.json", NULL);
  g_assert_true (g_file_get_contents (config_path, &config, NULL, NULL));
  key = strstr (config, "\"in_channels\": 4,");
  g_assert_nonnull (key);
  wide_config = g_strdup_printf ("%.*s\"in_channels\": 9,%s", (int) (key - config), config,
                                 key + strlen ("\"in_channels\": 4,"));
  g_assert_true (g_file_set_contents (config_path, wide_config, -1, NULL));

  run_ok (&run, (const char *[]) { "info", model, NULL });
  g_assert_true (g_str_has_prefix (field (run.out, "architecture"),
                                   "Stable Diffusion XL inpainting\n"));
  run_clear (&run);
  run_ok (&run, (const char *[]) { "inpaint", "--model", model, "--image", image, "--mask", mask,
                                   "--prompt", "a stone wall", "--steps", "3", "--seed", "2",
                                   "--out", png, NULL });
  run_clear (&run);
  in = png_pixels (image, &w, &h);
  keep = png_pixels (mask, &w, &h);
  out = png_pixels (png, &w, &h);
  g_assert_nonnull (out);
  for (int i = 0; i < w * h; i++)
    {
      const guint8 *a = (const guint8 *) g_bytes_get_data (in, NULL) + 4 * i;
      const guint8 *b = (const guint8 *) g_bytes_get_data (out, NULL) + 4 * i;

      if (((const guint8 *) g_bytes_get_data (keep, NULL))[4 * i] == 0)
        {
          outside++;
          g_assert_cmpmem (a, 3, b, 3);
        }
      else
        changed += memcmp (a, b, 3) != 0;
    }
  g_assert_cmpuint (outside, >, 0);
  g_assert_cmpuint (changed, >, 0);
  fixture_remove_tree (tmp);
}

/* What a newcomer meets: no --model takes the bundled demo model, named with the seed on
 * stdout ending in "wrote FILE"; both sampler spellings and "auto"; each command's --help
 * lists its own options with their defaults, and another command's option is refused;
 * strength 0 gives the input back untouched. */
static void
test_newcomer (void)
{
  g_autofree char *sketch = g_build_filename (g_getenv ("GESSO_SOURCE_DIR"), "data", "samples",
                                              "sketch.png", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("gesso-cli-XXXXXX", NULL);
  g_autofree char *a = g_build_filename (tmp, "a.png", NULL);
  g_autofree char *b = g_build_filename (tmp, "b.png", NULL);
  g_autofree char *wrote = g_strdup_printf ("wrote %s\n", a);
  Run run;

  run_ok (&run, (const char *[]) { "generate", "--prompt", "a red apple", "--steps", "2",
                                   "--seed", "11", "--sampler", "euler-a", "--out", a, NULL });
  g_assert_true (g_str_has_prefix (run.out, "model "));
  g_assert_nonnull (strstr (run.out, "gesso-emoji-64 ("));
  g_assert_nonnull (strstr (run.out, "), seed 11\n"));
  g_assert_true (g_str_has_suffix (run.out, wrote));
  run_clear (&run);
  run_ok (&run, (const char *[]) { "generate", "--prompt", "a red apple", "--steps", "2",
                                   "--seed", "11", "--sampler", "euler_a", "--out", b, NULL });
  run_clear (&run);
  assert_same_pixels (a, b);
  run_ok (&run, (const char *[]) { "generate", "--prompt", "a red apple", "--steps", "1",
                                   "--sampler", "auto", "--out", b, NULL });
  run_clear (&run);

  run_ok (&run, (const char *[]) { "generate", "--help", NULL });
  g_assert_null (strstr (run.out, "--mask-grow"));
  g_assert_null (strstr (run.out, "--jump-length"));
  g_assert_null (strstr (run.out, "--image"));
  g_assert_nonnull (strstr (run.out, "Sampling steps (default: 25)"));
  run_clear (&run);
  run_ok (&run, (const char *[]) { "inpaint", "--help", NULL });
  g_assert_nonnull (strstr (run.out, "RePaint jump length (default: 5)"));
  run_clear (&run);
  run_ok (&run, (const char *[]) { "help", "--help", NULL });
  g_assert_nonnull (strstr (run.out, "COMMAND"));
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "generate", "--prompt", "x", "--out", a, "--mask-grow",
                                      "3", NULL });
  assert_fails_with (&run, 2, "--mask-grow", NULL);
  run_clear (&run);

  run_ok (&run, (const char *[]) { "sdedit", "--image", sketch, "--prompt", "a face",
                                   "--strength", "0", "--out", a, NULL });
  run_clear (&run);
  assert_same_pixels (sketch, a);
  fixture_remove_tree (tmp);
}

/* An A1111 embedding of WIDTH zeros, written byte by byte. */
static char *
write_embedding (const char *dir, const char *name, int width)
{
  FixtureSt st;
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *shape = g_strdup_printf ("[1, %d]", width);

  fixture_st_init (&st);
  fixture_st_add (&st, "emb_params", "F32", shape, NULL);
  bytes = fixture_st_finish (&st);
  return fixture_write (dir, name, bytes);
}

/* TAESD and embeddings: `info` names them, an edit runs with them, and bad embeddings are
 * one line and exit 1 (a folder named as a file is a usage error). */
static void
test_addons (void)
{
  g_autofree char *models = conformance_models_dir ();
  g_autofree char *sd1 = models ? g_build_filename (models, "tiny-sd1", "diffusers", NULL) : NULL;
  g_autofree char *taesd = models ? g_build_filename (models, "tiny-taesd", NULL) : NULL;
  g_autofree char *decoder = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *png = NULL;
  g_autofree char *fits = NULL, *wide = NULL, *cut = NULL, *pickle = NULL;
  g_autofree char *data = NULL;
  gsize length;
  Run run;

  if (sd1 == NULL || !g_file_test (sd1, G_FILE_TEST_IS_DIR)
      || !g_file_test (taesd, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no tiny-sd1 / tiny-taesd in the conformance data");
      return;
    }
  decoder = g_build_filename (taesd, "taesd_decoder.safetensors", NULL);
  tmp = fixture_make_tmpdir ();
  png = g_build_filename (tmp, "out.png", NULL);
  fits = write_embedding (tmp, "zorblax.safetensors", 32);
  wide = write_embedding (tmp, "wide.safetensors", 768);
  g_assert_true (g_file_get_contents (fits, &data, &length, NULL));
  {
    g_autoptr (GBytes) b = g_bytes_new (data, length - 8);
    cut = fixture_write (tmp, "cut.safetensors", b);
  }
  {
    g_autoptr (GBytes) b = g_bytes_new_static ("\x80\x02}q\x00.", 6);
    pickle = fixture_write (tmp, "old.pt", b);
  }

  run_gesso (&run, (const char *[]) { "info", decoder, fits, NULL });
  assert_no_signal (&run);
  g_assert_cmpint (WEXITSTATUS (run.status), ==, 0);
  if (strstr (run.out, "TAESD") == NULL || strstr (run.out, "encoder and decoder") == NULL
      || strstr (run.out, "trigger:      zorblax") == NULL
      || strstr (run.out, "1 vector of width 32") == NULL)
    g_error ("info says: %s", run.out);
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "generate", "--model", sd1, "--vae", decoder,
                                      "--embedding-dir", tmp, "--prompt", "a zorblax",
                                      "--steps", "2", "--out", png, NULL });
  assert_no_signal (&run);
  if (WEXITSTATUS (run.status) != 0)
    g_error ("generate with TAESD and embeddings failed: %s", run.err);
  run_clear (&run);

  run_gesso (&run, (const char *[]) { "generate", "--model", sd1, "--embedding", wide,
                                      "--prompt", "p", "--out", png, NULL });
  assert_fails_with (&run, 1, "768-wide", "32 wide", NULL);
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "generate", "--model", sd1, "--embedding", cut,
                                      "--prompt", "p", "--out", png, NULL });
  assert_fails_with (&run, 1, "truncated", NULL);
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "generate", "--model", sd1, "--embedding", pickle,
                                      "--prompt", "p", "--out", png, NULL });
  assert_fails_with (&run, 1, "pickle", NULL);
  run_clear (&run);
  run_gesso (&run, (const char *[]) { "generate", "--model", sd1, "--embedding", tmp,
                                      "--prompt", "p", "--out", png, NULL });
  assert_fails_with (&run, 2, "--embedding-dir", NULL);
  run_clear (&run);
  fixture_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/usage", test_usage);
  g_test_add_func ("/cli/info/bad-files", test_bad_files);
  g_test_add_func ("/cli/info/conformance-models", test_conformance_models);
  g_test_add_func ("/cli/info/usage", test_info_usage);
  g_test_add_func ("/cli/generate/parameters-and-hash", test_parameters_and_hash);
  g_test_add_func ("/cli/models", test_models);
  g_test_add_func ("/cli/generate/control", test_control);
  g_test_add_func ("/cli/sdxl/edits", test_sdxl_edits);
  g_test_add_func ("/cli/sdxl/inpainting-model", test_sdxl_inpainting_model);
  g_test_add_func ("/cli/newcomer", test_newcomer);
  g_test_add_func ("/cli/addons", test_addons);
  return g_test_run ();
}
