/* JSON configs: parsing, and getters that say which key of which file is wrong and why. */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "io-fixtures.h"
#include "io/config.h"

#define NAME "unet/config.json"

static const char *const config_text =
  "{\n"
  "  \"_class_name\": \"UNet2DConditionModel\",\n"
  "  \"in_channels\": 4,\n"
  "  \"sample_size\": 64.0,\n"
  "  \"scale\": 2.5,\n"
  "  \"scaling_factor\": 0.18215,\n"
  "  \"big\": 9007199254740993,\n"
  "  \"center_input_sample\": false,\n"
  "  \"block_out_channels\": [32, 64],\n"
  "  \"empty\": [],\n"
  "  \"mixed\": [32, \"64\"],\n"
  "  \"nested\": [[1]],\n"
  "  \"cross_attention_norm\": null,\n"
  "  \"act_fn\": \"silu\"\n"
  "}\n";

static void
assert_message (GError *error, int code, const char *expected)
{
  g_assert_error (error, GESSO_ERROR, code);
  if (strstr (error->message, expected) == NULL)
    g_error ("message \"%s\" lacks \"%s\"", error->message, expected);
  g_assert_null (strchr (error->message, '\n'));
}

static JsonObject *
load_text (const char *seed, const char *text, GError **error)
{
  fixture_save_seed ("config", seed, text, strlen (text));
  return gesso_config_load_from_data (text, -1, NAME, error);
}

static void
test_getters (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) config = load_text ("unet-config.json", config_text, &error);
  g_autofree gint64 *array = NULL;
  const char *string = NULL;
  gboolean flag = TRUE;
  gint64 integer = 0;
  double number = 0;
  guint n = 99;

  g_assert_no_error (error);
  g_assert_true (gesso_config_get_int (config, NAME, "in_channels", 1, 16, &integer, &error));
  g_assert_cmpint (integer, ==, 4);
  /* an integral float is an integer; the exact value of a big one survives */
  g_assert_true (gesso_config_get_int (config, NAME, "sample_size", 1, 1024, &integer, &error));
  g_assert_cmpint (integer, ==, 64);
  g_assert_true (gesso_config_get_int (config, NAME, "big", 0, G_MAXINT64, &integer, &error));
  g_assert_cmpint (integer, ==, G_GINT64_CONSTANT (9007199254740993));
  g_assert_true (gesso_config_get_double (config, NAME, "scaling_factor", 0, 1, &number,
                                          &error));
  g_assert_cmpfloat (number, ==, 0.18215);
  g_assert_true (gesso_config_get_double (config, NAME, "in_channels", 0, 10, &number, &error));
  g_assert_cmpfloat (number, ==, 4.0);
  g_assert_true (gesso_config_get_bool (config, NAME, "center_input_sample", &flag, &error));
  g_assert_false (flag);
  g_assert_true (gesso_config_get_string (config, NAME, "act_fn", &string, &error));
  g_assert_cmpstr (string, ==, "silu");
  g_assert_true (gesso_config_get_int_array (config, NAME, "block_out_channels", 1, 4096,
                                             &array, &n, &error));
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpint (array[0], ==, 32);
  g_assert_cmpint (array[1], ==, 64);
  g_clear_pointer (&array, g_free);
  g_assert_true (gesso_config_get_int_array (config, NAME, "empty", 1, 4096, &array, &n,
                                             &error));
  g_assert_cmpuint (n, ==, 0);
  g_assert_no_error (error);
}

static void
test_getter_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) config = load_text ("unet-config.json", config_text, &error);
  g_autofree gint64 *array = NULL;
  const char *string = NULL;
  gboolean flag;
  gint64 integer = 77;
  double number;
  guint n;

  g_assert_false (gesso_config_get_int (config, NAME, "layers", 1, 4, &integer, &error));
  assert_message (error, GESSO_ERROR_MISSING, NAME ": 'layers' is missing");
  g_assert_cmpint (integer, ==, 77);
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int (config, NAME, "cross_attention_norm", 1, 4, &integer,
                                        &error));
  assert_message (error, GESSO_ERROR_MISSING, NAME ": 'cross_attention_norm' is null");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int (config, NAME, "in_channels", 5, 9, &integer, &error));
  assert_message (error, GESSO_ERROR_UNSUPPORTED,
                  NAME ": 'in_channels' is 4; it must be between 5 and 9");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int (config, NAME, "scale", 0, 9, &integer, &error));
  assert_message (error, GESSO_ERROR_CORRUPT, NAME ": 'scale' must be an integer");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int (config, NAME, "act_fn", 0, 9, &integer, &error));
  assert_message (error, GESSO_ERROR_CORRUPT, "'act_fn' must be an integer");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int (config, NAME, "center_input_sample", 0, 9, &integer,
                                        &error));
  assert_message (error, GESSO_ERROR_CORRUPT, "'center_input_sample' must be an integer");
  g_clear_error (&error);

  g_assert_false (gesso_config_get_double (config, NAME, "scale", 0, 1, &number, &error));
  assert_message (error, GESSO_ERROR_UNSUPPORTED,
                  NAME ": 'scale' is 2.5; it must be between 0 and 1");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_double (config, NAME, "act_fn", 0, 1, &number, &error));
  assert_message (error, GESSO_ERROR_CORRUPT, "'act_fn' must be a number");
  g_clear_error (&error);

  g_assert_false (gesso_config_get_bool (config, NAME, "in_channels", &flag, &error));
  assert_message (error, GESSO_ERROR_CORRUPT, "'in_channels' must be true or false");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_string (config, NAME, "block_out_channels", &string,
                                           &error));
  assert_message (error, GESSO_ERROR_CORRUPT, "'block_out_channels' must be a string");
  g_clear_error (&error);

  g_assert_false (gesso_config_get_int_array (config, NAME, "mixed", 0, 99, &array, &n,
                                              &error));
  assert_message (error, GESSO_ERROR_CORRUPT, NAME ": 'mixed' must be an array of integers");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int_array (config, NAME, "nested", 0, 99, &array, &n,
                                              &error));
  assert_message (error, GESSO_ERROR_CORRUPT, "'nested' must be an array of integers");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int_array (config, NAME, "act_fn", 0, 99, &array, &n,
                                              &error));
  assert_message (error, GESSO_ERROR_CORRUPT, "'act_fn' must be an array of integers");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_int_array (config, NAME, "block_out_channels", 1, 40,
                                              &array, &n, &error));
  assert_message (error, GESSO_ERROR_UNSUPPORTED,
                  "'block_out_channels'[1] is 64; it must be between 1 and 40");
  g_assert_null (array);
}

/* What Python's json.dump writes for non-finite floats, as real scheduler configs have it. */
static void
test_python_literals (void)
{
  const char *text = "{\"lambda_min_clipped\": -Infinity, \"up\": Infinity, \"nan\": NaN,\n"
                     " \"text\": \"NaN -Infinity \\\" Infinity\", \"list\": [1, -Infinity],\n"
                     " \"Infinity\": 3}";
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) config = load_text ("python-literals.json", text, &error);
  const char *string;
  gint64 integer;
  double number;

  g_assert_no_error (error);
  g_assert_true (gesso_config_get_double (config, NAME, "lambda_min_clipped", -INFINITY, 0,
                                          &number, &error));
  g_assert_true (isinf (number) && number < 0);
  g_assert_true (gesso_config_get_double (config, NAME, "up", 0, INFINITY, &number, &error));
  g_assert_true (isinf (number) && number > 0);
  g_assert_true (gesso_config_get_string (config, NAME, "text", &string, &error));
  g_assert_cmpstr (string, ==, "NaN -Infinity \" Infinity");
  g_assert_true (gesso_config_get_int (config, NAME, "Infinity", 0, 9, &integer, &error));
  g_assert_cmpint (integer, ==, 3);
  g_assert_no_error (error);

  g_assert_false (gesso_config_get_double (config, NAME, "lambda_min_clipped", -1e6, 0, &number,
                                           &error));
  assert_message (error, GESSO_ERROR_UNSUPPORTED, "'lambda_min_clipped' is -inf");
  g_clear_error (&error);
  g_assert_false (gesso_config_get_double (config, NAME, "nan", 0, 1, &number, &error));
  assert_message (error, GESSO_ERROR_MISSING, "'nan' is null");
  g_clear_error (&error);

  /* only whole words are rewritten */
  g_clear_pointer (&config, json_object_unref);
  config = load_text ("python-not-a-word.json", "{\"a\": NaNa}", &error);
  g_assert_null (config);
  assert_message (error, GESSO_ERROR_CORRUPT, "not valid JSON");
}

static void
test_bad_files (void)
{
  const struct { const char *seed; const char *text; const char *expected; } cases[] = {
    { "not-json.json", "{\"a\": ", NAME ": not valid JSON" },
    { "trailing-comma.json", "{\"a\": [1, 2,]}", NAME ": not valid JSON" },
    { "array.json", "[1, 2]", NAME ": the top level must be a JSON object" },
    { "number.json", "42", "the top level must be a JSON object" },
    { "empty.json", "", NAME ": the file is empty" },
    { "spaces.json", "  \n ", NAME ": the file is empty" },
    /* json-glib (< 1.10) quotes the bad token in its message, newline and all: the message
     * must still be one line (assert_message checks) */
    { "newline-token.json", "{\"a\": \"b\n  \"c\": 1}", NAME ": not valid JSON" },
    { "bad-utf8.json", "{\"a\": \"\xc3\x28\"}", "not valid JSON" },
  };
  GString *deep = g_string_new ("{\"a\": ");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonObject) config = load_text (cases[i].seed, cases[i].text, &error);
      g_assert_null (config);
      assert_message (error, GESSO_ERROR_CORRUPT, cases[i].expected);
    }

  /* json-glib recurses per level; a deep file must be refused before it gets there */
  for (int i = 0; i < 100; i++)
    g_string_append (deep, "{\"a\": ");
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonObject) config = load_text ("deep-100.json", deep->str, &error);
    g_assert_null (config);
    assert_message (error, GESSO_ERROR_CORRUPT, NAME ": JSON nested more than 64 levels");
  }
  for (int i = 0; i < 200000; i++)
    g_string_append (deep, "[");
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonObject) config = load_text ("deep.json", deep->str, &error);
    g_assert_null (config);
    assert_message (error, GESSO_ERROR_CORRUPT, NAME ": JSON nested more than 64 levels");
  }
  g_string_free (deep, TRUE);
}

static void
test_load_file (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *path = fixture_write_text (dir, "config.json", "{\"a\": 1}");
  g_autofree char *missing = g_build_filename (dir, "nothing.json", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) config = gesso_config_load (path, &error);
  JsonObject *none;
  gint64 value;

  g_assert_no_error (error);
  g_assert_true (gesso_config_get_int (config, path, "a", 0, 1, &value, &error));
  g_assert_cmpint (value, ==, 1);

  none = gesso_config_load (missing, &error);
  g_assert_null (none);
  assert_message (error, GESSO_ERROR_IO, missing);
  g_clear_error (&error);

  none = gesso_config_load (dir, &error);
  g_assert_null (none);
  assert_message (error, GESSO_ERROR_IO, "not a regular file");
  fixture_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/io/config/getters", test_getters);
  g_test_add_func ("/core/io/config/getter-errors", test_getter_errors);
  g_test_add_func ("/core/io/config/python-literals", test_python_literals);
  g_test_add_func ("/core/io/config/bad-files", test_bad_files);
  g_test_add_func ("/core/io/config/load-file", test_load_file);
  return g_test_run ();
}
