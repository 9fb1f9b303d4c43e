/* High-quality separable image resizing for edits (crop -> working size and back).
 *
 * Filters: Lanczos-3 when an axis shrinks, Mitchell-Netravali (B = C = 1/3) when it grows, as
 * ImageMagick does by default. Lanczos-3 is the sharpest of the common filters with good alias
 * rejection when reducing; enlarging with it rings visibly (its step response overshoots by
 * 11.8%), and enlarged model output is blended back into the user's photo, where halos would
 * show; Mitchell overshoots by 3.6%, at a small cost in sharpness. When shrinking, the filter
 * is widened by the scale factor so it stays a low-pass filter at the output's Nyquist rate.
 * An axis whose size does not change is copied exactly. Edges are clamped (the border pixel is
 * repeated). The weights for every output column and row are computed once per call, and
 * normalised to sum to 1 so flat areas stay flat.
 *
 * The source is a rectangle inside a larger buffer (SRC_STRIDE floats per row), so crops need
 * no copy.
 */
#ifndef GESSO_EDIT_RESAMPLE_H
#define GESSO_EDIT_RESAMPLE_H

#include <glib.h>

G_BEGIN_DECLS

/* Resizes straight-alpha RGBA (4 floats per pixel) from SRC_W x SRC_H to DST_W x DST_H into
 * DST (DST_W * DST_H * 4 floats, no padding). Colour is filtered alpha-weighted
 * (premultiplied), so fully transparent pixels add nothing to the colour of their neighbours;
 * where the filtered alpha is below 1e-3 (nothing visible contributes), the stored colours are
 * averaged instead, so the output's colour is always defined. Output is clamped to [0, 1]. */
gboolean gesso_resample_rgba (const float *src, int src_stride, int src_w, int src_h,
                              float *dst, int dst_w, int dst_h, GError **error);

/* Resizes a single-channel plane (SRC_STRIDE floats per row) into DST (DST_W * DST_H floats).
 * Output is clamped to [LO, HI] (pass -INFINITY, INFINITY for none). */
gboolean gesso_resample_plane (const float *src, int src_stride, int src_w, int src_h,
                               float *dst, int dst_w, int dst_h, float lo, float hi,
                               GError **error);

G_END_DECLS

#endif /* GESSO_EDIT_RESAMPLE_H */
