/* GessoImage and GessoMask storage, and the conversion between the user's RGBA pixels and the
 * model's RGB planes. */
#include <math.h>
#include <string.h>

#include "edit/region.h"
#include <glib/gi18n-lib.h>

/* Checked element count of a WIDTH x HEIGHT x CHANNELS float buffer, or 0 with ERROR set. A
 * user's 30000x30000 image must fail here with a message, not wrap around or abort. */
static gsize
buffer_floats (int width, int height, int channels, const char *what, GError **error)
{
  gsize n, bytes;

  if (width <= 0 || height <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%s size %d x %d is empty: width and height must be at least 1"),
                   what, width, height);
      return 0;
    }
  if (!g_size_checked_mul (&n, (gsize) width, (gsize) height)
      || !g_size_checked_mul (&n, n, (gsize) channels)
      || !g_size_checked_mul (&bytes, n, sizeof (float)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("a %d x %d %s is too large to address on this machine"), width, height, what);
      return 0;
    }
  return n;
}

static float *
alloc_floats (gsize n, int width, int height, const char *what, GError **error)
{
  float *data = g_try_malloc0_n (n, sizeof (float));

  if (data == NULL)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                 "not enough memory for a %d x %d %s (%" G_GSIZE_FORMAT " MiB): "
                 "close other programs or work on a smaller image",
                 width, height, what, (n * sizeof (float)) >> 20);
  return data;
}

gboolean
gesso_image_init (GessoImage *image, int width, int height, GError **error)
{
  gsize n;

  g_return_val_if_fail (image != NULL, FALSE);
  image->width = image->height = 0;
  image->pixels = NULL;
  n = buffer_floats (width, height, 4, "image", error);
  if (n == 0)
    return FALSE;
  image->pixels = alloc_floats (n, width, height, "image", error);
  if (image->pixels == NULL)
    return FALSE;
  image->width = width;
  image->height = height;
  return TRUE;
}

void
gesso_image_clear (GessoImage *image)
{
  if (image == NULL)
    return;
  g_clear_pointer (&image->pixels, g_free);
  image->width = image->height = 0;
}

gboolean
gesso_mask_init (GessoMask *mask, int width, int height, GError **error)
{
  gsize n;

  g_return_val_if_fail (mask != NULL, FALSE);
  mask->width = mask->height = 0;
  mask->values = NULL;
  n = buffer_floats (width, height, 1, "mask", error);
  if (n == 0)
    return FALSE;
  mask->values = alloc_floats (n, width, height, "mask", error);
  if (mask->values == NULL)
    return FALSE;
  mask->width = width;
  mask->height = height;
  return TRUE;
}

void
gesso_mask_clear (GessoMask *mask)
{
  if (mask == NULL)
    return;
  g_clear_pointer (&mask->values, g_free);
  mask->width = mask->height = 0;
}

/* NaN goes to 0: a corrupt pixel must not poison the latent it is encoded into. */
static inline float
clamp01 (float v)
{
  return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
}

void
gesso_image_to_model_rgb (const GessoImage *image, float *out)
{
  gsize plane, i;

  g_return_if_fail (image != NULL && image->pixels != NULL && out != NULL);
  plane = (gsize) image->width * (gsize) image->height;
  for (i = 0; i < plane; i++)
    {
      const float *p = image->pixels + 4 * i;

      out[i] = 2.0f * clamp01 (p[0]) - 1.0f;
      out[plane + i] = 2.0f * clamp01 (p[1]) - 1.0f;
      out[2 * plane + i] = 2.0f * clamp01 (p[2]) - 1.0f;
    }
}

void
gesso_image_from_model_rgb (const float *rgb, GessoImage *image)
{
  gsize plane, i;

  g_return_if_fail (image != NULL && image->pixels != NULL && rgb != NULL);
  plane = (gsize) image->width * (gsize) image->height;
  for (i = 0; i < plane; i++)
    {
      float *p = image->pixels + 4 * i;

      p[0] = clamp01 (0.5f * rgb[i] + 0.5f);
      p[1] = clamp01 (0.5f * rgb[plane + i] + 0.5f);
      p[2] = clamp01 (0.5f * rgb[2 * plane + i] + 0.5f);
      p[3] = 1.0f;
    }
}
