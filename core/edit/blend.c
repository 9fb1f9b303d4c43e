/* The final blend of an edit's result over the user's image (see region.h). */
#include <string.h>

#include "edit/region.h"
#include <glib/gi18n-lib.h>

gboolean
gesso_blend_region (const GessoImage *input, const GessoRegion *region,
                    const GessoImage *generated, const GessoMask *blend, GessoImage *out,
                    GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  out->pixels = NULL;
  out->width = out->height = 0;
  if (input == NULL || input->pixels == NULL || generated == NULL || generated->pixels == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("blending needs both the input image and the generated pixels"));
      return FALSE;
    }
  if (region == NULL || region->width <= 0 || region->height <= 0 || region->x < 0
      || region->y < 0 || region->x > input->width - region->width
      || region->y > input->height - region->height)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the edit region does not fit the %d x %d input image"),
                   input->width, input->height);
      return FALSE;
    }
  if (generated->width != region->width || generated->height != region->height
      || (blend != NULL && (blend->values == NULL || blend->width != region->width
                            || blend->height != region->height)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the generated pixels (%d x %d) and blend mask (%d x %d) must have the "
                   "region's size, %d x %d"), generated->width, generated->height,
                   blend != NULL ? blend->width : region->width,
                   blend != NULL ? blend->height : region->height,
                   region->width, region->height);
      return FALSE;
    }

  if (!gesso_image_init (out, input->width, input->height, error))
    return FALSE;
  /* Everything outside the region is the input, copied. */
  memcpy (out->pixels, input->pixels, (gsize) input->width * input->height * 4 * sizeof (float));

  for (int j = 0; j < region->height; j++)
    {
      const gsize offset = ((gsize) (region->y + j) * input->width + region->x) * 4;
      const float *in = input->pixels + offset;
      const float *gen = generated->pixels + (gsize) j * region->width * 4;
      const float *b = blend != NULL ? blend->values + (gsize) j * region->width : NULL;
      float *o = out->pixels + offset;

      for (int i = 0; i < region->width; i++, in += 4, gen += 4, o += 4)
        {
          float t = b != NULL ? b[i] : 1.0f;

          /* Written so NaN counts as 0: a broken mask value keeps the user's pixel. The
           * output already holds the input here, so "keep" is doing nothing: no arithmetic
           * touches those bits. */
          if (!(t > 0.0f))
            continue;
          if (t >= 1.0f)
            {
              o[0] = gen[0];
              o[1] = gen[1];
              o[2] = gen[2];
              continue;
            }
          /* Linear in the sRGB-encoded values, as GIMP's perceptual compositing and the
           * model's own pixel space are. */
          o[0] = in[0] + t * (gen[0] - in[0]);
          o[1] = in[1] + t * (gen[1] - in[1]);
          o[2] = in[2] + t * (gen[2] - in[2]);
        }
    }
  return TRUE;
}

gboolean
gesso_edit_result_compose (const GessoImage *input, const GessoEditResult *result,
                           GessoImage *out, GError **error)
{
  /* the result is already at the region's size: no working size to scale from */
  const GessoRegion region = {
    .x = result->x,
    .y = result->y,
    .width = result->image.width,
    .height = result->image.height,
    .work_width = result->image.width,
    .work_height = result->image.height,
  };

  g_return_val_if_fail (input != NULL && result != NULL && out != NULL, FALSE);
  return gesso_blend_region (input, &region, &result->image, &result->blend, out, error);
}
