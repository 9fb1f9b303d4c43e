/* Gesso: finding models on disk and describing them in one line, for the model chooser.
 *
 * Nothing here loads weights: the folders are Gesso's own, the user's and those A1111 and
 * ComfyUI keep models in (core/io/model_library.c), each file is recognised from its header
 * (a checkpoint, a VAE, ...), and described from the file headers only.
 */
#include "gesso-config.h"

#include <stdlib.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "gesso.h"

#include "gesso-dialog.h"
#include "gesso-ui-private.h"

/* The models found, shared by the dialog, its preview thread and the plug-in's run: built on
 * first use and again by gesso_ui_models_refresh(), so that one dialog does not scan the
 * folders once per line it shows. */
static GMutex library_lock;
static GessoModelLibrary *library;

static gboolean
is_model_folder (const gchar *path)
{
  g_autofree gchar *index = g_build_filename (path, "model_index.json", NULL);

  return g_file_test (index, G_FILE_TEST_IS_REGULAR);
}

static gboolean
is_model_file (const gchar *path)
{
  return g_str_has_suffix (path, ".safetensors") && g_file_test (path, G_FILE_TEST_IS_REGULAR);
}

gboolean
gesso_ui_is_model_path (const gchar *path)
{
  if (path == NULL || path[0] == '\0')
    return FALSE;
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return is_model_folder (path);
  return is_model_file (path);
}

const gchar *
gesso_ui_get_bundled_model_dir (void)
{
  return GESSO_DATADIR G_DIR_SEPARATOR_S "models";
}

gchar *
gesso_ui_cache_file (void)
{
  return g_build_filename (g_get_user_cache_dir (), "gesso", "models.ini", NULL);
}

/* Every folder, in the order the chooser lists their models: Gesso's own first, then the
 * user's, then those of A1111 and ComfyUI. */
static GessoModelLibrary *
library_new (void)
{
  GessoModelLibrary *lib = gesso_model_library_new ();
  g_autofree gchar *user = g_build_filename (gimp_directory (), "gesso", "models", NULL);
  g_autoptr (GessoModelCache) cache = NULL;
  g_autofree gchar *cache_file = gesso_ui_cache_file ();
  const gchar *env = g_getenv ("GESSO_MODEL_PATH");

  gesso_model_library_add_folder (lib, gesso_ui_get_bundled_model_dir (), GESSO_ASSET_UNKNOWN,
                                  "Gesso");
  gesso_model_library_add_folder (lib, user, GESSO_ASSET_UNKNOWN, "GIMP");
  if (env != NULL)
    {
      g_auto (GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (gchar **p = parts; *p != NULL; p++)
        gesso_model_library_add_folder (lib, *p, GESSO_ASSET_UNKNOWN, "GESSO_MODEL_PATH");
    }
  gesso_model_library_add_user_folders (lib, g_get_user_config_dir ());
  gesso_model_library_add_known_folders (lib, g_get_home_dir ());
  cache = gesso_model_cache_new (cache_file);
  gesso_model_library_scan (lib, cache);
  (void) gesso_model_cache_save (cache, NULL);
  return lib;
}

void
gesso_ui_models_refresh (void)
{
  g_mutex_lock (&library_lock);
  g_clear_pointer (&library, gesso_model_library_free);
  g_mutex_unlock (&library_lock);
}

/* Locks the library, building it when needed; gesso_ui_models_unlock releases it. */
static GessoModelLibrary *
library_lock_get (void)
{
  g_mutex_lock (&library_lock);
  if (library == NULL)
    library = library_new ();
  return library;
}

static void
library_unlock (void)
{
  g_mutex_unlock (&library_lock);
}

gchar **
gesso_ui_model_dirs_new (void)
{
  GessoModelLibrary *lib = library_lock_get ();
  gchar **dirs = g_strdupv ((gchar **) gesso_model_library_get_folders (lib));

  library_unlock ();
  return dirs;
}

/* What a chooser of KIND offers. Checkpoints include the files of Gesso's and the user's
 * folders that could not be read, so the chooser can say what is wrong with them. */
static gboolean
offered (const GessoAsset *a, GessoAssetKind kind)
{
  return a->kind == kind
         || (kind == GESSO_ASSET_CHECKPOINT && a->problem != NULL
             && g_strcmp0 (a->source, "A1111") != 0 && g_strcmp0 (a->source, "ComfyUI") != 0);
}

static int
compare_paths (const void *a, const void *b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

gchar **
gesso_ui_assets_find (GessoAssetKind kind)
{
  GessoModelLibrary *lib = library_lock_get ();
  g_autofree gchar *bundled = g_canonicalize_filename (gesso_ui_get_bundled_model_dir (), NULL);
  GPtrArray *found = g_ptr_array_new ();

  /* the bundled models first (the default model is one of them), then the others by path */
  for (int pass = 0; pass < 2; pass++)
    {
      guint first = found->len;

      for (guint i = 0; i < gesso_model_library_count (lib); i++)
        {
          const GessoAsset *a = gesso_model_library_get (lib, i);
          gboolean is_bundled = g_strcmp0 (a->folder, bundled) == 0;

          if (offered (a, kind) && is_bundled == (pass == 0))
            g_ptr_array_add (found, g_strdup (a->path));
        }
      qsort (found->pdata + first, found->len - first, sizeof (gpointer), compare_paths);
    }
  library_unlock ();
  g_ptr_array_add (found, NULL);
  return (gchar **) g_ptr_array_free (found, FALSE);
}

gchar **
gesso_ui_asset_dirs_new (GessoAssetKind kind)
{
  GessoModelLibrary *lib = library_lock_get ();
  g_autoptr (GPtrArray) dirs = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < gesso_model_library_count (lib); i++)
    {
      const GessoAsset *a = gesso_model_library_get (lib, i);
      g_autofree gchar *dir = NULL;

      if (a->kind != kind)
        continue;
      dir = g_path_get_dirname (a->path);
      if (!g_ptr_array_find_with_equal_func (dirs, dir, g_str_equal, NULL))
        g_ptr_array_add (dirs, g_steal_pointer (&dir));
    }
  library_unlock ();
  qsort (dirs->pdata, dirs->len, sizeof (gpointer), compare_paths);
  g_ptr_array_add (dirs, NULL);
  return (gchar **) g_ptr_array_free (g_steal_pointer (&dirs), FALSE);
}

gchar *
gesso_ui_prompt_take_loras (const gchar *prompt, GArray *uses, GPtrArray *paths,
                            GError **error)
{
  g_auto (GStrv) dirs = NULL;
  gchar *text;

  /* a prompt without tags needs no folder listing */
  if (prompt == NULL || strstr (prompt, "<lora:") == NULL)
    return g_strdup (prompt != NULL ? prompt : "");
  dirs = gesso_ui_asset_dirs_new (GESSO_ASSET_LORA);
  text = gesso_prompt_take_loras (prompt, (const char *const *) dirs, uses, paths, error);
  if (text != NULL && uses->len > GESSO_MAX_LORAS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the prompt names %u LoRAs; at most %d can be used together"), uses->len,
                   GESSO_MAX_LORAS);
      g_clear_pointer (&text, g_free);
    }
  return text;
}

gchar **
gesso_ui_models_find (void)
{
  return gesso_ui_assets_find (GESSO_ASSET_CHECKPOINT);
}

gboolean
gesso_ui_models_add_folder (const gchar *dir, GError **error)
{
  if (!gesso_model_library_remember_folder (g_get_user_config_dir (), dir, error))
    return FALSE;
  gesso_ui_models_refresh ();
  return TRUE;
}

gchar *
gesso_ui_get_default_model (GError **error)
{
  g_autofree gchar *bundled = g_canonicalize_filename (gesso_ui_get_bundled_model_dir (), NULL);
  g_auto (GStrv) models = gesso_ui_models_find ();

  for (gchar **m = models; *m != NULL; m++)
    if (g_str_has_prefix (*m, bundled))
      return g_strdup (*m);
  if (models[0] != NULL)
    return g_strdup (models[0]);

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               _("No model found. Put a Stable Diffusion .safetensors file or diffusers folder "
                 "in %s, or choose one with \"Browse…\"."),
               gimp_filename_to_utf8 (gesso_ui_get_bundled_model_dir ()));
  return NULL;
}

gchar *
gesso_ui_model_display_name (const gchar *path)
{
  g_auto (GStrv) dirs = gesso_ui_model_dirs_new ();
  g_autofree gchar *base = g_path_get_basename (path);
  gchar *name = NULL;

  /* relative to the model folder it was found in: "sd15/diffusers" reads better than
   * "diffusers" */
  for (gchar **d = dirs; *d != NULL && name == NULL; d++)
    {
      gsize len = strlen (*d);

      if (strncmp (path, *d, len) == 0 && path[len] == G_DIR_SEPARATOR)
        name = g_filename_display_name (path + len + 1);
    }
  if (name == NULL)
    name = g_filename_display_name (base);
  if (g_str_has_suffix (name, ".safetensors"))
    name[strlen (name) - strlen (".safetensors")] = '\0';
  return name;
}

static gchar *
format_params (guint64 n)
{
  /* TRANSLATORS: model sizes in the model chooser; B = billion (10^9), M = million, k =
   * thousand. The number is formatted by the locale. */
  if (n >= G_GUINT64_CONSTANT (1000000000))
    return g_strdup_printf (_("%.3g B parameters"), n / 1e9);
  if (n >= 1000000)
    return g_strdup_printf (_("%.3g M parameters"), n / 1e6);
  if (n >= 1000)
    return g_strdup_printf (_("%.3g k parameters"), n / 1e3);
  return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u parameter", "%u parameters",
                                       (gulong) n),
                          (guint) n);
}

static gchar *
format_dtypes (const GessoModelSummary *s)
{
  guint counts[GESSO_DTYPE_COUNT] = { 0 };
  const GessoDType floats[] = {
    GESSO_DTYPE_F32, GESSO_DTYPE_F16, GESSO_DTYPE_BF16, GESSO_DTYPE_F64,
    GESSO_DTYPE_F8_E4M3, GESSO_DTYPE_F8_E5M2,
  };
  GString *text = g_string_new (NULL);
  guint total = 0;

  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    for (int d = 0; d < GESSO_DTYPE_COUNT; d++)
      counts[d] += s->components[c].n_tensors_by_dtype[d];
  for (gsize i = 0; i < G_N_ELEMENTS (floats); i++)
    total += counts[floats[i]];

  /* the main storage type first, then any other that holds a tenth of the tensors or more
   * (fp16 checkpoints often keep a few fp32 tensors; those are not worth naming) */
  for (int shown = 0; shown < 2; shown++)
    {
      GessoDType best = GESSO_DTYPE_COUNT;

      for (gsize i = 0; i < G_N_ELEMENTS (floats); i++)
        if (counts[floats[i]] > 0
            && (best == GESSO_DTYPE_COUNT || counts[floats[i]] > counts[best]))
          best = floats[i];
      if (best == GESSO_DTYPE_COUNT || (shown > 0 && counts[best] * 10 < total))
        break;
      if (shown > 0)
        g_string_append (text, " + ");
      g_string_append (text, gesso_dtype_name (best));
      counts[best] = 0;
    }
  return g_string_free (text, FALSE);
}

gchar *
gesso_ui_model_describe (const gchar *path, GError **error)
{
  g_autoptr (GessoModelSummary) s = NULL;
  g_autoptr (GessoModelProbe) probe = NULL;
  g_autofree gchar *params = NULL;
  g_autofree gchar *dtypes = NULL;
  g_autofree gchar *size = NULL;
  GessoModelParams model_params;

  g_return_val_if_fail (path != NULL, NULL);

  s = gesso_model_summary_new (path, error);
  if (s == NULL)
    return NULL;
  /* what a run would use (and whether it can run at all), without loading the weights */
  gesso_model_params_init (&model_params);
  model_params.path = path;
  probe = gesso_model_probe (&model_params, error);
  if (probe == NULL)
    return NULL;
  params = format_params (s->n_params);
  dtypes = format_dtypes (s);
  size = g_strdup_printf (_("%d px"), probe->native_size);
  if (dtypes[0] == '\0')
    return g_strdup_printf ("%s · %s · %s", probe->architecture, size, params);
  return g_strdup_printf ("%s · %s · %s · %s", probe->architecture, size, params, dtypes);
}

gchar *
gesso_ui_resolve_model (const gchar *model, GError **error)
{
  g_auto (GStrv) models = NULL;
  g_autofree gchar *with_ext = NULL;
  g_autofree gchar *user_dir = NULL;

  if (model == NULL || model[0] == '\0')
    return gesso_ui_get_default_model (error);
  if (g_file_test (model, G_FILE_TEST_EXISTS))
    return g_strdup (model);

  /* what the chooser shows ("sd15/diffusers"), or the file or folder name with or without
   * ".safetensors", which is what a script is likely to pass */
  with_ext = g_strconcat (model, ".safetensors", NULL);
  models = gesso_ui_models_find ();
  for (gchar **m = models; *m != NULL; m++)
    {
      g_autofree gchar *name = gesso_ui_model_display_name (*m);
      g_autofree gchar *base = g_path_get_basename (*m);

      if (g_strcmp0 (name, model) == 0 || g_strcmp0 (base, model) == 0
          || g_strcmp0 (base, with_ext) == 0)
        return g_strdup (*m);
    }
  user_dir = g_build_filename (gimp_directory (), "gesso", "models", NULL);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               _("The model “%s” was not found. Give the path of a .safetensors file or a "
                 "diffusers folder, the name of a model in %s, or leave Model empty to use the "
                 "default model."),
               model, gimp_filename_to_utf8 (user_dir));
  return NULL;
}

gchar *
gesso_ui_resolve_vae (const gchar *vae, GError **error)
{
  g_auto (GStrv) vaes = NULL;
  g_autofree gchar *with_ext = NULL;

  if (vae == NULL || vae[0] == '\0')
    return NULL;
  if (g_file_test (vae, G_FILE_TEST_EXISTS))
    return g_strdup (vae);
  with_ext = g_strconcat (vae, ".safetensors", NULL);
  vaes = gesso_ui_assets_find (GESSO_ASSET_VAE);
  for (gchar **v = vaes; *v != NULL; v++)
    {
      g_autofree gchar *name = gesso_ui_model_display_name (*v);
      g_autofree gchar *base = g_path_get_basename (*v);

      if (g_strcmp0 (name, vae) == 0 || g_strcmp0 (base, vae) == 0
          || g_strcmp0 (base, with_ext) == 0)
        return g_strdup (*v);
    }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               _("The VAE “%s” was not found. Give the path of a VAE .safetensors file or "
                 "diffusers vae/ folder, the name of one in the model folders, or leave VAE "
                 "empty to use the model's own."),
               vae);
  return NULL;
}
