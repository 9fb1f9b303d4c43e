/* An edit's ControlNets, made ready for the pipeline: each one opened for the model (and kept
 * with it), its image preprocessed (gesso_control_preprocess), cut to the edit's region the
 * way the input is, resized to the size its ControlNet reads (the latent times its image
 * factor) and turned into [0, 1] RGB planes; the inpaint kind has the region to change at -1.
 */
#ifndef GESSO_EDIT_CONTROLS_H
#define GESSO_EDIT_CONTROLS_H

#include <glib.h>

#include "edit/guidance.h"
#include "edit/region.h"
#include "gesso.h"

G_BEGIN_DECLS

typedef struct
{
  GessoGuiderControl controls[GESSO_MAX_CONTROLS];
  float *images[GESSO_MAX_CONTROLS];    /* owned: [1, 3, h f, w f] each */
  int n;
} GessoEditControls;

/* The controls part of checking an edit's parameters. */
gboolean gesso_edit_controls_check (const GessoEditParams *params, GError **error);

/* REGION (in the coordinates of a CANVAS_W x CANVAS_H picture: the input, or generate's
 * output) and the working-size change mask WORK_MASK (NULL without a mask) are the edit's;
 * LATENT_W x LATENT_H its latent. */
gboolean gesso_edit_controls_prepare (GessoEditControls *controls, GessoModel *model,
                                      const GessoEditParams *params, const GessoImage *input,
                                      const GessoRegion *region, int canvas_w, int canvas_h,
                                      const float *work_mask, int latent_w, int latent_h,
                                      GError **error);
void gesso_edit_controls_clear (GessoEditControls *controls);

G_END_DECLS

#endif /* GESSO_EDIT_CONTROLS_H */
