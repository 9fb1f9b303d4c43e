/* Gesso: a cheap, stable fingerprint of a model, for the recipe a result layer carries.
 *
 * Hashing whole checkpoints (2 to 7 GB) would add seconds to every run, so the fingerprint
 * is SHA-256 over the first MiB of each file plus its size; safetensors files begin with
 * their header (every tensor's name, dtype, shape and offset), so that MiB already tells
 * different models and different precisions apart.
 *
 *   single file:  SHA-256 of its first 1 MiB (all of it if smaller); size = its size.
 *   folder:       SHA-256 over every regular file below it (symbolic links followed),
 *                 sorted by relative path (bytewise, '/' separated), each contributing its
 *                 relative path, a NUL byte, its size in decimal, a NUL byte and its first
 *                 1 MiB; size = the sum of the file sizes.
 */
#ifndef GESSO_FINGERPRINT_H
#define GESSO_FINGERPRINT_H

#include <glib.h>

G_BEGIN_DECLS

#define GESSO_FINGERPRINT_METHOD "sha256-first-mib"

/* The hex SHA-256 of PATH (file or folder) as above, or NULL with ERROR set. *SIZE gets the
 * byte count. */
gchar *gesso_fingerprint_model (const gchar *path, guint64 *size, GError **error);

G_END_DECLS

#endif /* GESSO_FINGERPRINT_H */
