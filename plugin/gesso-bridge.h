/* Gesso: the bridge between a GIMP image and the engine's GessoImage/GessoMask.
 *
 * Pixels cross in one format, babl's "R'G'B'A float": sRGB-encoded (perceptual, not linear)
 * values in [0, 1] with straight alpha. Stable Diffusion was trained on sRGB-encoded 8-bit
 * pictures scaled to [-1, 1], so that is what the engine must see; linear light would darken
 * the midtones the model knows. babl converts whatever the image holds (8 to 32 bits, linear
 * or perceptual, grayscale, another RGB profile) into that on the way in, and back into the
 * new layer's own format on the way out, so grayscale images come in as R = G = B and leave
 * as gray, and high bit depth survives the trip as far as the model's output allows.
 *
 * Reading never changes the user's image (not even its undo history). Writing happens once,
 * after the engine has finished, inside one undo group: GIMP cancels a plug-in by killing it,
 * so an image touched only at the end is untouched by a cancelled run.
 *
 * Memory: the engine plans its own crop (the mask's box plus a context margin), so it is given
 * only the part of the image that can reach that crop: the selection's (or stroke's) box grown
 * by context margin + mask grow + mask feather + 2 pixels, clipped to the layer or canvas. The
 * engine's crop always lies inside that box, so the result is the same as with the whole image,
 * and a small selection in a huge photo costs a small read.
 */
#ifndef GESSO_BRIDGE_H
#define GESSO_BRIDGE_H

#include <libgimp/gimp.h>

#include "gesso.h"

G_BEGIN_DECLS

/* What an edit reads from the image, and where it lies on the canvas. */
typedef struct
{
  GessoImage image;           /* the engine's input; no pixels for generate */
  GessoMask mask;             /* no values: no mask (the whole input is edited) */
  gint image_x, image_y;      /* the canvas position of the input's top-left pixel */
  gint width, height;         /* the input's size (generate: the size to make) */
  GessoMask shape;            /* generate: the selection over the output box, or no values */
  gboolean mask_from_strokes; /* realize: the mask is the stroke layer's alpha */
} GessoBridgeInput;

void gesso_bridge_input_clear (GessoBridgeInput *input);

/* Pixels of DRAWABLE (inpaint, restyle) with the image's selection as the mask. Without a
 * selection (REQUIRE_SELECTION FALSE) the whole drawable is read and no mask is made. PAD is
 * how far around the selection's box the engine may look (see above). */
gboolean gesso_bridge_read_drawable (GimpImage *image, GimpDrawable *drawable, gint pad,
                                     gboolean require_selection, GessoBridgeInput *input,
                                     GError **error);

/* The visible composite of IMAGE (realize strokes). The mask is the selection when there is
 * one, else the alpha of STROKES placed on the canvas; a stroke layer that is empty or covers
 * the whole canvas opaquely gives no mask (the whole image is realised). */
gboolean gesso_bridge_read_visible (GimpImage *image, GimpDrawable *strokes, gint pad,
                                    GessoBridgeInput *input, GError **error);

/* The box to generate into (generate): the selection's bounds on the canvas with its
 * coverage as SHAPE, or the whole canvas. */
gboolean gesso_bridge_read_target (GimpImage *image, GessoBridgeInput *input, GError **error);

/* What a ControlNet follows: DRAWABLE's own pixels (not the composite) over the canvas box
 * INPUT covers, transparent where the drawable does not reach, at INPUT's size. */
gboolean gesso_bridge_read_control (GimpDrawable *drawable, const GessoBridgeInput *input,
                                    GessoImage *out, GError **error);

/* Writes RESULT as a new layer named NAME directly above ABOVE (same parent), covering only
 * the pixels the edit changed: colour from the result, alpha = blend x the source's alpha (x
 * the selection for generate), so everything outside shows the original through. The layer
 * composites in perceptual RGB, the space the engine blends in. Makes no undo group itself:
 * the caller wraps it. Returns the layer (owned by libgimp) or NULL with ERROR set. */
GimpLayer *gesso_bridge_write_layer (GimpImage *image, GimpDrawable *above, const gchar *name,
                                     const GessoBridgeInput *input,
                                     const GessoEditResult *result, GError **error);

G_END_DECLS

#endif /* GESSO_BRIDGE_H */
