/* The CLI's image files: PNG round trips exactly at 8 bits, JPEG closely; masks from grey
 * levels and alpha; clear errors for missing files and unknown extensions. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "cli/image-io.h"

static char *
temp_dir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("gesso-image-io-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

/* Pixels on the 8-bit grid, with varying alpha: what a PNG holds exactly. */
static void
make_image (GessoImage *image, int w, int h)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (gesso_image_init (image, w, h, &error));
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        float *p = image->pixels + (y * w + x) * 4;

        p[0] = ((x * 7 + y) % 256) / 255.0f;
        p[1] = ((y * 13) % 256) / 255.0f;
        p[2] = ((x + y * 3) % 256) / 255.0f;
        p[3] = ((x * y + 40) % 256) / 255.0f;
      }
}

static void
test_png_round_trip (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "round trip.PNG", NULL);
  GessoImage image, back;

  make_image (&image, 37, 21);
  g_assert_true (gesso_cli_image_save (&image, path, &error));
  g_assert_no_error (error);
  g_assert_true (gesso_cli_image_load (path, &back, &error));
  g_assert_no_error (error);
  g_assert_cmpint (back.width, ==, 37);
  g_assert_cmpint (back.height, ==, 21);
  g_assert_cmpmem (back.pixels, 37 * 21 * 4 * sizeof (float), image.pixels,
                   37 * 21 * 4 * sizeof (float));
  gesso_image_clear (&back);
  gesso_image_clear (&image);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_jpeg_round_trip (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "flat.jpg", NULL);
  GessoImage image, back;

  /* A flat colour survives JPEG within a level or two; alpha is dropped (read back as 1). */
  g_assert_true (gesso_image_init (&image, 16, 16, &error));
  for (int i = 0; i < 16 * 16; i++)
    {
      image.pixels[4 * i + 0] = 0.8f;
      image.pixels[4 * i + 1] = 0.4f;
      image.pixels[4 * i + 2] = 0.2f;
      image.pixels[4 * i + 3] = 0.5f;
    }
  g_assert_true (gesso_cli_image_save (&image, path, &error));
  g_assert_no_error (error);
  g_assert_true (gesso_cli_image_load (path, &back, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 16 * 16; i++)
    {
      g_assert_cmpfloat_with_epsilon (back.pixels[4 * i + 0], 0.8f, 3.0f / 255);
      g_assert_cmpfloat_with_epsilon (back.pixels[4 * i + 1], 0.4f, 3.0f / 255);
      g_assert_cmpfloat_with_epsilon (back.pixels[4 * i + 2], 0.2f, 3.0f / 255);
      g_assert_cmpfloat (back.pixels[4 * i + 3], ==, 1.0f);
    }
  gesso_image_clear (&back);
  gesso_image_clear (&image);
  g_unlink (path);
  g_rmdir (dir);
}

/* White is exactly 1, black 0, grey its level; alpha multiplies; colour is luma. */
static void
test_mask_load (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "mask.png", NULL);
  static const float px[5][4] = {
    { 1, 1, 1, 1 }, { 0, 0, 0, 1 }, { 128 / 255.0f, 128 / 255.0f, 128 / 255.0f, 1 },
    { 1, 1, 1, 51 / 255.0f }, { 0, 1, 0, 1 },
  };
  GessoImage image;
  GessoMask mask;

  g_assert_true (gesso_image_init (&image, 5, 1, &error));
  memcpy (image.pixels, px, sizeof px);
  g_assert_true (gesso_cli_image_save (&image, path, &error));
  g_assert_no_error (error);
  g_assert_true (gesso_cli_mask_load (path, &mask, &error));
  g_assert_no_error (error);
  g_assert_cmpint (mask.width, ==, 5);
  g_assert_cmpfloat (mask.values[0], ==, 1.0f);
  g_assert_cmpfloat (mask.values[1], ==, 0.0f);
  g_assert_cmpfloat (mask.values[2], ==, 128 / 255.0f);
  g_assert_cmpfloat_with_epsilon (mask.values[3], 0.2f, 1e-6);
  g_assert_cmpfloat_with_epsilon (mask.values[4], 0.7152f, 1e-6);
  gesso_mask_clear (&mask);
  gesso_image_clear (&image);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = temp_dir ();
  g_autofree char *missing = g_build_filename (dir, "missing.png", NULL);
  g_autofree char *bad = g_build_filename (dir, "out.webp", NULL);
  g_autofree char *garbage = g_build_filename (dir, "garbage.png", NULL);
  GessoImage image;
  GessoMask mask;

  g_assert_false (gesso_cli_image_load (missing, &image, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "missing.png"));
  g_assert_null (image.pixels);
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (garbage, "not a png at all", -1, NULL));
  g_assert_false (gesso_cli_mask_load (garbage, &mask, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  g_assert_null (mask.values);
  g_clear_error (&error);

  make_image (&image, 4, 4);
  g_assert_false (gesso_cli_image_save (&image, bad, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  g_assert_false (g_file_test (bad, G_FILE_TEST_EXISTS));
  gesso_image_clear (&image);
  g_unlink (garbage);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/image-io/png-round-trip-exact", test_png_round_trip);
  g_test_add_func ("/cli/image-io/jpeg-round-trip-tol3", test_jpeg_round_trip);
  g_test_add_func ("/cli/image-io/mask-load", test_mask_load);
  g_test_add_func ("/cli/image-io/errors", test_errors);
  return g_test_run ();
}
