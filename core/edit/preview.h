/* Per-step previews: the sampler's current estimate of the clean latent, shown without the
 * VAE decoder.
 *
 * The map. The decoder turns each latent cell's C numbers into an f x f patch of colour; for
 * the colour of a region (not the texture inside a cell) that relation is roughly affine,
 * rgb = W z + b. W and b (3 x (C + 1) numbers) are fitted per model by least squares
 * against the model's own decoder, the part the preview stands in for: a latent of
 * 16 x 16 cells of N(0, 1) draws (scaled latents have about unit variance, and the draws
 * excite every channel evenly; our RNG, fixed seed) is decoded, and each cell is paired
 * with the mean colour of its f x f pixels. On the demo model this map misses generated
 * images' colours by 0.12 on average, where an affine map fitted to each image's own cells
 * misses by 0.08 and the image's flat mean colour by 0.22; a map fitted instead to encoded
 * flat colour patches (a chart spanning the RGB cube) missed by 0.25, since the decoder
 * is far from affine between flat colours and what the sampler produces. The normal
 * equations are solved in double with a ridge of 1e-9 of their mean diagonal, which changes
 * a well-posed fit by nothing visible and keeps a degenerate decoder from failing. The fit
 * runs when a model's first preview is asked for and is kept in the model.
 *
 * The picture shows the frame the result will be seen in, at SIZE pixels on its longest
 * side: generate's output; for the other edits the whole input image, with the estimate
 * laid into the edit's region through its blend mask as the result will be (region.h:
 * in + b (estimate - in) on the sRGB values, the input's alpha kept). The estimate is the
 * map applied per latent cell, sampled bilinearly at each preview pixel's centre (cells
 * are centred on their f x f patches, edges clamped) and clamped to [0, 1]. Everything that
 * does not change between steps (the input at preview size, each pixel's blend weight) is
 * computed once, so a step costs C x 3 multiply-adds per latent cell and one bilinear
 * sample per preview pixel.
 */
#ifndef GESSO_EDIT_PREVIEW_H
#define GESSO_EDIT_PREVIEW_H

#include <glib.h>

#include "edit/region.h"
#include "gesso.h"

G_BEGIN_DECLS

typedef struct GessoPreviewer GessoPreviewer;

/* The model's latent-to-RGB map, fitted on first use and kept in MODEL: for each of R, G, B
 * the C weights and then the bias ((C + 1) x 3 floats), giving colours in [0, 1]. */
const float *gesso_model_preview_map (GessoModel *model, GError **error);

/* A previewer for one job: the latent is the working size of REGION over the model's latent
 * factor; INPUT is NULL for generate (the frame is then REGION's crop); BLEND is the result's
 * blend mask (crop size) or NULL for all ones. INPUT and BLEND are read here only. */
GessoPreviewer *gesso_previewer_new (GessoModel *model, int size, const GessoRegion *region,
                                     const GessoImage *input, const GessoMask *blend,
                                     GError **error);
void gesso_previewer_free (GessoPreviewer *previewer);

/* Where the sampling loop writes its estimate of the clean latent before each render:
 * [1, C, h, w] floats, *NUMEL of them. */
float *gesso_previewer_latent (GessoPreviewer *previewer, size_t *numel);

/* The preview of the latent buffer, valid until the next render or the previewer's free. */
const GessoImage *gesso_previewer_render (GessoPreviewer *previewer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoPreviewer, gesso_previewer_free)

G_END_DECLS

#endif /* GESSO_EDIT_PREVIEW_H */
