/* Small helpers shared by the core/io readers. */
#include "io/io-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "gesso.h"
#include <glib/gi18n-lib.h>

gboolean
gesso_io_json_depth_ok (const char *data, size_t length)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  for (size_t i = 0; i < length; i++)
    {
      char c = data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;                        /* the escaped character cannot end the string */
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > GESSO_JSON_MAX_DEPTH)
            return FALSE;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

static gboolean
is_word_char (char c)
{
  return g_ascii_isalnum (c) || c == '_';
}

/* TRUE when DATA[I..] is the bare word WORD. */
static gboolean
word_at (const char *data, size_t length, size_t i, const char *word)
{
  size_t n = strlen (word);

  return length - i >= n && memcmp (data + i, word, n) == 0
         && (i == 0 || !is_word_char (data[i - 1]))
         && (i + n == length || !is_word_char (data[i + n]));
}

char *
gesso_io_json_from_python (const char *data, size_t length, size_t *new_length)
{
  GString *out = NULL;
  gboolean in_string = FALSE;
  size_t copied = 0;            /* DATA[0..COPIED) is in OUT already */

  for (size_t i = 0; i < length; i++)
    {
      const char *replacement = NULL;
      size_t n = 0;

      if (in_string)
        {
          if (data[i] == '\\')
            i++;
          else if (data[i] == '"')
            in_string = FALSE;
          continue;
        }
      if (data[i] == '"')
        in_string = TRUE;
      else if (word_at (data, length, i, "Infinity"))
        replacement = "1e999   ", n = 8;
      else if (word_at (data, length, i, "NaN"))
        replacement = "null", n = 3;
      if (replacement == NULL)
        continue;
      if (out == NULL)
        out = g_string_sized_new (length + 16);
      g_string_append_len (out, data + copied, (gssize) (i - copied));
      g_string_append (out, replacement);
      copied = i + n;
      i += n - 1;
    }
  if (out == NULL)
    return NULL;
  g_string_append_len (out, data + copied, (gssize) (length - copied));
  *new_length = out->len;
  return g_string_free (out, FALSE);
}

char *
gesso_io_display (const char *s)
{
  g_autofree char *valid = g_utf8_make_valid (s, -1);
  GString *out = g_string_sized_new (strlen (valid));

  for (const char *p = valid; *p; p++)
    {
      guchar c = (guchar) *p;

      if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\x%02x", c);
      else
        g_string_append_c (out, (char) c);
    }
  return g_string_free (out, FALSE);
}

gboolean
gesso_io_looks_like_pickle (const void *data, size_t size)
{
  const guchar *b = data;

  /* torch.save since PyTorch 1.6 writes a zip archive (local file header or, when empty,
   * end of central directory) */
  if (size >= 4 && b[0] == 'P' && b[1] == 'K'
      && ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6)))
    return TRUE;
  /* the legacy format and plain pickles start with PROTO (0x80) and a protocol 2..5; the
   * next byte is an opcode, never 0, which keeps a small safetensors header length (whose
   * high bytes are 0) from matching */
  if (size >= 3 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5 && b[2] != 0)
    return TRUE;
  return FALSE;
}

gboolean
gesso_io_has_pickle_extension (const char *path)
{
  static const char *const extensions[] = { ".ckpt", ".pt", ".pth", ".bin" };
  g_autofree char *lower = g_ascii_strdown (path, -1);

  for (guint i = 0; i < G_N_ELEMENTS (extensions); i++)
    if (g_str_has_suffix (lower, extensions[i]))
      return TRUE;
  return FALSE;
}

void
gesso_io_set_pickle_error (GError **error, const char *path)
{
  g_autofree char *shown = gesso_io_display (path);

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSAFE,
               _("refusing to load '%s': pickle checkpoints can execute arbitrary code when "
               "loaded; convert it to .safetensors first"), shown);
}

void
gesso_io_set_errno_error (GError **error, int errnum, const char *verb, const char *path)
{
  g_autofree char *shown = gesso_io_display (path);

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot %s '%s': %s"), verb, shown,
               g_strerror (errnum));
}

/* The body of gesso_io_read_file: FD stays open for its caller to close. */
static char *
read_fd (int fd, const char *path, size_t max_size, size_t *length, GError **error)
{
  g_autofree char *shown = gesso_io_display (path);
  g_autofree char *buffer = NULL;
  size_t size, done = 0;
  struct stat st;

  if (fstat (fd, &st) != 0)
    {
      gesso_io_set_errno_error (error, errno, "read", path);
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot read '%s': not a regular file"),
                   shown);
      return NULL;
    }
  if ((guint64) st.st_size > max_size)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s' is %" G_GUINT64_FORMAT " bytes; a file of this kind has at most %"
                   G_GSIZE_FORMAT, shown, (guint64) st.st_size, max_size);
      return NULL;
    }
  size = (size_t) st.st_size;
  buffer = g_malloc (size + 1);
  /* the file may shrink while we read it: stop at its end and keep what was there */
  while (done < size)
    {
      ssize_t n = read (fd, buffer + done, size - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          gesso_io_set_errno_error (error, errno, "read", path);
          return NULL;
        }
      if (n == 0)
        break;
      done += (size_t) n;
    }
  buffer[done] = '\0';
  *length = done;
  return g_steal_pointer (&buffer);
}

char *
gesso_io_read_file (const char *path, size_t max_size, size_t *length, GError **error)
{
  char *buffer;
  int fd;

  /* O_NONBLOCK: opening a FIFO would wait for a writer forever; read_fd refuses anything but
   * a regular file, for which the flag changes nothing */
  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd < 0)
    {
      gesso_io_set_errno_error (error, errno, "open", path);
      return NULL;
    }
  buffer = read_fd (fd, path, max_size, length, error);
  close (fd);
  return buffer;
}
