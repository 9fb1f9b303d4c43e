#include "io-fixtures.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static guint
dtype_size (const char *dtype)
{
  static const struct { const char *name; guint size; } sizes[] = {
    { "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 },
    { "I16", 2 }, { "I8", 1 }, { "U64", 8 }, { "U32", 4 }, { "U16", 2 }, { "U8", 1 },
    { "BOOL", 1 }, { "F8_E4M3", 1 }, { "F8_E5M2", 1 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    if (strcmp (sizes[i].name, dtype) == 0)
      return sizes[i].size;
  g_error ("fixture: unknown dtype %s", dtype);
}

static guint64
shape_numel (const char *shape_json)
{
  guint64 n = 1;
  const char *p = shape_json;

  while (*p)
    {
      if (g_ascii_isdigit (*p))
        {
          char *end;
          n *= g_ascii_strtoull (p, &end, 10);
          p = end;
        }
      else
        p++;
    }
  return n;
}

void
fixture_st_init (FixtureSt *st)
{
  st->header = g_string_new ("{");
  st->data = g_byte_array_new ();
}

static void
append_separator (FixtureSt *st)
{
  if (st->header->len > 1)
    g_string_append (st->header, ", ");
}

void
fixture_st_add_data (FixtureSt *st, size_t n_bytes)
{
  for (size_t i = 0; i < n_bytes; i++)
    {
      guint8 b = fixture_pattern (st->data->len);
      g_byte_array_append (st->data, &b, 1);
    }
}

void
fixture_st_add (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
                const void *values)
{
  guint64 nbytes = shape_numel (shape_json) * dtype_size (dtype);
  guint64 begin = st->data->len;

  append_separator (st);
  g_string_append_printf (st->header,
                          "\"%s\": {\"dtype\": \"%s\", \"shape\": %s, \"data_offsets\": [%"
                          G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]}",
                          name, dtype, shape_json, begin, begin + nbytes);
  if (values != NULL)
    g_byte_array_append (st->data, values, (guint) nbytes);
  else
    fixture_st_add_data (st, nbytes);
}

void
fixture_st_add_raw (FixtureSt *st, const char *name, const char *entry_json)
{
  append_separator (st);
  g_string_append_printf (st->header, "\"%s\": %s", name, entry_json);
}

static GBytes *
assemble (uint64_t claimed, const char *header, size_t header_len, const guint8 *data,
          size_t data_len)
{
  guint8 *buffer = g_malloc (8 + header_len + data_len + 1);
  uint64_t le = GUINT64_TO_LE (claimed);

  memcpy (buffer, &le, 8);
  memcpy (buffer + 8, header, header_len);
  for (size_t i = 0; i < data_len; i++)
    buffer[8 + header_len + i] = data != NULL ? data[i] : fixture_pattern (i);
  return g_bytes_new_take (buffer, 8 + header_len + data_len);
}

GBytes *
fixture_st_finish (FixtureSt *st)
{
  GBytes *bytes;

  g_string_append_c (st->header, '}');
  /* writers pad the header to 8 bytes with spaces so the data section is aligned */
  while (st->header->len % 8 != 0)
    g_string_append_c (st->header, ' ');
  bytes = assemble (st->header->len, st->header->str, st->header->len, st->data->data,
                    st->data->len);
  g_string_free (st->header, TRUE);
  g_byte_array_unref (st->data);
  st->header = NULL;
  st->data = NULL;
  return bytes;
}

typedef struct
{
  const char *name;
  JsonObject *entry;
  guint64 begin;
} StoredTensor;

static int
compare_stored (const void *a, const void *b)
{
  const StoredTensor *x = a, *y = b;

  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static guint64
entry_offset (JsonObject *entry, guint i)
{
  return (guint64) json_array_get_int_element (json_object_get_array_member (entry,
                                                                              "data_offsets"),
                                               i);
}

void
fixture_st_add_file (FixtureSt *st, const char *path, FixtureStCopyFunc func,
                     gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GArray) tensors = g_array_new (FALSE, FALSE, sizeof (StoredTensor));
  g_autofree char *contents = NULL;
  JsonObjectIter iter;
  JsonObject *header;
  const char *name;
  JsonNode *node;
  guint64 header_len;
  gsize size;

  g_file_get_contents (path, &contents, &size, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (size, >=, 8);
  memcpy (&header_len, contents, 8);
  header_len = GUINT64_FROM_LE (header_len);
  g_assert_cmpuint (header_len, <=, size - 8);
  json_parser_load_from_data (parser, contents + 8, (gssize) header_len, &error);
  g_assert_no_error (error);
  header = json_node_get_object (json_parser_get_root (parser));

  json_object_iter_init (&iter, header);
  while (json_object_iter_next (&iter, &name, &node))
    if (strcmp (name, "__metadata__") != 0)
      {
        StoredTensor t = { name, json_node_get_object (node), 0 };
        t.begin = entry_offset (t.entry, 0);
        g_assert_cmpuint (entry_offset (t.entry, 1), <=, size - 8 - header_len);
        g_array_append_val (tensors, t);
      }
  g_array_sort (tensors, compare_stored);

  for (guint i = 0; i < tensors->len; i++)
    {
      const StoredTensor *t = &g_array_index (tensors, StoredTensor, i);
      const char *dtype = json_object_get_string_member (t->entry, "dtype");
      g_autofree char *shape = json_to_string (json_object_get_member (t->entry, "shape"),
                                               FALSE);
      const char *values = contents + 8 + header_len + t->begin;

      if (func != NULL)
        func (st, t->name, dtype, shape, values, user_data);
      else
        fixture_st_add (st, t->name, dtype, shape, values);
    }
}

GBytes *
fixture_st_raw (const char *header, size_t data_len)
{
  return assemble (strlen (header), header, strlen (header), NULL, data_len);
}

GBytes *
fixture_st_raw_claiming (uint64_t claimed_length, const char *header, size_t data_len)
{
  return assemble (claimed_length, header, strlen (header), NULL, data_len);
}

char *
fixture_make_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("gesso-test-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

void
fixture_remove_tree (const char *path)
{
  GDir *dir;

  if (path == NULL)
    return;
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)
      && (dir = g_dir_open (path, 0, NULL)) != NULL)
    {
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          fixture_remove_tree (child);
        }
      g_dir_close (dir);
      g_rmdir (path);
      return;
    }
  g_unlink (path);
}

void
fixture_copy_tree (const char *src, const char *dst)
{
  g_autoptr (GError) error = NULL;
  GDir *dir = g_dir_open (src, 0, &error);
  const char *name;

  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *from = g_build_filename (src, name, NULL);
      g_autofree char *to = g_build_filename (dst, name, NULL);
      g_autofree char *contents = NULL;
      gsize size;

      if (g_file_test (from, G_FILE_TEST_IS_DIR))
        {
          fixture_copy_tree (from, to);
          continue;
        }
      g_file_get_contents (from, &contents, &size, &error);
      g_assert_no_error (error);
      g_file_set_contents (to, contents, (gssize) size, &error);
      g_assert_no_error (error);
    }
  g_dir_close (dir);
}

static char *
write_data (const char *dir, const char *name, const void *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_file_set_contents (path, data, (gssize) size, &error);
  g_assert_no_error (error);
  return path;
}

char *
fixture_write (const char *dir, const char *name, GBytes *bytes)
{
  gsize size;
  const void *data = g_bytes_get_data (bytes, &size);

  return write_data (dir, name, data, size);
}

char *
fixture_write_text (const char *dir, const char *name, const char *text)
{
  return write_data (dir, name, text, strlen (text));
}

void
fixture_save_seed (const char *kind, const char *name, const void *data, size_t size)
{
  const char *corpus = g_getenv ("GESSO_FUZZ_CORPUS_DIR");
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;

  /* libFuzzer sizes its inputs by the largest seed: big ones would slow every run */
  if (corpus == NULL || corpus[0] == '\0' || size > 64 * 1024)
    return;
  dir = g_build_filename (corpus, kind, NULL);
  path = write_data (dir, name, data, size);
}

float
fixture_half_to_float (guint16 h)
{
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;

  if (exponent == 0)
    return sign * ldexpf ((float) mantissa, -24);
  if (exponent == 31)
    return mantissa ? NAN : sign * INFINITY;
  return sign * ldexpf ((float) (mantissa | 0x400), exponent - 25);
}
