/* Helpers shared by the core/io readers; not part of the engine's interface. */
#ifndef GESSO_IO_PRIVATE_H
#define GESSO_IO_PRIVATE_H

#include <glib.h>

G_BEGIN_DECLS

/* json-glib parses recursively, so a hostile file of a few MB of '[' would exhaust the
 * stack. Every JSON we read nests a handful of levels; this bound is far above that. */
#define GESSO_JSON_MAX_DEPTH 64

/* TRUE when the arrays and objects in DATA (LENGTH bytes, JSON text) nest at most
 * GESSO_JSON_MAX_DEPTH deep. Only brackets outside strings count; the text need not be
 * valid JSON (the parser judges that). */
gboolean gesso_io_json_depth_ok (const char *data, size_t length);

/* Python's json module writes the non-standard literals NaN, Infinity and -Infinity (diffusers
 * scheduler configs hold "lambda_min_clipped": -Infinity), which json-glib refuses. Returns
 * a copy of DATA with those outside strings rewritten as standard JSON: Infinity as 1e999,
 * which parses to infinity, padded to keep every column where it was; NaN as null. NULL
 * when DATA has none of them. *NEW_LENGTH is the copy's length. */
char *gesso_io_json_from_python (const char *data, size_t length, size_t *new_length);

/* S made safe for a one-line message: invalid UTF-8 replaced, control characters written as
 * \xNN. Names and paths come from untrusted files and the command line. Caller frees. */
char *gesso_io_display (const char *s);

/* TRUE when the first bytes of a file are those of a pickle stream or a zip archive (what
 * torch.save writes); such files are refused whatever their name. */
gboolean gesso_io_looks_like_pickle (const void *data, size_t size);

/* TRUE when PATH ends in an extension of a pickle checkpoint (.ckpt .pt .pth .bin). */
gboolean gesso_io_has_pickle_extension (const char *path);

/* Reads all of PATH (a regular file of at most MAX_SIZE bytes) into a new NUL-terminated
 * buffer (g_free); *LENGTH excludes the NUL. GESSO_ERROR_IO naming the path on failure. */
char *gesso_io_read_file (const char *path, size_t max_size, size_t *length, GError **error);

/* Sets GESSO_ERROR_IO "cannot <VERB> '<path>': <strerror (ERRNUM)>". */
void gesso_io_set_errno_error (GError **error, int errnum, const char *verb, const char *path);

/* The one message for a refused pickle file, as a GESSO_ERROR_UNSAFE error. */
void gesso_io_set_pickle_error (GError **error, const char *path);

G_END_DECLS

#endif /* GESSO_IO_PRIVATE_H */
