/* Control images made from what the user has: see GessoControlPreprocess in gesso.h.
 *
 * Every ControlNet reads an RGB picture in [0, 1] whose bright parts carry the structure:
 * strokes or lines white on black (the scribble, line-art and Canny models were trained on
 * such), or for the inpainting ControlNet the picture itself with the part to repaint at -1.
 * Luminance is Rec. 601's (0.299, 0.587, 0.114) on the sRGB-encoded values, as OpenCV's
 * grey conversion that the reference preprocessors use.
 */
#include "gesso.h"

#include <math.h>
#include <string.h>
#include <glib/gi18n-lib.h>

static const char *const preprocess_names[] = {
  [GESSO_CONTROL_PREPROCESS_NONE] = "none",
  [GESSO_CONTROL_PREPROCESS_SCRIBBLE] = "scribble",
  [GESSO_CONTROL_PREPROCESS_LINEART] = "lineart",
  [GESSO_CONTROL_PREPROCESS_CANNY] = "canny",
  [GESSO_CONTROL_PREPROCESS_INPAINT] = "inpaint",
};

gboolean
gesso_control_preprocess_from_name (const char *name, GessoControlPreprocess *out)
{
  for (size_t i = 0; name != NULL && i < G_N_ELEMENTS (preprocess_names); i++)
    if (strcmp (name, preprocess_names[i]) == 0)
      {
        *out = (GessoControlPreprocess) i;
        return TRUE;
      }
  return FALSE;
}

const char *
gesso_control_preprocess_name (GessoControlPreprocess preprocess)
{
  return (unsigned) preprocess < G_N_ELEMENTS (preprocess_names) ? preprocess_names[preprocess]
                                                                : NULL;
}

static float
luminance (const float *rgba)
{
  return 0.299f * rgba[0] + 0.587f * rgba[1] + 0.114f * rgba[2];
}

static void
set_grey (float *rgba, float v)
{
  rgba[0] = rgba[1] = rgba[2] = v;
  rgba[3] = 1.0f;
}

/* Any pixel not fully opaque: then the picture is a layer of strokes on transparency. */
static gboolean
has_transparency (const GessoImage *image, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (image->pixels[4 * i + 3] < 1.0f)
      return TRUE;
  return FALSE;
}

/* Strokes are where a layer is opaque, or where an opaque picture is dark (pencil on paper). */
static void
scribble (const GessoImage *image, GessoImage *out, size_t n)
{
  gboolean layer = has_transparency (image, n);

  for (size_t i = 0; i < n; i++)
    {
      const float *p = image->pixels + 4 * i;
      gboolean stroke = layer ? p[3] >= 0.5f : luminance (p) < 0.5f;
      set_grey (out->pixels + 4 * i, stroke ? 1.0f : 0.0f);
    }
}

/* Darkness over white: a line drawing's lines, bright on black. */
static void
lineart (const GessoImage *image, GessoImage *out, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      const float *p = image->pixels + 4 * i;
      float over_white = p[3] * luminance (p) + (1.0f - p[3]);
      set_grey (out->pixels + 4 * i, 1.0f - over_white);
    }
}

static void
as_is (const GessoImage *image, GessoImage *out, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      const float *p = image->pixels + 4 * i;
      float *o = out->pixels + 4 * i;
      for (int c = 0; c < 3; c++)
        o[c] = p[c] * p[3];
      o[3] = 1.0f;
    }
}

/* --- Canny (1986) as OpenCV's cv2.Canny(image, 100, 200) computes it -------------------- */

/* Sobel 3x3 with replicated borders, on grey levels 0..255; the L1 magnitude |gx| + |gy|
 * (OpenCV's default) and the direction class: 0 horizontal gradient, 1 vertical, 2 and 3 the
 * diagonals, by the tangent of 22.5 degrees. */
static void
gradients (const float *grey, int w, int h, float *magnitude, guint8 *direction)
{
  const float tan22 = 0.41421356f;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        int ym = MAX (y - 1, 0), yp = MIN (y + 1, h - 1);
        int xm = MAX (x - 1, 0), xp = MIN (x + 1, w - 1);
        float gx = (grey[ym * w + xp] + 2 * grey[y * w + xp] + grey[yp * w + xp])
                   - (grey[ym * w + xm] + 2 * grey[y * w + xm] + grey[yp * w + xm]);
        float gy = (grey[yp * w + xm] + 2 * grey[yp * w + x] + grey[yp * w + xp])
                   - (grey[ym * w + xm] + 2 * grey[ym * w + x] + grey[ym * w + xp]);
        float ax = fabsf (gx), ay = fabsf (gy);
        size_t i = (size_t) y * (size_t) w + (size_t) x;

        magnitude[i] = ax + ay;
        if (ay <= tan22 * ax)
          direction[i] = 0;
        else if (ax <= tan22 * ay)
          direction[i] = 1;
        else
          direction[i] = (gx > 0) == (gy > 0) ? 2 : 3;
      }
}

/* A pixel stays an edge candidate when its magnitude is a maximum across the edge. */
static float
suppressed (const float *m, const guint8 *dir, int w, int h, int x, int y)
{
  static const int dx[4][2] = { { -1, 1 }, { 0, 0 }, { -1, 1 }, { 1, -1 } };
  static const int dy[4][2] = { { 0, 0 }, { -1, 1 }, { -1, 1 }, { -1, 1 } };
  size_t i = (size_t) y * (size_t) w + (size_t) x;
  int d = dir[i];
  float a = 0, b = 0;
  int x0 = x + dx[d][0], y0 = y + dy[d][0], x1 = x + dx[d][1], y1 = y + dy[d][1];

  if (x0 >= 0 && x0 < w && y0 >= 0 && y0 < h)
    a = m[(size_t) y0 * (size_t) w + (size_t) x0];
  if (x1 >= 0 && x1 < w && y1 >= 0 && y1 < h)
    b = m[(size_t) y1 * (size_t) w + (size_t) x1];
  /* OpenCV keeps the first of equal neighbours along the scan: > on one side, >= on the
   * other */
  return m[i] > a && m[i] >= b ? m[i] : 0.0f;
}

static gboolean
canny (const GessoImage *image, GessoImage *out, GError **error)
{
  const int w = image->width, h = image->height;
  const size_t n = (size_t) w * (size_t) h;
  const float low = 100.0f, high = 200.0f;
  g_autofree float *grey = g_try_new (float, n);
  g_autofree float *magnitude = g_try_new (float, n);
  g_autofree float *thin = g_try_new (float, n);
  g_autofree guint8 *direction = g_try_new (guint8, n);
  g_autofree guint8 *edge = g_try_new0 (guint8, n);
  g_autofree gsize *stack = g_try_new (gsize, n);
  size_t top = 0;

  if (grey == NULL || magnitude == NULL || thin == NULL || direction == NULL || edge == NULL
      || stack == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory for Canny edges of a %d x %d image"), w, h);
      return FALSE;
    }
  for (size_t i = 0; i < n; i++)
    {
      const float *p = image->pixels + 4 * i;
      /* 8-bit grey levels as OpenCV sees the picture, transparency over black */
      grey[i] = roundf (255.0f * p[3] * luminance (p));
    }
  gradients (grey, w, h, magnitude, direction);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      thin[(size_t) y * (size_t) w + (size_t) x] = suppressed (magnitude, direction, w, h, x, y);
  /* hysteresis: strong edges, and weak ones connected to them (8-neighbourhood) */
  for (size_t i = 0; i < n; i++)
    if (thin[i] > high)
      {
        edge[i] = 1;
        stack[top++] = i;
      }
  while (top > 0)
    {
      size_t i = stack[--top];
      int x = (int) (i % (size_t) w), y = (int) (i / (size_t) w);

      for (int yy = MAX (y - 1, 0); yy <= MIN (y + 1, h - 1); yy++)
        for (int xx = MAX (x - 1, 0); xx <= MIN (x + 1, w - 1); xx++)
          {
            size_t j = (size_t) yy * (size_t) w + (size_t) xx;
            if (!edge[j] && thin[j] > low)
              {
                edge[j] = 1;
                stack[top++] = j;
              }
          }
    }
  for (size_t i = 0; i < n; i++)
    set_grey (out->pixels + 4 * i, edge[i] ? 1.0f : 0.0f);
  return TRUE;
}

/* The picture with the part to repaint at -1, which the inpainting ControlNet reads as
 * "unknown"; MASK 1 = change (at or above one half counts). */
static gboolean
inpaint (const GessoImage *image, const GessoMask *mask, GessoImage *out, size_t n,
         GError **error)
{
  if (mask == NULL || mask->values == NULL || mask->width != image->width
      || mask->height != image->height)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the inpaint control image needs the edit's mask, of the picture's size: "
                   "use it with Inpaint Selection (or give a mask)"));
      return FALSE;
    }
  as_is (image, out, n);
  for (size_t i = 0; i < n; i++)
    if (mask->values[i] >= 0.5f)
      set_grey (out->pixels + 4 * i, -1.0f);
  return TRUE;
}

gboolean
gesso_control_preprocess (const GessoImage *image, GessoControlPreprocess preprocess,
                          const GessoMask *mask, GessoImage *out, GError **error)
{
  size_t n;

  g_return_val_if_fail (image != NULL && out != NULL, FALSE);
  if (image->pixels == NULL || image->width < 1 || image->height < 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the control image has no pixels"));
      return FALSE;
    }
  if (gesso_control_preprocess_name (preprocess) == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("unknown control preprocessor %d"), (int) preprocess);
      return FALSE;
    }
  if (!gesso_image_init (out, image->width, image->height, error))
    return FALSE;
  n = (size_t) image->width * (size_t) image->height;
  switch (preprocess)
    {
    case GESSO_CONTROL_PREPROCESS_SCRIBBLE:
      scribble (image, out, n);
      return TRUE;
    case GESSO_CONTROL_PREPROCESS_LINEART:
      lineart (image, out, n);
      return TRUE;
    case GESSO_CONTROL_PREPROCESS_CANNY:
      if (canny (image, out, error))
        return TRUE;
      break;
    case GESSO_CONTROL_PREPROCESS_INPAINT:
      if (inpaint (image, mask, out, n, error))
        return TRUE;
      break;
    case GESSO_CONTROL_PREPROCESS_NONE:
    default:
      as_is (image, out, n);
      return TRUE;
    }
  gesso_image_clear (out);
  return FALSE;
}
