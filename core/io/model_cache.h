/* What Gesso learnt about a model file, kept between runs.
 *
 * Reading a model's header is quick, hashing a 2-7 GB checkpoint is not (A1111's "Model hash"
 * is the SHA-256 of the whole file), and a model chooser or `gesso models` looks at every file
 * each time it lists them. This is a small key file (GKeyFile, one group per file path) whose
 * entries hold only while the file's size and modification time are those recorded: a file
 * replaced under the same name is looked at afresh. The cache is a convenience: a missing,
 * unreadable or damaged cache file is an empty cache, and failing to write it is not an error
 * of the job that asked.
 */
#ifndef GESSO_MODEL_CACHE_H
#define GESSO_MODEL_CACHE_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

/* gesso_model_cache_new, _save and _free are public (gesso.h); these are the engine's. */

/* KEY of PATH, owned, or NULL when absent or recorded for another size or mtime of PATH. */
char *gesso_model_cache_get (GessoModelCache *cache, const char *path, const char *key);
/* Records KEY = VALUE for PATH as it is now (its size and mtime). FALSE when PATH cannot be
 * looked at (then nothing is stored). */
gboolean gesso_model_cache_set (GessoModelCache *cache, const char *path, const char *key,
                                const char *value);

G_END_DECLS

#endif /* GESSO_MODEL_CACHE_H */
