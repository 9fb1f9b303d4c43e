/* Edit regions: planning the crop and working size, the trip to the model and back, and the
 * final blend. */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "edit/region.h"

static void
test_plan_empty_mask (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask mask;
  GessoRegion region;

  g_assert_true (gesso_mask_init (&mask, 64, 48, &error));
  g_assert_false (gesso_region_plan (64, 48, &mask, 16, 512 * 512, 64, &region, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "the mask is empty"));
  gesso_mask_clear (&mask);
}

static void
test_plan_margin_clipping (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask mask;
  GessoRegion region;

  g_assert_true (gesso_mask_init (&mask, 100, 80, &error));
  /* Near the top-left corner: the margin is cut at the image's edge. */
  mask.values[3 * 100 + 2] = 1.0f;
  g_assert_true (gesso_region_plan (100, 80, &mask, 10, 512 * 512, 64, &region, &error));
  g_assert_no_error (error);
  g_assert_cmpint (region.x, ==, 0);
  g_assert_cmpint (region.y, ==, 0);
  g_assert_cmpint (region.width, ==, 13);
  g_assert_cmpint (region.height, ==, 14);

  /* Add one near the bottom-right: the box spans both, cut on all four sides. */
  mask.values[75 * 100 + 97] = 0.1f;
  g_assert_true (gesso_region_plan (100, 80, &mask, 10, 512 * 512, 64, &region, &error));
  g_assert_cmpint (region.x, ==, 0);
  g_assert_cmpint (region.y, ==, 0);
  g_assert_cmpint (region.width, ==, 100);
  g_assert_cmpint (region.height, ==, 80);

  /* In the middle the margin is whole. */
  memset (mask.values, 0, 100 * 80 * sizeof (float));
  mask.values[40 * 100 + 50] = 1.0f;
  mask.values[45 * 100 + 60] = 1.0f;
  g_assert_true (gesso_region_plan (100, 80, &mask, 5, 512 * 512, 64, &region, &error));
  g_assert_cmpint (region.x, ==, 45);
  g_assert_cmpint (region.y, ==, 35);
  g_assert_cmpint (region.width, ==, 21);
  g_assert_cmpint (region.height, ==, 16);

  /* A margin as large as an int does not overflow. */
  g_assert_true (gesso_region_plan (100, 80, &mask, G_MAXINT, 512 * 512, 64, &region, &error));
  g_assert_cmpint (region.width, ==, 100);
  g_assert_cmpint (region.height, ==, 80);
  gesso_mask_clear (&mask);
}

/* Many crop shapes, budgets and multiples: multiples and budget always respected, the aspect
 * within one multiple's rounding, the area close to the budget. */
static void
test_plan_sizes (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);
  g_autoptr (GError) error = NULL;
  static const int multiples[] = { 4, 8, 64 };
  static const int budgets[] = { 512 * 512, 768 * 768, 64 * 64, 1024 * 1024, 300000 };

  for (int trial = 0; trial < 2000; trial++)
    {
      int m = multiples[trial % G_N_ELEMENTS (multiples)];
      int budget = budgets[(trial / 3) % G_N_ELEMENTS (budgets)];
      int w = g_rand_int_range (rand, 1, trial % 2 ? 200 : 8000);
      int h = g_rand_int_range (rand, 1, trial % 4 < 2 ? 200 : 8000);
      GessoRegion r;
      double aspect = (double) w / h, got, tol;

      if (budget < m * m)
        continue;
      g_assert_true (gesso_region_plan (w, h, NULL, 0, budget, m, &r, &error));
      g_assert_no_error (error);
      g_assert_cmpint (r.x, ==, 0);
      g_assert_cmpint (r.width, ==, w);
      g_assert_cmpint (r.work_width % m, ==, 0);
      g_assert_cmpint (r.work_height % m, ==, 0);
      g_assert_cmpint (r.work_width, >=, m);
      g_assert_cmpint (r.work_height, >=, m);
      g_assert_cmpint ((gint64) r.work_width * r.work_height, <=, budget);

      /* Unless a side is pinned at one multiple, the aspect is off by at most one multiple
       * on either side, and the area is at least what flooring both sides would give. */
      got = (double) r.work_width / r.work_height;
      if (sqrt (budget * aspect) >= m && sqrt (budget / aspect) >= m)
        {
          double iw = sqrt (budget * aspect), ih = sqrt (budget / aspect);

          tol = (1.0 + (double) m / (iw - m)) * (1.0 + (double) m / (ih - m));
          g_assert_cmpfloat (got / aspect, <=, tol);
          g_assert_cmpfloat (aspect / got, <=, tol);
          g_assert_cmpfloat ((double) r.work_width * r.work_height, >=,
                             (iw - m) * (ih - m) - 1e-6);
        }
    }

  /* The common cases come out as expected. */
  {
    GessoRegion r;

    g_assert_true (gesso_region_plan (6000, 4000, NULL, 0, 512 * 512, 64, &r, &error));
    g_assert_cmpint (r.work_width, ==, 576);
    g_assert_cmpint (r.work_height, ==, 384);
    g_assert_true (gesso_region_plan (512, 512, NULL, 0, 512 * 512, 64, &r, &error));
    g_assert_cmpint (r.work_width, ==, 512);
    g_assert_cmpint (r.work_height, ==, 512);
    /* Small crops are enlarged to the budget. */
    g_assert_true (gesso_region_plan (50, 50, NULL, 0, 512 * 512, 64, &r, &error));
    g_assert_cmpint (r.work_width, ==, 512);
    g_assert_cmpint (r.work_height, ==, 512);
  }
}

static void
test_plan_extremes (void)
{
  g_autoptr (GError) error = NULL;
  GessoRegion r;
  GessoMask mask;

  g_assert_true (gesso_region_plan (1, 1, NULL, 32, 512 * 512, 64, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpint (r.width, ==, 1);
  g_assert_cmpint (r.work_width, ==, 512);
  g_assert_cmpint (r.work_height, ==, 512);

  g_assert_true (gesso_mask_init (&mask, 1, 1, &error));
  mask.values[0] = 1.0f;
  g_assert_true (gesso_region_plan (1, 1, &mask, 32, 512 * 512, 64, &r, &error));
  g_assert_cmpint (r.width, ==, 1);
  g_assert_cmpint (r.height, ==, 1);
  gesso_mask_clear (&mask);

  /* Planning a 30000 x 30000 image allocates nothing. */
  g_assert_true (gesso_region_plan (30000, 30000, NULL, 0, 512 * 512, 64, &r, &error));
  g_assert_cmpint (r.width, ==, 30000);
  g_assert_cmpint (r.work_width, ==, 512);
  g_assert_cmpint (r.work_height, ==, 512);

  /* A 30000 x 1 strip: one multiple high, the long side cut to the budget. */
  g_assert_true (gesso_region_plan (30000, 1, NULL, 0, 512 * 512, 64, &r, &error));
  g_assert_cmpint (r.work_height, ==, 64);
  g_assert_cmpint (r.work_width, ==, 4096);
  g_assert_true (gesso_region_plan (1, 30000, NULL, 0, 512 * 512, 64, &r, &error));
  g_assert_cmpint (r.work_width, ==, 64);
  g_assert_cmpint (r.work_height, ==, 4096);
  g_assert_true (gesso_region_plan (G_MAXINT, G_MAXINT, NULL, 0, G_MAXINT, 64, &r, &error));
  g_assert_cmpint ((gint64) r.work_width * r.work_height, <=, G_MAXINT);

  g_assert_false (gesso_region_plan (0, 10, NULL, 0, 512 * 512, 64, &r, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_region_plan (10, 10, NULL, -1, 512 * 512, 64, &r, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_region_plan (10, 10, NULL, 0, 63 * 64, 64, &r, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_region_plan (10, 10, NULL, 0, 512 * 512, 0, &r, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (gesso_mask_init (&mask, 10, 11, &error));
  g_assert_false (gesso_region_plan (10, 10, &mask, 0, 512 * 512, 64, &r, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  gesso_mask_clear (&mask);

  /* Images too large to address fail with a message, not an abort. */
  {
    GessoImage image;

    g_assert_false (gesso_image_init (&image, G_MAXINT, G_MAXINT, &error));
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY);
    g_assert_null (image.pixels);
    g_clear_error (&error);
    g_assert_false (gesso_image_init (&image, 0, 5, &error));
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  }
}

static void
fill_image (GessoImage *image, GRand *rand)
{
  for (gsize i = 0; i < (gsize) image->width * image->height * 4; i++)
    image->pixels[i] = (float) g_rand_double (rand);
}

/* A flat crop reaches the model as 2c - 1 and comes back as c, with the input's alpha. */
static void
test_model_round_trip (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);
  GessoImage input, back;
  GessoRegion r = { .x = 10, .y = 7, .width = 30, .height = 20,
                    .work_width = 64, .work_height = 48 };
  const gsize plane = 64 * 48;
  g_autofree float *model = g_new (float, 3 * plane);

  g_assert_true (gesso_image_init (&input, 60, 40, &error));
  fill_image (&input, rand);
  for (int y = r.y; y < r.y + r.height; y++)
    for (int x = r.x; x < r.x + r.width; x++)
      {
        float *p = input.pixels + (y * 60 + x) * 4;

        p[0] = 0.25f;
        p[1] = 0.5f;
        p[2] = 1.0f;
        /* Alpha varies: alpha-weighted filtering of a flat colour is still that colour. */
        p[3] = (float) (0.2 + 0.8 * g_rand_double (rand));
      }
  g_assert_true (gesso_region_to_model (&input, &r, model, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < plane; i++)
    {
      g_assert_cmpfloat_with_epsilon (model[i], -0.5f, 1e-6);
      g_assert_cmpfloat_with_epsilon (model[plane + i], 0.0f, 1e-6);
      g_assert_cmpfloat_with_epsilon (model[2 * plane + i], 1.0f, 1e-6);
    }

  g_assert_true (gesso_region_from_model (model, &input, &r, &back, &error));
  g_assert_no_error (error);
  g_assert_cmpint (back.width, ==, 30);
  g_assert_cmpint (back.height, ==, 20);
  for (int y = 0; y < r.height; y++)
    for (int x = 0; x < r.width; x++)
      {
        const float *b = back.pixels + (y * 30 + x) * 4;
        const float *in = input.pixels + ((r.y + y) * 60 + r.x + x) * 4;

        g_assert_cmpfloat_with_epsilon (b[0], 0.25f, 1e-6);
        g_assert_cmpfloat_with_epsilon (b[1], 0.5f, 1e-6);
        g_assert_cmpfloat_with_epsilon (b[2], 1.0f, 1e-6);
        g_assert_cmpfloat (b[3], ==, in[3]);
      }
  gesso_image_clear (&back);

  /* Generate: no input, alpha 1. */
  g_assert_true (gesso_region_from_model (model, NULL, &r, &back, &error));
  g_assert_cmpfloat (back.pixels[3], ==, 1.0f);
  gesso_image_clear (&back);

  /* A region that does not fit the image is refused. */
  r.x = 50;
  g_assert_false (gesso_region_to_model (&input, &r, model, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  gesso_image_clear (&input);
}

static void
test_crop_mask (void)
{
  g_autoptr (GError) error = NULL;
  GessoMask mask, crop;
  GessoRegion r = { .x = 3, .y = 2, .width = 4, .height = 3, .work_width = 8,
                    .work_height = 8 };

  g_assert_true (gesso_mask_init (&mask, 10, 8, &error));
  for (int i = 0; i < 80; i++)
    mask.values[i] = i / 80.0f;
  g_assert_true (gesso_region_crop_mask (&mask, &r, &crop, &error));
  g_assert_no_error (error);
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 4; x++)
      g_assert_cmpfloat (crop.values[y * 4 + x], ==, mask.values[(y + 2) * 10 + x + 3]);
  gesso_mask_clear (&crop);
  g_assert_true (gesso_region_crop_mask (NULL, &r, &crop, &error));
  for (int i = 0; i < 12; i++)
    g_assert_cmpfloat (crop.values[i], ==, 1.0f);
  gesso_mask_clear (&crop);
  gesso_mask_clear (&mask);
}

/* Where the blend is 0 (or NaN), and everywhere outside the region, the output is the input
 * bit for bit; where it is 1 the generated colour with the input's alpha; between, a mix. */
static void
test_blend (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);
  GessoImage input, gen, out;
  GessoMask blend;
  GessoRegion r = { .x = 5, .y = 4, .width = 12, .height = 9, .work_width = 64,
                    .work_height = 64 };

  g_assert_true (gesso_image_init (&input, 25, 20, &error));
  g_assert_true (gesso_image_init (&gen, 12, 9, &error));
  g_assert_true (gesso_mask_init (&blend, 12, 9, &error));
  /* Values with many mantissa bits: an a * 1 + b * 0 path could round them. */
  for (gsize i = 0; i < 25 * 20 * 4; i++)
    input.pixels[i] = (float) (g_rand_double (rand) * 1.3 - 0.15);
  fill_image (&gen, rand);
  for (int i = 0; i < 12 * 9; i++)
    blend.values[i] = i % 4 == 0 ? 0.0f : i % 4 == 1 ? 1.0f : i % 4 == 2 ? 0.25f : NAN;

  g_assert_true (gesso_blend_region (&input, &r, &gen, &blend, &out, &error));
  g_assert_no_error (error);
  for (int y = 0; y < 20; y++)
    for (int x = 0; x < 25; x++)
      {
        const float *in = input.pixels + (y * 25 + x) * 4, *o = out.pixels + (y * 25 + x) * 4;
        gboolean inside = x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
        int k = inside ? (y - r.y) * 12 + (x - r.x) : -1;
        const float *g = inside ? gen.pixels + k * 4 : NULL;

        if (!inside || k % 4 == 0 || k % 4 == 3)
          {
            g_assert_cmpmem (o, 4 * sizeof (float), in, 4 * sizeof (float));
            continue;
          }
        g_assert_cmpfloat (o[3], ==, in[3]);
        for (int c = 0; c < 3; c++)
          if (k % 4 == 1)
            g_assert_cmpfloat (o[c], ==, g[c]);
          else
            g_assert_cmpfloat_with_epsilon (o[c], 0.75f * in[c] + 0.25f * g[c], 1e-6);
      }
  gesso_image_clear (&out);

  g_assert_false (gesso_blend_region (&input, &r, &input, &blend, &out, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_null (out.pixels);
  gesso_mask_clear (&blend);
  gesso_image_clear (&gen);
  gesso_image_clear (&input);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/edit/region/plan-empty-mask", test_plan_empty_mask);
  g_test_add_func ("/core/edit/region/plan-margin-clipping", test_plan_margin_clipping);
  g_test_add_func ("/core/edit/region/plan-budget-multiples-aspect", test_plan_sizes);
  g_test_add_func ("/core/edit/region/plan-extremes", test_plan_extremes);
  g_test_add_func ("/core/edit/region/model-round-trip-tol1e-6", test_model_round_trip);
  g_test_add_func ("/core/edit/region/crop-mask", test_crop_mask);
  g_test_add_func ("/core/edit/region/blend-outside-bit-exact", test_blend);
  return g_test_run ();
}
