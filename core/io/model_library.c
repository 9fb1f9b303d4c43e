/* The model folders users already have (see gesso.h, "Model folders").
 *
 * A1111 (and Forge, SD.Next) keep models/Stable-diffusion, models/Lora, ... under their
 * install; ComfyUI keeps models/checkpoints, models/loras, ... and reads more folders from its
 * extra_model_paths.yaml. Nothing here is configured: the usual install places under the home
 * folder are looked at, and folders the user adds. Listing must stay quick with hundreds of
 * files, so a file is only stat()ed when the cache knows it, and only its header is read when
 * not.
 */
#include "gesso-config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "gesso.h"
#include "io/comfy_paths.h"
#include "io/io-private.h"
#include <glib/gi18n-lib.h>

/* Folders below a models folder looked into: "Lora/characters/x.safetensors" and the like. */
#define MAX_DEPTH 3

typedef struct
{
  char *dir;
  GessoAssetKind kind;
  char *source;
} Folder;

struct GessoModelLibrary
{
  GArray *folders;              /* Folder */
  GPtrArray *assets;            /* GessoAsset * */
  GPtrArray *existing;          /* char *, NULL-terminated: the folders that exist */
  GPtrArray *warnings;          /* char *, NULL-terminated */
};

static void
folder_clear (gpointer data)
{
  Folder *f = data;

  g_free (f->dir);
  g_free (f->source);
}

static void
asset_free (gpointer data)
{
  GessoAsset *a = data;

  g_free (a->path);
  g_free (a->family);
  g_free (a->folder);
  g_free (a->source);
  g_free (a->problem);
  g_free (a);
}

static GPtrArray *
null_terminated (void)
{
  GPtrArray *array = g_ptr_array_new_null_terminated (0, g_free, TRUE);
  return array;
}

GessoModelLibrary *
gesso_model_library_new (void)
{
  GessoModelLibrary *library = g_new0 (GessoModelLibrary, 1);

  library->folders = g_array_new (FALSE, FALSE, sizeof (Folder));
  g_array_set_clear_func (library->folders, folder_clear);
  library->assets = g_ptr_array_new_with_free_func (asset_free);
  library->existing = null_terminated ();
  library->warnings = null_terminated ();
  return library;
}

void
gesso_model_library_free (GessoModelLibrary *library)
{
  if (library == NULL)
    return;
  g_array_unref (library->folders);
  g_ptr_array_unref (library->assets);
  g_ptr_array_unref (library->existing);
  g_ptr_array_unref (library->warnings);
  g_free (library);
}

void
gesso_model_library_add_folder (GessoModelLibrary *library, const char *dir,
                                GessoAssetKind kind, const char *source)
{
  Folder f;

  g_return_if_fail (library != NULL);
  if (dir == NULL || dir[0] == '\0')
    return;
  f.dir = g_canonicalize_filename (dir, NULL);
  for (guint i = 0; i < library->folders->len; i++)
    if (strcmp (g_array_index (library->folders, Folder, i).dir, f.dir) == 0)
      {
        g_free (f.dir);
        return;
      }
  f.kind = kind;
  f.source = g_strdup (source != NULL ? source : "");
  g_array_append_val (library->folders, f);
}

/* --- Where A1111 and ComfyUI keep models ------------------------------------------------- */

typedef struct
{
  const char *sub;
  GessoAssetKind kind;
} KnownFolder;

static const char *const a1111_roots[] = {
  "stable-diffusion-webui", "stable-diffusion-webui-forge", "automatic",
};
static const KnownFolder a1111_folders[] = {
  { "models/Stable-diffusion", GESSO_ASSET_CHECKPOINT },
  { "models/Lora", GESSO_ASSET_LORA },
  { "models/LyCORIS", GESSO_ASSET_LORA },
  { "models/ControlNet", GESSO_ASSET_CONTROLNET },
  { "extensions/sd-webui-controlnet/models", GESSO_ASSET_CONTROLNET },
  { "models/VAE", GESSO_ASSET_VAE },
  { "models/VAE-approx", GESSO_ASSET_TAESD },
  { "embeddings", GESSO_ASSET_EMBEDDING },
};

static const char *const comfy_roots[] = { "ComfyUI", "comfyui", "Documents/ComfyUI" };
static const KnownFolder comfy_folders[] = {
  { "models/checkpoints", GESSO_ASSET_CHECKPOINT },
  { "models/diffusers", GESSO_ASSET_CHECKPOINT },
  { "models/loras", GESSO_ASSET_LORA },
  { "models/controlnet", GESSO_ASSET_CONTROLNET },
  { "models/embeddings", GESSO_ASSET_EMBEDDING },
  { "models/vae", GESSO_ASSET_VAE },
  { "models/vae_approx", GESSO_ASSET_TAESD },
};

/* ComfyUI's model type keys, as extra_model_paths.yaml uses them. */
static gboolean
comfy_kind (const char *type, GessoAssetKind *kind)
{
  static const struct
  {
    const char *type;
    GessoAssetKind kind;
  } types[] = {
    { "checkpoints", GESSO_ASSET_CHECKPOINT }, { "diffusers", GESSO_ASSET_CHECKPOINT },
    { "loras", GESSO_ASSET_LORA },             { "controlnet", GESSO_ASSET_CONTROLNET },
    { "embeddings", GESSO_ASSET_EMBEDDING },   { "vae", GESSO_ASSET_VAE },
    { "vae_approx", GESSO_ASSET_TAESD },
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    if (strcmp (type, types[i].type) == 0)
      {
        *kind = types[i].kind;
        return TRUE;
      }
  return FALSE;
}

static void
on_comfy_path (const char *type, const char *dir, gpointer data)
{
  GessoAssetKind kind;

  if (comfy_kind (type, &kind))
    gesso_model_library_add_folder (data, dir, kind, "ComfyUI extra_model_paths.yaml");
}

static void
add_known (GessoModelLibrary *library, const char *root, const KnownFolder *folders,
           guint n_folders, const char *source)
{
  for (guint i = 0; i < n_folders; i++)
    {
      g_autofree char *dir = g_build_filename (root, folders[i].sub, NULL);
      if (g_file_test (dir, G_FILE_TEST_IS_DIR))
        gesso_model_library_add_folder (library, dir, folders[i].kind, source);
    }
}

void
gesso_model_library_add_known_folders (GessoModelLibrary *library, const char *home)
{
  g_return_if_fail (library != NULL);
  if (home == NULL || home[0] == '\0')
    return;
  for (guint i = 0; i < G_N_ELEMENTS (a1111_roots); i++)
    {
      g_autofree char *root = g_build_filename (home, a1111_roots[i], NULL);
      if (g_file_test (root, G_FILE_TEST_IS_DIR))
        add_known (library, root, a1111_folders, G_N_ELEMENTS (a1111_folders), "A1111");
    }
  for (guint i = 0; i < G_N_ELEMENTS (comfy_roots); i++)
    {
      g_autofree char *root = g_build_filename (home, comfy_roots[i], NULL);
      g_autofree char *yaml = g_build_filename (root, "extra_model_paths.yaml", NULL);
      g_autoptr (GError) error = NULL;

      if (!g_file_test (root, G_FILE_TEST_IS_DIR))
        continue;
      add_known (library, root, comfy_folders, G_N_ELEMENTS (comfy_folders), "ComfyUI");
      if (g_file_test (yaml, G_FILE_TEST_IS_REGULAR)
          && !gesso_comfy_paths_read (yaml, home, on_comfy_path, library, &error))
        g_ptr_array_add (library->warnings, g_strdup (error->message));
    }
}

/* --- Scanning ---------------------------------------------------------------------------- */

static guint64
folder_size (const char *dir, int depth)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint64 total = 0;

  while (d != NULL && depth < 4 && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      GStatBuf st;

      if (g_stat (path, &st) != 0)
        continue;
      if (S_ISDIR (st.st_mode))
        total += folder_size (path, depth + 1);
      else if (S_ISREG (st.st_mode))
        total += (guint64) st.st_size;
    }
  return total;
}

static void
add_asset (GessoModelLibrary *library, const Folder *folder, const char *path,
           GessoAssetKind kind, char *family, guint64 size)
{
  GessoAsset *a = g_new0 (GessoAsset, 1);

  a->path = g_strdup (path);
  a->kind = kind;
  a->family = family;
  a->size = size;
  a->folder = g_strdup (folder->dir);
  a->source = g_strdup (folder->source);
  g_ptr_array_add (library->assets, a);
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
scan_dir (GessoModelLibrary *library, const Folder *folder, const char *dir, int depth,
          GessoModelCache *cache, GHashTable *seen)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      g_autoptr (GError) error = NULL;
      GessoAssetKind kind;
      char *family = NULL;
      GStatBuf st;

      if (g_stat (path, &st) != 0 || g_hash_table_contains (seen, path))
        continue;
      if (S_ISDIR (st.st_mode))
        {
          gesso_asset_identify (path, NULL, &kind, &family, NULL);
          if (kind != GESSO_ASSET_UNKNOWN)
            {
              g_hash_table_add (seen, g_strdup (path));
              add_asset (library, folder, path, kind, family, folder_size (path, 0));
            }
          else if (depth + 1 < MAX_DEPTH)
            scan_dir (library, folder, path, depth + 1, cache, seen);
          continue;
        }
      if (!S_ISREG (st.st_mode) || !g_str_has_suffix (names->pdata[i], ".safetensors"))
        continue;
      g_hash_table_add (seen, g_strdup (path));
      if (!gesso_asset_identify (path, cache, &kind, &family, &error))
        {
          /* listed all the same: a chooser can then say what is wrong with it */
          g_ptr_array_add (library->warnings, g_strdup (error->message));
          add_asset (library, folder, path, GESSO_ASSET_UNKNOWN, NULL, (guint64) st.st_size);
          ((GessoAsset *) g_ptr_array_index (library->assets, library->assets->len - 1))->problem
            = g_strdup (error->message);
          continue;
        }
      add_asset (library, folder, path, kind, family, (guint64) st.st_size);
    }
}

static gint
compare_assets (gconstpointer a, gconstpointer b)
{
  const GessoAsset *x = *(const GessoAsset *const *) a;
  const GessoAsset *y = *(const GessoAsset *const *) b;

  if (x->kind != y->kind)
    return x->kind < y->kind ? -1 : 1;
  return strcmp (x->path, y->path);
}

void
gesso_model_library_scan (GessoModelLibrary *library, GessoModelCache *cache)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_return_if_fail (library != NULL);
  g_ptr_array_set_size (library->assets, 0);
  g_ptr_array_set_size (library->existing, 0);
  for (guint i = 0; i < library->folders->len; i++)
    {
      const Folder *folder = &g_array_index (library->folders, Folder, i);

      if (!g_file_test (folder->dir, G_FILE_TEST_IS_DIR))
        continue;
      g_ptr_array_add (library->existing, g_strdup (folder->dir));
      scan_dir (library, folder, folder->dir, 0, cache, seen);
    }
  g_ptr_array_sort (library->assets, compare_assets);
}

guint
gesso_model_library_count (const GessoModelLibrary *library)
{
  g_return_val_if_fail (library != NULL, 0);
  return library->assets->len;
}

const GessoAsset *
gesso_model_library_get (const GessoModelLibrary *library, guint index)
{
  g_return_val_if_fail (library != NULL && index < library->assets->len, NULL);
  return library->assets->pdata[index];
}

const char *const *
gesso_model_library_get_folders (GessoModelLibrary *library)
{
  static const char *const none[] = { NULL };

  g_return_val_if_fail (library != NULL, NULL);
  /* an empty null-terminated GPtrArray may have no storage at all */
  return library->existing->pdata != NULL ? (const char *const *) library->existing->pdata
                                          : none;
}

const char *const *
gesso_model_library_get_warnings (GessoModelLibrary *library)
{
  static const char *const none[] = { NULL };

  g_return_val_if_fail (library != NULL, NULL);
  return library->warnings->pdata != NULL ? (const char *const *) library->warnings->pdata
                                          : none;
}

/* --- Folders the user added ------------------------------------------------------------- */

static char *
user_folders_file (const char *config_dir)
{
  return g_build_filename (config_dir, "gesso", "model-folders", NULL);
}

void
gesso_model_library_add_user_folders (GessoModelLibrary *library, const char *config_dir)
{
  g_autofree char *file = NULL;
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  g_return_if_fail (library != NULL);
  if (config_dir == NULL)
    return;
  file = user_folders_file (config_dir);
  if (!g_file_get_contents (file, &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (char **line = lines; *line != NULL; line++)
    if ((*line)[0] != '\0' && (*line)[0] != '#')
      gesso_model_library_add_folder (library, *line, GESSO_ASSET_UNKNOWN, "added");
}

gboolean
gesso_model_library_remember_folder (const char *config_dir, const char *dir, GError **error)
{
  g_autofree char *file = NULL;
  g_autofree char *folder = NULL;
  g_autofree char *text = NULL;
  g_autofree char *canonical = NULL;
  g_autoptr (GString) updated = NULL;
  g_auto (GStrv) lines = NULL;

  g_return_val_if_fail (config_dir != NULL && dir != NULL, FALSE);
  if (strchr (dir, '\n') != NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("a models folder name cannot hold a line break"));
      return FALSE;
    }
  file = user_folders_file (config_dir);
  folder = g_path_get_dirname (file);
  canonical = g_canonicalize_filename (dir, NULL);
  if (!g_file_get_contents (file, &text, NULL, NULL))
    text = g_strdup ("");
  lines = g_strsplit (text, "\n", -1);
  for (char **line = lines; *line != NULL; line++)
    if (strcmp (*line, canonical) == 0)
      return TRUE;
  updated = g_string_new (text);
  if (updated->len > 0 && updated->str[updated->len - 1] != '\n')
    g_string_append_c (updated, '\n');
  g_string_append_printf (updated, "%s\n", canonical);
  if (g_mkdir_with_parents (folder, 0700) != 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot create %s"), folder);
      return FALSE;
    }
  return g_file_set_contents_full (file, updated->str, (gssize) updated->len,
                                   G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}
