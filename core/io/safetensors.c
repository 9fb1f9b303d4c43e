/* Safetensors reader: maps the file, validates the whole header before handing out a single
 * tensor, and converts entries to float32 or int64 on request.
 *
 * Everything in the header is untrusted: the length prefix, the JSON, every number in it.
 * Offsets are checked with unsigned 64-bit arithmetic that cannot wrap (each operand is
 * bounded first), so an entry that passes validation can be read in full from the mapping.
 * Messages give absolute file offsets, which is what a user comparing against `ls -l` or a
 * hex dump sees.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "io/io-private.h"
#include "tensor/half.h"
#include "tensor/tensor.h"

/* The reader copies little-endian data with memcpy, as the format stores it. */
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

struct GessoSafetensors
{
  char *path;                     /* or the name given to gesso_safetensors_new_from_bytes */
  GMappedFile *mapping;           /* NULL when the bytes belong to the caller */
  const guint8 *bytes;
  size_t size;
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
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "%s: tensor '%s': %s", file, tensor,
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
      set_entry_error (error, st, name, "'shape' is missing or not an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n > GESSO_SAFETENSORS_MAX_DIMS)
    {
      set_entry_error (error, st, name, "shape has %u dimensions; at most %d are allowed", n,
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
                           "shape dimension %u is not a non-negative integer", i);
          return FALSE;
        }
      entry->shape[i] = (int64_t) dim;
    }
  entry->numel = gesso_shape_numel (entry->ndim, entry->shape);
  if (entry->numel < 0)
    {
      g_autofree char *shape = gesso_tensor_shape_string (entry->ndim, entry->shape);
      set_entry_error (error, st, name, "shape %s has more elements than any file can hold",
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
                       "the entry must be an object with dtype, shape and data_offsets");
      return FALSE;
    }
  object = json_node_get_object (node);

  member = json_object_get_member (object, "dtype");
  if (member == NULL || !JSON_NODE_HOLDS_VALUE (member)
      || json_node_get_value_type (member) != G_TYPE_STRING)
    {
      set_entry_error (error, st, name, "'dtype' is missing or not a string");
      return FALSE;
    }
  dtype_name = json_node_get_string (member);
  if (!gesso_dtype_from_name (dtype_name, &entry->dtype))
    {
      g_autofree char *file = gesso_io_display (st->path);
      g_autofree char *tensor = gesso_io_display (name);
      g_autofree char *dtype = gesso_io_display (dtype_name);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "%s: tensor '%s': unknown dtype '%s' (safetensors defines F64, F32, F16, "
                   "BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2)",
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
                       "'data_offsets' must be two non-negative integers [begin, end]");
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
                   "%s: '__metadata__' must be an object of strings", file);
      return FALSE;
    }
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &key, &value))
    {
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          g_autofree char *shown = gesso_io_display (key);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "%s: __metadata__ value '%s' must be a string", file, shown);
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

  if (gesso_io_looks_like_pickle (st->bytes, st->size))
    {
      gesso_io_set_pickle_error (error, st->path);
      return;
    }
  file = gesso_io_display (st->path);
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "%s: %s", file, message);
}

static JsonObject *
parse_header_json (const GessoSafetensors *st, const char *text, size_t length, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) json_error = NULL;
  JsonNode *root;

  if (!gesso_io_json_depth_ok (text, length))
    {
      set_header_error (error, st, "the header nests JSON more than %d levels deep; the file "
                        "is corrupt", GESSO_JSON_MAX_DEPTH);
      return NULL;
    }
  parser = json_parser_new_immutable ();
  if (length == 0 || !json_parser_load_from_data (parser, text, (gssize) length, &json_error))
    {
      /* json-glib quotes the offending token, which may hold a newline */
      g_autofree char *reason = gesso_io_display (json_error ? json_error->message
                                                             : "it is empty");
      set_header_error (error, st, "the header is not valid JSON (%s); the file is corrupt or "
                        "not a safetensors file", reason);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      set_header_error (error, st, "the header is not a JSON object; the file is corrupt or "
                        "not a safetensors file");
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
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
                     "%s: the file is empty, not a safetensors file", file);
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

  header = parse_header_json (st, (const char *) st->bytes + 8, (size_t) header_length, error);
  if (header == NULL)
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
      st->entries[i].data = st->bytes + st->entries[i].offset;
      st->entries[i].file_backed = st->mapping != NULL;
      g_hash_table_insert (st->by_name, (char *) st->entries[i].name, &st->entries[i]);
    }
  return TRUE;
}

static GessoSafetensors *
safetensors_alloc (const char *path)
{
  GessoSafetensors *st = g_new0 (GessoSafetensors, 1);

  st->path = g_strdup (path);
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
  st->size = size;
  if (!validate (st, error))
    {
      gesso_safetensors_free (st);
      return NULL;
    }
  return st;
}

GessoSafetensors *
gesso_safetensors_open (const char *path, GError **error)
{
  g_autoptr (GError) map_error = NULL;
  GessoSafetensors *st;
  struct stat stat_buf;
  int fd;

  g_return_val_if_fail (path != NULL, NULL);

  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
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
                   "cannot read '%s': it is not a regular file", shown);
      close (fd);
      return NULL;
    }

  st = safetensors_alloc (path);
  /* MAP_PRIVATE read-only: the weights are never written; an empty file maps to nothing */
  st->mapping = g_mapped_file_new_from_fd (fd, FALSE, &map_error);
  close (fd);
  if (st->mapping == NULL)
    {
      g_autofree char *shown = gesso_io_display (path);
      g_autofree char *reason = gesso_io_display (map_error->message);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot map '%s' into memory: %s", shown,
                   reason);
      gesso_safetensors_free (st);
      return NULL;
    }
  st->bytes = (const guint8 *) g_mapped_file_get_contents (st->mapping);
  st->size = g_mapped_file_get_length (st->mapping);
  if (!validate (st, error))
    {
      gesso_safetensors_free (st);
      return NULL;
    }
  return st;
}

void
gesso_safetensors_entry_release (const GessoSafetensorsEntry *entry, uint64_t first,
                                 uint64_t count)
{
  uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);
  uintptr_t start, end;

  g_return_if_fail (entry != NULL && first <= entry->nbytes && count <= entry->nbytes - first);
  if (!entry->file_backed || count == 0)
    return;
  /* only pages wholly inside: the neighbours' bytes may still be wanted */
  start = ((uintptr_t) entry->data + first + page - 1) / page * page;
  end = ((uintptr_t) entry->data + first + count) / page * page;
  if (end > start)
    /* a read-only private file mapping: dropped pages are read back from the file, so this
     * cannot lose data, and a failure only means the pages stay */
    (void) madvise ((void *) start, end - start, MADV_DONTNEED);
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
  if (st->mapping != NULL)
    g_mapped_file_unref (st->mapping);
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
               "tensor '%s' is stored as %s; Gesso reads %s", tensor,
               gesso_dtype_name (entry->dtype), wanted);
}

gboolean
gesso_safetensors_entry_to_f32 (const GessoSafetensorsEntry *entry, float *dst, GError **error)
{
  size_t n = (size_t) entry->numel;

  g_return_val_if_fail (dst != NULL || n == 0, FALSE);

  switch (entry->dtype)
    {
    case GESSO_DTYPE_F32:
      if (n > 0)
        memcpy (dst, entry->data, n * sizeof (float));  /* the mapping may be unaligned */
      return TRUE;
    case GESSO_DTYPE_F16:
      gesso_f16_to_f32_array (entry->data, dst, n);
      return TRUE;
    case GESSO_DTYPE_BF16:
      gesso_bf16_to_f32_array (entry->data, dst, n);
      return TRUE;
    default:
      set_dtype_error (error, entry, "F32, F16 and BF16 weights");
      return FALSE;
    }
}

gboolean
gesso_safetensors_entry_to_i64 (const GessoSafetensorsEntry *entry, int64_t *dst,
                                GError **error)
{
  const guint8 *src = entry->data;
  size_t n = (size_t) entry->numel;

  g_return_val_if_fail (dst != NULL || n == 0, FALSE);

  /* element by element through memcpy: the data is little-endian and may be unaligned */
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
      for (size_t i = 0; i < n; i++)
        dst[i] = src[i] != 0;
      return TRUE;
    default:
      set_dtype_error (error, entry, "I64, I32, I16, I8, U32, U16, U8 and BOOL as integers");
      return FALSE;
    }
#undef WIDEN
}
