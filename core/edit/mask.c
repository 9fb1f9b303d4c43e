/* Mask grow, blur, feather, bounds and area-average resize (see mask.h).
 *
 * Grow and blur work in a window: the mask's bounding box widened by the operation's reach
 * and clipped to the mask. Outside it every input tap is zero, so the result is zero there
 * too and need not be computed; a small selection in a 24-megapixel photo costs what its
 * neighbourhood costs.
 */
#include <math.h>
#include <string.h>

#include "edit/mask.h"
#include <glib/gi18n-lib.h>

/* Values this close to 0 or 1 after a blur are snapped to it: the inside of a selection then
 * stays exactly 1 and the far outside exactly 0, instead of 0.99999994 and 1e-9 left over
 * from rounding, so the blend copies untouched pixels bit for bit. */
#define SNAP 1e-6f

/* A squared distance no pixel pair reaches; the distance transform's "no set pixel". */
#define FAR 1e20

/* Columns the distance transform handles together: 8 doubles fill a 64-byte cache line. */
#define COLUMN_BLOCK 8

typedef struct
{
  int x0, y0, x1, y1;         /* half-open: [x0, x1) x [y0, y1) */
} Window;

static inline float
clamp01 (float v)
{
  return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
}

gboolean
gesso_mask_bounds (const GessoMask *mask, int *x, int *y, int *width, int *height)
{
  int x0 = G_MAXINT, y0 = G_MAXINT, x1 = -1, y1 = -1;

  g_return_val_if_fail (mask != NULL, FALSE);
  for (int j = 0; j < mask->height; j++)
    {
      const float *row = mask->values + (gsize) j * mask->width;
      int first = -1, last = -1;

      for (int i = 0; i < mask->width; i++)
        if (row[i] > 0.0f)
          {
            first = i;
            break;
          }
      if (first < 0)
        continue;
      for (int i = mask->width - 1; i >= first; i--)
        if (row[i] > 0.0f)
          {
            last = i;
            break;
          }
      x0 = MIN (x0, first);
      x1 = MAX (x1, last);
      y0 = MIN (y0, j);
      y1 = j;
    }
  if (x1 < 0)
    return FALSE;
  if (x != NULL)
    *x = x0;
  if (y != NULL)
    *y = y0;
  if (width != NULL)
    *width = x1 - x0 + 1;
  if (height != NULL)
    *height = y1 - y0 + 1;
  return TRUE;
}

/* The bounding box widened by REACH on every side, clipped to the mask. FALSE: empty mask. */
static gboolean
window_around (const GessoMask *mask, int reach, Window *win)
{
  int x, y, w, h;

  if (!gesso_mask_bounds (mask, &x, &y, &w, &h))
    return FALSE;
  win->x0 = MAX (0, x - reach);
  win->y0 = MAX (0, y - reach);
  /* In 64 bits: REACH can be as large as the image. */
  win->x1 = (int) MIN ((gint64) mask->width, (gint64) x + w + reach);
  win->y1 = (int) MIN ((gint64) mask->height, (gint64) y + h + reach);
  return TRUE;
}

static gboolean
check_mask (const GessoMask *mask, GError **error)
{
  if (mask == NULL || mask->values == NULL || mask->width <= 0 || mask->height <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the mask is missing or has no pixels"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
no_memory (GError **error, const char *what, int w, int h)
{
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
               _("not enough memory to %s a %d x %d mask area"), what, w, h);
  return FALSE;
}

/* Reach of a radius in whole pixels, saturated so huge radii cannot overflow an int. */
static int
reach_of (double radius)
{
  return radius >= G_MAXINT / 4 ? G_MAXINT / 4 : (int) floor (radius);
}

/* --- grow: binary masks, exact Euclidean distance transform ------------------------------ */

/* One-dimensional squared-distance transform of sampled function F (Felzenszwalb &
 * Huttenlocher 2012, "Distance transforms of sampled functions", Algorithm 1): D[q] =
 * min_p (q - p)^2 + F[p], the lower envelope of parabolas rooted at each p. V and Z are
 * scratch of N and N + 1 entries. */
static void
distance_1d (const double *f, int n, double *d, int *v, double *z)
{
  int k = 0;

  v[0] = 0;
  z[0] = -INFINITY;
  z[1] = INFINITY;
  for (int q = 1; q < n; q++)
    {
      /* Where the parabola of q overtakes the rightmost one of the envelope; z[0] = -inf
       * stops the walk at the first. */
      double s = ((f[q] + (double) q * q) - (f[v[k]] + (double) v[k] * v[k]))
                 / (2.0 * (q - v[k]));

      while (s <= z[k])
        {
          k--;
          s = ((f[q] + (double) q * q) - (f[v[k]] + (double) v[k] * v[k])) / (2.0 * (q - v[k]));
        }
      k++;
      v[k] = q;
      z[k] = s;
      z[k + 1] = INFINITY;
    }
  k = 0;
  for (int q = 0; q < n; q++)
    {
      while (z[k + 1] < q)
        k++;
      d[q] = (double) (q - v[k]) * (q - v[k]) + f[v[k]];
    }
}

/* Writes 1 into the mask's window where a pixel of the set {SRC >= 1} (SRC: the window's
 * values, clamped) lies within sqrt (R2), else 0. */
static gboolean
grow_ones (GessoMask *mask, const Window *win, const float *src, double r2, GError **error)
{
  const int ww = win->x1 - win->x0, wh = win->y1 - win->y0, n = MAX (ww, wh);
  double *dist, *f, *d, *z, *cols;
  int *v;
  gboolean ok = FALSE;

  dist = g_try_new (double, (gsize) ww * wh);
  cols = g_try_new (double, (gsize) COLUMN_BLOCK * wh);
  f = g_try_new (double, n);
  d = g_try_new (double, n);
  z = g_try_new (double, (gsize) n + 1);
  v = g_try_new (int, n);
  if (dist == NULL || cols == NULL || f == NULL || d == NULL || z == NULL || v == NULL)
    {
      no_memory (error, "grow", ww, wh);
      goto err_free;
    }

  /* Rows first, where the reads are contiguous: squared horizontal distance to the nearest
   * set pixel in the row. */
  for (int j = 0; j < wh; j++)
    {
      const float *row = src + (gsize) j * ww;
      double *out = dist + (gsize) j * ww;
      gboolean any = FALSE;

      for (int i = 0; i < ww; i++)
        {
          f[i] = row[i] >= 1.0f ? 0.0 : FAR;
          any |= row[i] >= 1.0f;
        }
      if (!any)
        {
          for (int i = 0; i < ww; i++)
            out[i] = FAR;
          continue;
        }
      distance_1d (f, ww, out, v, z);
    }
  /* Columns: the row distances are the sampled function; the result is the 2-D squared
   * Euclidean distance, exact in doubles for any image size. Columns go in blocks, gathered
   * and scattered a row of the block at a time, so memory is read in whole cache lines. */
  for (int i0 = 0; i0 < ww; i0 += COLUMN_BLOCK)
    {
      const int nb = MIN (COLUMN_BLOCK, ww - i0);

      for (int j = 0; j < wh; j++)
        for (int b = 0; b < nb; b++)
          cols[(gsize) b * wh + j] = dist[(gsize) j * ww + i0 + b];
      for (int b = 0; b < nb; b++)
        {
          distance_1d (cols + (gsize) b * wh, wh, d, v, z);
          memcpy (cols + (gsize) b * wh, d, (gsize) wh * sizeof (double));
        }
      for (int j = 0; j < wh; j++)
        {
          float *out = mask->values + (gsize) (win->y0 + j) * mask->width + win->x0 + i0;

          for (int b = 0; b < nb; b++)
            out[b] = cols[(gsize) b * wh + j] <= r2 ? 1.0f : 0.0f;
        }
    }
  ok = TRUE;

err_free:
  g_free (v);
  g_free (z);
  g_free (d);
  g_free (f);
  g_free (cols);
  g_free (dist);
  return ok;
}

/* Maxes the grey dilation of SOFT (the window's values strictly between 0 and 1, others 0)
 * by the disc into the mask's window. Two exact ways, whichever costs less: each soft pixel
 * stamped as a disc (O(pixels * R^2)), good for the thin antialiased rim of a selection; or
 * the disc as 2R + 1 horizontal chords, where each source row gets a table of maxima over
 * runs of 2^k pixels (a sparse table) and the max over a chord of any length is the larger
 * of two overlapping runs (Urbach & Wilkinson 2008, "Efficient 2-D grayscale morphological
 * transformations with arbitrary flat structuring elements"): O(R log R) per source pixel to
 * build and O(1) per chord and pixel, good when soft values fill the window. */
static gboolean
grow_soft (GessoMask *mask, const Window *win, const float *soft, double radius,
           GError **error)
{
  const int ww = win->x1 - win->x0, wh = win->y1 - win->y0;
  const double r2 = radius * radius;
  const int reach = MIN (reach_of (radius), wh);
  float *table = NULL;
  int *half;                  /* half-width of the disc's chord at vertical offset |dy| */
  gboolean *row_used;         /* source rows with any value > 0: the others add nothing */
  double disc = 0.0, n_soft = 0.0, n_rows = 0.0;
  int widest = 0, levels, padded;
  gboolean ok = FALSE;

  half = g_try_new (int, (gsize) reach + 1);
  row_used = g_try_new0 (gboolean, wh);
  if (half == NULL || row_used == NULL)
    {
      no_memory (error, "grow", ww, wh);
      goto err_free;
    }
  for (int dy = 0; dy <= reach; dy++)
    {
      /* Largest integer w with w^2 + dy^2 <= r^2, fixed up after sqrt's rounding. A chord
       * wider than the window reads only zeros beyond it: cap it there. */
      double w = floor (sqrt (MAX (0.0, r2 - (double) dy * dy)));

      while ((w + 1) * (w + 1) + (double) dy * dy <= r2)
        w++;
      while (w > 0 && w * w + (double) dy * dy > r2)
        w--;
      half[dy] = (int) MIN (w, (double) ww);
      widest = MAX (widest, half[dy]);
      disc += (dy == 0 ? 1 : 2) * (2.0 * half[dy] + 1);
    }
  for (int j = 0; j < wh; j++)
    {
      int count = 0;

      for (int i = 0; i < ww; i++)
        count += soft[(gsize) j * ww + i] > 0.0f;
      row_used[j] = count > 0;
      n_soft += count;
      n_rows += row_used[j];
    }

  if (n_soft * disc < n_rows * (2.0 * reach + 1) * ww)
    {
      for (int j = 0; j < wh; j++)
        for (int i = 0; i < ww; i++)
          {
            float v = soft[(gsize) j * ww + i];

            if (!(v > 0.0f))
              continue;
            for (int y = MAX (0, j - reach); y <= MIN (wh - 1, j + reach); y++)
              {
                float *out = mask->values + (gsize) (win->y0 + y) * mask->width + win->x0;
                int w = half[ABS (y - j)];

                for (int x = MAX (0, i - w); x <= MIN (ww - 1, i + w); x++)
                  out[x] = MAX (out[x], v);
              }
          }
      ok = TRUE;
      goto err_free;
    }

  /* Level k holds, at x, the max of the zero-padded row over [x, x + 2^k); WIDEST zeros on
   * each side let every chord be read without bounds checks. */
  padded = ww + 2 * widest;
  levels = 1;
  while ((1 << levels) <= 2 * widest + 1)
    levels++;
  table = g_try_new0 (float, (gsize) levels * padded);
  if (table == NULL)
    {
      no_memory (error, "grow", ww, wh);
      goto err_free;
    }
  for (int sj = 0; sj < wh; sj++)
    {
      if (!row_used[sj])
        continue;
      memcpy (table + widest, soft + (gsize) sj * ww, (gsize) ww * sizeof (float));
      for (int k = 1; k < levels; k++)
        {
          const float *prev = table + (gsize) (k - 1) * padded;
          float *cur = table + (gsize) k * padded;
          const int step = 1 << (k - 1), valid = padded - (1 << k) + 1;

          for (int x = 0; x < valid; x++)
            cur[x] = MAX (prev[x], prev[x + step]);
        }
      for (int j = MAX (0, sj - reach); j <= MIN (wh - 1, sj + reach); j++)
        {
          float *out = mask->values + (gsize) (win->y0 + j) * mask->width + win->x0;
          const int w = half[ABS (j - sj)];
          int k = 0;
          const float *level;
          int a, b;

          while ((2 << k) <= 2 * w + 1)
            k++;
          /* The chord [x - w, x + w] is covered by the runs starting at its two ends. */
          level = table + (gsize) k * padded;
          a = widest - w;
          b = widest + w - (1 << k) + 1;
          for (int x = 0; x < ww; x++)
            {
              float m = MAX (level[x + a], level[x + b]);

              out[x] = MAX (out[x], m);
            }
        }
    }
  ok = TRUE;

err_free:
  g_free (table);
  g_free (row_used);
  g_free (half);
  return ok;
}

/* A max filter distributes over max: the dilation of the mask is the larger of the dilation
 * of its fully selected pixels (exact distance transform, O(n) whatever the radius) and that
 * of its soft pixels. A binary mask skips the second part. */
gboolean
gesso_mask_grow (GessoMask *mask, float radius, GError **error)
{
  Window win;
  float *src;
  gboolean any_soft = FALSE, ok;
  int ww, wh;

  if (!check_mask (mask, error))
    return FALSE;
  if (!isfinite (radius))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the mask grow radius must be a finite number of pixels"));
      return FALSE;
    }
  if (radius <= 0.0f)
    return TRUE;
  if (!window_around (mask, reach_of (radius), &win))
    return TRUE;              /* nothing to grow */
  ww = win.x1 - win.x0;
  wh = win.y1 - win.y0;

  src = g_try_new (float, (gsize) ww * wh);
  if (src == NULL)
    return no_memory (error, "grow", ww, wh);
  for (int j = 0; j < wh; j++)
    for (int i = 0; i < ww; i++)
      {
        float v = clamp01 (mask->values[(gsize) (win.y0 + j) * mask->width + win.x0 + i]);

        src[(gsize) j * ww + i] = v;
        any_soft |= v > 0.0f && v < 1.0f;
      }
  ok = grow_ones (mask, &win, src, (double) radius * radius, error);
  if (ok && any_soft)
    {
      /* The ones are done: leave only the soft values. */
      for (gsize i = 0; i < (gsize) ww * wh; i++)
        if (src[i] >= 1.0f)
          src[i] = 0.0f;
      ok = grow_soft (mask, &win, src, radius, error);
    }
  g_free (src);
  return ok;
}

/* --- blur and feather -------------------------------------------------------------------- */

gboolean
gesso_mask_blur (GessoMask *mask, float sigma, GError **error)
{
  const int width = mask != NULL ? mask->width : 0, height = mask != NULL ? mask->height : 0;
  Window win;
  int reach, ww, wh;
  float *kernel = NULL, *tmp = NULL, *row = NULL;
  double *acc = NULL, sum = 0.0;
  gboolean ok = FALSE;

  if (!check_mask (mask, error))
    return FALSE;
  if (!isfinite (sigma) || sigma >= 1e6f)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the mask feather must be a finite number of pixels under a million"));
      return FALSE;
    }
  if (sigma <= 0.0f)
    return TRUE;
  /* Truncated at 3 sigma: the 0.3% of the Gaussian's mass beyond is renormalised away. A
   * reach beyond the image only repeats edge pixels, so cap it there. */
  reach = MIN ((int) ceil (3.0 * sigma), MAX (width, height));
  if (!window_around (mask, reach, &win))
    return TRUE;
  ww = win.x1 - win.x0;
  wh = win.y1 - win.y0;

  kernel = g_try_new (float, 2 * (gsize) reach + 1);
  tmp = g_try_new (float, (gsize) ww * wh);
  acc = g_try_new (double, ww);
  row = g_try_new (float, (gsize) ww + 2 * (gsize) reach);
  if (kernel == NULL || tmp == NULL || acc == NULL || row == NULL)
    {
      no_memory (error, "feather", ww, wh);
      goto err_free;
    }
  for (int k = -reach; k <= reach; k++)
    sum += exp (-0.5 * k * k / ((double) sigma * sigma));
  for (int k = -reach; k <= reach; k++)
    kernel[k + reach] = (float) (exp (-0.5 * k * k / ((double) sigma * sigma)) / sum);

  /* Horizontal pass into TMP, through a copy of the row padded by REACH on each side so the
   * taps need no bounds checks. The padding clamps to the image, not the window: outside the
   * window the mask is zero, as the taps must see it. */
  for (int j = 0; j < wh; j++)
    {
      const float *src = mask->values + (gsize) (win.y0 + j) * width;

      for (int i = 0; i < ww + 2 * reach; i++)
        row[i] = clamp01 (src[CLAMP (win.x0 - reach + i, 0, width - 1)]);
      /* Tap by tap over the whole row rather than pixel by pixel: no chain of dependent
       * additions, and the inner loop vectorises. */
      memset (acc, 0, (gsize) ww * sizeof (double));
      for (int k = 0; k <= 2 * reach; k++)
        {
          const float *r = row + k;
          const double wk = kernel[k];

          for (int i = 0; i < ww; i++)
            acc[i] += wk * r[i];
        }
      for (int i = 0; i < ww; i++)
        tmp[(gsize) j * ww + i] = (float) acc[i];
    }
  /* Vertical pass back into the mask. Rows outside the window are zero after the first pass
   * (they are beyond the box); image rows beyond the edge repeat the edge row. */
  for (int j = 0; j < wh; j++)
    {
      float *out = mask->values + (gsize) (win.y0 + j) * width + win.x0;

      memset (acc, 0, (gsize) ww * sizeof (double));
      for (int k = -reach; k <= reach; k++)
        {
          int y = CLAMP (win.y0 + j + k, 0, height - 1) - win.y0;
          const float *t;
          double wk = kernel[k + reach];

          if (y < 0 || y >= wh)
            continue;
          t = tmp + (gsize) y * ww;
          for (int i = 0; i < ww; i++)
            acc[i] += wk * t[i];
        }
      for (int i = 0; i < ww; i++)
        {
          float v = (float) acc[i];

          out[i] = v < SNAP ? 0.0f : (v > 1.0f - SNAP ? 1.0f : v);
        }
    }
  ok = TRUE;

err_free:
  g_free (row);
  g_free (acc);
  g_free (tmp);
  g_free (kernel);
  return ok;
}

/* MASK eroded by RADIUS: the complement of the complement grown, so a soft mask erodes with
 * its soft edge as it grows with it. */
static gboolean
mask_erode (GessoMask *mask, float radius, GError **error)
{
  const gsize n = (gsize) mask->width * mask->height;
  gboolean ok;

  for (gsize i = 0; i < n; i++)
    mask->values[i] = 1.0f - mask->values[i];
  ok = gesso_mask_grow (mask, radius, error);
  for (gsize i = 0; i < n; i++)
    mask->values[i] = 1.0f - mask->values[i];
  return ok;
}

/* The soft edge of FEATHER pixels laid inside MASK (grown already): eroded by FEATHER / 2,
 * then blurred with sigma FEATHER / 6, whose 3-sigma reach ends on the original edge; then no
 * higher than MASK anywhere, so what was 0 stays exactly 0 whatever the blur's rounding. The
 * blend is Phi(-3) ~ 0.001 on the edge and Phi(3) ~ 0.999 at FEATHER pixels inside.
 *
 * A selection thinner than that (a one-pixel dot, a hairline) would fade to nothing, so the
 * feather is halved until some pixel is fully regenerated again, down to none at all: such a
 * selection gets the softest edge it has room for. */
static gboolean
feather_inside (GessoMask *mask, float feather, GError **error)
{
  const gsize n = (gsize) mask->width * mask->height;
  g_autofree float *hard = g_try_new (float, n);
  float peak = 0.0f;

  if (hard == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory to feather a %d x %d mask"), mask->width, mask->height);
      return FALSE;
    }
  memcpy (hard, mask->values, n * sizeof (float));
  for (gsize i = 0; i < n; i++)
    peak = MAX (peak, hard[i]);
  for (; feather >= 1.0f; feather *= 0.5f)
    {
      float reached = 0.0f;

      if (!mask_erode (mask, 0.5f * feather, error)
          || !gesso_mask_blur (mask, feather / 6.0f, error))
        return FALSE;
      for (gsize i = 0; i < n; i++)
        {
          mask->values[i] = MIN (mask->values[i], hard[i]);
          reached = MAX (reached, mask->values[i]);
        }
      if (reached >= 0.99f * peak)
        return TRUE;
      memcpy (mask->values, hard, n * sizeof (float));
    }
  return TRUE;
}

gboolean
gesso_mask_prepare (const GessoMask *mask, float grow, float feather, GessoMask *out,
                    GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (!check_mask (mask, error))
    return FALSE;
  if (isnan (grow) || isnan (feather) || grow < 0.0f || feather < 0.0f)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("mask grow (%g) and feather (%g) must be zero or a positive number of "
                   "pixels"), grow, feather);
      return FALSE;
    }
  if (!gesso_mask_init (out, mask->width, mask->height, error))
    return FALSE;
  memcpy (out->values, mask->values, (gsize) mask->width * mask->height * sizeof (float));
  if (!gesso_mask_grow (out, grow, error)
      || (feather > 0.0f && !feather_inside (out, feather, error)))
    {
      gesso_mask_clear (out);
      return FALSE;
    }
  return TRUE;
}

/* --- area-average resize ----------------------------------------------------------------- */

typedef struct
{
  int *start;
  int *count;
  double *weights;            /* [n_out * max_taps] */
  int max_taps;
} AreaAxis;

static void
area_axis_clear (AreaAxis *axis)
{
  g_clear_pointer (&axis->start, g_free);
  g_clear_pointer (&axis->count, g_free);
  g_clear_pointer (&axis->weights, g_free);
}

/* Output cell i covers source [i * n_in / n_out, (i + 1) * n_in / n_out); pixel p covers
 * [p, p + 1); the weight is their overlap over the cell's length. */
static gboolean
area_axis_init (AreaAxis *axis, int n_in, int n_out)
{
  const double step = (double) n_in / n_out;

  axis->max_taps = (int) ceil (step) + 1;
  axis->start = g_try_new (int, n_out);
  axis->count = g_try_new (int, n_out);
  axis->weights = g_try_new (double, (gsize) n_out * axis->max_taps);
  if (axis->start == NULL || axis->count == NULL || axis->weights == NULL)
    {
      area_axis_clear (axis);
      return FALSE;
    }
  for (int i = 0; i < n_out; i++)
    {
      /* Integer products first, so integer factors give exact integer bounds. */
      double a = (double) ((gint64) i * n_in) / n_out;
      double b = (double) ((gint64) (i + 1) * n_in) / n_out;
      int first = (int) floor (a), last = MIN ((int) ceil (b), n_in) - 1;
      double *w = axis->weights + (gsize) i * axis->max_taps;

      last = MAX (last, first);
      g_assert (last - first + 1 <= axis->max_taps);
      for (int p = first; p <= last; p++)
        w[p - first] = (MIN (b, p + 1.0) - MAX (a, (double) p)) / (b - a);
      axis->start[i] = first;
      axis->count[i] = last - first + 1;
    }
  return TRUE;
}

gboolean
gesso_mask_resize_area (const float *src, int w, int h, float *out, int out_w, int out_h,
                        GError **error)
{
  AreaAxis ax = { 0 }, ay = { 0 };
  double *tmp = NULL;
  gboolean ok = FALSE;

  g_return_val_if_fail (src != NULL && out != NULL, FALSE);
  if (w <= 0 || h <= 0 || out_w <= 0 || out_h <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("cannot resize a %d x %d mask to %d x %d: sizes must be positive"),
                   w, h, out_w, out_h);
      return FALSE;
    }
  if (!area_axis_init (&ax, w, out_w) || !area_axis_init (&ay, h, out_h)
      || (tmp = g_try_new (double, (gsize) out_w * h)) == NULL)
    {
      no_memory (error, "resize", w, h);
      goto err_free;
    }
  for (int j = 0; j < h; j++)
    {
      const float *row = src + (gsize) j * w;

      for (int i = 0; i < out_w; i++)
        {
          const double *wt = ax.weights + (gsize) i * ax.max_taps;
          double s = 0.0;

          for (int k = 0; k < ax.count[i]; k++)
            s += wt[k] * row[ax.start[i] + k];
          tmp[(gsize) j * out_w + i] = s;
        }
    }
  for (int j = 0; j < out_h; j++)
    {
      const double *wt = ay.weights + (gsize) j * ay.max_taps;

      for (int i = 0; i < out_w; i++)
        {
          double s = 0.0;

          for (int k = 0; k < ay.count[j]; k++)
            s += wt[k] * tmp[(gsize) (ay.start[j] + k) * out_w + i];
          out[(gsize) j * out_w + i] = (float) s;
        }
    }
  ok = TRUE;

err_free:
  g_free (tmp);
  area_axis_clear (&ay);
  area_axis_clear (&ax);
  return ok;
}
