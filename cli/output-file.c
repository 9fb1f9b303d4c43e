/* Output files: a temporary file beside the destination, fsync, rename (see output-file.h). */
#include "cli/output-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gesso.h"

struct GessoCliOutput
{
  char *path;                   /* as the user gave it, for messages */
  char *target;                 /* the file the rename replaces (a link's target) */
  char *temp;                   /* the temporary file */
  int fd;
  gboolean existed;             /* TARGET was there before: messages say it is untouched */
};

/* "the disk is full" for the errors a user can act on in those terms, else strerror. */
static const char *
describe_errno (int errnum)
{
  switch (errnum)
    {
    case ENOSPC:
      return "the disk is full (no space left on the device)";
    case EDQUOT:
      return "the disk quota is used up";
    case EROFS:
      return "the disk is read-only";
    default:
      return g_strerror (errnum);
    }
}

static void
set_write_error (GError **error, const GessoCliOutput *output, int errnum)
{
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot write '%s': %s; %s", output->path,
               describe_errno (errnum),
               output->existed ? "the file that was there is unchanged" : "nothing was written");
}

GessoCliOutput *
gesso_cli_output_begin (const char *path, GError **error)
{
  GessoCliOutput *output;
  g_autofree char *dir = NULL;
  g_autofree char *base = NULL;
  struct stat st;
  mode_t mask;

  g_return_val_if_fail (path != NULL, NULL);
  output = g_new0 (GessoCliOutput, 1);
  output->path = g_strdup (path);
  output->fd = -1;
  if (g_lstat (path, &st) == 0 && S_ISLNK (st.st_mode))
    {
      /* replace what the link points at, as an in-place write would have */
      char *resolved = realpath (path, NULL);

      output->target = resolved != NULL ? g_strdup (resolved) : g_strdup (path);
      free (resolved);
    }
  else
    output->target = g_strdup (path);
  if (g_stat (output->target, &st) == 0)
    {
      if (!S_ISREG (st.st_mode))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO,
                       "cannot write '%s': it exists and is not a regular file", path);
          gesso_cli_output_abort (output);
          return NULL;
        }
      output->existed = TRUE;
    }
  dir = g_path_get_dirname (output->target);
  base = g_path_get_basename (output->target);
  output->temp = g_strdup_printf ("%s%s.%s.XXXXXX", dir, G_DIR_SEPARATOR_S, base);
  output->fd = g_mkstemp_full (output->temp, O_RDWR | O_CLOEXEC, 0600);
  if (output->fd < 0)
    {
      int errnum = errno;

      g_free (output->temp);
      output->temp = NULL;
      set_write_error (error, output, errnum);
      gesso_cli_output_abort (output);
      return NULL;
    }
  /* the permissions the file would have had: the old file's, or the umask's */
  if (output->existed)
    (void) fchmod (output->fd, st.st_mode & 07777);
  else
    {
      mask = umask (0);
      umask (mask);
      (void) fchmod (output->fd, 0666 & ~mask);
    }
  return output;
}

gboolean
gesso_cli_output_write (GessoCliOutput *output, const void *data, size_t size, GError **error)
{
  const guint8 *p = data;

  while (size > 0)
    {
      ssize_t n = write (output->fd, p, size);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          set_write_error (error, output, errno);
          return FALSE;
        }
      p += n;
      size -= (size_t) n;
    }
  return TRUE;
}

/* Flushes the folder holding PATH, so that a rename in it is on the disk. Best effort: some
 * file systems cannot sync a folder, and the data itself is already safe. */
static void
sync_folder (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int fd = g_open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

  if (fd < 0)
    return;
  (void) fsync (fd);
  close (fd);
}

gboolean
gesso_cli_output_commit (GessoCliOutput *output, const volatile sig_atomic_t *cancel,
                         GError **error)
{
  int fd = output->fd;

  /* data on the disk before the name points at it (a delayed-allocation file system may
   * only find out here that the disk is full) */
  output->fd = -1;
  if (fsync (fd) != 0)
    {
      set_write_error (error, output, errno);
      close (fd);
      gesso_cli_output_abort (output);
      return FALSE;
    }
  if (close (fd) != 0)
    {
      set_write_error (error, output, errno);
      gesso_cli_output_abort (output);
      return FALSE;
    }
  if (cancel != NULL && *cancel)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CANCELLED,
                   "cancelled while writing '%s'; %s", output->path,
                   output->existed ? "the file that was there is unchanged"
                                   : "nothing was written");
      gesso_cli_output_abort (output);
      return FALSE;
    }
  if (g_rename (output->temp, output->target) != 0)
    {
      set_write_error (error, output, errno);
      gesso_cli_output_abort (output);
      return FALSE;
    }
  g_clear_pointer (&output->temp, g_free);
  sync_folder (output->target);
  gesso_cli_output_abort (output);
  return TRUE;
}

void
gesso_cli_output_abort (GessoCliOutput *output)
{
  if (output == NULL)
    return;
  if (output->fd >= 0)
    close (output->fd);
  if (output->temp != NULL)
    (void) g_unlink (output->temp);
  g_free (output->temp);
  g_free (output->target);
  g_free (output->path);
  g_free (output);
}
