/* Mask operations for edits: grow, feather, bounding box, and the area-average downsample that
 * turns a pixel mask into a latent mask for RePaint.
 *
 * Masks are GessoMask (one float per pixel in [0, 1], 1 = regenerate). Soft masks stay soft:
 * grow is a max filter over a disc, so a feathered selection grows with its soft edge intact.
 * Grow and feather only touch the neighbourhood of the mask's non-zero pixels, so a small
 * selection in a large image is cheap.
 */
#ifndef GESSO_EDIT_MASK_H
#define GESSO_EDIT_MASK_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

/* Bounding box of the pixels with value > 0, in mask pixels, as x, y, width, height.
 * Returns FALSE (and sets no error) when the mask is all zero. */
gboolean gesso_mask_bounds (const GessoMask *mask, int *x, int *y, int *width, int *height);

/* Dilates MASK in place by RADIUS pixels with a Euclidean disc: a pixel becomes the maximum of
 * the mask over all pixels whose centre lies within RADIUS of its own. A binary mask (only 0
 * and 1) goes through an exact Euclidean distance transform (Felzenszwalb & Huttenlocher
 * 2012), O(n) whatever the radius; a soft mask through a grey-level max filter over the disc's
 * chords, O(n * radius) (see mask.c). RADIUS <= 0 does nothing; NaN or infinity fails. */
gboolean gesso_mask_grow (GessoMask *mask, float radius, GError **error);

/* Blurs MASK in place with a Gaussian of standard deviation SIGMA pixels: an exact separable
 * convolution truncated at 3 sigma and renormalised, with clamped (edge-replicating) borders,
 * O(sigma) per pixel. Away from the borders the mask's sum is preserved. Results within 1e-6
 * of 0 or 1 are snapped to it, so the inside of a selection stays exactly 1 and the outside
 * exactly 0 (which keeps untouched pixels bit-identical at blend time). SIGMA <= 0 does
 * nothing; NaN, infinity or a million pixels or more fails. */
gboolean gesso_mask_blur (GessoMask *mask, float sigma, GError **error);

/* Copy of MASK grown by GROW pixels, then with a soft edge of FEATHER pixels laid inside the
 * grown mask, into OUT (a new mask, caller clears): what an edit's mask_grow and mask_feather
 * parameters mean. Nothing reaches past the grown mask (a pixel where it is 0 stays exactly 0),
 * so with GROW 0 an edit keeps every pixel outside the user's selection, GIMP's rule for
 * filters; the blend is ~0.001 on the grown mask's edge and ~0.999 FEATHER pixels inside. */
gboolean gesso_mask_prepare (const GessoMask *mask, float grow, float feather, GessoMask *out,
                             GError **error);

/* Area-average resize of a W x H single-channel plane to OUT_W x OUT_H: each output cell is the
 * exact mean of the source over the rectangle it covers (partial pixels weighted by the
 * overlap). Used for the latent mask: the latent cell's value is the fraction of its pixels to
 * regenerate. Works for any sizes (not only integer factors). */
gboolean gesso_mask_resize_area (const float *src, int w, int h, float *out, int out_w,
                                 int out_h, GError **error);

G_END_DECLS

#endif /* GESSO_EDIT_MASK_H */
