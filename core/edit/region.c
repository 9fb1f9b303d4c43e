/* Planning an edit's crop and working size, and moving pixels between the user's image and the
 * model's input and output (see region.h). */
#include <math.h>
#include <string.h>

#include "edit/mask.h"
#include "edit/region.h"
#include "edit/resample.h"
#include <glib/gi18n-lib.h>

/* Errors if REGION is not a non-empty rectangle inside a WIDTH x HEIGHT image with a
 * positive working size. */
static gboolean
check_region (const GessoRegion *region, int width, int height, GError **error)
{
  if (region == NULL || region->width <= 0 || region->height <= 0 || region->x < 0
      || region->y < 0 || region->x > width - region->width
      || region->y > height - region->height || region->work_width <= 0
      || region->work_height <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the edit region does not fit the %d x %d image: plan it for this image "
                   "(gesso_region_plan)"), width, height);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_image (const GessoImage *image, const char *what, GError **error)
{
  if (image == NULL || image->pixels == NULL || image->width <= 0 || image->height <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the %s image is missing or has no pixels"), what);
      return FALSE;
    }
  return TRUE;
}

/* Picks the working size for a crop of CW x CH (see gesso_region_plan). All arithmetic in
 * doubles and 64-bit integers: a 30000 x 30000 crop with a large budget must not overflow. */
static void
plan_working_size (int cw, int ch, gint64 budget, int m, int *work_w, int *work_h)
{
  const double aspect = (double) cw / ch;
  /* The size with the crop's aspect and exactly the budget's area. */
  const double ideal_w = sqrt ((double) budget * aspect), ideal_h = sqrt (budget / aspect);
  const gint64 fw = (gint64) floor (ideal_w / m), fh = (gint64) floor (ideal_h / m);
  const gint64 cand_w[2] = { MAX (fw, 1), MAX (fw + 1, 1) };
  const gint64 cand_h[2] = { MAX (fh, 1), MAX (fh + 1, 1) };
  double best_error = INFINITY;
  gint64 best_area = 0, bw = 0, bh = 0;

  /* Among the floor/ceiling roundings that fit the budget, keep the aspect best; on a tie,
   * the larger. Both floors fit whenever both are at least one multiple. */
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++)
      {
        gint64 w = cand_w[a] * m, h = cand_h[b] * m;
        double error = fabs (log ((double) w / h / aspect));

        if (w * h > budget)
          continue;
        if (error < best_error - 1e-12
            || (fabs (error - best_error) <= 1e-12 && w * h > best_area))
          {
            best_error = error;
            best_area = w * h;
            bw = w;
            bh = h;
          }
      }
  if (bw == 0)
    {
      /* A crop so thin that one multiple on its short side pushes the long side past the
       * budget: keep the one multiple and cut the long side to fit. */
      gint64 fit = MAX (budget / ((gint64) m * m), 1) * m;

      if (ideal_w < ideal_h)
        {
          bw = m;
          bh = MIN (fit, cand_h[1] * m);
        }
      else
        {
          bh = m;
          bw = MIN (fit, cand_w[1] * m);
        }
    }
  *work_w = (int) bw;
  *work_h = (int) bh;
}

gboolean
gesso_region_plan (int image_width, int image_height, const GessoMask *mask,
                   int context_margin, int pixel_budget, int size_multiple,
                   GessoRegion *region, GError **error)
{
  int x0 = 0, y0 = 0, x1 = image_width, y1 = image_height;

  g_return_val_if_fail (region != NULL, FALSE);
  if (image_width <= 0 || image_height <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the image is %d x %d pixels: it must be at least 1 x 1"),
                   image_width, image_height);
      return FALSE;
    }
  if (context_margin < 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the context margin is %d pixels: use 0 or more"), context_margin);
      return FALSE;
    }
  if (size_multiple <= 0 || size_multiple > 4096)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the model size multiple is %d pixels: it must be between 1 and 4096"),
                   size_multiple);
      return FALSE;
    }
  if (pixel_budget < size_multiple * size_multiple)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the pixel budget %d is below the smallest size this model takes "
                   "(%d x %d = %d pixels): raise the budget"), pixel_budget, size_multiple,
                   size_multiple, size_multiple * size_multiple);
      return FALSE;
    }

  if (mask != NULL)
    {
      int bx, by, bw, bh;

      if (mask->width != image_width || mask->height != image_height || mask->values == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("the mask is %d x %d but the image is %d x %d: they must match"),
                       mask->width, mask->height, image_width, image_height);
          return FALSE;
        }
      if (!gesso_mask_bounds (mask, &bx, &by, &bw, &bh))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("the mask is empty: select the area to change first"));
          return FALSE;
        }
      /* 64-bit: the margin may be as large as an int. */
      x0 = (int) MAX ((gint64) bx - context_margin, 0);
      y0 = (int) MAX ((gint64) by - context_margin, 0);
      x1 = (int) MIN ((gint64) bx + bw + context_margin, image_width);
      y1 = (int) MIN ((gint64) by + bh + context_margin, image_height);
    }

  region->x = x0;
  region->y = y0;
  region->width = x1 - x0;
  region->height = y1 - y0;
  plan_working_size (region->width, region->height, pixel_budget, size_multiple,
                     &region->work_width, &region->work_height);
  return TRUE;
}

gboolean
gesso_region_to_model (const GessoImage *input, const GessoRegion *region, float *out,
                       GError **error)
{
  GessoImage work = { 0 };
  const float *crop;
  gboolean ok;

  g_return_val_if_fail (out != NULL, FALSE);
  if (!check_image (input, "input", error)
      || !check_region (region, input->width, input->height, error))
    return FALSE;
  if (input->width > G_MAXINT / 4)
    {
      /* The resampler's row stride is an int of floats. */
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("an image %d pixels wide is wider than Gesso handles"), input->width);
      return FALSE;
    }
  if (!gesso_image_init (&work, region->work_width, region->work_height, error))
    return FALSE;
  crop = input->pixels + ((gsize) region->y * input->width + region->x) * 4;
  ok = gesso_resample_rgba (crop, input->width * 4, region->width, region->height,
                            work.pixels, work.width, work.height, error);
  if (ok)
    gesso_image_to_model_rgb (&work, out);
  gesso_image_clear (&work);
  return ok;
}

gboolean
gesso_region_from_model (const float *model_rgb, const GessoImage *input,
                         const GessoRegion *region, GessoImage *out, GError **error)
{
  const gsize work_plane = (gsize) (region != NULL ? region->work_width : 0)
                           * (region != NULL ? region->work_height : 0);
  float *planes = NULL;
  gsize plane;
  gboolean ok = FALSE;

  g_return_val_if_fail (model_rgb != NULL && out != NULL, FALSE);
  out->pixels = NULL;
  out->width = out->height = 0;
  if (input != NULL && !check_image (input, "input", error))
    return FALSE;
  /* Generate has no input: only the crop's size matters. */
  if (!check_region (region, input != NULL ? input->width : G_MAXINT,
                     input != NULL ? input->height : G_MAXINT, error))
    return FALSE;

  if (!gesso_image_init (out, region->width, region->height, error))
    return FALSE;
  plane = (gsize) region->width * region->height;
  planes = g_try_new (float, 3 * plane);
  if (planes == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory to resize the result to %d x %d"), region->width,
                   region->height);
      goto err_clear_out;
    }
  for (int c = 0; c < 3; c++)
    if (!gesso_resample_plane (model_rgb + c * work_plane, region->work_width,
                               region->work_width, region->work_height, planes + c * plane,
                               region->width, region->height, -1.0f, 1.0f, error))
      goto err_free_planes;

  gesso_image_from_model_rgb (planes, out);
  if (input != NULL)
    for (int j = 0; j < region->height; j++)
      {
        const float *src = input->pixels
                           + ((gsize) (region->y + j) * input->width + region->x) * 4;
        float *dst = out->pixels + (gsize) j * region->width * 4;

        for (int i = 0; i < region->width; i++)
          dst[4 * i + 3] = src[4 * i + 3];
      }
  ok = TRUE;

err_free_planes:
  g_free (planes);
err_clear_out:
  if (!ok)
    gesso_image_clear (out);
  return ok;
}

gboolean
gesso_region_crop_mask (const GessoMask *mask, const GessoRegion *region, GessoMask *out,
                        GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (mask != NULL && mask->values == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT, _("the mask has no pixels"));
      return FALSE;
    }
  /* Without a mask any placement is fine: only the crop's size matters. */
  if (!check_region (region, mask != NULL ? mask->width : G_MAXINT,
                     mask != NULL ? mask->height : G_MAXINT, error))
    return FALSE;

  if (!gesso_mask_init (out, region->width, region->height, error))
    return FALSE;
  for (int j = 0; j < region->height; j++)
    {
      float *dst = out->values + (gsize) j * region->width;

      if (mask == NULL)
        {
          for (int i = 0; i < region->width; i++)
            dst[i] = 1.0f;
          continue;
        }
      memcpy (dst, mask->values + (gsize) (region->y + j) * mask->width + region->x,
              (gsize) region->width * sizeof (float));
    }
  return TRUE;
}
