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

#include "gesso.h"

G_BEGIN_DECLS

/* Reads PATH into IMAGE (a new image; caller clears). Errors are GESSO_ERROR_IO (cannot open
 * or decode, with gdk-pixbuf's reason) or GESSO_ERROR_NO_MEMORY. */
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

G_END_DECLS

#endif /* GESSO_CLI_IMAGE_IO_H */
