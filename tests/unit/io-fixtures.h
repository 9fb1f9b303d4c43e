/* Model files built by the tests: safetensors blobs (valid or broken on purpose), scratch
 * folders, and the fuzzing seed corpus.
 *
 * Deliberately independent of core/io: the bytes are laid out here by hand, so a reader bug
 * cannot hide behind a writer with the same bug. When GESSO_FUZZ_CORPUS_DIR is set, every
 * file a test builds is also saved as a fuzzing seed (<dir>/safetensors/, <dir>/config/).
 */
#ifndef GESSO_IO_FIXTURES_H
#define GESSO_IO_FIXTURES_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct
{
  GString *header;      /* the JSON object, without its closing brace yet */
  GByteArray *data;     /* the data section */
} FixtureSt;

void fixture_st_init (FixtureSt *st);
/* Appends a tensor at the end of the data section. VALUES holds numel x dtype-size bytes, or
 * NULL for a recognisable byte pattern. SHAPE_JSON is the shape as JSON text ("[2, 3]"). */
void fixture_st_add (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
                     const void *values);
/* Appends an entry with exactly the JSON text ENTRY_JSON and no data. */
void fixture_st_add_raw (FixtureSt *st, const char *name, const char *entry_json);
/* Appends N_BYTES bytes of pattern to the data section (for raw entries). */
void fixture_st_add_data (FixtureSt *st, size_t n_bytes);
/* The file; the builder is emptied. */
GBytes *fixture_st_finish (FixtureSt *st);

/* Receives one tensor of a file being copied into ST: adds it with fixture_st_add, changed or
 * as it is, or leaves it out. VALUES are its stored bytes. */
typedef void (*FixtureStCopyFunc) (FixtureSt *st, const char *name, const char *dtype,
                                   const char *shape_json, const void *values,
                                   gpointer user_data);
/* Adds the tensors of the safetensors file PATH to ST in the order of their data, each through
 * FUNC (NULL: as they are). The file is parsed here with json-glib, not with core/io. */
void fixture_st_add_file (FixtureSt *st, const char *path, FixtureStCopyFunc func,
                          gpointer user_data);

/* An 8-byte length of HEADER, HEADER, then DATA_LEN pattern bytes. */
GBytes *fixture_st_raw (const char *header, size_t data_len);
/* The same with the length field set to CLAIMED_LENGTH whatever HEADER's size. */
GBytes *fixture_st_raw_claiming (uint64_t claimed_length, const char *header, size_t data_len);

/* A new empty folder in the temporary directory; remove it with fixture_remove_tree(). */
char *fixture_make_tmpdir (void);
void fixture_remove_tree (const char *path);
/* Copies the folder SRC, files and sub-folders, to DST (created). */
void fixture_copy_tree (const char *src, const char *dst);
/* Writes BYTES (or TEXT) to DIR/NAME, creating folders in NAME; returns the path. */
char *fixture_write (const char *dir, const char *name, GBytes *bytes);
char *fixture_write_text (const char *dir, const char *name, const char *text);

/* Saves a seed for the fuzzer KIND ("safetensors" or "config") when GESSO_FUZZ_CORPUS_DIR is
 * set; NAME becomes the file name. Seeds over 64 KiB are not saved. */
void fixture_save_seed (const char *kind, const char *name, const void *data, size_t size);

/* IEEE half-precision bits to float, written here rather than taken from core/tensor, so that
 * tests that build or check 16-bit weights do not lean on the engine's own conversion. */
float fixture_half_to_float (guint16 h);

/* Byte I of the pattern that fills data nobody cares about. */
static inline guint8
fixture_pattern (size_t i)
{
  return (guint8) (i * 37u + 11u);
}

G_END_DECLS

#endif /* GESSO_IO_FIXTURES_H */
