/* Safetensors reader: reads the header into memory it owns, validates all of it before
 * handing out a single tensor, and reads tensor data on request with pread into the caller's
 * buffers, converting to float32 or int64.
 *
 * Nothing of a file is mapped: a mapped page of a file that shrinks under us (a model replaced
 * or re-downloaded in place while a run uses it) faults with SIGBUS, which would kill the
 * command or the GIMP plug-in with no message. A short pread is an error instead.
 *
 * Everything in the header is untrusted: the length prefix, the JSON, every number in it.
 * Offsets are checked with unsigned 64-bit arithmetic that cannot wrap (each operand is
 * bounded first), so an entry that passes validation lies inside the file as it was opened.
 * Messages give absolute file offsets, which is what a user comparing against `ls -l` or a
 * hex dump sees.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "io/io-private.h"
#include "tensor/half.h"
#include "tensor/tensor.h"
#include <glib/gi18n-lib.h>

/* The reader copies little-endian data with memcpy, as the format stores it. */
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

struct GessoSafetensors
{
  char *path;                     /* or the name given to gesso_safetensors_new_from_bytes */
  int fd;                         /* the open file; -1 when the bytes belong to the caller */
  guint8 *prefix;                 /* a file's first bytes (the header), owned; or NULL */
  const guint8 *bytes;            /* PREFIX, or the caller's bytes */
  size_t n_bytes;                 /* bytes at BYTES: the header of a file, all of a buffer */
  size_t size;                    /* of the whole file */
  GessoSafetensorsEntry *entries; /* sorted by offset; names owned */
  guint n_entries;
  GHashTable *by_name;            /* name -> entry in ENTRIES */
  GHashTable *metadata;           /* key -> value, both owned */
};

static const struct
{
  const char *name;
  GessoDType dtype;
  guint size;
} dtypes[] = {
  { "F32", GESSO_DTYPE_F32, 4 },        { "F16", GESSO_DTYPE_F16, 2 },
  { "BF16", GESSO_DTYPE_BF16, 2 },      { "F64", GESSO_DTYPE_F64, 8 },
  { "I64", GESSO_DTYPE_I64, 8 },        { "I32", GESSO_DTYPE_I32, 4 },
  { "I16", GESSO_DTYPE_I16, 2 },        { "I8", GESSO_DTYPE_I8, 1 },
  { "U64", GESSO_DTYPE_U64, 8 },        { "U32", GESSO_DTYPE_U32, 4 },
  { "U16", GESSO_DTYPE_U16, 2 },        { "U8", GESSO_DTYPE_U8, 1 },
  { "BOOL", GESSO_DTYPE_BOOL, 1 },      { "F8_E4M3", GESSO_DTYPE_F8_E4M3, 1 },
  { "F8_E5M2", GESSO_DTYPE_F8_E5M2, 1 },
};

guint
gesso_dtype_size (GessoDType dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (dtypes[i].dtype == dtype)
      return dtypes[i].size;
  return 0;
}

gboolean
gesso_dtype_from_name (const char *name, GessoDType *dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (strcmp (dtypes[i].name, name) == 0)
      {
        *dtype = dtypes[i].dtype;
        return TRUE;
      }
  return FALSE;
}

/* Sets a GESSO_ERROR_CORRUPT error "<file>: tensor '<name>': <message>". */
static void G_GNUC_PRINTF (4, 5)
set_entry_error (GError **error, const GessoSafetensors *st, const char *name,
                 const char *format, ...)
{
  g_autofree char *file = gesso_io_display (st->path);
  g_autofree char *tensor = gesso_io_display (name);
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, _("%s: tensor '%s': %s"), file, tensor,
               message);
}

/* A JSON integer >= 0. json-glib < 1.10 turns integer literals beyond int64 into negative
 * values, so the sign test also catches those; 1.10 saturates them (see parse_shape). */
static gboolean
node_uint (JsonNode *node, uint64_t *out)
{
  gint64 v;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *out = (uint64_t) v;
  return TRUE;
}

static gboolean
parse_shape (const GessoSafetensors *st, const char *name, JsonNode *node,
             GessoSafetensorsEntry *entry, GError **error)
{
  JsonArray *array;
  guint n;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    {
      set_entry_error (error, st, name, _("'shape' is missing or not an array"));
      return FALSE;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n > GESSO_SAFETENSORS_MAX_DIMS)
    {
      set_entry_error (error, st, name, _("shape has %u dimensions; at most %d are allowed"), n,
                       GESSO_SAFETENSORS_MAX_DIMS);
      return FALSE;
    }
  entry->ndim = (int) n;
  for (guint i = 0; i < n; i++)
    {
      uint64_t dim;

      /* no real dimension comes near 2^63: G_MAXINT64 is a saturated overflow */
      if (!node_uint (json_array_get_element (array, i), &dim) || dim == (uint64_t) G_MAXINT64)
        {
          set_entry_error (error, st, name,
                           _("shape dimension %u is not a non-negative integer"), i);
          return FALSE;
        }
      entry->shape[i] = (int64_t) dim;
    }
  entry->numel = gesso_shape_numel (entry->ndim, entry->shape);
  if (entry->numel < 0)
    {
      g_autofree char *shape = gesso_tensor_shape_string (entry->ndim, entry->shape);
      set_entry_error (error, st, name, _("shape %s has more elements than any file can hold"),
                       shape);
      return FALSE;
    }
  return TRUE;
}

/* Fills ENTRY (whose name is set) from its header object NODE; the data section starts at
 * byte DATA_START of the file. */
static gboolean
parse_entry (const GessoSafetensors *st, size_t data_start, JsonNode *node,
             GessoSafetensorsEntry *entry, GError **error)
{
  const char *name = entry->name;
  uint64_t begin, end;
  JsonObject *object;
  JsonNode *member;
  JsonArray *offsets;
  const char *dtype_name;
  guint dsize;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      set_entry_error (error, st, name,
                       _("the entry must be an object with dtype, shape and data_offsets"));
      return FALSE;
    }
  object = json_node_get_object (node);

  member = json_object_get_member (object, "dtype");
  if (member == NULL || !JSON_NODE_HOLDS_VALUE (member)
      || json_node_get_value_type (member) != G_TYPE_STRING)
    {
      set_entry_error (error, st, name, _("'dtype' is missing or not a string"));
      return FALSE;
    }
  dtype_name = json_node_get_string (member);
  if (!gesso_dtype_from_name (dtype_name, &entry->dtype))
    {
      g_autofree char *file = gesso_io_display (st->path);
      g_autofree char *tensor = gesso_io_display (name);
      g_autofree char *dtype = gesso_io_display (dtype_name);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("%s: tensor '%s': unknown dtype '%s' (safetensors defines F64, F32, F16, "
                   "BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2)"),
                   file, tensor, dtype);
      return FALSE;
    }
  dsize = gesso_dtype_size (entry->dtype);

  if (!parse_shape (st, name, json_object_get_member (object, "shape"), entry, error))
    return FALSE;

  member = json_object_get_member (object, "data_offsets");
  if (member == NULL || !JSON_NODE_HOLDS_ARRAY (member)
      || json_array_get_length (offsets = json_node_get_array (member)) != 2
      || !node_uint (json_array_get_element (offsets, 0), &begin)
      || !node_uint (json_array_get_element (offsets, 1), &end))
    {
      set_entry_error (error, st, name,
                       _("'data_offsets' must be two non-negative integers [begin, end]"));
      return FALSE;
    }
  if (begin > end)
    {
      set_entry_error (error, st, name,
                       "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                       "] end before they begin", begin, end);
      return FALSE;
    }
  /* numel <= INT64_MAX and dsize <= 8: check before multiplying so it cannot wrap */
  if ((uint64_t) entry->numel > (end - begin) / dsize
      || (uint64_t) entry->numel * dsize != end - begin)
    {
      g_autofree char *shape = gesso_tensor_shape_string (entry->ndim, entry->shape);
      set_entry_error (error, st, name,
                       "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] hold %"
                       G_GUINT64_FORMAT " bytes but %s %s needs %" G_GINT64_FORMAT " x %u",
                       begin, end, end - begin,
                       dtype_name, shape, entry->numel, dsize);
      return FALSE;
    }
  /* data_start <= size, and both offsets are < 2^63: the sum cannot wrap. Whether the data
   * is inside the file is checked once every entry is read (check_in_file). */
  entry->nbytes = end - begin;
  entry->offset = data_start + begin;
  return TRUE;
}

/* Refuses a file whose data section is shorter than its header says. The message names the
 * tensor reaching furthest, whatever order the header lists them in, so its end is the size
 * the whole file should have. */
static gboolean
check_in_file (const GessoSafetensors *st, GError **error)
{
  const GessoSafetensorsEntry *furthest = NULL;

  for (guint i = 0; i < st->n_entries; i++)
    {
      const GessoSafetensorsEntry *e = &st->entries[i];

      if (furthest == NULL || e->offset + e->nbytes > furthest->offset + furthest->nbytes)
        furthest = e;
    }
  if (furthest == NULL || furthest->offset + furthest->nbytes <= st->size)
    return TRUE;
  set_entry_error (error, st, furthest->name,
                   "data ends at byte %" G_GUINT64_FORMAT " but the file has %" G_GSIZE_FORMAT
                   " bytes; the file is truncated: download or copy it again",
                   furthest->offset + furthest->nbytes, st->size);
  return FALSE;
}

static gboolean
parse_metadata (GessoSafetensors *st, JsonNode *node, GError **error)
{
  g_autofree char *file = gesso_io_display (st->path);
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("%s: '__metadata__' must be an object of strings"), file);
      return FALSE;
    }
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &key, &value))
    {
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          g_autofree char *shown = gesso_io_display (key);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       _("%s: __metadata__ value '%s' must be a string"), file, shown);
          return FALSE;
        }
      g_hash_table_insert (st->metadata, g_strdup (key), g_strdup (json_node_get_string (value)));
    }
  return TRUE;
}

static int
compare_entries (const void *pa, const void *pb)
{
  const GessoSafetensorsEntry *a = pa, *b = pb;

  if (a->offset != b->offset)
    return a->offset < b->offset ? -1 : 1;
  if (a->nbytes != b->nbytes)
    return a->nbytes < b->nbytes ? -1 : 1;
  /* names are unique within a JSON object, so the order is total */
  return strcmp (a->name, b->name);
}

/* Sorts the entries by offset and refuses the file when two non-empty ranges share a byte. */
static gboolean
sort_and_check_overlaps (GessoSafetensors *st, GError **error)
{
  const GessoSafetensorsEntry *last = NULL;   /* the non-empty entry reaching furthest yet */

  qsort (st->entries, st->n_entries, sizeof *st->entries, compare_entries);
  for (guint i = 0; i < st->n_entries; i++)
    {
      const GessoSafetensorsEntry *e = &st->entries[i];

      if (e->nbytes == 0)
        continue;               /* an empty tensor occupies no byte */
      if (last != NULL && e->offset < last->offset + last->nbytes)
        {
          g_autofree char *file = gesso_io_display (st->path);
          g_autofree char *a = gesso_io_display (last->name);
          g_autofree char *b = gesso_io_display (e->name);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "%s: tensors '%s' (bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT
                       ") and '%s' (bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT
                       ") overlap", file, a, last->offset, last->offset + last->nbytes, b,
                       e->offset, e->offset + e->nbytes);
          return FALSE;
        }
      if (last == NULL || e->offset + e->nbytes > last->offset + last->nbytes)
        last = e;
    }
  return TRUE;
}

/* A file whose start is not a safetensors header: say it is a pickle when it looks like one,
 * since that is the likelier mistake (a .ckpt renamed) and the message must say why it is
 * refused; otherwise set the CORRUPT message in FORMAT. */
static void G_GNUC_PRINTF (3, 4)
set_header_error (GError **error, const GessoSafetensors *st, const char *format, ...)
{
  g_autofree char *file = NULL;
  g_autofree char *message = NULL;
  va_list args;

  if (gesso_io_looks_like_pickle (st->bytes, st->n_bytes))
    {
      gesso_io_set_pickle_error (error, st->path);
      return;
    }
  file = gesso_io_display (st->path);
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, _("%s: %s"), file, message);
}

static JsonObject *
parse_header_json (const GessoSafetensors *st, const char *text, size_t length, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) json_error = NULL;
  JsonNode *root;

  if (!gesso_io_json_depth_ok (text, length))
    {
      set_header_error (error, st, _("the header nests JSON more than %d levels deep; the file "
                        "is corrupt"), GESSO_JSON_MAX_DEPTH);
      return NULL;
    }
  parser = json_parser_new_immutable ();
  if (length == 0 || !json_parser_load_from_data (parser, text, (gssize) length, &json_error))
    {
      /* json-glib quotes the offending token, which may hold a newline */
      g_autofree char *reason = gesso_io_display (json_error ? json_error->message
                                                             : "it is empty");
      set_header_error (error, st, _("the header is not valid JSON (%s); the file is corrupt or "
                        "not a safetensors file"), reason);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      set_header_error (error, st, _("the header is not a JSON object; the file is corrupt or "
                        "not a safetensors file"));
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

/* The first key at or after TEXT[*POS] of the top-level object of valid JSON TEXT, as it is
 * written (escapes not decoded), into *KEY and *KEY_LEN; FALSE at the end. *POS moves past
 * it. Only strings at depth 1 after '{' or ',' are keys; the rest is skipped. */
static gboolean
next_top_level_key (const char *text, size_t length, size_t *pos, const char **key,
                    size_t *key_len)
{
  int depth = 0;
  gboolean want_key = FALSE;

  /* restart the walk where the last call stopped: it stopped just after a key at depth 1 */
  if (*pos > 0)
    depth = 1;
  for (size_t i = *pos; i < length; i++)
    {
      char c = text[i];

      if (c == '"')
        {
          size_t start = ++i;

          while (i < length && text[i] != '"')
            i += text[i] == '\\' ? 2 : 1;
          if (depth == 1 && want_key)
            {
              *key = text + start;
              *key_len = MIN (i, length) - start;
              *pos = i + 1;
              return TRUE;
            }
          want_key = FALSE;
        }
      else if (c == '{' || c == '[')
        {
          depth++;
          want_key = depth == 1 && c == '{';
        }
      else if (c == '}' || c == ']')
        depth--;
      else if (c == ',' && depth == 1)
        want_key = TRUE;
    }
  return FALSE;
}

/* JSON allows a name twice in an object and json-glib keeps the last; safetensors forbids it
 * (two tensors of one name), and a file that has one is corrupt or forged: the header would
 * describe data nobody reads. Counts the top-level keys of TEXT against the parsed object. */
static gboolean
check_unique_names (const GessoSafetensors *st, const char *text, size_t length,
                    JsonObject *header, GError **error)
{
  g_autoptr (GHashTable) seen = NULL;
  g_autofree char *file = NULL;
  const char *key;
  size_t key_len, pos = 0;
  guint n_keys = 0;

  while (next_top_level_key (text, length, &pos, &key, &key_len))
    n_keys++;
  if (n_keys <= json_object_get_size (header))
    return TRUE;
  /* name the repeated key when it is written the same way both times (the usual case) */
  file = gesso_io_display (st->path);
  seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  pos = 0;
  while (next_top_level_key (text, length, &pos, &key, &key_len))
    {
      char *name = g_strndup (key, key_len);

      if (!g_hash_table_add (seen, name))
        {
          g_autofree char *shown = gesso_io_display (name);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       _("%s: the header names tensor '%s' twice; the file is corrupt: download "
                       "or convert it again"), file, shown);
          return FALSE;
        }
    }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
               _("%s: the header names a tensor twice (spelt with different escapes); the file "
               "is corrupt: download or convert it again"), file);
  return FALSE;
}

/* Validates ST->bytes and fills the entry tables. On failure ST holds what was read so far,
 * every entry name owned, and the caller frees it. */
static gboolean
validate (GessoSafetensors *st, GError **error)
{
  g_autoptr (JsonObject) header = NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  uint64_t header_length;
  size_t data_start;

  if (st->size < 8)
    {
      g_autofree char *file = gesso_io_display (st->path);
      if (st->size == 0)
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                     _("%s: the file is empty, not a safetensors file"), file);
      else
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                     "%s: the file has only %" G_GSIZE_FORMAT " bytes; a safetensors file "
                     "starts with an 8-byte header length", file, st->size);
      return FALSE;
    }
  memcpy (&header_length, st->bytes, 8);
  header_length = GUINT64_FROM_LE (header_length);
  if (header_length > GESSO_SAFETENSORS_MAX_HEADER)
    {
      set_header_error (error, st, "the header length %" G_GUINT64_FORMAT " is over the %u MB "
                        "limit; the file is corrupt or not a safetensors file", header_length,
                        GESSO_SAFETENSORS_MAX_HEADER / (1024u * 1024u));
      return FALSE;
    }
  if (header_length > st->size - 8)
    {
      set_header_error (error, st, "the header ends at byte %" G_GUINT64_FORMAT " but the file "
                        "has %" G_GSIZE_FORMAT " bytes; the file is truncated: download or copy "
                        "it again", header_length + 8, st->size);
      return FALSE;
    }
  data_start = 8 + (size_t) header_length;
  /* gesso_safetensors_open read the header whenever the checks above pass */
  g_return_val_if_fail (data_start <= st->n_bytes, FALSE);

  header = parse_header_json (st, (const char *) st->bytes + 8, (size_t) header_length, error);
  if (header == NULL
      || !check_unique_names (st, (const char *) st->bytes + 8, (size_t) header_length, header,
                              error))
    return FALSE;

  st->entries = g_new0 (GessoSafetensorsEntry, MAX (json_object_get_size (header), 1));
  json_object_iter_init (&iter, header);
  while (json_object_iter_next (&iter, &name, &node))
    {
      GessoSafetensorsEntry *entry;

      if (strcmp (name, "__metadata__") == 0)
        {
          if (!parse_metadata (st, node, error))
            return FALSE;
          continue;
        }
      entry = &st->entries[st->n_entries++];
      entry->name = g_strdup (name);
      if (!parse_entry (st, data_start, node, entry, error))
        return FALSE;
    }
  if (!check_in_file (st, error) || !sort_and_check_overlaps (st, error))
    return FALSE;
  for (guint i = 0; i < st->n_entries; i++)
    {
      st->entries[i].owner = st;
      st->entries[i].file_backed = st->fd >= 0;
      st->entries[i].data = st->fd >= 0 ? NULL : st->bytes + st->entries[i].offset;
      g_hash_table_insert (st->by_name, (char *) st->entries[i].name, &st->entries[i]);
    }
  return TRUE;
}

static GessoSafetensors *
safetensors_alloc (const char *path)
{
  GessoSafetensors *st = g_new0 (GessoSafetensors, 1);

  st->path = g_strdup (path);
  st->fd = -1;
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return st;
}

GessoSafetensors *
gesso_safetensors_new_from_bytes (const void *data, size_t size, const char *name,
                                  GError **error)
{
  GessoSafetensors *st;

  g_return_val_if_fail (data != NULL || size == 0, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  st = safetensors_alloc (name);
  st->bytes = data;
  st->n_bytes = size;
  st->size = size;
  if (!validate (st, error))
    {
      gesso_safetensors_free (st);
      return NULL;
    }
  return st;
}

/* Reads up to COUNT bytes at OFFSET of FD into BUFFER, as many as the file has; the count
 * read, or -1 with errno set. */
static gssize
pread_full (int fd, void *buffer, size_t count, uint64_t offset)
{
  size_t done = 0;

  while (done < count)
    {
      ssize_t n = pread (fd, (guint8 *) buffer + done, MIN (count - done, (size_t) 1 << 30),
                         (off_t) (offset + done));

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      if (n == 0)
        break;
      done += (size_t) n;
    }
  return (gssize) done;
}

/* Reads the file's first bytes into ST->prefix: the 8-byte length and the header it gives
 * when that is plausible (validate judges it), else enough to recognise a pickle. */
static gboolean
read_prefix (GessoSafetensors *st, GError **error)
{
  guint8 start[16];
  gssize n = pread_full (st->fd, start, MIN (sizeof start, st->size), 0);
  uint64_t header_length = 0;
  size_t want;

  if (n < 0)
    {
      gesso_io_set_errno_error (error, errno, "read", st->path);
      return FALSE;
    }
  if (n >= 8)
    {
      memcpy (&header_length, start, 8);
      header_length = GUINT64_FROM_LE (header_length);
    }
  want = (size_t) n;
  if (n >= 8 && header_length <= GESSO_SAFETENSORS_MAX_HEADER && header_length <= st->size - 8)
    want = 8 + (size_t) header_length;
  st->prefix = g_try_malloc (MAX (want, 1));
  if (st->prefix == NULL)
    {
      g_autofree char *shown = gesso_io_display (st->path);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "not enough memory to read the header of '%s' (%" G_GSIZE_FORMAT " bytes)",
                   shown, want);
      return FALSE;
    }
  n = pread_full (st->fd, st->prefix, want, 0);
  if (n < 0)
    {
      gesso_io_set_errno_error (error, errno, "read", st->path);
      return FALSE;
    }
  st->bytes = st->prefix;
  st->n_bytes = (size_t) n;
  /* a file that shrank since fstat: judge it by what is there now */
  if ((size_t) n < want)
    st->size = (size_t) n;
  return TRUE;
}

GessoSafetensors *
gesso_safetensors_open (const char *path, GError **error)
{
  GessoSafetensors *st;
  struct stat stat_buf;
  int fd;

  g_return_val_if_fail (path != NULL, NULL);

  /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; it
   * changes nothing for the regular files that are all we read */
  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd < 0)
    {
      gesso_io_set_errno_error (error, errno, "open", path);
      return NULL;
    }
  if (fstat (fd, &stat_buf) != 0)
    {
      gesso_io_set_errno_error (error, errno, "read", path);
      close (fd);
      return NULL;
    }
  if (!S_ISREG (stat_buf.st_mode))
    {
      g_autofree char *shown = gesso_io_display (path);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO,
                   _("cannot read '%s': it is not a regular file"), shown);
      close (fd);
      return NULL;
    }

  st = safetensors_alloc (path);
  st->fd = fd;
  st->size = (size_t) stat_buf.st_size;
  if (!read_prefix (st, error) || !validate (st, error))
    {
      gesso_safetensors_free (st);
      return NULL;
    }
  return st;
}

void
gesso_safetensors_free (GessoSafetensors *st)
{
  if (st == NULL)
    return;
  for (guint i = 0; i < st->n_entries; i++)
    g_free ((char *) st->entries[i].name);
  g_free (st->entries);
  g_hash_table_unref (st->by_name);
  g_hash_table_unref (st->metadata);
  if (st->fd >= 0)
    close (st->fd);
  g_free (st->prefix);
  g_free (st->path);
  g_free (st);
}

const char *
gesso_safetensors_path (const GessoSafetensors *st)
{
  return st->path;
}

size_t
gesso_safetensors_file_size (const GessoSafetensors *st)
{
  return st->size;
}

guint
gesso_safetensors_count (const GessoSafetensors *st)
{
  return st->n_entries;
}

const GessoSafetensorsEntry *
gesso_safetensors_entry (const GessoSafetensors *st, guint index)
{
  g_return_val_if_fail (index < st->n_entries, NULL);
  return &st->entries[index];
}

const GessoSafetensorsEntry *
gesso_safetensors_lookup (const GessoSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->by_name, name);
}

const char *
gesso_safetensors_metadata (const GessoSafetensors *st, const char *key)
{
  return g_hash_table_lookup (st->metadata, key);
}

static void
set_dtype_error (GError **error, const GessoSafetensorsEntry *entry, const char *wanted)
{
  g_autofree char *tensor = gesso_io_display (entry->name);

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               _("tensor '%s' is stored as %s; Gesso reads %s"), tensor,
               gesso_dtype_name (entry->dtype), wanted);
}

gboolean
gesso_safetensors_entry_read (const GessoSafetensorsEntry *entry, uint64_t first,
                              uint64_t count, void *dst, GError **error)
{
  const GessoSafetensors *st = entry->owner;
  gssize n;

  g_return_val_if_fail (first <= entry->nbytes && count <= entry->nbytes - first, FALSE);
  g_return_val_if_fail (dst != NULL || count == 0, FALSE);
  if (count == 0)
    return TRUE;
  if (!entry->file_backed)
    {
      memcpy (dst, (const guint8 *) entry->data + first, (size_t) count);
      return TRUE;
    }
  n = pread_full (st->fd, dst, (size_t) count, entry->offset + first);
  if (n < 0)
    {
      gesso_io_set_errno_error (error, errno, "read", st->path);
      return FALSE;
    }
  if ((uint64_t) n < count)
    {
      g_autofree char *file = gesso_io_display (st->path);
      g_autofree char *tensor = gesso_io_display (entry->name);
      struct stat now;
      guint64 size = fstat (st->fd, &now) == 0 ? (guint64) now.st_size : 0;

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO,
                   "'%s' changed while Gesso was reading it: tensor '%s' ends at byte %"
                   G_GUINT64_FORMAT " but the file now has %" G_GUINT64_FORMAT " bytes; was "
                   "the model replaced or downloaded again during the run? Run it again once "
                   "the file is complete", file, tensor, entry->offset + entry->nbytes, size);
      return FALSE;
    }
  return TRUE;
}

/* Index of the first of N floats whose exponent bits are all set (infinity or NaN), or -1.
 * Blocks are scanned without a branch per element so the loop vectorises; only a block that
 * has one is searched. */
static int64_t
first_nonfinite_f32 (const float *values, size_t n)
{
  const size_t block = 256;

  for (size_t b = 0; b < n; b += block)
    {
      size_t end = MIN (n, b + block);
      guint32 hit = 0;

      for (size_t i = b; i < end; i++)
        {
          guint32 bits;

          memcpy (&bits, values + i, sizeof bits);
          hit |= (bits & 0x7f800000u) == 0x7f800000u;
        }
      if (hit)
        for (size_t i = b; i < end; i++)
          if (!isfinite (values[i]))
            return (int64_t) i;
    }
  return -1;
}

/* The same for 16-bit floats whose exponent field is EXPONENT (F16 0x7c00, BF16 0x7f80). */
static int64_t
first_nonfinite_16 (const guint16 *words, size_t n, guint16 exponent)
{
  const size_t block = 256;

  for (size_t b = 0; b < n; b += block)
    {
      size_t end = MIN (n, b + block);
      int hit = 0;

      for (size_t i = b; i < end; i++)
        hit |= (words[i] & exponent) == exponent;
      if (hit)
        for (size_t i = b; i < end; i++)
          if ((words[i] & exponent) == exponent)
            return (int64_t) i;
    }
  return -1;
}

#define CHUNK_ELEMENTS ((size_t) 1 << 20)   /* read at a time: 2 MiB of F16, 4 MiB of F32 */

gboolean
gesso_safetensors_entry_read_f32 (const GessoSafetensorsEntry *entry, int64_t first,
                                  int64_t count, float *dst, int64_t *nonfinite, GError **error)
{
  g_autofree guint16 *bounce = NULL;
  size_t esize = gesso_dtype_size (entry->dtype);
  int64_t found = -1;

  g_return_val_if_fail (first >= 0 && count >= 0 && first <= entry->numel
                        && count <= entry->numel - first, FALSE);
  g_return_val_if_fail (dst != NULL || count == 0, FALSE);
  if (entry->dtype != GESSO_DTYPE_F32 && entry->dtype != GESSO_DTYPE_F16
      && entry->dtype != GESSO_DTYPE_BF16)
    {
      set_dtype_error (error, entry, "F32, F16 and BF16 weights");
      return FALSE;
    }
  if (entry->dtype != GESSO_DTYPE_F32 && count > 0)
    {
      bounce = g_try_new (guint16, MIN ((size_t) count, CHUNK_ELEMENTS));
      if (bounce == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                       _("not enough memory to read tensor data"));
          return FALSE;
        }
    }
  /* chunk by chunk, so that the check reads what was just read while it is in cache */
  for (int64_t done = 0; done < count;)
    {
      size_t n = MIN ((size_t) (count - done), CHUNK_ELEMENTS);
      uint64_t at = (uint64_t) (first + done) * esize;
      int64_t bad = -1;

      if (entry->dtype == GESSO_DTYPE_F32)
        {
          if (!gesso_safetensors_entry_read (entry, at, (uint64_t) n * 4, dst + done, error))
            return FALSE;
          if (nonfinite != NULL)
            bad = first_nonfinite_f32 (dst + done, n);
        }
      else
        {
          gboolean half = entry->dtype == GESSO_DTYPE_F16;

          if (!gesso_safetensors_entry_read (entry, at, (uint64_t) n * 2, bounce, error))
            return FALSE;
          if (nonfinite != NULL)
            bad = first_nonfinite_16 (bounce, n, half ? 0x7c00 : 0x7f80);
          if (half)
            gesso_f16_to_f32_array (bounce, dst + done, n);
          else
            gesso_bf16_to_f32_array (bounce, dst + done, n);
        }
      if (bad >= 0 && found < 0)
        found = done + bad;
      done += (int64_t) n;
    }
  if (nonfinite != NULL)
    *nonfinite = found;
  return TRUE;
}

gboolean
gesso_safetensors_entry_to_f32 (const GessoSafetensorsEntry *entry, float *dst, GError **error)
{
  return gesso_safetensors_entry_read_f32 (entry, 0, entry->numel, dst, NULL, error);
}

gboolean
gesso_safetensors_entry_to_i64 (const GessoSafetensorsEntry *entry, int64_t *dst,
                                GError **error)
{
  g_autofree guint8 *bytes = NULL;
  const guint8 *src;
  size_t n = (size_t) entry->numel;

  g_return_val_if_fail (dst != NULL || n == 0, FALSE);

  switch (entry->dtype)
    {
    case GESSO_DTYPE_I64:
    case GESSO_DTYPE_I32:
    case GESSO_DTYPE_I16:
    case GESSO_DTYPE_I8:
    case GESSO_DTYPE_U32:
    case GESSO_DTYPE_U16:
    case GESSO_DTYPE_U8:
    case GESSO_DTYPE_BOOL:
      break;
    default:
      set_dtype_error (error, entry, "I64, I32, I16, I8, U32, U16, U8 and BOOL as integers");
      return FALSE;
    }
  /* integer tensors are small (ids, counters): read whole, then widen */
  bytes = g_try_malloc (MAX (entry->nbytes, 1));
  if (bytes == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory to read tensor data"));
      return FALSE;
    }
  if (!gesso_safetensors_entry_read (entry, 0, entry->nbytes, bytes, error))
    return FALSE;
  src = bytes;

  /* element by element through memcpy: the data is little-endian */
#define WIDEN(type)                                                                     \
  for (size_t i = 0; i < n; i++)                                                        \
    {                                                                                   \
      type v;                                                                           \
      memcpy (&v, src + i * sizeof v, sizeof v);                                        \
      dst[i] = (int64_t) v;                                                             \
    }                                                                                   \
  return TRUE

  switch (entry->dtype)
    {
    case GESSO_DTYPE_I64:
      WIDEN (int64_t);
    case GESSO_DTYPE_I32:
      WIDEN (int32_t);
    case GESSO_DTYPE_I16:
      WIDEN (int16_t);
    case GESSO_DTYPE_I8:
      WIDEN (int8_t);
    case GESSO_DTYPE_U32:
      WIDEN (uint32_t);
    case GESSO_DTYPE_U16:
      WIDEN (uint16_t);
    case GESSO_DTYPE_U8:
      WIDEN (uint8_t);
    case GESSO_DTYPE_BOOL:
    default:
      for (size_t i = 0; i < n; i++)
        dst[i] = src[i] != 0;
      return TRUE;
    }
#undef WIDEN
}
