/* Unit tests of the dialog library's logic that needs no running GIMP: recipes (written and
 * read back, and the forms other writers may use) and model discovery on a folder tree made
 * here. The expected values are written out in the tests, not taken from the code. */
#include "gesso-config.h"

#include <locale.h>
#include <string.h>

#include <glib/gstdio.h>

#include "gesso-dialog.h"
#include "gesso-ui-private.h"

/* --- a stand-in for a procedure config ------------------------------------------------------ */

typedef struct
{
  GObject parent;
  gchar *prompt;
  gchar *sampler;
  gint steps;
  gdouble guidance;
  gint seed;
  gboolean random_seed;
} FakeConfig;

typedef struct
{
  GObjectClass parent;
} FakeConfigClass;

enum { PROP_0, PROP_PROMPT, PROP_SAMPLER, PROP_STEPS, PROP_GUIDANCE, PROP_SEED, PROP_RANDOM };

static GType fake_config_get_type (void);
G_DEFINE_TYPE (FakeConfig, fake_config, G_TYPE_OBJECT)

static void
fake_config_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  FakeConfig *c = (FakeConfig *) object;

  switch (id)
    {
    case PROP_PROMPT: g_free (c->prompt); c->prompt = g_value_dup_string (value); break;
    case PROP_SAMPLER: g_free (c->sampler); c->sampler = g_value_dup_string (value); break;
    case PROP_STEPS: c->steps = g_value_get_int (value); break;
    case PROP_GUIDANCE: c->guidance = g_value_get_double (value); break;
    case PROP_SEED: c->seed = g_value_get_int (value); break;
    case PROP_RANDOM: c->random_seed = g_value_get_boolean (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
fake_config_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  FakeConfig *c = (FakeConfig *) object;

  switch (id)
    {
    case PROP_PROMPT: g_value_set_string (value, c->prompt); break;
    case PROP_SAMPLER: g_value_set_string (value, c->sampler); break;
    case PROP_STEPS: g_value_set_int (value, c->steps); break;
    case PROP_GUIDANCE: g_value_set_double (value, c->guidance); break;
    case PROP_SEED: g_value_set_int (value, c->seed); break;
    case PROP_RANDOM: g_value_set_boolean (value, c->random_seed); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
fake_config_finalize (GObject *object)
{
  FakeConfig *c = (FakeConfig *) object;

  g_free (c->prompt);
  g_free (c->sampler);
  G_OBJECT_CLASS (fake_config_parent_class)->finalize (object);
}

static void
fake_config_class_init (FakeConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->set_property = fake_config_set_property;
  object_class->get_property = fake_config_get_property;
  object_class->finalize = fake_config_finalize;
  g_object_class_install_property (object_class, PROP_PROMPT,
    g_param_spec_string ("prompt", NULL, NULL, "", G_PARAM_READWRITE));
  g_object_class_install_property (object_class, PROP_SAMPLER,
    g_param_spec_string ("sampler", NULL, NULL, "auto", G_PARAM_READWRITE));
  g_object_class_install_property (object_class, PROP_STEPS,
    g_param_spec_int ("steps", NULL, NULL, 1, 500, 25, G_PARAM_READWRITE));
  g_object_class_install_property (object_class, PROP_GUIDANCE,
    g_param_spec_double ("guidance", NULL, NULL, 0.0, 30.0, 7.5, G_PARAM_READWRITE));
  g_object_class_install_property (object_class, PROP_SEED,
    g_param_spec_int ("seed", NULL, NULL, 0, G_MAXINT, 0, G_PARAM_READWRITE));
  g_object_class_install_property (object_class, PROP_RANDOM,
    g_param_spec_boolean ("random-seed", NULL, NULL, TRUE, G_PARAM_READWRITE));
}

static void
fake_config_init (FakeConfig *c)
{
  c->prompt = g_strdup ("");
  c->sampler = g_strdup ("auto");
  c->steps = 25;
  c->guidance = 7.5;
  c->random_seed = TRUE;
}

static FakeConfig *
fake_new (void)
{
  return g_object_new (fake_config_get_type (), NULL);
}

/* --- recipes ------------------------------------------------------------------------------- */

static void
test_recipe_round_trip (void)
{
  g_autoptr (GObject) a = G_OBJECT (fake_new ());
  g_autoptr (GObject) b = G_OBJECT (fake_new ());
  g_autoptr (GError) error = NULL;
  g_autofree gchar *text = NULL;
  FakeConfig *fb = (FakeConfig *) b;

  g_object_set (a, "prompt", "a cat\nin a hat = \"fine\"", "steps", 37, "guidance", 4.25,
                "seed", 2147483000, "sampler", "euler-a", "random-seed", TRUE, NULL);
  text = gesso_recipe_new_from_object (a, GESSO_EDIT_INPAINT);
  g_assert_nonnull (strstr (text, "[recipe]"));
  g_assert_nonnull (strstr (text, "method=inpaint"));
  g_assert_nonnull (strstr (text, "steps=37"));

  g_assert_true (gesso_recipe_apply_to_object (b, text, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (fb->prompt, ==, "a cat\nin a hat = \"fine\"");
  g_assert_cmpint (fb->steps, ==, 37);
  g_assert_cmpfloat (fb->guidance, ==, 4.25);
  g_assert_cmpint (fb->seed, ==, 2147483000);
  g_assert_cmpstr (fb->sampler, ==, "euler-a");
  /* a recipe is there to reproduce: its seed is used, not a new one */
  g_assert_false (fb->random_seed);
}

/* a recipe names the edit that made it; another edit takes only the keys it shares */
static void
test_recipe_kind_and_filter (void)
{
  static const gchar *const keep[] = { "prompt", "seed", NULL };
  g_autoptr (GObject) a = G_OBJECT (fake_new ());
  g_autoptr (GObject) b = G_OBJECT (fake_new ());
  g_autofree gchar *text = NULL;
  g_autofree gchar *shared = NULL;
  FakeConfig *fb = (FakeConfig *) b;
  GessoEditKind kind = GESSO_EDIT_GENERATE;

  g_object_set (a, "prompt", "a rose", "steps", 37, "seed", 99, "sampler", "lms", NULL);
  text = gesso_recipe_new_from_object (a, GESSO_EDIT_SDEDIT);
  g_assert_true (gesso_recipe_get_kind (text, &kind));
  g_assert_cmpint (kind, ==, GESSO_EDIT_SDEDIT);
  g_assert_false (gesso_recipe_get_kind ("[recipe]\nmethod=upscale\n", &kind));
  g_assert_false (gesso_recipe_get_kind ("{\"method\": \"inpaint\"}", &kind));

  shared = gesso_recipe_filter_new (text, keep);
  g_assert_nonnull (shared);
  g_assert_true (gesso_recipe_get_kind (shared, &kind));
  g_assert_true (gesso_recipe_apply_to_object (b, shared, NULL));
  g_assert_cmpstr (fb->prompt, ==, "a rose");
  g_assert_cmpint (fb->seed, ==, 99);
  /* the other edit's settings stay as they were */
  g_assert_cmpint (fb->steps, ==, 25);
  g_assert_cmpstr (fb->sampler, ==, "auto");
  g_assert_null (gesso_recipe_filter_new ("{ not a key file", keep));
}

/* numbers are written and read the same way whatever the locale's decimal separator */
static void
test_recipe_locale (void)
{
  g_autoptr (GObject) a = G_OBJECT (fake_new ());
  g_autoptr (GObject) b = G_OBJECT (fake_new ());
  g_autofree gchar *text = NULL;

  if (setlocale (LC_NUMERIC, "de_DE.UTF-8") == NULL)
    {
      g_test_skip ("no de_DE.UTF-8 locale");
      return;
    }
  g_object_set (a, "guidance", 6.5, NULL);
  text = gesso_recipe_new_from_object (a, GESSO_EDIT_GENERATE);
  g_assert_nonnull (strstr (text, "guidance=6.5"));
  g_assert_true (gesso_recipe_apply_to_object (b, text, NULL));
  g_assert_cmpfloat (((FakeConfig *) b)->guidance, ==, 6.5);
  setlocale (LC_NUMERIC, "C");
}

static void
test_recipe_other_forms (void)
{
  g_autoptr (GObject) c = G_OBJECT (fake_new ());
  FakeConfig *f = (FakeConfig *) c;
  g_autoptr (GError) error = NULL;

  /* plain key=value lines, '_' for '-', unknown keys ignored, out of range clamped */
  g_assert_true (gesso_recipe_apply_to_object (c, "prompt=a dog\nrandom_seed=false\n"
                                               "steps=9000\nmodel-sha256=abc\n", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->prompt, ==, "a dog");
  g_assert_cmpint (f->steps, ==, 500);
  g_assert_false (f->random_seed);

  /* JSON, nested objects flattened */
  g_assert_true (gesso_recipe_apply_to_object (c, "{\"prompt\": \"a fox\", \"params\": "
                                               "{\"steps\": 12, \"guidance\": 3.5, "
                                               "\"seed\": 77}}", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->prompt, ==, "a fox");
  g_assert_cmpint (f->steps, ==, 12);
  g_assert_cmpfloat (f->guidance, ==, 3.5);
  g_assert_cmpint (f->seed, ==, 77);

  /* a number that does not parse leaves the property alone */
  g_assert_true (gesso_recipe_apply_to_object (c, "steps=many\n", &error));
  g_assert_cmpint (f->steps, ==, 12);

  g_assert_false (gesso_recipe_apply_to_object (c, "{ not json", &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
}

/* --- models ---------------------------------------------------------------------------------- */

static void
touch (const gchar *dir, const gchar *relative)
{
  g_autofree gchar *path = g_build_filename (dir, relative, NULL);
  g_autofree gchar *parent = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, "x", 1, NULL));
}

static void
test_models_find (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("gesso-ui-XXXXXX", NULL);
  g_autofree gchar *one = g_build_filename (root, "one", NULL);
  g_autofree gchar *two = g_build_filename (root, "two", NULL);
  g_autofree gchar *path = g_strjoin (G_SEARCHPATH_SEPARATOR_S, one, two, one, NULL);
  g_autofree gchar *profile = g_build_filename (root, "profile", NULL);
  g_auto (GStrv) models = NULL;
  g_autofree gchar *name = NULL;
  /* files that are not valid safetensors ("x") are listed all the same, so the chooser can
   * say what is wrong with them; folders are looked into three deep */
  const gchar *expected[] = {
    "one/a.safetensors", "one/diffusers-model", "one/sd15/deeper/too-deep.safetensors",
    "one/sd15/sd15.safetensors", "two/z.safetensors", NULL,
  };
  guint n = 0;

  touch (one, "a.safetensors");
  touch (one, ".hidden.safetensors");
  touch (one, "notes.txt");
  touch (one, "weights.ckpt");
  touch (one, "diffusers-model/model_index.json");
  touch (one, "diffusers-model/unet/diffusion_pytorch_model.safetensors");
  touch (one, "sd15/sd15.safetensors");
  touch (one, "sd15/deeper/too-deep.safetensors");
  touch (one, "sd15/deeper/deepest/too-deep.safetensors");
  touch (two, "z.safetensors");
  g_setenv ("GIMP3_DIRECTORY", profile, TRUE);
  g_setenv ("GESSO_MODEL_PATH", path, TRUE);
  gesso_ui_models_refresh ();

  models = gesso_ui_models_find ();
  for (; models[n] != NULL; n++)
    {
      g_autofree gchar *want = g_build_filename (root, expected[n], NULL);

      g_assert_nonnull (expected[n]);
      g_assert_cmpstr (models[n], ==, want);
    }
  g_assert_null (expected[n]);

  name = gesso_ui_model_display_name (models[3]);
  g_assert_cmpstr (name, ==, "sd15/sd15");
  g_assert_true (gesso_ui_is_model_path (models[1]));
  g_assert_false (gesso_ui_is_model_path (one));
}

/* The one resolver the plug-in's runs and the dialog share. */
static void
test_models_resolve (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("gesso-ui-XXXXXX", NULL);
  g_autofree gchar *one = g_build_filename (root, "one", NULL);
  g_autofree gchar *profile = g_build_filename (root, "profile", NULL);
  g_autofree gchar *file = g_build_filename (one, "z.safetensors", NULL);
  g_autofree gchar *nested = g_build_filename (one, "sd15", "sd15.safetensors", NULL);
  g_autofree gchar *folder = g_build_filename (one, "diffusers-model", NULL);
  g_autoptr (GError) error = NULL;
  const struct
  {
    const gchar *request;
    const gchar *want;
  } cases[] = {
    { "z", file },                       /* a file's name without ".safetensors" */
    { "z.safetensors", file },           /* ... and with it */
    { "sd15/sd15", nested },             /* the name the chooser shows */
    { "sd15.safetensors", nested },
    { "diffusers-model", folder },       /* a diffusers folder's name */
    { file, file },                      /* a path, as it is */
  };

  touch (one, "z.safetensors");
  touch (one, "sd15/sd15.safetensors");
  touch (one, "diffusers-model/model_index.json");
  g_setenv ("GIMP3_DIRECTORY", profile, TRUE);
  g_setenv ("GESSO_MODEL_PATH", one, TRUE);
  gesso_ui_models_refresh ();

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *got = gesso_ui_resolve_model (cases[i].request, NULL);

      g_assert_cmpstr (got, ==, cases[i].want);
    }
  g_assert_null (gesso_ui_resolve_model ("no such model", &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "no such model"));
  /* where a user puts models (gimp_directory() is cached from the test before) */
  g_assert_nonnull (strstr (error->message, G_DIR_SEPARATOR_S "gesso" G_DIR_SEPARATOR_S
                                            "models"));
}

static void
test_sampler_names (void)
{
  g_autofree gchar *karras = gesso_ui_sampler_engine_name ("dpmpp-2m-karras");
  g_autofree gchar *ddim = gesso_ui_sampler_engine_name ("ddim");

  g_assert_cmpstr (karras, ==, "dpmpp_2m_karras");
  g_assert_cmpstr (ddim, ==, "ddim");
  g_assert_null (gesso_ui_sampler_engine_name ("auto"));
  g_assert_null (gesso_ui_sampler_engine_name (""));
  g_assert_null (gesso_ui_sampler_engine_name (NULL));
}

int
main (int argc, char **argv)
{
  g_autofree gchar *home = g_dir_make_tmp ("gesso-ui-home-XXXXXX", NULL);

  /* models are looked for under the home folder too (A1111, ComfyUI) and kinds cached in
   * XDG_CACHE_HOME: keep both away from the machine's */
  g_setenv ("HOME", home, TRUE);
  g_setenv ("XDG_CACHE_HOME", home, TRUE);
  g_setenv ("XDG_CONFIG_HOME", home, TRUE);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ui/recipe/round-trip", test_recipe_round_trip);
  g_test_add_func ("/ui/recipe/locale", test_recipe_locale);
  g_test_add_func ("/ui/recipe/kind-and-filter", test_recipe_kind_and_filter);
  g_test_add_func ("/ui/recipe/other-forms", test_recipe_other_forms);
  g_test_add_func ("/ui/models/find", test_models_find);
  g_test_add_func ("/ui/models/resolve", test_models_resolve);
  g_test_add_func ("/ui/samplers/engine-names", test_sampler_names);
  return g_test_run ();
}
