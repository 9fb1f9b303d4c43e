/* A quick look at a safetensors header: tensor names and shapes, metadata strings.
 *
 * Listing a folder of models reads every file's header, and a checkpoint's is ~160 KB of JSON
 * with ~1100 entries: json-glib builds a node for every value of it, 20 ms a file here, so a
 * folder of 50 checkpoints took a second. Telling a model's kind needs only the names and
 * shapes, which one pass over the bytes gives without allocating per value. This is not the
 * loader: gesso_safetensors_open still validates everything (dtypes, offsets, overlaps) before
 * a weight is read. It is a reader of untrusted bytes all the same: every step is bounded by
 * the text's end, nesting is limited, and anything malformed is a CORRUPT error
 * (tests/fuzz/fuzz-header_scan.c).
 */
#include "io/header_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "io/io-private.h"
#include "io/safetensors.h"
#include <glib/gi18n-lib.h>

#define MAX_DEPTH 32
#define MAX_NAME 4096

typedef struct
{
  const char *p;
  const char *end;
  GString *text;                /* the last string read, unescaped */
  const char *name;             /* for messages */
} Reader;

static gboolean
fail (const Reader *r, GError **error)
{
  g_autofree char *shown = gesso_io_display (r->name);

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
               _("%s: the safetensors header is not valid JSON"), shown);
  return FALSE;
}

static void
skip_space (Reader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static gboolean
eat (Reader *r, char c)
{
  skip_space (r);
  if (r->p < r->end && *r->p == c)
    {
      r->p++;
      return TRUE;
    }
  return FALSE;
}

static int
hex_digit (char c)
{
  return g_ascii_xdigit_value (c);
}

/* A JSON string into R->text (escapes decoded, \u surrogate pairs joined). */
static gboolean
read_string (Reader *r)
{
  g_string_truncate (r->text, 0);
  if (!eat (r, '"'))
    return FALSE;
  while (r->p < r->end && *r->p != '"')
    {
      char c = *r->p++;

      if ((guchar) c < 0x20)
        return FALSE;
      if (c != '\\')
        {
          g_string_append_c (r->text, c);
          continue;
        }
      if (r->p >= r->end)
        return FALSE;
      c = *r->p++;
      switch (c)
        {
        case '"': case '\\': case '/':
          g_string_append_c (r->text, c);
          break;
        case 'b': g_string_append_c (r->text, '\b'); break;
        case 'f': g_string_append_c (r->text, '\f'); break;
        case 'n': g_string_append_c (r->text, '\n'); break;
        case 'r': g_string_append_c (r->text, '\r'); break;
        case 't': g_string_append_c (r->text, '\t'); break;
        case 'u':
          {
            gunichar u = 0;

            if (r->end - r->p < 4)
              return FALSE;
            for (int i = 0; i < 4; i++)
              {
                int d = hex_digit (r->p[i]);
                if (d < 0)
                  return FALSE;
                u = u * 16 + (gunichar) d;
              }
            r->p += 4;
            if (u >= 0xD800 && u <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\'
                && r->p[1] == 'u')
              {
                gunichar low = 0;
                gboolean ok = TRUE;

                for (int i = 0; i < 4; i++)
                  {
                    int d = hex_digit (r->p[2 + i]);
                    ok = ok && d >= 0;
                    low = low * 16 + (gunichar) MAX (d, 0);
                  }
                if (ok && low >= 0xDC00 && low <= 0xDFFF)
                  {
                    u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
                    r->p += 6;
                  }
              }
            if (u >= 0xD800 && u <= 0xDFFF)
              u = 0xFFFD;
            g_string_append_unichar (r->text, u);
          }
          break;
        default:
          return FALSE;
        }
      if (r->text->len > MAX_NAME)
        return FALSE;
    }
  return eat (r, '"');
}

static gboolean
skip_number (Reader *r)
{
  const char *start;

  skip_space (r);
  start = r->p;
  while (r->p < r->end && (g_ascii_isdigit (*r->p) || *r->p == '-' || *r->p == '+'
                           || *r->p == '.' || *r->p == 'e' || *r->p == 'E'))
    r->p++;
  return r->p > start;
}

static gboolean
skip_literal (Reader *r, const char *word)
{
  size_t n = strlen (word);

  skip_space (r);
  if ((size_t) (r->end - r->p) < n || memcmp (r->p, word, n) != 0)
    return FALSE;
  r->p += n;
  return TRUE;
}

static gboolean skip_value (Reader *r, int depth);

static gboolean
skip_container (Reader *r, char open, char close, int depth)
{
  if (depth > MAX_DEPTH || !eat (r, open))
    return FALSE;
  if (eat (r, close))
    return TRUE;
  do
    {
      if (open == '{' && (!read_string (r) || !eat (r, ':')))
        return FALSE;
      if (!skip_value (r, depth + 1))
        return FALSE;
    }
  while (eat (r, ','));
  return eat (r, close);
}

static gboolean
skip_value (Reader *r, int depth)
{
  skip_space (r);
  if (r->p >= r->end)
    return FALSE;
  switch (*r->p)
    {
    case '{':
      return skip_container (r, '{', '}', depth);
    case '[':
      return skip_container (r, '[', ']', depth);
    case '"':
      return read_string (r);
    case 't':
      return skip_literal (r, "true");
    case 'f':
      return skip_literal (r, "false");
    case 'n':
      return skip_literal (r, "null");
    default:
      return skip_number (r);
    }
}

/* "shape": [d0, d1, ...] into SHAPE; more than GESSO_SAFETENSORS_MAX_DIMS dims is an error. */
static gboolean
read_shape (Reader *r, int *ndim, int64_t *shape)
{
  *ndim = 0;
  if (!eat (r, '['))
    return FALSE;
  if (eat (r, ']'))
    return TRUE;
  do
    {
      guint64 v = 0;
      const char *start;

      skip_space (r);
      start = r->p;
      while (r->p < r->end && g_ascii_isdigit (*r->p))
        {
          if (v > (guint64) G_MAXINT64 / 10)
            return FALSE;
          v = v * 10 + (guint64) (*r->p++ - '0');
        }
      if (r->p == start || v > (guint64) G_MAXINT64 || *ndim >= GESSO_SAFETENSORS_MAX_DIMS)
        return FALSE;
      shape[(*ndim)++] = (int64_t) v;
    }
  while (eat (r, ','));
  return eat (r, ']');
}

gboolean
gesso_header_scan_data (const char *data, size_t length, const char *name,
                        GessoHeaderTensorFunc tensor, GessoHeaderMetadataFunc metadata,
                        gpointer user_data, GError **error)
{
  Reader r = { data, data, NULL, name };
  g_autoptr (GString) key = NULL;
  g_autoptr (GString) text = NULL;
  gboolean ok = FALSE;

  /* an empty header (DATA may then be NULL: no pointer arithmetic on it) is no JSON */
  if (data == NULL || length == 0)
    return fail (&r, error);
  r.end = data + length;
  key = g_string_new (NULL);
  text = g_string_new (NULL);
  r.text = text;
  if (!eat (&r, '{'))
    return fail (&r, error);
  if (eat (&r, '}'))
    return TRUE;
  do
    {
      if (!read_string (&r) || !eat (&r, ':'))
        return fail (&r, error);
      g_string_assign (key, r.text->str);
      if (strcmp (key->str, "__metadata__") == 0)
        {
          /* string values only, as the format says; anything else is skipped */
          if (!eat (&r, '{'))
            return fail (&r, error);
          if (!eat (&r, '}'))
            {
              do
                {
                  g_autofree char *meta_key = NULL;

                  if (!read_string (&r) || !eat (&r, ':'))
                    return fail (&r, error);
                  meta_key = g_strdup (r.text->str);
                  skip_space (&r);
                  if (r.p < r.end && *r.p == '"')
                    {
                      if (!read_string (&r))
                        return fail (&r, error);
                      if (metadata != NULL)
                        metadata (meta_key, r.text->str, user_data);
                    }
                  else if (!skip_value (&r, 1))
                    return fail (&r, error);
                }
              while (eat (&r, ','));
              if (!eat (&r, '}'))
                return fail (&r, error);
            }
          continue;
        }
      /* an entry: {"dtype": ..., "shape": [...], "data_offsets": [...]} in any order */
      {
        int64_t shape[GESSO_SAFETENSORS_MAX_DIMS] = { 0 };
        int ndim = -1;

        if (!eat (&r, '{'))
          return fail (&r, error);
        if (!eat (&r, '}'))
          {
            do
              {
                if (!read_string (&r) || !eat (&r, ':'))
                  return fail (&r, error);
                if (strcmp (r.text->str, "shape") == 0)
                  {
                    if (!read_shape (&r, &ndim, shape))
                      return fail (&r, error);
                  }
                else if (!skip_value (&r, 1))
                  return fail (&r, error);
              }
            while (eat (&r, ','));
            if (!eat (&r, '}'))
              return fail (&r, error);
          }
        if (ndim < 0)
          return fail (&r, error);
        if (tensor != NULL)
          tensor (key->str, ndim, shape, user_data);
      }
    }
  while (eat (&r, ','));
  ok = eat (&r, '}');
  if (!ok)
    return fail (&r, error);
  /* safetensors writers pad the header with spaces; nothing else may follow */
  skip_space (&r);
  if (r.p != r.end && !(r.p < r.end && *r.p == '\0'))
    return fail (&r, error);
  return TRUE;
}

gboolean
gesso_header_scan_file (const char *path, GessoHeaderTensorFunc tensor,
                        GessoHeaderMetadataFunc metadata, gpointer user_data, GError **error)
{
  g_autofree char *shown = gesso_io_display (path);
  g_autofree char *header = NULL;
  guint8 prefix[8];
  guint64 length = 0;
  GStatBuf st;
  ssize_t got;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot open '%s': %s"), shown,
                   g_strerror (saved));
      return FALSE;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)
      || pread (fd, prefix, sizeof prefix, 0) != (ssize_t) sizeof prefix)
    {
      close (fd);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("'%s' is not a safetensors file: too short to hold a header"), shown);
      return FALSE;
    }
  for (int i = 7; i >= 0; i--)
    length = (length << 8) | prefix[i];
  if (length == 0 || length > GESSO_SAFETENSORS_MAX_HEADER
      || length > (guint64) st.st_size - sizeof prefix)
    {
      close (fd);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s' is not a safetensors file: its header length %" G_GUINT64_FORMAT
                   " does not fit the file", shown, length);
      return FALSE;
    }
  header = g_malloc (length);
  got = pread (fd, header, length, sizeof prefix);
  close (fd);
  if (got != (ssize_t) length)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot read the header of '%s'"), shown);
      return FALSE;
    }
  return gesso_header_scan_data (header, length, path, tensor, metadata, user_data, error);
}
