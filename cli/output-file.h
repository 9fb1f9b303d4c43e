/* Output files written the way SQLite and GIMP write theirs: never in place.
 *
 * The bytes go to a new hidden file beside the destination (".NAME.XXXXXX", same folder, so
 * the same file system), which is flushed to the disk (fsync) and then renamed over the
 * destination; the folder is flushed too, so the rename itself survives a power cut. Until
 * the rename the destination is untouched, and the rename replaces it whole: a full disk, a
 * Ctrl-C, a SIGKILL, a crash or a second process writing the same name leaves either the old
 * file or a complete new one, never a truncated or spliced one. A failure removes the
 * temporary file (a SIGKILL, which nothing can catch, may leave it behind, hidden).
 *
 * The new file gets the old one's permission bits, or the umask's for a new name. A symbolic
 * link as the destination is followed: its target is replaced, the link stays.
 */
#ifndef GESSO_CLI_OUTPUT_FILE_H
#define GESSO_CLI_OUTPUT_FILE_H

#include <glib.h>
#include <signal.h>

G_BEGIN_DECLS

typedef struct GessoCliOutput GessoCliOutput;

/* Creates the temporary file for PATH. Refuses (GESSO_ERROR_IO) a PATH that exists but is not
 * a regular file, or whose folder does not exist or cannot be written. */
GessoCliOutput *gesso_cli_output_begin (const char *path, GError **error);

/* Appends SIZE bytes. A full disk is "the disk is full", in those words. */
gboolean gesso_cli_output_write (GessoCliOutput *output, const void *data, size_t size,
                                 GError **error);

/* Flushes, closes and renames the file into place, then frees OUTPUT. When *CANCEL (may be
 * NULL) is set by then (a Ctrl-C that came while saving), the file is dropped instead and the
 * error is GESSO_ERROR_CANCELLED: the destination is as it was. On any failure the temporary
 * file is removed and OUTPUT freed. */
gboolean gesso_cli_output_commit (GessoCliOutput *output, const volatile sig_atomic_t *cancel,
                                  GError **error);

/* Removes the temporary file and frees OUTPUT (NULL is fine). */
void gesso_cli_output_abort (GessoCliOutput *output);

G_END_DECLS

#endif /* GESSO_CLI_OUTPUT_FILE_H */
