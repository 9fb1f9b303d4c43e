/* Gesso: model fingerprints (see gesso-fingerprint.h). */
#include "gesso-config.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include <gio/gio.h>

#include "gesso-fingerprint.h"
#include "gesso-intl.h"

#define HEAD_BYTES (1024 * 1024)

/* Feeds the first MiB of PATH into CHECKSUM. */
static gboolean
hash_head (GChecksum *checksum, const gchar *path, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) stream = NULL;
  g_autofree guchar *head = NULL;
  gsize got = 0;

  stream = g_file_read (file, NULL, error);
  if (stream == NULL)
    return FALSE;
  head = g_malloc (HEAD_BYTES);
  if (!g_input_stream_read_all (G_INPUT_STREAM (stream), head, HEAD_BYTES, &got, NULL, error))
    return FALSE;
  g_checksum_update (checksum, head, got);
  return TRUE;
}

static gboolean
file_size (const gchar *path, guint64 *size, GError **error)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0)
    {
      int saved = errno;

      g_set_error_literal (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                           g_strerror (saved));
      return FALSE;
    }
  *size = (guint64) st.st_size;
  return TRUE;
}

/* Every regular file below DIR (relative paths, '/' separated) into FILES. */
static gboolean
list_files (const gchar *root, const gchar *rel, GPtrArray *files, guint depth, GError **error)
{
  g_autofree gchar *dir_path = rel ? g_build_filename (root, rel, NULL) : g_strdup (root);
  g_autoptr (GDir) dir = NULL;
  const gchar *name;

  if (depth > 16)
    return TRUE;                      /* a link loop or an absurd tree: stop descending */
  dir = g_dir_open (dir_path, 0, error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child_rel = rel ? g_strconcat (rel, "/", name, NULL) : g_strdup (name);
      g_autofree gchar *child = g_build_filename (root, child_rel, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        {
          if (!list_files (root, child_rel, files, depth + 1, error))
            return FALSE;
        }
      else if (g_file_test (child, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (files, g_steal_pointer (&child_rel));
    }
  return TRUE;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

/* Feeds PATH (file or folder) into CHECKSUM as described in the header; *TOTAL gets the bytes. */
static gboolean
hash_model (GChecksum *checksum, const gchar *path, guint64 *total, GError **error)
{
  g_autoptr (GPtrArray) files = NULL;

  *total = 0;
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    return file_size (path, total, error) && hash_head (checksum, path, error);

  files = g_ptr_array_new_with_free_func (g_free);
  if (!list_files (path, NULL, files, 0, error))
    return FALSE;
  g_ptr_array_sort (files, compare_strings);
  for (guint i = 0; i < files->len; i++)
    {
      const gchar *rel = g_ptr_array_index (files, i);
      g_autofree gchar *file = g_build_filename (path, rel, NULL);
      g_autofree gchar *size_text = NULL;
      guint64 bytes = 0;

      if (!file_size (file, &bytes, error))
        return FALSE;
      size_text = g_strdup_printf ("%" G_GUINT64_FORMAT, bytes);
      g_checksum_update (checksum, (const guchar *) rel, strlen (rel) + 1);
      g_checksum_update (checksum, (const guchar *) size_text, strlen (size_text) + 1);
      if (!hash_head (checksum, file, error))
        return FALSE;
      *total += bytes;
    }
  return TRUE;
}

gchar *
gesso_fingerprint_model (const gchar *path, guint64 *size, GError **error)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (path != NULL && size != NULL, NULL);
  if (!hash_model (checksum, path, size, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("Gesso could not read the model “%s” to fingerprint it: %s"), path,
                   local_error->message);
      return NULL;
    }
  return g_strdup (g_checksum_get_string (checksum));
}
