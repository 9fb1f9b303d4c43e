/* Gesso: finding models on disk and describing them in one line, for the model chooser.
 *
 * Nothing here loads weights: a model is recognised by its name (a .safetensors file) or by
 * its model_index.json (a diffusers folder), and described from the file headers only.
 */
#include "gesso-config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "gesso-dialog.h"
#include "gesso-ui-private.h"

/* Folders inside a model folder that are looked into once more, so that the usual
 * arrangement "models/sd15/sd15.safetensors + vocab.json" is found too. */
#define SCAN_DEPTH 2

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

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_utf8_collate (*(const gchar *const *) a, *(const gchar *const *) b);
}

static void
scan_dir (const gchar *dir, int depth, GPtrArray *found)
{
  g_autoptr (GDir) handle = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;

  if (handle == NULL)
    return;
  while ((name = g_dir_read_name (handle)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree gchar *path = g_build_filename (dir, names->pdata[i], NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (is_model_folder (path))
            g_ptr_array_add (found, g_steal_pointer (&path));
          else if (depth + 1 < SCAN_DEPTH)
            scan_dir (path, depth + 1, found);
        }
      else if (is_model_file (path))
        {
          g_ptr_array_add (found, g_steal_pointer (&path));
        }
    }
}

static void
add_dir (GPtrArray *dirs, const gchar *dir)
{
  g_autofree gchar *canonical = NULL;

  if (dir == NULL || dir[0] == '\0' || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    return;
  canonical = g_canonicalize_filename (dir, NULL);
  for (guint i = 0; i < dirs->len; i++)
    if (g_strcmp0 (dirs->pdata[i], canonical) == 0)
      return;
  g_ptr_array_add (dirs, g_steal_pointer (&canonical));
}

const gchar *
gesso_ui_get_bundled_model_dir (void)
{
  return GESSO_DATADIR G_DIR_SEPARATOR_S "models";
}

gchar **
gesso_ui_model_dirs_new (void)
{
  GPtrArray *dirs = g_ptr_array_new ();
  g_autofree gchar *user = g_build_filename (gimp_directory (), "gesso", "models", NULL);
  const gchar *env = g_getenv ("GESSO_MODEL_PATH");

  add_dir (dirs, gesso_ui_get_bundled_model_dir ());
  add_dir (dirs, user);
  if (env != NULL)
    {
      g_auto (GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (gchar **p = parts; *p != NULL; p++)
        add_dir (dirs, *p);
    }
  g_ptr_array_add (dirs, NULL);
  return (gchar **) g_ptr_array_free (dirs, FALSE);
}

gchar **
gesso_ui_models_find (void)
{
  g_auto (GStrv) dirs = gesso_ui_model_dirs_new ();
  GPtrArray *found = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (gchar **d = dirs; *d != NULL; d++)
    {
      g_autoptr (GPtrArray) here = g_ptr_array_new_with_free_func (g_free);

      scan_dir (*d, 0, here);
      for (guint i = 0; i < here->len; i++)
        {
          gchar *path = here->pdata[i];

          if (g_hash_table_contains (seen, path))
            continue;
          here->pdata[i] = NULL;
          g_hash_table_add (seen, path);
          g_ptr_array_add (found, path);
        }
    }
  g_ptr_array_add (found, NULL);
  return (gchar **) g_ptr_array_free (found, FALSE);
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
