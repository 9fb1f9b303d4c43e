/* The safetensors reader: valid files read back exactly, every kind of broken file is refused
 * with a message that names the file, the tensor and the numbers involved. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gesso.h"
#include "io-fixtures.h"
#include "io/safetensors.h"
#include "tensor/half.h"

#define BAD_NAME "bad.safetensors"

static void
assert_one_line_containing (const GError *error, const char *expected)
{
  g_assert_nonnull (error);
  if (strstr (error->message, expected) == NULL)
    g_error ("message \"%s\" lacks \"%s\"", error->message, expected);
  g_assert_null (strchr (error->message, '\n'));
}

static GessoSafetensors *
open_bytes (GBytes *bytes, const char *seed, GError **error)
{
  gsize size;
  const void *data = g_bytes_get_data (bytes, &size);

  fixture_save_seed ("safetensors", seed, data, size);
  return gesso_safetensors_new_from_bytes (data, size, BAD_NAME, error);
}

/* Takes BYTES. The file must be refused with CODE and a message holding the file name and
 * EXPECTED. */
static void
expect_refused (const char *seed, GBytes *bytes, int code, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSafetensors) st = open_bytes (bytes, seed, &error);

  g_assert_null (st);
  g_assert_error (error, GESSO_ERROR, code);
  assert_one_line_containing (error, BAD_NAME);
  assert_one_line_containing (error, expected);
  g_bytes_unref (bytes);
}

static void
expect_corrupt_header (const char *seed, const char *header, size_t data_len,
                       const char *expected)
{
  expect_refused (seed, fixture_st_raw (header, data_len), GESSO_ERROR_CORRUPT, expected);
}

/* --- valid files ------------------------------------------------------------------------- */

static void
test_f32_round_trip (void)
{
  const float values[6] = { 1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f };
  const guint8 bytes3[3] = { 7, 8, 9 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) file = NULL;
  g_autoptr (GessoSafetensors) st = NULL;
  const GessoSafetensorsEntry *e;
  FixtureSt b;
  float out[6];

  fixture_st_init (&b);
  /* 3 bytes first, so the F32 data sits at an odd offset: the reader must not assume
   * alignment */
  fixture_st_add (&b, "bytes", "U8", "[3]", bytes3);
  fixture_st_add (&b, "w", "F32", "[2, 3]", values);
  file = fixture_st_finish (&b);
  st = open_bytes (file, "valid-f32", &error);
  g_assert_no_error (error);

  g_assert_cmpuint (gesso_safetensors_count (st), ==, 2);
  g_assert_cmpstr (gesso_safetensors_path (st), ==, BAD_NAME);
  g_assert_cmpuint (gesso_safetensors_file_size (st), ==, g_bytes_get_size (file));
  e = gesso_safetensors_lookup (st, "w");
  g_assert_nonnull (e);
  g_assert_true (e == gesso_safetensors_entry (st, 1));
  g_assert_cmpstr (e->name, ==, "w");
  g_assert_cmpint (e->dtype, ==, GESSO_DTYPE_F32);
  g_assert_cmpint (e->ndim, ==, 2);
  g_assert_cmpint (e->shape[0], ==, 2);
  g_assert_cmpint (e->shape[1], ==, 3);
  g_assert_cmpint (e->numel, ==, 6);
  g_assert_cmpuint (e->nbytes, ==, 24);
  g_assert_cmpuint (e->offset, ==, g_bytes_get_size (file) - 24);
  g_assert_cmpuint (e->offset % 4, !=, 0);
  g_assert_true ((const guint8 *) e->data
                 == (const guint8 *) g_bytes_get_data (file, NULL) + e->offset);
  g_assert_true (gesso_safetensors_entry_to_f32 (e, out, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (out, sizeof out, values, sizeof values);
  g_assert_null (gesso_safetensors_lookup (st, "missing"));
  g_assert_null (gesso_safetensors_metadata (st, "format"));
}

static void
test_f16_bf16_round_trip (void)
{
  /* 1, -2, 0.5, 65504 (largest half), 2^-24 (smallest subnormal), -0 */
  const guint16 f16[6] = { 0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000 };
  const float f16_want[6] = { 1.0f, -2.0f, 0.5f, 65504.0f, 0x1p-24f, -0.0f };
  /* 1, -3, 3.140625, the smallest normal, 2^-133 (subnormal) */
  const guint16 bf16[5] = { 0x3f80, 0xc040, 0x4049, 0x0080, 0x0001 };
  const float bf16_want[5] = { 1.0f, -3.0f, 3.140625f, 0x1p-126f, 0x1p-133f };
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSafetensors) st = NULL;
  g_autoptr (GBytes) file = NULL;
  const guint8 one = 1;
  float out[6];
  FixtureSt b;

  fixture_st_init (&b);
  fixture_st_add (&b, "pad", "U8", "[1]", &one);
  fixture_st_add (&b, "half", "F16", "[6]", f16);
  fixture_st_add (&b, "brain", "BF16", "[5, 1]", bf16);
  file = fixture_st_finish (&b);
  st = open_bytes (file, "valid-half", &error);
  g_assert_no_error (error);

  g_assert_true (gesso_safetensors_entry_to_f32 (gesso_safetensors_lookup (st, "half"), out,
                                                 &error));
  g_assert_cmpmem (out, sizeof f16_want, f16_want, sizeof f16_want);
  g_assert_true (gesso_safetensors_entry_to_f32 (gesso_safetensors_lookup (st, "brain"), out,
                                                 &error));
  g_assert_cmpmem (out, sizeof bf16_want, bf16_want, sizeof bf16_want);
  g_assert_no_error (error);
}

static void
test_integers (void)
{
  const gint64 i64[2] = { -5, G_MAXINT64 };
  const gint32 i32[2] = { -7, G_MAXINT32 };
  const gint16 i16[2] = { -300, 300 };
  const gint8 i8[2] = { -128, 127 };
  const guint32 u32[2] = { G_MAXUINT32, 1 };
  const guint16 u16[2] = { 65535, 2 };
  const guint8 u8[2] = { 255, 3 };
  const guint8 flags[2] = { 0, 1 };
  const struct { const char *name; gint64 want[2]; } cases[] = {
    { "i64", { -5, G_MAXINT64 } },   { "i32", { -7, G_MAXINT32 } },
    { "i16", { -300, 300 } },        { "i8", { -128, 127 } },
    { "u32", { G_MAXUINT32, 1 } },   { "u16", { 65535, 2 } },
    { "u8", { 255, 3 } },            { "flags", { 0, 1 } },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSafetensors) st = NULL;
  g_autoptr (GBytes) file = NULL;
  FixtureSt b;
  gint64 out[2];
  float f;

  fixture_st_init (&b);
  fixture_st_add (&b, "u8", "U8", "[2]", u8);
  fixture_st_add (&b, "i64", "I64", "[2]", i64);
  fixture_st_add (&b, "i32", "I32", "[2]", i32);
  fixture_st_add (&b, "i16", "I16", "[1, 2]", i16);
  fixture_st_add (&b, "i8", "I8", "[2]", i8);
  fixture_st_add (&b, "u32", "U32", "[2]", u32);
  fixture_st_add (&b, "u16", "U16", "[2]", u16);
  fixture_st_add (&b, "flags", "BOOL", "[2]", flags);
  fixture_st_add (&b, "scalar", "F32", "[]", NULL);
  file = fixture_st_finish (&b);
  st = open_bytes (file, "valid-integers", &error);
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_true (gesso_safetensors_entry_to_i64 (gesso_safetensors_lookup (st,
                                                                               cases[i].name),
                                                     out, &error));
      g_assert_no_error (error);
      g_assert_cmpint (out[0], ==, cases[i].want[0]);
      g_assert_cmpint (out[1], ==, cases[i].want[1]);
    }

  /* the wrong kind of reader is refused by name, never reinterpreted */
  g_assert_false (gesso_safetensors_entry_to_f32 (gesso_safetensors_lookup (st, "i64"), &f,
                                                  &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  assert_one_line_containing (error,
                              "tensor 'i64' is stored as I64; Gesso reads F32, F16 and BF16");
  g_clear_error (&error);
  g_assert_false (gesso_safetensors_entry_to_i64 (gesso_safetensors_lookup (st, "scalar"),
                                                  out, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  assert_one_line_containing (error, "tensor 'scalar' is stored as F32");
}

static void
test_order_and_metadata (void)
{
  /* listed out of order in the header; one empty tensor and one scalar */
  const char *header =
    "{\"__metadata__\": {\"format\": \"pt\", \"note\": \"x\"},"
    " \"late\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [12, 20]},"
    " \"empty\": {\"dtype\": \"F16\", \"shape\": [0, 5], \"data_offsets\": [4, 4]},"
    " \"early\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]},"
    " \"middle\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [4, 12]}}   ";
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) file = fixture_st_raw (header, 20);
  g_autoptr (GessoSafetensors) st = open_bytes (file, "valid-order", &error);
  const char *const want[] = { "early", "empty", "middle", "late" };

  g_assert_no_error (error);
  g_assert_cmpuint (gesso_safetensors_count (st), ==, 4);
  for (guint i = 0; i < 4; i++)
    {
      const GessoSafetensorsEntry *e = gesso_safetensors_entry (st, i);
      g_assert_cmpstr (e->name, ==, want[i]);
      g_assert_true (gesso_safetensors_lookup (st, want[i]) == e);
      if (i > 0)
        g_assert_cmpuint (e->offset, >=, gesso_safetensors_entry (st, i - 1)->offset);
    }
  g_assert_cmpint (gesso_safetensors_lookup (st, "early")->ndim, ==, 0);
  g_assert_cmpint (gesso_safetensors_lookup (st, "early")->numel, ==, 1);
  g_assert_cmpint (gesso_safetensors_lookup (st, "empty")->numel, ==, 0);
  g_assert_cmpstr (gesso_safetensors_metadata (st, "format"), ==, "pt");
  g_assert_cmpstr (gesso_safetensors_metadata (st, "note"), ==, "x");
  g_assert_null (gesso_safetensors_metadata (st, "absent"));
}

static void
test_open_file (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) file = NULL;
  g_autofree char *path = NULL;
  g_autofree char *missing = g_build_filename (dir, "missing.safetensors", NULL);
  GessoSafetensors *st;
  FixtureSt b;

  fixture_st_init (&b);
  fixture_st_add (&b, "x", "BF16", "[4]", NULL);
  file = fixture_st_finish (&b);
  path = fixture_write (dir, "model.safetensors", file);

  st = gesso_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gesso_safetensors_path (st), ==, path);
  g_assert_cmpuint (gesso_safetensors_file_size (st), ==, g_bytes_get_size (file));
  {
    guint8 read_back[8];

    g_assert_true (gesso_safetensors_entry_read (gesso_safetensors_entry (st, 0), 0, 8,
                                                 read_back, &error));
    g_assert_cmpmem (read_back, 8,
                     (const guint8 *) g_bytes_get_data (file, NULL) + g_bytes_get_size (file) - 8,
                     8);
  }
  gesso_safetensors_free (st);

  g_assert_null (gesso_safetensors_open (missing, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  assert_one_line_containing (error, missing);
  assert_one_line_containing (error, "No such file");
  g_clear_error (&error);

  g_assert_null (gesso_safetensors_open (dir, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  assert_one_line_containing (error, "not a regular file");
  fixture_remove_tree (dir);
}

/* A file that shrinks while it is open (a model replaced or downloaded again in place during
 * a run) makes a read fail with a message, never a signal: the data is read with pread, not
 * from a mapping whose pages would fault with SIGBUS. Bytes handed over in memory read back. */
static void
test_file_shrinks (void)
{
  const size_t n = 3 * 4096;    /* F16 values: 24 KiB, several pages whatever the page size */
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree guint16 *values = g_new (guint16, n);
  g_autofree float *wide = g_new (float, n);
  g_autofree guint16 *back = g_new (guint16, n);
  g_autofree char *path = NULL;
  g_autoptr (GBytes) file = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSafetensors) opened = NULL;
  g_autoptr (GessoSafetensors) in_memory = NULL;
  g_autofree void *copy = NULL;
  const GessoSafetensorsEntry *entry;
  FixtureSt b;

  for (size_t i = 0; i < n; i++)
    values[i] = (guint16) (0x3c00 + i % 1024);  /* 1.0 .. 2.0 in f16, never zero */
  fixture_st_init (&b);
  fixture_st_add (&b, "w", "F16", "[3, 4096]", values);
  file = fixture_st_finish (&b);
  path = fixture_write (dir, "model.safetensors", file);

  opened = gesso_safetensors_open (path, &error);
  g_assert_no_error (error);
  entry = gesso_safetensors_lookup (opened, "w");
  g_assert_true (entry->file_backed);
  g_assert_true (gesso_safetensors_entry_read (entry, 0, entry->nbytes, back, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (back, n * 2, values, n * 2);

  /* cut the file in the middle of the tensor, as an in-place download does */
  g_assert_cmpint (truncate (path, (off_t) (entry->offset + entry->nbytes / 2)), ==, 0);
  g_assert_true (gesso_safetensors_entry_read (entry, 0, 100, back, &error));
  g_assert_no_error (error);
  g_assert_false (gesso_safetensors_entry_read (entry, 0, entry->nbytes, back, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  assert_one_line_containing (error, "changed while Gesso was reading it: tensor 'w' ends at");
  g_clear_error (&error);
  g_assert_false (gesso_safetensors_entry_to_f32 (entry, wide, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  g_clear_error (&error);
  g_assert_cmpint (truncate (path, 0), ==, 0);
  g_assert_false (gesso_safetensors_entry_read (entry, 0, 2, back, &error));
  assert_one_line_containing (error, "the file now has 0 bytes");
  g_clear_error (&error);

  copy = g_memdup2 (g_bytes_get_data (file, NULL), g_bytes_get_size (file));
  in_memory = gesso_safetensors_new_from_bytes (copy, g_bytes_get_size (file), "mem", &error);
  g_assert_no_error (error);
  entry = gesso_safetensors_lookup (in_memory, "w");
  g_assert_false (entry->file_backed);
  g_assert_true (gesso_safetensors_entry_read (entry, 0, entry->nbytes, back, &error));
  g_assert_cmpmem (back, n * 2, values, n * 2);
  fixture_remove_tree (dir);
}

/* Infinities and NaNs are found by index in each float type, and only when asked for. */
static void
test_nonfinite (void)
{
  const size_t n = 1000;
  g_autofree float *f32 = g_new0 (float, n);
  g_autofree guint16 *f16 = g_new0 (guint16, n);
  g_autofree guint16 *bf16 = g_new0 (guint16, n);
  g_autofree float *out = g_new (float, n);
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSafetensors) st = NULL;
  g_autoptr (GBytes) file = NULL;
  FixtureSt b;
  int64_t bad = 7;

  f32[700] = INFINITY;
  f32[900] = NAN;
  f16[300] = 0x7e00;            /* NaN */
  bf16[999] = 0xff80;           /* -inf */
  fixture_st_init (&b);
  fixture_st_add (&b, "a", "F32", "[1000]", f32);
  fixture_st_add (&b, "b", "F16", "[1000]", f16);
  fixture_st_add (&b, "c", "BF16", "[1000]", bf16);
  fixture_st_add (&b, "d", "F16", "[10]", NULL);
  file = fixture_st_finish (&b);
  st = gesso_safetensors_new_from_bytes (g_bytes_get_data (file, NULL), g_bytes_get_size (file),
                                         "mem", &error);
  g_assert_no_error (error);
  g_assert_true (gesso_safetensors_entry_read_f32 (gesso_safetensors_lookup (st, "a"), 0, 1000,
                                                   out, &bad, &error));
  g_assert_cmpint (bad, ==, 700);
  g_assert_true (gesso_safetensors_entry_read_f32 (gesso_safetensors_lookup (st, "a"), 701, 299,
                                                   out, &bad, &error));
  g_assert_cmpint (bad, ==, 900 - 701);
  g_assert_true (gesso_safetensors_entry_read_f32 (gesso_safetensors_lookup (st, "a"), 0, 700,
                                                   out, &bad, &error));
  g_assert_cmpint (bad, ==, -1);
  g_assert_true (gesso_safetensors_entry_read_f32 (gesso_safetensors_lookup (st, "b"), 0, 1000,
                                                   out, &bad, &error));
  g_assert_cmpint (bad, ==, 300);
  g_assert_true (isnan (out[300]));
  g_assert_true (gesso_safetensors_entry_read_f32 (gesso_safetensors_lookup (st, "c"), 0, 1000,
                                                   out, &bad, &error));
  g_assert_cmpint (bad, ==, 999);
  g_assert_true (gesso_safetensors_entry_read_f32 (gesso_safetensors_lookup (st, "c"), 0, 1000,
                                                   out, NULL, &error));
  g_assert_no_error (error);
}

/* A FIFO (or any special file) is refused at once: opening one for reading would wait for a
 * writer forever. */
static void
test_fifo (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (mkfifo (path, 0600), ==, 0);
  g_assert_null (gesso_safetensors_open (path, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  assert_one_line_containing (error, "not a regular file");
  fixture_remove_tree (dir);
}

/* --- broken files ------------------------------------------------------------------------ */

static void
test_short_files (void)
{
  expect_refused ("empty", g_bytes_new (NULL, 0), GESSO_ERROR_CORRUPT, "the file is empty");
  expect_refused ("seven-bytes", g_bytes_new ("\x10\0\0\0\0\0\0", 7), GESSO_ERROR_CORRUPT,
                  "only 7 bytes");
}

static void
test_truncated (void)
{
  g_autoptr (GBytes) whole = NULL;
  gsize size;
  const guint8 *data;
  FixtureSt b;
  char expected[128];

  fixture_st_init (&b);
  fixture_st_add (&b, "a", "F32", "[4]", NULL);
  fixture_st_add (&b, "b", "F32", "[8]", NULL);
  whole = fixture_st_finish (&b);
  data = g_bytes_get_data (whole, &size);

  /* cut in the data: the last tensor ends beyond the end, in absolute offsets */
  g_snprintf (expected, sizeof expected,
              "tensor 'b': data ends at byte %" G_GSIZE_FORMAT " but the file has %"
              G_GSIZE_FORMAT " bytes", size, size - 5);
  expect_refused ("truncated-data", g_bytes_new (data, size - 5), GESSO_ERROR_CORRUPT,
                  expected);
  /* cut in the header */
  g_snprintf (expected, sizeof expected,
              "the header ends at byte %" G_GSIZE_FORMAT " but the file has 20 bytes",
              size - 48);
  expect_refused ("truncated-header", g_bytes_new (data, 20), GESSO_ERROR_CORRUPT, expected);
}

static void
test_header_length (void)
{
  expect_refused ("header-past-end", fixture_st_raw_claiming (1000, "{}", 4),
                  GESSO_ERROR_CORRUPT, "the header ends at byte 1008 but the file has 14 bytes");
  expect_refused ("header-huge", fixture_st_raw_claiming (G_GUINT64_CONSTANT (1) << 40, "{}", 0),
                  GESSO_ERROR_CORRUPT, "is over the 100 MB limit");
  expect_refused ("header-max", fixture_st_raw_claiming (G_MAXUINT64, "{}", 0),
                  GESSO_ERROR_CORRUPT, "header length 18446744073709551615");
  expect_refused ("header-zero", fixture_st_raw_claiming (0, "{}", 0), GESSO_ERROR_CORRUPT,
                  "is not valid JSON");
}

static void
test_corrupt_json (void)
{
  GString *deep = g_string_new (NULL);

  expect_corrupt_header ("not-json", "{\"a\": {\"dtype\": ", 0, "the header is not valid JSON");
  expect_corrupt_header ("not-json-text", "hello world", 0, "the header is not valid JSON");
  expect_corrupt_header ("not-object", "[1, 2, 3]", 0, "the header is not a JSON object");
  expect_corrupt_header ("not-object-string", "\"x\"", 0, "the header is not a JSON object");
  /* json-glib quotes the bad token in its message, newline and all: still one line */
  expect_corrupt_header ("newline-token", "{\"a\\nb\" 1}", 0, "a\\x0ab");
  expect_corrupt_header ("bad-utf8", "{\"\xff\xfe\": 1}", 0, "the header is not valid JSON");

  /* json-glib recurses per level: a deep file must be refused before it reaches the parser */
  for (int i = 0; i < 100; i++)
    g_string_append_c (deep, '[');
  expect_corrupt_header ("deep-100", deep->str, 0, "nests JSON more than 64 levels");
  for (int i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  expect_corrupt_header ("deep", deep->str, 0, "nests JSON more than 64 levels");
  g_string_free (deep, TRUE);
}

/* The format forbids two tensors of one name; JSON parsers keep the last silently. */
static void
test_duplicate_name (void)
{
  expect_corrupt_header ("duplicate-name",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
                         "\"__metadata__\": {\"w\": \"x\"}, "
                         "\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                         8, "the header names tensor 'w' twice");
  expect_corrupt_header ("duplicate-name-escaped",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                         "\"\\u0077\": {\"dtype\": \"F32\", \"shape\": [1], "
                         "\"data_offsets\": [4, 8]}}", 8, "names a tensor twice");
}

static void
test_bad_entries (void)
{
  expect_corrupt_header ("entry-not-object", "{\"w\": 5}", 0,
                         "tensor 'w': the entry must be an object");
  expect_corrupt_header ("no-dtype", "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                         "tensor 'w': 'dtype' is missing or not a string");
  expect_corrupt_header ("no-shape", "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}",
                         4, "tensor 'w': 'shape' is missing or not an array");
  expect_corrupt_header ("no-offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
                         "tensor 'w': 'data_offsets' must be two non-negative integers");
  expect_corrupt_header ("one-offset",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4]}}",
                         4, "'data_offsets' must be two");
  expect_corrupt_header ("float-offset",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                         "\"data_offsets\": [0.0, 4]}}", 4, "'data_offsets' must be two");
  expect_corrupt_header ("negative-offset",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                         "\"data_offsets\": [-4, 0]}}", 4, "'data_offsets' must be two");
  expect_corrupt_header ("reversed-offsets",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                         "\"data_offsets\": [4, 0]}}", 4,
                         "tensor 'w': data_offsets [4, 0] end before they begin");
  expect_refused ("unknown-dtype",
                  fixture_st_raw ("{\"w\": {\"dtype\": \"F4\", \"shape\": [1], "
                                  "\"data_offsets\": [0, 1]}}", 1),
                  GESSO_ERROR_UNSUPPORTED, "tensor 'w': unknown dtype 'F4'");
  expect_corrupt_header ("negative-shape",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -1], "
                         "\"data_offsets\": [0, 8]}}", 8,
                         "tensor 'w': shape dimension 1 is not a non-negative integer");
  expect_corrupt_header ("float-shape",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [2.5], "
                         "\"data_offsets\": [0, 8]}}", 8, "shape dimension 0 is not");
  expect_corrupt_header ("string-shape",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], "
                         "\"data_offsets\": [0, 8]}}", 8, "shape dimension 0 is not");
  expect_corrupt_header ("overflowing-shape",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], "
                         "\"data_offsets\": [0, 8]}}", 8, "shape dimension 0 is not");
  expect_corrupt_header ("huge-shape",
                         "{\"w\": {\"dtype\": \"U8\", \"shape\": [4294967296, 4294967296, "
                         "4294967296], \"data_offsets\": [0, 8]}}", 8,
                         "tensor 'w': shape [4294967296, 4294967296, 4294967296] has more "
                         "elements than any file can hold");
  /* numel fits in int64 but numel x 8 bytes does not */
  expect_corrupt_header ("huge-bytes",
                         "{\"w\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], "
                         "\"data_offsets\": [0, 0]}}", 8, "needs 4611686018427387904 x 8");
  expect_corrupt_header ("nine-dims",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1, 1, 1, 1, 1], "
                         "\"data_offsets\": [0, 4]}}", 4,
                         "tensor 'w': shape has 9 dimensions; at most 8 are allowed");
  expect_corrupt_header ("size-mismatch",
                         "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 2], "
                         "\"data_offsets\": [0, 12]}}", 16,
                         "tensor 'w': data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs "
                         "4 x 4");
  /* a name with a newline must not break the one-line message */
  expect_corrupt_header ("control-name", "{\"a\\nb\": 1}", 0, "tensor 'a\\x0ab'");
}

static void
test_past_end_and_overlap (void)
{
  /* header of 80 bytes: data starts at byte 88; 16 bytes of data */
  const char *past_end =
    "{\"w\": {\"dtype\": \"F32\", \"shape\": [100], \"data_offsets\": [0, 400]}}               ";
  const char *overlap =
    "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
    " \"z\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [20, 24]},"
    " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}";
  const char *inside =
    "{\"outer\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]},"
    " \"inner\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}";
  const char *far =
    "{\"w\": {\"dtype\": \"U8\", \"shape\": [1], "
    "\"data_offsets\": [9223372036854775806, 9223372036854775807]}}";
  char expected[128];

  g_assert_cmpuint (strlen (past_end), ==, 80);
  expect_corrupt_header ("past-end", past_end, 16,
                         "tensor 'w': data ends at byte 488 but the file has 104 bytes");
  /* absolute offsets: the data section starts after the 8-byte length and the header */
  g_snprintf (expected, sizeof expected,
              "tensors 'a' (bytes %zu-%zu) and 'b' (bytes %zu-%zu) overlap",
              8 + strlen (overlap), 8 + strlen (overlap) + 16, 8 + strlen (overlap) + 8,
              8 + strlen (overlap) + 24);
  expect_corrupt_header ("overlap", overlap, 24, expected);
  expect_corrupt_header ("overlap-inside", inside, 32, "tensors 'outer' (bytes");
  expect_corrupt_header ("far-offsets", far, 4, "data ends at byte 922337203685477");
}

static void
test_metadata (void)
{
  expect_corrupt_header ("metadata-number", "{\"__metadata__\": {\"a\": \"x\", \"b\": 1}}", 0,
                         "__metadata__ value 'b' must be a string");
  expect_corrupt_header ("metadata-null", "{\"__metadata__\": {\"b\": null}}", 0,
                         "__metadata__ value 'b' must be a string");
  expect_corrupt_header ("metadata-array", "{\"__metadata__\": [\"a\"]}", 0,
                         "'__metadata__' must be an object of strings");
}

static void
test_pickle_sniffed (void)
{
  /* a .ckpt renamed to .safetensors: torch's zip format and the legacy pickle stream */
  static const char zip[] = "PK\x03\x04\x14\0\x08\0\0\0archive/data.pkl";
  static const char pickle[] = "\x80\x02\x8a\x0a" "l\xfc\x9c" "F\xf9 j\xa8" "P\x19.";

  expect_refused ("zip", g_bytes_new (zip, sizeof zip - 1), GESSO_ERROR_UNSAFE,
                  "pickle checkpoints can execute arbitrary code");
  expect_refused ("pickle", g_bytes_new (pickle, sizeof pickle - 1), GESSO_ERROR_UNSAFE,
                  "convert it to .safetensors first");
  /* a zip whose first 8 bytes read as a header length under the limit is still named a
   * pickle, not a truncated file */
  expect_refused ("zip-small-length", fixture_st_raw_claiming (0x04034b50, "", 0),
                  GESSO_ERROR_UNSAFE, "refusing to load 'bad.safetensors'");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/io/safetensors/f32-round-trip", test_f32_round_trip);
  g_test_add_func ("/core/io/safetensors/f16-bf16-round-trip", test_f16_bf16_round_trip);
  g_test_add_func ("/core/io/safetensors/integers", test_integers);
  g_test_add_func ("/core/io/safetensors/order-and-metadata", test_order_and_metadata);
  g_test_add_func ("/core/io/safetensors/open-file", test_open_file);
  g_test_add_func ("/core/io/safetensors/file-shrinks", test_file_shrinks);
  g_test_add_func ("/core/io/safetensors/nonfinite", test_nonfinite);
  g_test_add_func ("/core/io/safetensors/refuse/fifo", test_fifo);
  g_test_add_func ("/core/io/safetensors/refuse/duplicate-name", test_duplicate_name);
  g_test_add_func ("/core/io/safetensors/refuse/short-files", test_short_files);
  g_test_add_func ("/core/io/safetensors/refuse/truncated", test_truncated);
  g_test_add_func ("/core/io/safetensors/refuse/header-length", test_header_length);
  g_test_add_func ("/core/io/safetensors/refuse/corrupt-json", test_corrupt_json);
  g_test_add_func ("/core/io/safetensors/refuse/bad-entries", test_bad_entries);
  g_test_add_func ("/core/io/safetensors/refuse/past-end-and-overlap",
                   test_past_end_and_overlap);
  g_test_add_func ("/core/io/safetensors/refuse/metadata", test_metadata);
  g_test_add_func ("/core/io/safetensors/refuse/pickle-sniffed", test_pickle_sniffed);
  return g_test_run ();
}
