/* The model cache (see model_cache.h). Groups are named by a digest of the path, because a
 * key file's group names cannot hold every character a path can; the path itself is a value.
 */
#include "io/model_cache.h"

#include <errno.h>

#include <glib/gstdio.h>
#include <glib/gi18n-lib.h>

struct GessoModelCache
{
  char *file;
  GKeyFile *keys;
  gboolean dirty;
};

GessoModelCache *
gesso_model_cache_new (const char *file)
{
  GessoModelCache *cache = g_new0 (GessoModelCache, 1);

  cache->file = g_strdup (file);
  cache->keys = g_key_file_new ();
  /* a damaged cache is an empty one: it is rebuilt as models are looked at */
  if (file != NULL && !g_key_file_load_from_file (cache->keys, file, G_KEY_FILE_NONE, NULL))
    {
      g_key_file_unref (cache->keys);
      cache->keys = g_key_file_new ();
    }
  return cache;
}

void
gesso_model_cache_free (GessoModelCache *cache)
{
  if (cache == NULL)
    return;
  g_key_file_unref (cache->keys);
  g_free (cache->file);
  g_free (cache);
}

gboolean
gesso_model_cache_save (GessoModelCache *cache, GError **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *data = NULL;
  gsize length;

  g_return_val_if_fail (cache != NULL, FALSE);
  if (!cache->dirty || cache->file == NULL)
    return TRUE;
  dir = g_path_get_dirname (cache->file);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot create the cache folder %s: %s"),
                   dir, g_strerror (saved));
      return FALSE;
    }
  data = g_key_file_to_data (cache->keys, &length, NULL);
  /* written to a temporary name and renamed: a plug-in and a terminal may both write it */
  if (!g_file_set_contents_full (cache->file, data, (gssize) length,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    return FALSE;
  cache->dirty = FALSE;
  return TRUE;
}

/* What identifies the file's present contents cheaply: size and mtime in nanoseconds. */
static char *
stamp (const char *path)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0)
    return NULL;
  return g_strdup_printf ("%" G_GUINT64_FORMAT " %" G_GINT64_FORMAT ".%09ld",
                          (guint64) st.st_size, (gint64) st.st_mtim.tv_sec,
                          (long) st.st_mtim.tv_nsec);
}

static char *
group_name (const char *path)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA1, path, -1);
}

/* Entries are by absolute path: "sd15.safetensors" run from two folders are two files. */
static char *
absolute (const char *path)
{
  return g_canonicalize_filename (path, NULL);
}

char *
gesso_model_cache_get (GessoModelCache *cache, const char *relative, const char *key)
{
  g_autofree char *path = NULL;
  g_autofree char *group = NULL;
  g_autofree char *now = NULL;
  g_autofree char *then = NULL;
  g_autofree char *recorded_path = NULL;

  g_return_val_if_fail (cache != NULL && relative != NULL && key != NULL, NULL);
  path = absolute (relative);
  group = group_name (path);
  if (!g_key_file_has_group (cache->keys, group))
    return NULL;
  now = stamp (path);
  then = g_key_file_get_string (cache->keys, group, "stamp", NULL);
  recorded_path = g_key_file_get_string (cache->keys, group, "path", NULL);
  if (now == NULL || g_strcmp0 (now, then) != 0 || g_strcmp0 (path, recorded_path) != 0)
    return NULL;
  return g_key_file_get_string (cache->keys, group, key, NULL);
}

gboolean
gesso_model_cache_set (GessoModelCache *cache, const char *relative, const char *key,
                       const char *value)
{
  g_autofree char *path = NULL;
  g_autofree char *group = NULL;
  g_autofree char *now = NULL;
  g_autofree char *then = NULL;

  g_return_val_if_fail (cache != NULL && relative != NULL && key != NULL && value != NULL,
                        FALSE);
  path = absolute (relative);
  now = stamp (path);
  if (now == NULL)
    return FALSE;
  group = group_name (path);
  then = g_key_file_get_string (cache->keys, group, "stamp", NULL);
  /* what was known of another version of the file is all stale */
  if (g_strcmp0 (now, then) != 0)
    {
      g_key_file_remove_group (cache->keys, group, NULL);
      g_key_file_set_string (cache->keys, group, "path", path);
      g_key_file_set_string (cache->keys, group, "stamp", now);
    }
  g_key_file_set_string (cache->keys, group, key, value);
  cache->dirty = TRUE;
  return TRUE;
}
