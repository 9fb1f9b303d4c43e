/* An edit's ControlNets; see controls.h. */
#include "edit/controls.h"

#include <math.h>
#include <string.h>

#include "edit/model-private.h"
#include "edit/resample.h"
#include <glib/gi18n-lib.h>

#define MAX_CONTROL_SCALE 2.0

gboolean
gesso_edit_controls_check (const GessoEditParams *p, GError **error)
{
  if (p->n_controls < 0 || p->n_controls > GESSO_MAX_CONTROLS
      || (p->n_controls > 0 && p->controls == NULL))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%d ControlNets given; an edit takes 0 to %d"), p->n_controls,
                   GESSO_MAX_CONTROLS);
      return FALSE;
    }
  if (p->n_controls > 0
      && (!(p->control_start >= 0.0f && p->control_start <= 1.0f)
          || !(p->control_end >= p->control_start && p->control_end <= 1.0f)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the ControlNets act from %g to %g of the steps; give 0 <= start <= end <= 1"),
                   (double) p->control_start, (double) p->control_end);
      return FALSE;
    }
  for (int j = 0; j < p->n_controls; j++)
    {
      const GessoControl *c = &p->controls[j];

      if (c->model == NULL || *c->model == '\0')
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("ControlNet %d has no model file"), j + 1);
          return FALSE;
        }
      if (!(c->scale >= 0.0f && c->scale <= MAX_CONTROL_SCALE))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("ControlNet %d's scale is %g; it must be between 0 and %g"), j + 1,
                       (double) c->scale, MAX_CONTROL_SCALE);
          return FALSE;
        }
      if (gesso_control_preprocess_name (c->preprocess) == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("ControlNet %d has an unknown preprocessor"), j + 1);
          return FALSE;
        }
      if (c->preprocess == GESSO_CONTROL_PREPROCESS_INPAINT ? p->kind == GESSO_EDIT_GENERATE
                                                            : c->image == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       c->image == NULL ? _("ControlNet %d has no control image")
                                        : _("ControlNet %d: the inpaint control image is made "
                                          "from the input and its mask, which Generate has "
                                          "none of"), j + 1);
          return FALSE;
        }
    }
  return TRUE;
}

/* The region in the coordinates of a W x H picture, for a control image of another size
 * than the canvas it was planned on (it is stretched to the canvas). */
static GessoRegion
scaled_region (const GessoRegion *r, int canvas_w, int canvas_h, int w, int h)
{
  GessoRegion s = *r;
  double sx = (double) w / canvas_w, sy = (double) h / canvas_h;

  s.x = (int) floor (r->x * sx);
  s.y = (int) floor (r->y * sy);
  s.width = MAX (1, MIN (w - s.x, (int) ceil ((r->x + r->width) * sx) - s.x));
  s.height = MAX (1, MIN (h - s.y, (int) ceil ((r->y + r->height) * sy) - s.y));
  return s;
}

/* One control's image: RGB planes in [0, 1] for its ControlNet, into *OUT (owned). */
static gboolean
prepare_image (const GessoControl *c, GessoControlNet *net, const GessoImage *input,
               const GessoRegion *region, int canvas_w, int canvas_h, const float *work_mask,
               int latent_w, int latent_h, float **out, GError **error)
{
  const int f = gesso_controlnet_get_image_factor (net);
  const int out_w = latent_w * f, out_h = latent_h * f;
  const size_t work_px = (size_t) region->work_width * (size_t) region->work_height;
  gboolean inpaint = c->preprocess == GESSO_CONTROL_PREPROCESS_INPAINT;
  const GessoImage *source = c->image != NULL ? c->image : input;
  g_autofree float *work = g_try_new (float, 3 * work_px);
  g_autofree float *sized = g_try_new (float, 3 * (size_t) out_w * (size_t) out_h);
  GessoImage pre = { 0 };
  GessoRegion r;
  gboolean ok;

  if (work == NULL || sized == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory for a %d x %d control image"), out_w, out_h);
      return FALSE;
    }
  /* the inpaint kind is the input as it is; its region to change is set to -1 at the
   * working size below, where the edit's own mask is */
  if (!gesso_control_preprocess (source, inpaint ? GESSO_CONTROL_PREPROCESS_NONE : c->preprocess,
                                 NULL, &pre, error))
    return FALSE;
  r = pre.width == canvas_w && pre.height == canvas_h
        ? *region : scaled_region (region, canvas_w, canvas_h, pre.width, pre.height);
  ok = gesso_region_to_model (&pre, &r, work, error);
  gesso_image_clear (&pre);
  if (!ok)
    return FALSE;
  for (size_t i = 0; i < 3 * work_px; i++)
    work[i] = (work[i] + 1.0f) / 2.0f;
  if (inpaint && work_mask != NULL)
    for (size_t i = 0; i < work_px; i++)
      if (work_mask[i] >= 0.5f)
        work[i] = work[work_px + i] = work[2 * work_px + i] = -1.0f;
  if (out_w == region->work_width && out_h == region->work_height)
    memcpy (sized, work, 3 * work_px * sizeof (float));
  else
    for (int ch = 0; ch < 3; ch++)
      if (!gesso_resample_plane (work + ch * work_px, region->work_width, region->work_width,
                                 region->work_height,
                                 sized + (size_t) ch * (size_t) out_w * (size_t) out_h, out_w,
                                 out_h, inpaint ? -1.0f : 0.0f, 1.0f, error))
        return FALSE;
  *out = g_steal_pointer (&sized);
  return TRUE;
}

gboolean
gesso_edit_controls_prepare (GessoEditControls *ec, GessoModel *model,
                             const GessoEditParams *p, const GessoImage *input,
                             const GessoRegion *region, int canvas_w, int canvas_h,
                             const float *work_mask, int latent_w, int latent_h,
                             GError **error)
{
  memset (ec, 0, sizeof *ec);
  for (int j = 0; j < p->n_controls; j++)
    {
      const GessoControl *c = &p->controls[j];
      GessoControlNet *net = gesso_model_controlnet (model, c->model, error);

      if (net == NULL)
        {
          /* say which one, unless the message does */
          if (error != NULL && *error != NULL
              && !g_str_has_prefix ((*error)->message, "ControlNet"))
            g_prefix_error (error, _("ControlNet %d: "), j + 1);
          return FALSE;
        }
      if (gesso_controlnet_get_image_channels (net) != 3)
        {
          g_autofree char *shown = g_utf8_make_valid (c->model, -1);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       _("ControlNet '%s' reads %d-channel control images; Gesso makes RGB ones"),
                       shown, gesso_controlnet_get_image_channels (net));
          return FALSE;
        }
      if (!prepare_image (c, net, input, region, canvas_w, canvas_h, work_mask, latent_w,
                          latent_h, &ec->images[j], error))
        return FALSE;
      ec->controls[j].net = net;
      ec->controls[j].image = ec->images[j];
      ec->controls[j].scale = c->scale;
      ec->n = j + 1;
    }
  return TRUE;
}

void
gesso_edit_controls_clear (GessoEditControls *ec)
{
  for (int j = 0; j < GESSO_MAX_CONTROLS; j++)
    g_free (ec->images[j]);
  memset (ec, 0, sizeof *ec);
}
