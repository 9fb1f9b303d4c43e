/* PNG and JPEG files <-> GessoImage and GessoMask, through gdk-pixbuf (see image-io.h). */
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

#include "cli/image-io.h"

/* Opens PATH upright (EXIF orientation applied), or fails with a GESSO_ERROR_IO message that
 * names the file. */
static GdkPixbuf *
load_pixbuf (const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GdkPixbuf) raw = NULL;
  GdkPixbuf *upright;

  raw = gdk_pixbuf_new_from_file (path, &local);
  if (raw == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot read image '%s': %s", path,
                   local->message);
      return NULL;
    }
  if (gdk_pixbuf_get_bits_per_sample (raw) != 8
      || gdk_pixbuf_get_colorspace (raw) != GDK_COLORSPACE_RGB
      || gdk_pixbuf_get_n_channels (raw) != (gdk_pixbuf_get_has_alpha (raw) ? 4 : 3))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "image '%s' has a pixel layout gdk-pixbuf does not normally give "
                   "(%d bits, %d channels): save it as an 8-bit RGB PNG", path,
                   gdk_pixbuf_get_bits_per_sample (raw), gdk_pixbuf_get_n_channels (raw));
      return NULL;
    }
  upright = gdk_pixbuf_apply_embedded_orientation (raw);
  if (upright == NULL)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                 "not enough memory to rotate image '%s' upright", path);
  return upright;
}

/* An opened file's 8-bit pixels; PIXBUF owns them. */
typedef struct
{
  GdkPixbuf *pixbuf;
  const guint8 *pixels;
  int width, height, stride, channels;
} Raster;

static gboolean
raster_open (const char *path, Raster *raster, GError **error)
{
  raster->pixbuf = load_pixbuf (path, error);
  if (raster->pixbuf == NULL)
    return FALSE;
  raster->width = gdk_pixbuf_get_width (raster->pixbuf);
  raster->height = gdk_pixbuf_get_height (raster->pixbuf);
  raster->stride = gdk_pixbuf_get_rowstride (raster->pixbuf);
  raster->channels = gdk_pixbuf_get_n_channels (raster->pixbuf);
  raster->pixels = gdk_pixbuf_read_pixels (raster->pixbuf);
  return TRUE;
}

gboolean
gesso_cli_image_load (const char *path, GessoImage *image, GError **error)
{
  Raster r;
  gboolean ok;

  g_return_val_if_fail (path != NULL && image != NULL, FALSE);
  image->pixels = NULL;
  image->width = image->height = 0;
  if (!raster_open (path, &r, error))
    return FALSE;
  ok = gesso_image_init (image, r.width, r.height, error);
  if (!ok)
    g_prefix_error (error, "image '%s': ", path);
  for (int y = 0; ok && y < r.height; y++)
    {
      const guint8 *src = r.pixels + (gsize) y * r.stride;
      float *dst = image->pixels + (gsize) y * r.width * 4;

      for (int x = 0; x < r.width; x++, src += r.channels, dst += 4)
        {
          dst[0] = src[0] / 255.0f;
          dst[1] = src[1] / 255.0f;
          dst[2] = src[2] / 255.0f;
          dst[3] = r.channels == 4 ? src[3] / 255.0f : 1.0f;
        }
    }
  g_object_unref (r.pixbuf);
  return ok;
}

gboolean
gesso_cli_mask_load (const char *path, GessoMask *mask, GError **error)
{
  Raster r;
  gboolean ok;

  g_return_val_if_fail (path != NULL && mask != NULL, FALSE);
  mask->values = NULL;
  mask->width = mask->height = 0;
  if (!raster_open (path, &r, error))
    return FALSE;
  ok = gesso_mask_init (mask, r.width, r.height, error);
  if (!ok)
    g_prefix_error (error, "mask '%s': ", path);
  for (int y = 0; ok && y < r.height; y++)
    {
      const guint8 *src = r.pixels + (gsize) y * r.stride;
      float *dst = mask->values + (gsize) y * r.width;

      for (int x = 0; x < r.width; x++, src += r.channels)
        {
          /* Grey pixels take their level directly: the weighted sum of three equal values
           * need not round back to exactly 1 for white. */
          float v = src[0] == src[1] && src[1] == src[2]
                    ? src[0] / 255.0f
                    : (0.2126f * src[0] + 0.7152f * src[1] + 0.0722f * src[2]) / 255.0f;

          v = CLAMP (v, 0.0f, 1.0f);
          dst[x] = r.channels == 4 ? v * (src[3] / 255.0f) : v;
        }
    }
  g_object_unref (r.pixbuf);
  return ok;
}

static guint8
to_byte (float v)
{
  /* NaN becomes 0 with the comparisons written this way round. */
  return (guint8) (v > 0.0f ? (v < 1.0f ? v * 255.0f + 0.5f : 255.0f) : 0.0f);
}

gboolean
gesso_cli_image_save (const GessoImage *image, const char *path, GError **error)
{
  return gesso_cli_image_save_with_parameters (image, path, NULL, error);
}

gboolean
gesso_cli_image_save_with_parameters (const GessoImage *image, const char *path,
                                      const char *parameters, GError **error)
{
  g_autoptr (GdkPixbuf) pixbuf = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *lower = NULL;
  const char *type;
  gboolean jpeg, ok;
  guint8 *pixels;
  int stride, channels;

  g_return_val_if_fail (image != NULL && path != NULL, FALSE);
  if (image->pixels == NULL || image->width <= 0 || image->height <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "there is no image to write to '%s'", path);
      return FALSE;
    }
  lower = g_ascii_strdown (path, -1);
  if (g_str_has_suffix (lower, ".png"))
    type = "png";
  else if (g_str_has_suffix (lower, ".jpg") || g_str_has_suffix (lower, ".jpeg"))
    type = "jpeg";
  else
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "cannot tell which format to write '%s' in: name it .png or .jpg", path);
      return FALSE;
    }
  jpeg = strcmp (type, "jpeg") == 0;

  pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, !jpeg, 8, image->width, image->height);
  if (pixbuf == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "not enough memory to write a %d x %d image to '%s'", image->width,
                   image->height, path);
      return FALSE;
    }
  stride = gdk_pixbuf_get_rowstride (pixbuf);
  channels = gdk_pixbuf_get_n_channels (pixbuf);
  pixels = gdk_pixbuf_get_pixels (pixbuf);
  for (int y = 0; y < image->height; y++)
    {
      const float *src = image->pixels + (gsize) y * image->width * 4;
      guint8 *dst = pixels + (gsize) y * stride;

      for (int x = 0; x < image->width; x++, src += 4, dst += channels)
        for (int c = 0; c < channels; c++)
          dst[c] = to_byte (src[c]);
    }

  if (jpeg)
    ok = gdk_pixbuf_save (pixbuf, path, type, &local, "quality", "95", NULL);
  else if (parameters != NULL)
    /* a tEXt chunk, or iTXt (UTF-8) when the text is not Latin-1: gdk-pixbuf chooses */
    ok = gdk_pixbuf_save (pixbuf, path, type, &local, "tEXt::parameters", parameters, NULL);
  else
    ok = gdk_pixbuf_save (pixbuf, path, type, &local, NULL);
  if (!ok)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot write image '%s': %s", path,
                   local != NULL ? local->message : "unknown error");
      return FALSE;
    }
  return TRUE;
}
