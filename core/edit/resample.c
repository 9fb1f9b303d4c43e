/* Separable resizing: Lanczos-3 to shrink, Mitchell-Netravali to enlarge (see resample.h).
 *
 * Two passes: horizontal from the source rows into an intermediate of DST_W x SRC_H, then
 * vertical into the destination. Each axis gets its contribution table up front (first
 * source index, tap count and weights per output index), so the loops only multiply and add.
 * Sums are taken in double: a wide shrink filter adds hundreds of taps, and flat areas must
 * come out flat to 1e-6.
 */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "edit/resample.h"
#include <glib/gi18n-lib.h>

/* Below this filtered alpha the alpha-weighted colour is noise (0/0 in the limit, and the
 * filter's negative lobes make it change sign): use the plain average of the stored colours
 * instead. It is under half an 8-bit alpha step, so the choice is invisible in the output's
 * own colour, and it gives the model (which sees no alpha) the stored colour of transparent
 * areas, as documented. */
#define ALPHA_FLOOR 1e-3

/* NaN comes out as LO rather than passing through. */
static inline double
clamp_d (double v, double lo, double hi)
{
  return v > lo ? (v < hi ? v : hi) : lo;
}

typedef struct
{
  int n_out;
  int max_taps;
  gboolean identity;          /* same size: copy, no filtering */
  int *start;                 /* [n_out] first source index */
  int *count;                 /* [n_out] taps used */
  float *weights;             /* [n_out * max_taps], each row summing to 1 */
} Axis;

static double
lanczos3 (double x)
{
  double px;

  x = fabs (x);
  if (x < 1e-9)
    return 1.0;
  if (x >= 3.0)
    return 0.0;
  px = G_PI * x;
  return 3.0 * sin (px) * sin (px / 3.0) / (px * px);
}

/* Mitchell & Netravali 1988, "Reconstruction filters in computer graphics", eq. 8 with
 * B = C = 1/3, the pair they found best balances blur, ringing and anisotropy. */
static double
mitchell (double x)
{
  const double b = 1.0 / 3.0, c = 1.0 / 3.0;

  x = fabs (x);
  if (x < 1.0)
    return ((12 - 9 * b - 6 * c) * x * x * x + (-18 + 12 * b + 6 * c) * x * x + (6 - 2 * b))
           / 6.0;
  if (x < 2.0)
    return ((-b - 6 * c) * x * x * x + (6 * b + 30 * c) * x * x + (-12 * b - 48 * c) * x
            + (8 * b + 24 * c)) / 6.0;
  return 0.0;
}

static void
axis_clear (Axis *axis)
{
  g_clear_pointer (&axis->start, g_free);
  g_clear_pointer (&axis->count, g_free);
  g_clear_pointer (&axis->weights, g_free);
}

static gboolean
axis_init (Axis *axis, int n_in, int n_out, GError **error)
{
  double scale, stretch, support, radius;
  double (*kernel) (double);
  double *acc = NULL;
  gsize n_weights;
  gboolean ok = FALSE;

  memset (axis, 0, sizeof *axis);
  axis->n_out = n_out;
  if (n_in == n_out)
    {
      axis->identity = TRUE;
      return TRUE;
    }

  scale = (double) n_out / n_in;
  if (scale < 1.0)
    {
      /* Widen the filter by 1/scale: its cut-off moves to the output's Nyquist rate. */
      kernel = lanczos3;
      support = 3.0;
      stretch = 1.0 / scale;
    }
  else
    {
      kernel = mitchell;
      support = 2.0;
      stretch = 1.0;
    }
  radius = support * stretch;
  axis->max_taps = (int) ceil (2.0 * radius) + 1;

  if (!g_size_checked_mul (&n_weights, (gsize) n_out, (gsize) axis->max_taps)
      || n_weights > G_MAXSIZE / sizeof (float))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("resizing %d to %d pixels needs too many filter weights"), n_in, n_out);
      return FALSE;
    }
  axis->start = g_try_new (int, n_out);
  axis->count = g_try_new (int, n_out);
  axis->weights = g_try_new0 (float, n_weights);
  acc = g_try_new (double, axis->max_taps);
  if (axis->start == NULL || axis->count == NULL || axis->weights == NULL || acc == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory for the weights of a %d to %d pixel resize"), n_in, n_out);
      goto err_free;
    }

  for (int i = 0; i < n_out; i++)
    {
      /* Pixel centres line up: output i covers [i, i + 1) / scale in source pixels. */
      double centre = (i + 0.5) / scale - 0.5;
      int lo = (int) ceil (centre - radius), hi = (int) floor (centre + radius);
      int first = CLAMP (lo, 0, n_in - 1), last = CLAMP (hi, 0, n_in - 1);
      int count = last - first + 1;
      double sum = 0.0;
      float *w = axis->weights + (gsize) i * axis->max_taps;

      g_assert (count <= axis->max_taps);
      for (int k = 0; k < count; k++)
        acc[k] = 0.0;
      /* Taps beyond an edge read the edge pixel: fold their weight onto it. */
      for (int j = lo; j <= hi; j++)
        {
          double kw = kernel ((j - centre) / stretch);

          acc[CLAMP (j, 0, n_in - 1) - first] += kw;
          sum += kw;
        }
      /* The sampled kernel's weights do not sum to exactly 1; normalising keeps a flat
       * area flat. The sum is at least ~0.9 for both kernels, never near 0. */
      for (int k = 0; k < count; k++)
        w[k] = (float) (acc[k] / sum);
      axis->start[i] = first;
      axis->count[i] = count;
    }
  ok = TRUE;

err_free:
  g_free (acc);
  if (!ok)
    axis_clear (axis);
  return ok;
}

/* Checked n_a * n_b * n_c, FALSE on overflow of a float buffer's byte size. */
static gboolean
checked_size3 (gsize *out, gsize a, gsize b, gsize c)
{
  gsize n;

  if (!g_size_checked_mul (&n, a, b) || !g_size_checked_mul (&n, n, c)
      || n > G_MAXSIZE / sizeof (double))
    return FALSE;
  *out = n;
  return TRUE;
}

/* The two-pass resize. SRC has CHANNELS interleaved floats per pixel; with PREMULTIPLY
 * (CHANNELS == 4, straight RGBA) the intermediate holds 7 values per pixel: colour times
 * alpha, alpha, and plain colour for the all-transparent fallback. */
static gboolean
resample (const float *src, int src_stride, int src_w, int src_h, int channels,
          gboolean premultiply, float *dst, int dst_w, int dst_h, float lo, float hi,
          GError **error)
{
  const int ci = premultiply ? 7 : channels;
  Axis ax = { 0 }, ay = { 0 };
  float *row = NULL, *mid = NULL;
  double *acc = NULL;
  gsize mid_n, row_n, acc_n;
  gboolean ok = FALSE;

  if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0 || src_stride < src_w * channels)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("cannot resize %d x %d pixels (row stride %d) to %d x %d: sizes must be "
                   "positive"), src_w, src_h, src_stride, dst_w, dst_h);
      return FALSE;
    }
  if (!checked_size3 (&mid_n, (gsize) dst_w, (gsize) src_h, (gsize) ci)
      || !checked_size3 (&row_n, (gsize) src_w, 1, (gsize) ci)
      || !checked_size3 (&acc_n, (gsize) dst_w, 1, (gsize) ci))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("resizing %d x %d to %d x %d is too large to address on this machine"),
                   src_w, src_h, dst_w, dst_h);
      return FALSE;
    }
  if (src_w == dst_w && src_h == dst_h)
    {
      /* Same size: copy. The filtered path would round colours through c * a / a. */
      for (int y = 0; y < src_h; y++)
        {
          const float *s = src + (gsize) y * src_stride;
          float *d = dst + (gsize) y * dst_w * channels;

          for (int n = 0; n < src_w * channels; n++)
            d[n] = (float) clamp_d (s[n], lo, hi);
        }
      return TRUE;
    }
  if (!axis_init (&ax, src_w, dst_w, error) || !axis_init (&ay, src_h, dst_h, error))
    goto err_free_axes;

  row = g_try_new (float, row_n);
  mid = g_try_new (float, mid_n);
  acc = g_try_new (double, acc_n);
  if (row == NULL || mid == NULL || acc == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory to resize %d x %d pixels to %d x %d"),
                   src_w, src_h, dst_w, dst_h);
      goto err_free_buffers;
    }

  /* Horizontal pass, one source row at a time. */
  for (int y = 0; y < src_h; y++)
    {
      const float *s = src + (gsize) y * src_stride;
      float *m = mid + (gsize) y * dst_w * ci;

      if (premultiply)
        {
          for (int x = 0; x < src_w; x++)
            {
              const float *p = s + 4 * x;
              float *r = row + 7 * x;
              /* A weight, so clamp: out-of-range alpha must not flip a colour's sign. */
              float a = p[3] > 0.0f ? (p[3] < 1.0f ? p[3] : 1.0f) : 0.0f;

              r[0] = p[0] * a;
              r[1] = p[1] * a;
              r[2] = p[2] * a;
              r[3] = a;
              r[4] = p[0];
              r[5] = p[1];
              r[6] = p[2];
            }
        }
      else
        memcpy (row, s, (gsize) src_w * ci * sizeof (float));

      if (ax.identity)
        {
          memcpy (m, row, (gsize) src_w * ci * sizeof (float));
          continue;
        }
      for (int i = 0; i < dst_w; i++)
        {
          const float *w = ax.weights + (gsize) i * ax.max_taps;
          const float *r = row + (gsize) ax.start[i] * ci;
          double sum[7] = { 0 };

          for (int k = 0; k < ax.count[i]; k++, r += ci)
            for (int c = 0; c < ci; c++)
              sum[c] += (double) w[k] * r[c];
          for (int c = 0; c < ci; c++)
            m[(gsize) i * ci + c] = (float) sum[c];
        }
    }

  /* Vertical pass, one destination row at a time, accumulated row by row for locality. */
  for (int j = 0; j < dst_h; j++)
    {
      float *d = dst + (gsize) j * dst_w * channels;
      int first = ay.identity ? j : ay.start[j];
      int count = ay.identity ? 1 : ay.count[j];
      const float *w = ay.identity ? NULL : ay.weights + (gsize) j * ay.max_taps;

      memset (acc, 0, acc_n * sizeof (double));
      for (int k = 0; k < count; k++)
        {
          const float *m = mid + (gsize) (first + k) * dst_w * ci;
          double wk = w != NULL ? w[k] : 1.0;

          for (gsize n = 0; n < acc_n; n++)
            acc[n] += wk * m[n];
        }

      for (int i = 0; i < dst_w; i++)
        {
          const double *a = acc + (gsize) i * ci;
          float *o = d + (gsize) i * channels;

          if (premultiply)
            {
              double alpha = a[3];

              for (int c = 0; c < 3; c++)
                {
                  double v = alpha > ALPHA_FLOOR ? a[c] / alpha : a[4 + c];
                  o[c] = (float) clamp_d (v, 0.0, 1.0);
                }
              o[3] = (float) clamp_d (alpha, 0.0, 1.0);
            }
          else
            for (int c = 0; c < channels; c++)
              o[c] = (float) clamp_d (a[c], lo, hi);
        }
    }
  ok = TRUE;

err_free_buffers:
  g_free (acc);
  g_free (mid);
  g_free (row);
err_free_axes:
  axis_clear (&ay);
  axis_clear (&ax);
  return ok;
}

gboolean
gesso_resample_rgba (const float *src, int src_stride, int src_w, int src_h, float *dst,
                     int dst_w, int dst_h, GError **error)
{
  g_return_val_if_fail (src != NULL && dst != NULL, FALSE);
  return resample (src, src_stride, src_w, src_h, 4, TRUE, dst, dst_w, dst_h, 0.0f, 1.0f,
                   error);
}

gboolean
gesso_resample_plane (const float *src, int src_stride, int src_w, int src_h, float *dst,
                      int dst_w, int dst_h, float lo, float hi, GError **error)
{
  g_return_val_if_fail (src != NULL && dst != NULL, FALSE);
  return resample (src, src_stride, src_w, src_h, 1, FALSE, dst, dst_w, dst_h, lo, hi, error);
}
