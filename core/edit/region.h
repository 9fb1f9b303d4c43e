/* The image side of an edit: which part of the image the model sees, at what size, and how
 * its output goes back.
 *
 * An edit never runs the model on the whole photo. The user's mask (grown and feathered,
 * see mask.h) gives a bounding box; a context margin around it gives the crop; the crop is
 * resized to a working size whose area is the pixel budget (the model's native area unless
 * the user says otherwise), so a small selection in a 6000x4000 photo costs one budget-size
 * job, and a tiny selection is enlarged to the budget because diffusion models work badly far
 * below the size they were trained at.
 *
 *   mask ──grow/feather──> gesso_region_plan ──> GessoRegion {crop, working size}
 *   input ──gesso_region_to_model──> RGB NCHW [-1, 1] at working size ──> pipeline
 *   pipeline ──> RGB NCHW [-1, 1] ──gesso_region_from_model──> RGBA crop
 *   crop + blend mask ──gesso_blend_region──> output image
 *
 * Colour: everything here is sRGB-encoded, as Stable Diffusion models expect; resizing and
 * blending are done on the encoded values (not linear light), which is what the model was
 * trained on and what GIMP's "perceptual" blending does.
 *
 * Coordinates: GessoRegion's x, y, width, height are in input-image pixels; work_width and
 * work_height are in model-input pixels.
 */
#ifndef GESSO_EDIT_REGION_H
#define GESSO_EDIT_REGION_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

typedef struct
{
  int x, y;                   /* the crop's top-left corner in the input image */
  int width, height;          /* the crop's size, in input pixels */
  int work_width;             /* the model input's size in pixels, multiples of size_multiple */
  int work_height;
} GessoRegion;

/* Plans the crop and the working size.
 *
 * The crop is the bounding box of MASK > 0 grown by CONTEXT_MARGIN pixels on each side and
 * clipped to the image; with MASK NULL it is the whole image. MASK must already be grown and
 * feathered (gesso_mask_prepare), since feathering widens the box, and must have the image's
 * size. An all-zero mask fails with GESSO_ERROR_INVALID_ARGUMENT ("the mask is empty ...").
 *
 * The working size keeps the crop's aspect and is scaled, up or down, so that its area is as
 * close to PIXEL_BUDGET as the rounding allows without exceeding it: each side is rounded to
 * a multiple of SIZE_MULTIPLE (at least one multiple), choosing among the floor/ceiling
 * roundings the one that keeps the aspect best. Pass SIZE_MULTIPLE = latent factor times
 * 2^(UNet levels - 1), e.g. 64 for Stable Diffusion, so every UNet level divides evenly. When
 * even one multiple on the short side forces the long side past the budget (a very thin
 * crop), the long side is cut to fit the budget and the aspect is not kept.
 *
 * PIXEL_BUDGET must be at least SIZE_MULTIPLE squared (the caller turns the user's "0 = the
 * model's native area" into a number). Only the mask is read: planning for a 30000x30000 image
 * allocates nothing. */
gboolean gesso_region_plan (int image_width, int image_height, const GessoMask *mask,
                            int context_margin, int pixel_budget, int size_multiple,
                            GessoRegion *region, GError **error);

/* Crops REGION out of INPUT (which must be the image the plan was made for), resizes it to
 * the working size and writes the model's input to OUT: one image, RGB planes (NCHW with
 * N = 1), values 2 * c - 1 in [-1, 1]; OUT holds 3 * work_width * work_height floats.
 *
 * Alpha is not given to the model: a pixel's colour is used as stored (straight alpha), so
 * a transparent area shows the model whatever colour it holds. The resize is alpha-weighted
 * (premultiplied) so transparent pixels' colours do not bleed into visible neighbours; where
 * nothing visible contributes (filtered alpha below 1e-3), the stored colours are averaged
 * instead. */
gboolean gesso_region_to_model (const GessoImage *input, const GessoRegion *region, float *out,
                                GError **error);

/* Resizes the model's output MODEL_RGB (RGB planes in [-1, 1], work_width x work_height) to
 * the crop size and returns it as a new RGBA image in OUT (caller clears), colour clamped to
 * [0, 1]. Alpha is copied from INPUT's crop; with INPUT NULL (generate) it is 1. */
gboolean gesso_region_from_model (const float *model_rgb, const GessoImage *input,
                                  const GessoRegion *region, GessoImage *out, GError **error);

/* The mask cut to REGION's crop (a new mask in OUT, caller clears); with MASK NULL, all
 * ones. This is the blend mask of the result and the source of the latent mask. */
gboolean gesso_region_crop_mask (const GessoMask *mask, const GessoRegion *region,
                                 GessoMask *out, GError **error);

/* Lays GENERATED (the region's crop size) over INPUT through BLEND (the same size) and
 * returns the full image in OUT (a new image, caller clears). Where BLEND is 0 (or NaN) the
 * output pixel is the input pixel, copied bit for bit; where it is 1, the generated colour;
 * between, a linear mix of the sRGB-encoded values: in + b * (gen - in). Alpha is always the
 * input's: an edit changes what is there, not what is transparent. BLEND NULL means all ones
 * inside the region. */
gboolean gesso_blend_region (const GessoImage *input, const GessoRegion *region,
                             const GessoImage *generated, const GessoMask *blend,
                             GessoImage *out, GError **error);

/* --- Conversions (image.c) --------------------------------------------------------------- */

/* RGBA [0, 1] image -> RGB planes in [-1, 1] (3 * width * height floats); alpha dropped,
 * colour used as stored. Values outside [0, 1] are clamped first. */
void gesso_image_to_model_rgb (const GessoImage *image, float *out);
/* RGB planes in [-1, 1] -> RGBA [0, 1] image of the same size, colour clamped, alpha 1.
 * IMAGE must already be allocated (gesso_image_init). */
void gesso_image_from_model_rgb (const float *rgb, GessoImage *image);

G_END_DECLS

#endif /* GESSO_EDIT_REGION_H */
