/* `gesso models`: the models Gesso finds where people keep them, one line each.
 *
 *   KIND        FAMILY          SIZE  HASH        FILE
 *   checkpoint  SD 1.x       2.13 GB  6ce0161689  ~/stable-diffusion-webui/models/...
 *
 * Folders: A1111/Forge/SD.Next and ComfyUI installs under the home folder (ComfyUI's
 * extra_model_paths.yaml included), each folder of $GESSO_MODEL_PATH, the folders added in the
 * plug-in's model chooser, the plug-in's own models folder, and --dir. Kinds and families come
 * from the file headers, kept in the model cache (size + mtime), so a second listing reads no
 * file. The hash is A1111's "Model hash" when it is known (computed before by a run, `gesso
 * info` or --hash); --hash computes the missing ones, which reads every file whole.
 */
#include "gesso-config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <string.h>

#include "cli/commands.h"
#include "gesso.h"

static char *
format_size (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_DEFAULT);
}

/* PATH with the home folder shown as "~", as people read their own paths. */
static char *
shorten (const char *path)
{
  const char *home = g_get_home_dir ();
  size_t n = strlen (home);

  if (n > 1 && strncmp (path, home, n) == 0 && path[n] == G_DIR_SEPARATOR)
    return g_strconcat ("~", path + n, NULL);
  return g_strdup (path);
}

static GessoAssetKind
parse_kind (const char *name, gboolean *ok)
{
  *ok = TRUE;
  if (name == NULL)
    return GESSO_ASSET_KIND_COUNT;
  for (int k = 0; k < GESSO_ASSET_KIND_COUNT; k++)
    if (g_ascii_strcasecmp (name, gesso_asset_kind_name (k)) == 0)
      return (GessoAssetKind) k;
  *ok = FALSE;
  return GESSO_ASSET_KIND_COUNT;
}

void
gesso_cli_add_model_folders (GessoModelLibrary *library)
{
  const char *env = g_getenv ("GESSO_MODEL_PATH");
  g_autofree char *gimp = g_build_filename (g_get_user_config_dir (), "GIMP", "3.0", "gesso",
                                            "models", NULL);
  g_autofree char *bundled = g_build_filename (GESSO_DATADIR, "models", NULL);

  gesso_model_library_add_known_folders (library, g_get_home_dir ());
  if (env != NULL)
    {
      g_auto (GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      for (char **p = parts; *p != NULL; p++)
        gesso_model_library_add_folder (library, *p, GESSO_ASSET_UNKNOWN, "GESSO_MODEL_PATH");
    }
  gesso_model_library_add_user_folders (library, g_get_user_config_dir ());
  gesso_model_library_add_folder (library, gimp, GESSO_ASSET_UNKNOWN, "GIMP");
  gesso_model_library_add_folder (library, bundled, GESSO_ASSET_UNKNOWN, "Gesso");
}

/* The bundled demo model: installed, else in the source tree this binary was built from. */
static char *
bundled_model (void)
{
  const char *const roots[] = { GESSO_DATADIR G_DIR_SEPARATOR_S "models",
                                GESSO_SOURCE_DIR G_DIR_SEPARATOR_S "data" G_DIR_SEPARATOR_S
                                "models" };

  for (gsize i = 0; i < G_N_ELEMENTS (roots); i++)
    {
      g_autofree char *dir = g_build_filename (roots[i], "gesso-emoji-64", NULL);
      g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);

      if (g_file_test (index, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&dir);
    }
  return NULL;
}

char *
gesso_cli_default_model (GError **error)
{
  g_autoptr (GessoModelLibrary) library = NULL;
  g_autoptr (GessoModelCache) cache = NULL;
  char *bundled = bundled_model ();

  if (bundled != NULL)
    return bundled;
  library = gesso_model_library_new ();
  cache = gesso_cli_model_cache_new ();
  gesso_cli_add_model_folders (library);
  gesso_model_library_scan (library, cache);
  for (guint i = 0; i < gesso_model_library_count (library); i++)
    {
      const GessoAsset *a = gesso_model_library_get (library, i);
      if (a->kind == GESSO_ASSET_CHECKPOINT)
        return g_strdup (a->path);
    }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               _("no --model given and no model found (not the bundled one, nor any in "
                 "$GESSO_MODEL_PATH or the A1111 and ComfyUI folders): give --model FILE"));
  return NULL;
}

int
gesso_cli_models (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GessoModelLibrary) library = gesso_model_library_new ();
  g_autoptr (GessoModelCache) cache = gesso_cli_model_cache_new ();
  g_auto (GStrv) dirs = NULL;
  g_autofree char *kind_name = NULL;
  gboolean hash = FALSE;
  gboolean folders = FALSE;
  const GOptionEntry entries[] = {
    { "dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &dirs,
      N_("Look in this folder too (may be repeated)"), N_("DIR") },
    { "kind", 0, 0, G_OPTION_ARG_STRING, &kind_name,
      N_("List only this kind: checkpoint, LoRA, embedding, ControlNet, VAE, TAESD"),
      N_("KIND") },
    { "hash", 0, 0, G_OPTION_ARG_NONE, &hash,
      N_("Compute A1111's model hash where it is not known yet (reads each file whole)"),
      NULL },
    { "folders", 0, 0, G_OPTION_ARG_NONE, &folders, N_("List the folders looked in"), NULL },
    G_OPTION_ENTRY_NULL,
  };
  GessoAssetKind only;
  gboolean kind_ok;
  guint shown = 0;

  g_option_context_set_summary (context,
                                _("List the models found where A1111, Forge and ComfyUI keep "
                                  "them (under your home folder, and the folders ComfyUI's "
                                  "extra_model_paths.yaml names), in $GESSO_MODEL_PATH and in "
                                  "the folders added in GIMP: kind, family, size, A1111's "
                                  "model hash and file. Read from the file headers only."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  if (!gesso_cli_parse (context, "models", &argc, &argv))
    return GESSO_CLI_EXIT_USAGE;
  if (argc > 1)
    {
      gesso_cli_error (_("unexpected argument '%s'; run 'gesso models --help' for the options"),
                       argv[1]);
      return GESSO_CLI_EXIT_USAGE;
    }
  only = parse_kind (kind_name, &kind_ok);
  if (!kind_ok)
    {
      gesso_cli_error (_("--kind is checkpoint, LoRA, embedding, ControlNet, VAE or TAESD, not "
                         "'%s'"), kind_name);
      return GESSO_CLI_EXIT_USAGE;
    }

  for (char **d = dirs; d != NULL && *d != NULL; d++)
    gesso_model_library_add_folder (library, *d, GESSO_ASSET_UNKNOWN, "--dir");
  gesso_cli_add_model_folders (library);
  gesso_model_library_scan (library, cache);

  if (folders)
    for (const char *const *f = gesso_model_library_get_folders (library); *f != NULL; f++)
      {
        g_autofree char *path = shorten (*f);
        g_print ("%s\n", path);
      }
  else
    for (guint i = 0; i < gesso_model_library_count (library); i++)
      {
        const GessoAsset *a = gesso_model_library_get (library, i);
        g_autofree char *size = format_size (a->size);
        g_autofree char *path = shorten (a->path);
        g_autofree char *sha256 = NULL;
        g_autofree char *autov2 = NULL;

        if (only != GESSO_ASSET_KIND_COUNT && a->kind != only)
          continue;
        if (g_file_test (a->path, G_FILE_TEST_IS_REGULAR))
          sha256 = hash ? gesso_model_hash_sha256 (a->path, cache, NULL, NULL)
                        : gesso_model_hash_cached (a->path, cache);
        if (sha256 != NULL)
          autov2 = gesso_model_hash_autov2 (sha256);
        if (shown++ == 0)
          g_print ("%-11s %-18s %9s  %-10s  %s\n", _("KIND"), _("FAMILY"), _("SIZE"),
                   _("HASH"), _("FILE"));
        g_print ("%-11s %-18s %9s  %-10s  %s\n", gesso_asset_kind_name (a->kind),
                 a->family != NULL ? a->family : "-", size, autov2 != NULL ? autov2 : "-",
                 path);
      }
  for (const char *const *w = gesso_model_library_get_warnings (library); *w != NULL; w++)
    gesso_cli_error (_("warning: %s"), *w);
  /* kinds and families learnt this time are kept for the next listing */
  (void) gesso_model_cache_save (cache, NULL);
  return GESSO_CLI_EXIT_OK;
}
