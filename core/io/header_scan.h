/* A quick, allocation-light pass over a safetensors header: each tensor's name and shape and
 * each metadata string, for telling what a file is (core/io/asset_identify.c). Not a
 * validation: loading goes through gesso_safetensors_open. See header_scan.c for why. */
#ifndef GESSO_HEADER_SCAN_H
#define GESSO_HEADER_SCAN_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gesso.h"

G_BEGIN_DECLS

/* NAME and SHAPE (NDIM dims) are valid during the call only. */
typedef void (*GessoHeaderTensorFunc) (const char *name, int ndim, const int64_t *shape,
                                       gpointer user_data);
typedef void (*GessoHeaderMetadataFunc) (const char *key, const char *value,
                                         gpointer user_data);

/* DATA is the header's JSON (LENGTH bytes, trailing spaces allowed); NAME names it in
 * messages. Malformed JSON, or an entry without a shape, is a CORRUPT error. */
gboolean gesso_header_scan_data (const char *data, size_t length, const char *name,
                                 GessoHeaderTensorFunc tensor, GessoHeaderMetadataFunc metadata,
                                 gpointer user_data, GError **error);
/* The same for the file PATH: its 8-byte length, then the header (at most
 * GESSO_SAFETENSORS_MAX_HEADER bytes, within the file). */
gboolean gesso_header_scan_file (const char *path, GessoHeaderTensorFunc tensor,
                                 GessoHeaderMetadataFunc metadata, gpointer user_data,
                                 GError **error);

G_END_DECLS

#endif /* GESSO_HEADER_SCAN_H */
