/* Mask grow, blur, feather, bounds and the latent area-average, each against brute force. */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "edit/mask.h"

static void
mask_new (GessoMask *mask, int w, int h)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (gesso_mask_init (mask, w, h, &error));
  g_assert_no_error (error);
}

/* out(p) = max of the mask over pixels q with |p - q| <= r: the definition of the grow. */
static void
grow_brute (const GessoMask *in, double r, float *out)
{
  const int reach = (int) floor (r);

  for (int y = 0; y < in->height; y++)
    for (int x = 0; x < in->width; x++)
      {
        float m = 0.0f;

        for (int dy = -reach; dy <= reach; dy++)
          for (int dx = -reach; dx <= reach; dx++)
            {
              int qx = x + dx, qy = y + dy;

              if (qx < 0 || qy < 0 || qx >= in->width || qy >= in->height
                  || (double) dx * dx + (double) dy * dy > r * r)
                continue;
              m = MAX (m, in->values[qy * in->width + qx]);
            }
        out[y * in->width + x] = m;
      }
}

static void
check_grow (GessoMask *mask, double r)
{
  g_autoptr (GError) error = NULL;
  g_autofree float *expect = g_new (float, (gsize) mask->width * mask->height);

  grow_brute (mask, r, expect);
  g_assert_true (gesso_mask_grow (mask, (float) r, &error));
  g_assert_no_error (error);
  for (int i = 0; i < mask->width * mask->height; i++)
    if (mask->values[i] != expect[i])
      g_error ("grow by %g: pixel (%d, %d) is %g, brute force says %g", r, i % mask->width,
               i / mask->width, mask->values[i], expect[i]);
}

/* A single pixel grows into the disc of radius r, on both paths (binary and soft). */
static void
test_grow_disc (void)
{
  static const double radii[] = { 0.5, 1.0, 1.5, 2.0, 2.9, 5.0, 7.07, 12.3 };

  for (guint k = 0; k < G_N_ELEMENTS (radii); k++)
    for (int soft = 0; soft < 2; soft++)
      {
        GessoMask mask;
        float value = soft ? 0.5f : 1.0f;
        int count = 0, expect = 0;
        int reach = (int) floor (radii[k]);

        mask_new (&mask, 41, 37);
        mask.values[18 * 41 + 20] = value;
        check_grow (&mask, radii[k]);
        for (int i = 0; i < 41 * 37; i++)
          count += mask.values[i] == value;
        for (int dy = -reach; dy <= reach; dy++)
          for (int dx = -reach; dx <= reach; dx++)
            expect += dx * dx + dy * dy <= radii[k] * radii[k];
        g_assert_cmpint (count, ==, expect);
        gesso_mask_clear (&mask);
      }
}

/* Random binary masks (the exact distance transform) and random soft masks (the disc max
 * filter), touching the borders, against brute force. */
static void
test_grow_random (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  static const double radii[] = { 1.0, 2.5, 4.0, 9.3, 30.0 };

  /* Sparse soft masks take the disc-stamping path, dense ones the running-max path; soft
   * trials mix in fully selected pixels, which go through the distance transform. */
  for (int trial = 0; trial < 40; trial++)
    {
      GessoMask mask;
      int w = g_rand_int_range (rand, 1, 60), h = g_rand_int_range (rand, 1, 50);
      gboolean soft = trial % 2;
      double density = trial % 4 < 2 ? g_rand_double_range (rand, 0.002, 0.05)
                                     : g_rand_double_range (rand, 0.2, 0.7);

      mask_new (&mask, w, h);
      for (int i = 0; i < w * h; i++)
        if (g_rand_double (rand) < density)
          mask.values[i] = soft && g_rand_double (rand) < 0.7
                           ? (float) g_rand_double_range (rand, 0.05, 1.0) : 1.0f;
      check_grow (&mask, radii[trial % G_N_ELEMENTS (radii)]);
      gesso_mask_clear (&mask);
    }
}

static double
mask_sum (const GessoMask *mask)
{
  double s = 0.0;

  for (int i = 0; i < mask->width * mask->height; i++)
    s += mask->values[i];
  return s;
}

/* The Gaussian is normalised (mass kept away from the borders) and symmetric. */
static void
test_blur_mass_symmetry (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask mask;
  const int w = 81, h = 71, cx = 40, cy = 35;
  double before, after;

  mask_new (&mask, w, h);
  mask.values[cy * w + cx] = 1.0f;
  mask.values[(cy + 1) * w + cx] = 0.5f;
  mask.values[(cy - 1) * w + cx] = 0.5f;
  before = mask_sum (&mask);
  g_assert_true (gesso_mask_blur (&mask, 4.0f, &error));
  g_assert_no_error (error);
  after = mask_sum (&mask);
  /* Snapping values under 1e-6 to 0 is the only loss. */
  g_assert_cmpfloat (fabs (after - before), <, 1e-4);
  for (int dy = 0; dy <= 20; dy++)
    for (int dx = 0; dx <= 20; dx++)
      {
        float v = mask.values[(cy + dy) * w + cx + dx];

        g_assert_cmpfloat_with_epsilon (mask.values[(cy - dy) * w + cx + dx], v, 1e-7);
        g_assert_cmpfloat_with_epsilon (mask.values[(cy + dy) * w + cx - dx], v, 1e-7);
        g_assert_cmpfloat_with_epsilon (mask.values[(cy - dy) * w + cx - dx], v, 1e-7);
      }
  /* Truncated at 3 sigma = 12 pixels: exactly zero beyond. */
  g_assert_cmpfloat (mask.values[cy * w + cx + 13], ==, 0.0f);
  g_assert_cmpfloat (mask.values[cy * w + cx + 12], >, 0.0f);
  gesso_mask_clear (&mask);
}

/* An edit's mask (gesso_mask_prepare) on a square: with no grow, every pixel outside the square
 * stays exactly 0 (GIMP's rule: a filter changes nothing outside the selection), the soft edge
 * lies inside, ~0 on the square's edge and ~1 at the feather's width in, exactly 1 deep
 * inside, monotone between; a grow of G moves all of that G pixels out, and no further. */
static void
test_prepare_feathers_inside (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask square, mask;
  const int w = 120, h = 100;
  const float feather = 16.0f;

  mask_new (&square, w, h);
  for (int y = 30; y < 70; y++)
    for (int x = 40; x < 80; x++)
      square.values[y * w + x] = 1.0f;
  for (int grow = 0; grow <= 6; grow += 6)
    {
      g_assert_true (gesso_mask_prepare (&square, (float) grow, feather, &mask, &error));
      g_assert_no_error (error);
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
          if (x < 40 - grow || x >= 80 + grow || y < 30 - grow || y >= 70 + grow)
            g_assert_cmpfloat (mask.values[y * w + x], ==, 0.0f);
      g_assert_cmpfloat (mask.values[50 * w + 60], ==, 1.0f);
      g_assert_cmpfloat (mask.values[50 * w + 79 + grow], <=, 0.01f);
      g_assert_cmpfloat (mask.values[50 * w + 79 + grow - (int) feather], >=, 0.99f);
      for (int x = 60; x < w - 1; x++)
        g_assert_cmpfloat (mask.values[50 * w + x + 1], <=, mask.values[50 * w + x]);
      gesso_mask_clear (&mask);
    }
  gesso_mask_clear (&square);
}

/* Selections thinner than the feather keep their full strength somewhere: a one-pixel dot
 * stays 1, a 3-pixel line keeps 1 on its middle, and still nothing reaches outside them. */
static void
test_prepare_thin_selections (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask dot, line, mask;
  const int w = 40, h = 30;

  mask_new (&dot, w, h);
  dot.values[10 * w + 12] = 1.0f;
  g_assert_true (gesso_mask_prepare (&dot, 0.0f, 8.0f, &mask, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (mask.values[10 * w + 12], ==, 1.0f);
  for (int i = 0; i < w * h; i++)
    if (i != 10 * w + 12)
      g_assert_cmpfloat (mask.values[i], ==, 0.0f);
  gesso_mask_clear (&mask);

  mask_new (&line, w, h);
  for (int x = 5; x < 35; x++)
    for (int y = 14; y < 17; y++)
      line.values[y * w + x] = 1.0f;
  g_assert_true (gesso_mask_prepare (&line, 0.0f, 8.0f, &mask, &error));
  g_assert_cmpfloat (mask.values[15 * w + 20], >=, 0.99f);
  g_assert_cmpfloat (mask.values[13 * w + 20], ==, 0.0f);
  g_assert_cmpfloat (mask.values[17 * w + 20], ==, 0.0f);
  gesso_mask_clear (&mask);
  gesso_mask_clear (&dot);
  gesso_mask_clear (&line);
}

/* A mask touching the image's edge keeps 1 at the edge: borders repeat, not fade to 0. */
static void
test_blur_border (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask mask;

  mask_new (&mask, 30, 30);
  for (int y = 0; y < 30; y++)
    for (int x = 0; x < 15; x++)
      mask.values[y * 30 + x] = 1.0f;
  g_assert_true (gesso_mask_blur (&mask, 3.0f, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (mask.values[0], ==, 1.0f);
  g_assert_cmpfloat (mask.values[29 * 30], ==, 1.0f);
  g_assert_cmpfloat (mask.values[29], ==, 0.0f);
  gesso_mask_clear (&mask);
}

static void
test_prepare_and_bounds (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask mask, out;
  int x, y, w, h;

  mask_new (&mask, 50, 40);
  g_assert_false (gesso_mask_bounds (&mask, &x, &y, &w, &h));
  mask.values[10 * 50 + 20] = 1.0f;
  mask.values[12 * 50 + 25] = 0.25f;
  g_assert_true (gesso_mask_bounds (&mask, &x, &y, &w, &h));
  g_assert_cmpint (x, ==, 20);
  g_assert_cmpint (y, ==, 10);
  g_assert_cmpint (w, ==, 6);
  g_assert_cmpint (h, ==, 3);

  g_assert_true (gesso_mask_prepare (&mask, 3.0f, 0.0f, &out, &error));
  g_assert_no_error (error);
  g_assert_true (gesso_mask_bounds (&out, &x, &y, &w, &h));
  g_assert_cmpint (x, ==, 17);
  g_assert_cmpint (y, ==, 7);
  g_assert_cmpint (w, ==, 12);
  g_assert_cmpint (h, ==, 9);
  /* The input is not touched. */
  g_assert_cmpfloat (mask.values[10 * 50 + 21], ==, 0.0f);
  gesso_mask_clear (&out);

  g_assert_false (gesso_mask_prepare (&mask, -1.0f, 0.0f, &out, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_mask_grow (&mask, INFINITY, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_mask_blur (&mask, NAN, &error));
  g_clear_error (&error);
  g_assert_false (gesso_mask_blur (&mask, 1e7f, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Radii far beyond the image neither overflow nor crawl: the soft grow covers everything
   * with the mask's maximum, and blurring that changes nothing. */
  g_assert_true (gesso_mask_grow (&mask, 1e9f, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 50 * 40; i++)
    g_assert_cmpfloat (mask.values[i], ==, 1.0f);
  memset (mask.values, 0, 50 * 40 * sizeof (float));
  mask.values[0] = 0.5f;
  g_assert_true (gesso_mask_grow (&mask, 1e9f, &error));
  g_assert_cmpfloat (mask.values[50 * 40 - 1], ==, 0.5f);
  g_assert_true (gesso_mask_blur (&mask, 1e5f, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 50 * 40; i++)
    g_assert_cmpfloat_with_epsilon (mask.values[i], 0.5f, 1e-6);
  gesso_mask_clear (&mask);
}

/* Each latent cell is the mean of the source over its rectangle: brute force with 2-D pixel
 * overlaps, for integer factors, fractional ones and enlargement. */
static void
test_resize_area (void)
{
  static const int sizes[][4] = { { 64, 48, 8, 6 }, { 37, 23, 5, 3 }, { 3, 2, 7, 5 },
                                  { 100, 1, 9, 1 }, { 1, 1, 4, 4 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  g_autoptr (GError) error = NULL;

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      const int w = sizes[s][0], h = sizes[s][1], ow = sizes[s][2], oh = sizes[s][3];
      g_autofree float *src = g_new (float, (gsize) w * h);
      g_autofree float *out = g_new (float, (gsize) ow * oh);

      for (int i = 0; i < w * h; i++)
        src[i] = (float) g_rand_double (rand);
      g_assert_true (gesso_mask_resize_area (src, w, h, out, ow, oh, &error));
      g_assert_no_error (error);
      for (int j = 0; j < oh; j++)
        for (int i = 0; i < ow; i++)
          {
            double x0 = (double) i * w / ow, x1 = (double) (i + 1) * w / ow;
            double y0 = (double) j * h / oh, y1 = (double) (j + 1) * h / oh;
            double sum = 0.0;

            for (int py = 0; py < h; py++)
              for (int px = 0; px < w; px++)
                {
                  double ox = MIN (x1, px + 1.0) - MAX (x0, (double) px);
                  double oy = MIN (y1, py + 1.0) - MAX (y0, (double) py);

                  if (ox > 0 && oy > 0)
                    sum += ox * oy * src[py * w + px];
                }
            g_assert_cmpfloat_with_epsilon (out[j * ow + i], sum / ((x1 - x0) * (y1 - y0)),
                                            1e-6);
          }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/edit/mask/grow-disc-exact", test_grow_disc);
  g_test_add_func ("/core/edit/mask/grow-random-vs-brute-exact", test_grow_random);
  g_test_add_func ("/core/edit/mask/blur-mass-symmetry-tol1e-4", test_blur_mass_symmetry);
  g_test_add_func ("/core/edit/mask/prepare-feathers-inside", test_prepare_feathers_inside);
  g_test_add_func ("/core/edit/mask/prepare-thin-selections", test_prepare_thin_selections);
  g_test_add_func ("/core/edit/mask/blur-border", test_blur_border);
  g_test_add_func ("/core/edit/mask/prepare-and-bounds", test_prepare_and_bounds);
  g_test_add_func ("/core/edit/mask/resize-area-vs-brute-tol1e-6", test_resize_area);
  return g_test_run ();
}
