/* Image files for the command line: PNG and JPEG in and out through gdk-pixbuf.
 *
 * Loaded images become GessoImage (RGBA float in [0, 1], sRGB-encoded, straight alpha):
 * grayscale files become RGB, files without alpha get alpha 1, and an EXIF orientation tag
 * is applied so the pixels are the way a viewer shows them. gdk-pixbuf delivers 8 bits per
 * channel, so a 16-bit PNG arrives reduced to 8 bits. Any format gdk-pixbuf reads is accepted
 * (TIFF, BMP, ...), but PNG and JPEG are the ones Gesso promises.
 */
#ifndef GESSO_CLI_IMAGE_IO_H
#define GESSO_CLI_IMAGE_IO_H

#include <glib.h>
#include <signal.h>

#include "gesso.h"

G_BEGIN_DECLS

/* Reads PATH into IMAGE (a new image; caller clears). Errors are GESSO_ERROR_IO (cannot open
 * or decode, with gdk-pixbuf's reason; not a regular file), GESSO_ERROR_CORRUPT (a truncated
 * PNG or JPEG: decoders fill the missing rows with grey and say nothing, so the rows decoded
 * and JPEG's end marker are checked) or GESSO_ERROR_NO_MEMORY (too large to decode in the
 * memory available: refused from the header, before the pixels are allocated). */
gboolean gesso_cli_image_load (const char *path, GessoImage *image, GError **error);

/* Reads PATH as a mask into MASK (a new mask; caller clears): white = 1 = regenerate, black =
 * 0 = keep, grey in between; the value is the Rec. 709 luma of the sRGB-encoded colour (a
 * grey pixel's value is its grey level exactly), multiplied by the pixel's alpha, so a
 * transparent area of a painted mask layer means "keep". */
gboolean gesso_cli_mask_load (const char *path, GessoMask *mask, GError **error);

/* Writes IMAGE to PATH as PNG (8-bit RGBA) or JPEG (quality 95, alpha dropped: the stored
 * colour is written), chosen by the extension (.png, .jpg, .jpeg, any case). Values are
 * clamped to [0, 1] and rounded to the nearest 8-bit level. Another extension fails with
 * GESSO_ERROR_UNSUPPORTED. */
gboolean gesso_cli_image_save (const GessoImage *image, const char *path, GError **error);

/* The same, a PNG carrying PARAMETERS (NULL: none) as its "parameters" text chunk, where
 * A1111 keeps a picture's settings (cli/parameters.h); a JPEG gets no text. */
gboolean gesso_cli_image_save_with_parameters (const GessoImage *image, const char *path,
                                               const char *parameters, GError **error);

/* The same, where a Ctrl-C that sets *CANCEL (may be NULL) before the file is in place
 * leaves PATH as it was (GESSO_ERROR_CANCELLED). Every save is atomic (cli/output-file.h):
 * PATH is replaced by a complete file or left alone, whatever happens while writing. */
gboolean gesso_cli_image_save_full (const GessoImage *image, const char *path,
                                    const char *parameters, const volatile sig_atomic_t *cancel,
                                    GError **error);

/* The size PATH's header gives, read without decoding the pixels (a few KB of the file), so
 * a caller can refuse an image too large for memory before it is decoded. Refuses anything
 * but a regular file (a FIFO would hang the read). */
gboolean gesso_cli_image_size (const char *path, int *width, int *height, GError **error);

G_END_DECLS

#endif /* GESSO_CLI_IMAGE_IO_H */
