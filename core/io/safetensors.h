/* Safetensors files: the header read and validated before anything reads a tensor; tensor
 * data read with pread on request, never mapped (see safetensors.c).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 *   { "__metadata__": {"k": "v", ...}, "name": {"dtype": "F16", "shape": [..],
 *     "data_offsets": [begin, end]}, ... }
 * then the data section; offsets are relative to its start. Every entry is checked: known
 * dtype, shape x dtype size == end - begin, range inside the file, ranges not overlapping,
 * header length sane, metadata values strings. A file that fails any check is refused with
 * a message naming the tensor and the numbers involved.
 */
#ifndef GESSO_SAFETENSORS_H
#define GESSO_SAFETENSORS_H

#include <glib.h>
#include <stdint.h>

#include "gesso.h"

G_BEGIN_DECLS

#define GESSO_SAFETENSORS_MAX_DIMS 8
/* Real headers are a few MB at most (SDXL: ~1.5 MB); a bigger claim means a corrupt file. */
#define GESSO_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

typedef struct
{
  const char *name;
  GessoDType dtype;
  int ndim;
  int64_t shape[GESSO_SAFETENSORS_MAX_DIMS];
  int64_t numel;
  const void *data;             /* bytes handed to new_from_bytes (unaligned); NULL for a
                                 * file: read it with gesso_safetensors_entry_read */
  uint64_t nbytes;
  uint64_t offset;              /* of the data from the start of the file */
  gboolean file_backed;         /* the data is in a file, read on request */
  const struct GessoSafetensors *owner;
} GessoSafetensorsEntry;

typedef struct GessoSafetensors GessoSafetensors;

/* Opens PATH, reads its header and validates it; the file stays open until freed. A FIFO or
 * anything but a regular file is refused without waiting on it. */
GessoSafetensors *gesso_safetensors_open (const char *path, GError **error);
/* Validates a file already in memory; DATA is borrowed and must outlive the result.
 * NAME is used in messages. (The fuzzer and the tests use this.) */
GessoSafetensors *gesso_safetensors_new_from_bytes (const void *data, size_t size,
                                                    const char *name, GError **error);
void gesso_safetensors_free (GessoSafetensors *st);

const char *gesso_safetensors_path (const GessoSafetensors *st);
size_t gesso_safetensors_file_size (const GessoSafetensors *st);
guint gesso_safetensors_count (const GessoSafetensors *st);
/* Entries are in file order (by data offset). */
const GessoSafetensorsEntry *gesso_safetensors_entry (const GessoSafetensors *st, guint index);
/* NULL when absent. */
const GessoSafetensorsEntry *gesso_safetensors_lookup (const GessoSafetensors *st,
                                                       const char *name);
/* NULL when absent; the "__metadata__" map's string values. */
const char *gesso_safetensors_metadata (const GessoSafetensors *st, const char *key);

/* Size in bytes of one element; 0 for none. */
guint gesso_dtype_size (GessoDType dtype);
/* Parses a safetensors dtype name ("F16"); FALSE when unknown. */
gboolean gesso_dtype_from_name (const char *name, GessoDType *dtype);

/* Copies bytes [FIRST, FIRST + COUNT) of ENTRY's data into DST. A file that has shrunk since
 * it was opened (replaced or downloaded again in place) is a GESSO_ERROR_IO error saying so,
 * never a signal. */
gboolean gesso_safetensors_entry_read (const GessoSafetensorsEntry *entry, uint64_t first,
                                       uint64_t count, void *dst, GError **error);
/* Widens elements [FIRST, FIRST + COUNT) of an F32/F16/BF16 entry into DST. With NONFINITE,
 * also sets *NONFINITE to the index (from FIRST) of the first infinity or NaN, or -1: checked
 * on the stored bits while they are in cache, so it costs next to nothing. Other dtypes are
 * refused by name: "tensor 'x' is stored as I64; Gesso reads F32, F16 and BF16 weights". */
gboolean gesso_safetensors_entry_read_f32 (const GessoSafetensorsEntry *entry, int64_t first,
                                           int64_t count, float *dst, int64_t *nonfinite,
                                           GError **error);
/* The whole entry widened into DST (numel floats), as above without the check. */
gboolean gesso_safetensors_entry_to_f32 (const GessoSafetensorsEntry *entry, float *dst,
                                         GError **error);
/* Reads an integer entry (I64, I32, I16, I8, U8, U16, U32, BOOL) into DST (numel values). */
gboolean gesso_safetensors_entry_to_i64 (const GessoSafetensorsEntry *entry, int64_t *dst,
                                         GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoSafetensors, gesso_safetensors_free)

G_END_DECLS

#endif /* GESSO_SAFETENSORS_H */
