/* A1111's model hash: the SHA-256 of a whole model file.
 *
 * A1111 writes "Model hash: <first 10 hex digits>" into every PNG it makes, and civitai looks
 * models up by the same digits (it calls them "AutoV2"); both hash the file's bytes as they
 * are, header and all. Reading a 2-7 GB checkpoint takes seconds, so the result is kept in the
 * model cache under the file's size and mtime, and a second run does not read the file again.
 */
#include "gesso-config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "gesso.h"
#include "io/io-private.h"
#include "io/model_cache.h"
#include <glib/gi18n-lib.h>

#define CHUNK (4 * 1024 * 1024)
#define CACHE_KEY "sha256"

static char *
hash_file (const char *path, GError **error)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guchar *buffer = NULL;
  GStatBuf st;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      int saved = fd < 0 ? errno : S_ISDIR (st.st_mode) ? EISDIR : errno;
      g_autofree char *shown = gesso_io_display (path);

      if (fd >= 0)
        close (fd);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot hash '%s': %s"), shown,
                   g_strerror (saved));
      return NULL;
    }
  /* the whole file is read once, front to back: tell the kernel, and keep it from the cache
   * of pages a running job may need */
  (void) posix_fadvise (fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  buffer = g_malloc (CHUNK);
  for (;;)
    {
      ssize_t got = read (fd, buffer, CHUNK);

      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        {
          int saved = errno;
          g_autofree char *shown = gesso_io_display (path);

          close (fd);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot hash '%s': %s"), shown,
                       g_strerror (saved));
          return NULL;
        }
      if (got == 0)
        break;
      g_checksum_update (checksum, buffer, (gsize) got);
    }
  (void) posix_fadvise (fd, 0, 0, POSIX_FADV_DONTNEED);
  close (fd);
  return g_strdup (g_checksum_get_string (checksum));
}

char *
gesso_model_hash_sha256 (const char *path, GessoModelCache *cache, gboolean *from_cache,
                         GError **error)
{
  char *sha256 = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  if (from_cache != NULL)
    *from_cache = FALSE;
  if (cache != NULL)
    sha256 = gesso_model_cache_get (cache, path, CACHE_KEY);
  if (sha256 != NULL && strlen (sha256) == 64)
    {
      if (from_cache != NULL)
        *from_cache = TRUE;
      return sha256;
    }
  g_free (sha256);
  sha256 = hash_file (path, error);
  if (sha256 != NULL && cache != NULL && gesso_model_cache_set (cache, path, CACHE_KEY, sha256))
    /* seconds of reading are worth keeping at once; a cache that cannot be written only
     * costs the next run the same seconds */
    (void) gesso_model_cache_save (cache, NULL);
  return sha256;
}

char *
gesso_model_hash_cached (const char *path, GessoModelCache *cache)
{
  char *sha256;

  g_return_val_if_fail (path != NULL, NULL);
  if (cache == NULL)
    return NULL;
  sha256 = gesso_model_cache_get (cache, path, CACHE_KEY);
  if (sha256 != NULL && strlen (sha256) != 64)
    g_clear_pointer (&sha256, g_free);
  return sha256;
}

char *
gesso_model_hash_autov2 (const char *sha256)
{
  g_return_val_if_fail (sha256 != NULL, NULL);
  return g_strndup (sha256, GESSO_AUTOV2_LENGTH);
}
