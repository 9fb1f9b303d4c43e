/* A separate VAE file in place of a checkpoint's own (A1111's --vae, ComfyUI's VAE loader).
 *
 * The truth is a second checkpoint built here, byte by byte (tests/unit/io-fixtures.c, not
 * core/io), whose own VAE weights are those of the separate file: running the first model
 * with the separate VAE must give exactly the second model's pixels. The separate VAE is the
 * tiny SD 1.x model's with every weight negated (sign bit flipped), so that it differs from the
 * model's own; it is written in the CompVis layout A1111's VAE files use (encoder.*,
 * decoder.*, quant_conv, post_quant_conv), with the stray EMA and loss tensors such files
 * carry. A diffusers vae/ folder works the same way on a diffusers model, and one whose config
 * says SDXL's scaling factor is refused. Skipped without ../shared/conformance.
 */
#include "gesso-config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "gesso.h"
#include "unit/io-fixtures.h"

#define VAE_PREFIX "first_stage_model."

static char *
model_path (const char *model, const char *file)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  g_autofree char *dir = env != NULL && *env != '\0'
                           ? g_strdup (env)
                           : g_build_filename (source ? source : GESSO_SOURCE_DIR, "..",
                                               "shared", "conformance", NULL);
  char *path = g_build_filename (dir, "models", model, file, NULL);

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    g_clear_pointer (&path, g_free);
  return path;
}

static size_t
dtype_size (const char *dtype)
{
  return strcmp (dtype, "F32") == 0 || strcmp (dtype, "I32") == 0 ? 4
         : strcmp (dtype, "I64") == 0 || strcmp (dtype, "F64") == 0 ? 8 : 2;
}

static size_t
numel (const char *shape_json)
{
  size_t n = 1;

  for (const char *p = shape_json; *p != '\0'; p++)
    if (g_ascii_isdigit (*p))
      {
        n *= (size_t) g_ascii_strtoull (p, (char **) &p, 10);
        p--;
      }
  return n;
}

/* VALUES with the sign of every float element flipped (F32, F16, BF16 alike: the top bit). */
static void *
negated (const char *dtype, const char *shape_json, const void *values)
{
  size_t size = dtype_size (dtype);
  size_t n = numel (shape_json);
  guint8 *copy = g_memdup2 (values, n * size);

  if (dtype[0] == 'F' || dtype[0] == 'B')
    for (size_t i = 0; i < n; i++)
      copy[i * size + size - 1] ^= 0x80;
  return copy;
}

typedef enum
{
  WRITE_CHECKPOINT_NEGATED_VAE,         /* the checkpoint, its VAE negated */
  WRITE_VAE_ONLY,                       /* the VAE alone, negated, CompVis names */
} WriteMode;

static void
copy_tensor (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
             const void *values, gpointer user_data)
{
  WriteMode mode = GPOINTER_TO_INT (user_data);
  gboolean vae = g_str_has_prefix (name, VAE_PREFIX);
  g_autofree void *changed = NULL;

  if (mode == WRITE_VAE_ONLY && !vae)
    return;
  if (vae)
    changed = negated (dtype, shape_json, values);
  fixture_st_add (st, mode == WRITE_VAE_ONLY ? name + strlen (VAE_PREFIX) : name, dtype,
                  shape_json, vae ? changed : values);
}

/* Every tensor negated, under its own name. */
static void
copy_all_negated (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
                  const void *values, gpointer user_data)
{
  g_autofree void *changed = negated (dtype, shape_json, values);

  fixture_st_add (st, name, dtype, shape_json, changed);
}

/* Writes SRC as MODE says to DIR/NAME; returns the path. */
static char *
write_model (const char *src, WriteMode mode, const char *dir, const char *name)
{
  FixtureSt st;
  g_autoptr (GBytes) bytes = NULL;

  fixture_st_init (&st);
  fixture_st_add_file (&st, src, copy_tensor, GINT_TO_POINTER (mode));
  if (mode == WRITE_VAE_ONLY)
    {
      /* what vae-ft-mse-840000-ema-pruned.safetensors and its kin carry besides */
      static const float decay = 0.9999f;
      fixture_st_add (&st, "model_ema.decay", "F32", "[]", &decay);
      fixture_st_add (&st, "loss.logvar", "F32", "[]", &decay);
    }
  bytes = fixture_st_finish (&st);
  return fixture_write (dir, name, bytes);
}

/* Generates 32 x 32 (2 DDIM steps, fixed seed) from PATH with CONFIGS and VAE; NULL and
 * *ERROR when the model does not open. */
static gboolean
generate (const char *path, const char *configs, const char *vae, GessoImage *image,
          GError **error)
{
  g_autoptr (GessoModel) m = NULL;
  GessoModelParams params;
  GessoEditParams p;
  GessoEditResult result = { 0 };

  gesso_model_params_init (&params);
  params.path = path;
  params.config_dir = configs;
  params.vae = vae;
  m = gesso_model_open (&params, error);
  if (m == NULL)
    return FALSE;
  gesso_edit_params_init (&p, GESSO_EDIT_GENERATE);
  p.prompt = "a red apple";
  p.steps = 2;
  p.seed = 11;
  p.width = p.height = 32;
  p.sampler = "ddim";
  g_assert_true (gesso_edit_run (m, &p, NULL, NULL, &result, error));
  *image = result.image;
  result.image.pixels = NULL;
  gesso_edit_result_clear (&result);
  return TRUE;
}

static gboolean
same_pixels (const GessoImage *a, const GessoImage *b)
{
  return a->width == b->width && a->height == b->height
         && memcmp (a->pixels, b->pixels, sizeof (float) * 4 * a->width * a->height) == 0;
}

/* A config folder with the tiny model's configs but no vae/: a separate VAE file carries no
 * config, so both models infer their VAE from its weights alike. */
static char *
configs_without_vae (const char *diffusers, const char *dir)
{
  static const char *const parts[] = {
    "model_index.json", "unet", "text_encoder", "scheduler", "tokenizer",
  };
  char *configs = g_build_filename (dir, "configs", NULL);

  g_assert_cmpint (g_mkdir (configs, 0700), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_autofree char *from = g_build_filename (diffusers, parts[i], NULL);
      g_autofree char *to = g_build_filename (configs, parts[i], NULL);

      g_assert_cmpint (symlink (from, to), ==, 0);
    }
  return configs;
}

static void
test_compvis_file_on_single_file (void)
{
  g_autofree char *src = model_path ("tiny-sd1", "tiny-sd1.safetensors");
  g_autofree char *diffusers = model_path ("tiny-sd1", "diffusers");
  g_autofree char *dir = NULL;
  g_autofree char *configs = NULL;
  g_autofree char *vae = NULL;
  g_autofree char *truth = NULL;
  g_autoptr (GError) error = NULL;
  GessoImage own = { 0 }, separate = { 0 }, expected = { 0 };

  if (src == NULL || diffusers == NULL)
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      return;
    }
  dir = fixture_make_tmpdir ();
  configs = configs_without_vae (diffusers, dir);
  vae = write_model (src, WRITE_VAE_ONLY, dir, "vae-negated.safetensors");
  truth = write_model (src, WRITE_CHECKPOINT_NEGATED_VAE, dir, "truth.safetensors");

  g_assert_true (generate (src, configs, NULL, &own, &error));
  g_assert_true (generate (src, configs, vae, &separate, &error));
  g_assert_no_error (error);
  g_assert_true (generate (truth, configs, NULL, &expected, &error));
  g_assert_true (same_pixels (&separate, &expected));
  /* and the VAE made a difference at all */
  g_assert_false (same_pixels (&separate, &own));
  gesso_image_clear (&own);
  gesso_image_clear (&separate);
  gesso_image_clear (&expected);

  /* the same VAE file on the model's diffusers folder (CompVis names in a folder's VAE), and
   * a diffusers vae/ folder as the VAE; the truth is a copy of the folder whose vae/ weights
   * are negated */
  {
    g_autofree char *folder = g_build_filename (dir, "folder", NULL);
    g_autofree char *vae_dir = g_build_filename (folder, "vae", NULL);
    g_autofree char *weights = g_build_filename (diffusers, "vae",
                                                 "diffusion_pytorch_model.safetensors", NULL);
    g_autoptr (GBytes) bytes = NULL;
    FixtureSt st;

    fixture_copy_tree (diffusers, folder);
    fixture_st_init (&st);
    fixture_st_add_file (&st, weights, copy_all_negated, NULL);
    bytes = fixture_st_finish (&st);
    g_free (fixture_write (vae_dir, "diffusion_pytorch_model.safetensors", bytes));

    generate (folder, NULL, NULL, &expected, &error);
    g_assert_no_error (error);
    g_assert_true (generate (diffusers, NULL, vae, &separate, &error));
    g_assert_no_error (error);
    g_assert_true (same_pixels (&separate, &expected));
    gesso_image_clear (&separate);
    g_assert_true (generate (diffusers, NULL, vae_dir, &separate, &error));
    g_assert_no_error (error);
    g_assert_true (same_pixels (&separate, &expected));
    gesso_image_clear (&separate);
    /* and on the single file (diffusers names in a single file's VAE) */
    g_assert_true (generate (src, configs, vae_dir, &separate, &error));
    g_assert_no_error (error);
    gesso_image_clear (&separate);
    gesso_image_clear (&expected);
  }
  fixture_remove_tree (dir);
}

/* What is not an SD 1.x/2.x VAE is refused with one line: a VAE whose config says SDXL's
 * scaling factor, a file with no autoencoder in it, a pickle file. */
static void
test_refused (void)
{
  g_autofree char *src = model_path ("tiny-sd1", "tiny-sd1.safetensors");
  g_autofree char *diffusers = model_path ("tiny-sd1", "diffusers");
  g_autofree char *dir = NULL;
  g_autofree char *xl = NULL;
  g_autofree char *config = NULL;
  g_autofree char *text = NULL;
  g_autofree char *not_vae = NULL;
  g_autofree char *pickle = NULL;
  g_autoptr (GString) edited = NULL;
  GessoModelParams params;
  GessoModel *m;
  struct
  {
    const char *vae;
    GessoErrorCode code;
    const char *needle;
  } cases[3];

  if (src == NULL || diffusers == NULL)
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      return;
    }
  dir = fixture_make_tmpdir ();
  xl = g_build_filename (dir, "sdxl-vae", NULL);
  {
    g_autofree char *from = g_build_filename (diffusers, "vae", NULL);
    fixture_copy_tree (from, xl);
  }
  config = g_build_filename (xl, "config.json", NULL);
  g_assert_true (g_file_get_contents (config, &text, NULL, NULL));
  edited = g_string_new (text);
  g_assert_cmpint (g_string_replace (edited, "0.18215", "0.13025", 1), ==, 1);
  g_assert_true (g_file_set_contents (config, edited->str, -1, NULL));
  {
    FixtureSt st;
    g_autoptr (GBytes) bytes = NULL;
    static const float one = 1.0f;

    fixture_st_init (&st);
    fixture_st_add (&st, "lora_unet_down.lora_up.weight", "F32", "[1]", &one);
    bytes = fixture_st_finish (&st);
    not_vae = fixture_write (dir, "lora.safetensors", bytes);
  }
  pickle = fixture_write_text (dir, "vae.pt", "not really a pickle");

  cases[0].vae = xl;
  cases[0].code = GESSO_ERROR_UNSUPPORTED;
  cases[0].needle = "an SDXL VAE";
  cases[1].vae = not_vae;
  cases[1].code = GESSO_ERROR_UNSUPPORTED;
  cases[1].needle = "is not a VAE";
  cases[2].vae = pickle;
  cases[2].code = GESSO_ERROR_UNSAFE;
  cases[2].needle = "vae.pt";
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;

      gesso_model_params_init (&params);
      params.path = diffusers;
      params.vae = cases[i].vae;
      m = gesso_model_open (&params, &error);
      g_assert_null (m);
      g_test_message ("%s", error->message);
      g_assert_error (error, GESSO_ERROR, (gint) cases[i].code);
      g_assert_nonnull (strstr (error->message, cases[i].needle));
      g_assert_null (strchr (error->message, '\n'));
    }
  fixture_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/edit/separate-vae/same-as-own", test_compvis_file_on_single_file);
  g_test_add_func ("/edit/separate-vae/refused", test_refused);
  return g_test_run ();
}
