/* LDM .yaml configs: the one scalar Gesso reads (model.params.parameterization) is found
 * where YAML puts it, whatever the style, and nowhere else; bad files fail with one line. */
#include "gesso-config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "gesso.h"
#include "io/ldm_yaml.h"
#include "io-fixtures.h"

static const char *const parameterization[] = { "model", "params", "parameterization", NULL };

/* The scalar at model.params.parameterization of TEXT, asserting the parse succeeds. */
/* Every text tested here also seeds fuzz-ldm_yaml (tools/fuzz-smoke.sh). */
static void
save_seed (const char *text)
{
  g_autofree char *name = g_compute_checksum_for_string (G_CHECKSUM_SHA1, text, -1);

  fixture_save_seed ("ldm_yaml", name, text, strlen (text));
}

static char *
lookup (const char *text)
{
  g_autoptr (GError) error = NULL;
  char *value = NULL;

  save_seed (text);
  g_assert_true (gesso_ldm_yaml_get_scalar_from_data (text, strlen (text), "test.yaml",
                                                      parameterization, &value, &error));
  g_assert_no_error (error);
  return value;
}

static void
assert_lookup (const char *text, const char *expected)
{
  g_autofree char *value = lookup (text);

  g_assert_cmpstr (value, ==, expected);
}

/* Shaped like the configs SD 2.x ships (block style, comments, sequences, nested params). */
static void
test_block_style (void)
{
  assert_lookup ("model:\n"
                 "  base_learning_rate: 1.0e-4\n"
                 "  target: ldm.models.diffusion.ddpm.LatentDiffusion\n"
                 "  params:\n"
                 "    parameterization: \"v\"  # 768-v\n"
                 "    linear_start: 0.00085\n"
                 "    unet_config:\n"
                 "      params:\n"
                 "        attention_resolutions: [ 4, 2, 1 ]\n"
                 "        channel_mult: [ 1, 2, 4, 4 ]\n",
                 "v");
  assert_lookup ("model:\n  params:\n    linear_end: 0.012\n    parameterization: eps\n", "eps");
}

static void
test_flow_style (void)
{
  assert_lookup ("{model: {target: x, params: {parameterization: v, timesteps: 1000}}}", "v");
  assert_lookup ("model: {params: {schedule: [1, {parameterization: eps}], "
                 "parameterization: 'v'}}", "v");
}

/* The same key anywhere else is not the model's parameterization. */
static void
test_elsewhere_is_absent (void)
{
  g_autofree char *nested = lookup ("model:\n  params:\n    unet_config:\n      params:\n"
                                    "        parameterization: v\n");
  g_autofree char *top = lookup ("parameterization: v\nmodel:\n  params: {}\n");
  g_autofree char *listed = lookup ("model:\n  params:\n    - parameterization: v\n");
  g_autofree char *none = lookup ("model:\n  target: x\n");
  g_autofree char *empty = lookup ("");
  g_autofree char *second_document = lookup ("model: {}\n---\nmodel: {params: "
                                             "{parameterization: v}}\n");

  g_assert_null (nested);
  g_assert_null (top);
  g_assert_null (listed);
  g_assert_null (none);
  g_assert_null (empty);
  g_assert_null (second_document);
}

/* Keys that are collections, anchors and aliases parse and do not confuse the path. */
static void
test_complex_keys_and_aliases (void)
{
  assert_lookup ("? [a, b]\n: c\nmodel:\n  ? {x: 1}\n  : y\n  params:\n    parameterization: v\n",
                 "v");
  assert_lookup ("base: &base {parameterization: eps}\nmodel:\n  extra: *base\n  params:\n"
                 "    parameterization: v\n", "v");
}

static void
assert_fails (const char *text, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  char *value = (char *) "untouched";

  save_seed (text);
  g_assert_false (gesso_ldm_yaml_get_scalar_from_data (text, strlen (text), "bad.yaml",
                                                       parameterization, &value, &error));
  g_assert_null (value);
  g_assert_error (error, GESSO_ERROR, code);
  g_assert_null (strchr (error->message, '\n'));
  g_assert_nonnull (strstr (error->message, "bad.yaml"));
  g_assert_nonnull (strstr (error->message, fragment));
}

static void
test_bad_yaml (void)
{
  g_autoptr (GString) deep = g_string_new (NULL);

  assert_fails ("model: [unclosed\n", GESSO_ERROR_CORRUPT, "line 2");
  assert_fails ("model:\n  params:\n   parameterization: v\n  - x\n", GESSO_ERROR_CORRUPT,
                "not valid YAML");
  assert_fails ("model:\n\tparams: x\n", GESSO_ERROR_CORRUPT, "line 2");
  for (int i = 0; i < 100; i++)
    g_string_append_c (deep, '[');
  for (int i = 0; i < 100; i++)
    g_string_append_c (deep, ']');
  assert_fails (deep->str, GESSO_ERROR_UNSUPPORTED, "nests deeper");
}

static void
test_files (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gesso-yaml-XXXXXX", NULL);
  g_autofree char *good = g_build_filename (dir, "model.yaml", NULL);
  g_autofree char *huge = g_build_filename (dir, "huge.yaml", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.yaml", NULL);
  g_autofree char *filler = g_malloc0 (GESSO_LDM_YAML_MAX_BYTES + 2);
  g_autoptr (GError) error = NULL;
  g_autofree char *value = NULL;

  memset (filler, '#', GESSO_LDM_YAML_MAX_BYTES + 1);
  g_assert_true (g_file_set_contents (good, "model:\n  params:\n    parameterization: v\n", -1,
                                      NULL));
  g_assert_true (g_file_set_contents (huge, filler, -1, NULL));

  g_assert_true (gesso_ldm_yaml_get_scalar (good, parameterization, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (value, ==, "v");
  g_clear_pointer (&value, g_free);

  g_assert_false (gesso_ldm_yaml_get_scalar (huge, parameterization, &value, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, huge));
  g_assert_nonnull (strstr (error->message, "at most 1048576"));
  g_clear_error (&error);

  g_assert_false (gesso_ldm_yaml_get_scalar (missing, parameterization, &value, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  g_assert_nonnull (strstr (error->message, missing));

  g_assert_cmpint (g_unlink (good), ==, 0);
  g_assert_cmpint (g_unlink (huge), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ldm-yaml/block-style", test_block_style);
  g_test_add_func ("/ldm-yaml/flow-style", test_flow_style);
  g_test_add_func ("/ldm-yaml/elsewhere-is-absent", test_elsewhere_is_absent);
  g_test_add_func ("/ldm-yaml/complex-keys-and-aliases", test_complex_keys_and_aliases);
  g_test_add_func ("/ldm-yaml/bad-yaml", test_bad_yaml);
  g_test_add_func ("/ldm-yaml/files", test_files);
  return g_test_run ();
}
