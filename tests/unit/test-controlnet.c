/* ControlNet invariants on the conformance models (skipped without them): a conditioning scale
 * of 0 leaves the UNet's output bit for bit as without a ControlNet; residuals accumulate
 * linearly; a ControlNet made for another UNet is refused with one line. The numbers against
 * diffusers are the conformance suite's controlnet family. */
#include <math.h>
#include <string.h>

#include "gesso-config.h"
#include "gesso.h"
#include "model/controlnet.h"
#include "model/unet.h"
#include "model/weights.h"
#include "io/model_files.h"

typedef struct
{
  GessoModelFiles *files;
  GessoWeights *weights;
  GessoUnet *unet;
} Base;

static char *
models_dir (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  if (env != NULL && *env != '\0')
    return g_build_filename (env, "models", NULL);
  return g_build_filename (source ? source : GESSO_SOURCE_DIR, "..", "shared", "conformance",
                           "models", NULL);
}

static char *
model_path (const char *model, const char *file)
{
  g_autofree char *dir = models_dir ();
  return g_build_filename (dir, model, file, NULL);
}

static gboolean
open_base (const char *model, Base *base)
{
  g_autofree char *path = model_path (model, "diffusers");
  g_autoptr (GError) error = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      return FALSE;
    }
  base->files = gesso_model_files_open (path, &error);
  g_assert_no_error (error);
  base->weights = gesso_weights_new (base->files, &error);
  g_assert_no_error (error);
  base->unet = gesso_unet_new_for_model (base->files, base->weights, NULL, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
close_base (Base *base)
{
  gesso_unet_free (base->unet);
  gesso_weights_free (base->weights);
  gesso_model_files_free (base->files);
}

/* Deterministic inputs for a batch-2, 8x8 latent forward. */
enum { B = 2, H = 8, W = 8, L = 77, D = 32 };

static void
fill (float *x, size_t n, float scale, guint32 seed)
{
  for (size_t i = 0; i < n; i++)
    {
      seed = seed * 1664525u + 1013904223u;
      x[i] = scale * ((float) (seed >> 8) / 16777216.0f - 0.5f);
    }
}

/* tiny-sd1's UNet, one of its ControlNets and deterministic inputs for a batch-2 forward. */
typedef struct
{
  Base base;
  GessoControlNet *cn;
  float sample[B * 4 * H * W], context[B * L * D], t[B];
  float *image;                 /* [B, 3, 8 H, 8 W] */
  size_t n_res;
} Fixture;

static gboolean
fixture_open (Fixture *fx, const char *controlnet, const char *file, float t0, float t1,
              guint32 seed)
{
  g_autofree char *cn_path = model_path (controlnet, file);
  g_autoptr (GError) error = NULL;

  memset (fx, 0, sizeof *fx);
  if (!open_base ("tiny-sd1", &fx->base))
    return FALSE;
  fx->cn = gesso_controlnet_open (cn_path, fx->base.unet, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_controlnet_get_image_factor (fx->cn), ==, 8);
  fx->t[0] = t0;
  fx->t[1] = t1;
  fill (fx->sample, G_N_ELEMENTS (fx->sample), 2.0f, seed);
  fill (fx->context, G_N_ELEMENTS (fx->context), 1.0f, seed + 1);
  fx->image = g_new (float, (size_t) B * 3 * 64 * H * W);
  fill (fx->image, (size_t) B * 3 * 64 * H * W, 1.0f, seed + 2);
  fx->n_res = gesso_unet_residual_floats (fx->base.unet, B, H, W);
  return TRUE;
}

static void
fixture_close (Fixture *fx)
{
  gesso_controlnet_free (fx->cn);
  g_free (fx->image);
  close_base (&fx->base);
}

/* RESIDUALS (+)= the ControlNet's at SCALE. */
static void
fixture_residuals (Fixture *fx, float scale, gboolean accumulate, float *residuals)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (gesso_controlnet_forward (fx->cn, fx->sample, fx->t, fx->context, fx->image,
                                           scale, B, H, W, L, accumulate, residuals, NULL,
                                           &error));
  g_assert_no_error (error);
}

static void
fixture_unet (Fixture *fx, const float *residuals, float *out)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (gesso_unet_forward_controlled (fx->base.unet, fx->sample, fx->t, fx->context, B,
                                                H, W, L, residuals, out, NULL, &error));
  g_assert_no_error (error);
}

static void
test_scale_zero_is_no_control (void)
{
  Fixture fx;
  float plain[B * 4 * H * W], controlled[B * 4 * H * W];
  g_autofree float *residuals = NULL;

  if (!fixture_open (&fx, "tiny-controlnet", "tiny-controlnet-fp16.safetensors", 500.0f,
                     981.0f, 1))
    return;
  residuals = g_new (float, fx.n_res);
  fixture_unet (&fx, NULL, plain);
  fixture_residuals (&fx, 0.0f, FALSE, residuals);
  for (size_t i = 0; i < fx.n_res; i++)
    g_assert_cmpfloat (residuals[i], ==, 0.0f);
  fixture_unet (&fx, residuals, controlled);
  g_assert_cmpmem (plain, sizeof plain, controlled, sizeof controlled);

  /* and the same ControlNet at scale 1 does change it */
  fixture_residuals (&fx, 1.0f, FALSE, residuals);
  fixture_unet (&fx, residuals, controlled);
  g_assert_true (memcmp (plain, controlled, sizeof plain) != 0);
  fixture_close (&fx);
}

/* Two evaluations at scales a and b accumulated = one at a + b, up to rounding. */
static void
test_residuals_accumulate (void)
{
  Fixture fx;
  g_autofree float *twice = NULL, *once = NULL;

  if (!fixture_open (&fx, "tiny-controlnet", "diffusers", 1.0f, 700.0f, 4))
    return;
  twice = g_new (float, fx.n_res);
  once = g_new (float, fx.n_res);
  fixture_residuals (&fx, 0.25f, FALSE, twice);
  fixture_residuals (&fx, 0.5f, TRUE, twice);
  fixture_residuals (&fx, 0.75f, FALSE, once);
  for (size_t i = 0; i < fx.n_res; i++)
    g_assert_cmpfloat_with_epsilon (twice[i], once[i], 1e-5f * (1.0f + fabsf (once[i])));
  fixture_close (&fx);
}

/* The image's embedding made once and reused gives the residuals of a whole evaluation bit
 * for bit (the sampling loop relies on it to skip the conditioning network at every step). */
static void
test_embedding_reused (void)
{
  Fixture fx;
  g_autoptr (GError) error = NULL;
  g_autofree float *embedding = NULL, *whole = NULL, *reused = NULL;

  if (!fixture_open (&fx, "tiny-controlnet-b", "diffusers", 321.5f, 12.0f, 7))
    return;
  whole = g_new (float, fx.n_res);
  reused = g_new (float, fx.n_res);
  embedding = g_new (float, gesso_controlnet_embedding_floats (fx.cn, B, H, W));
  fixture_residuals (&fx, 0.7f, FALSE, whole);
  g_assert_true (gesso_controlnet_embed (fx.cn, fx.image, B, H, W, embedding, NULL, &error));
  g_assert_true (gesso_controlnet_forward_embedded (fx.cn, fx.sample, fx.t, fx.context,
                                                    embedding, 0.7f, B, H, W, L, FALSE, reused,
                                                    NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (whole, fx.n_res * sizeof (float), reused, fx.n_res * sizeof (float));
  fixture_close (&fx);
}

/* tiny-sd2's UNet has linear projections and other heads: tiny-sd1's ControlNet does not fit
 * it, and says so in one line naming the file. */
static void
test_other_family_refused (void)
{
  Base base = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoControlNet) cn = NULL;
  g_autofree char *cn_path = model_path ("tiny-controlnet", "tiny-controlnet-fp16.safetensors");

  if (!open_base ("tiny-sd2", &base))
    return;
  cn = gesso_controlnet_open (cn_path, base.unet, &error);
  g_assert_null (cn);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "does not fit this model"));
  g_assert_nonnull (strstr (error->message, "tiny-controlnet-fp16.safetensors"));
  g_assert_null (strchr (error->message, '\n'));
  close_base (&base);
}

/* A ControlNet given where a checkpoint is expected says what it is. */
static void
test_not_a_checkpoint (void)
{
  const char *const files[] = { "diffusers", "tiny-controlnet-fp16.safetensors" };
  g_autofree char *dir = models_dir ();

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      return;
    }
  for (size_t i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = model_path ("tiny-controlnet", files[i]);
      g_autoptr (GError) error = NULL;
      g_autoptr (GessoModel) model = NULL;
      GessoModelParams params;

      gesso_model_params_init (&params);
      params.path = path;
      model = gesso_model_open (&params, &error);
      g_assert_null (model);
      g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, "is a ControlNet, not a Stable Diffusion "
                                                "checkpoint"));
    }
}

/* --- Control images ----------------------------------------------------------------------- */

static GessoImage
square_on_black (int size, int from, int to, gboolean transparent_outside)
{
  GessoImage image;
  g_autoptr (GError) error = NULL;

  g_assert_true (gesso_image_init (&image, size, size, &error));
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      {
        float *p = image.pixels + 4 * (y * size + x);
        gboolean in = x >= from && x < to && y >= from && y < to;
        p[0] = p[1] = p[2] = in ? 1.0f : 0.0f;
        p[3] = in || !transparent_outside ? 1.0f : 0.0f;
      }
  return image;
}

static float
grey_at (const GessoImage *image, int x, int y)
{
  const float *p = image->pixels + 4 * (y * image->width + x);
  g_assert_cmpfloat (p[0], ==, p[1]);
  g_assert_cmpfloat (p[1], ==, p[2]);
  return p[0];
}

/* A white square on black: Canny marks its outline, one pixel wide on each side of the
 * step at most, and nothing in the flat parts; the result is binary. */
static void
test_canny_square (void)
{
  GessoImage image = square_on_black (32, 8, 24, FALSE), edges = { 0 };
  g_autoptr (GError) error = NULL;
  int on_outline = 0;

  g_assert_true (gesso_control_preprocess (&image, GESSO_CONTROL_PREPROCESS_CANNY, NULL,
                                           &edges, &error));
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++)
      {
        float v = grey_at (&edges, x, y);
        gboolean near_step = (x >= 6 && x <= 9) || (x >= 22 && x <= 25) || (y >= 6 && y <= 9)
                             || (y >= 22 && y <= 25);
        gboolean inside_box = x >= 6 && x <= 25 && y >= 6 && y <= 25;
        g_assert_true (v == 0.0f || v == 1.0f);
        if (v == 1.0f)
          g_assert_true (near_step && inside_box);
        /* the left outline, mid-height */
        if (y == 16 && (x == 7 || x == 8) && v == 1.0f)
          on_outline++;
      }
  g_assert_cmpint (on_outline, >=, 1);
  g_assert_cmpfloat (grey_at (&edges, 16, 16), ==, 0.0f);
  g_assert_cmpfloat (grey_at (&edges, 2, 2), ==, 0.0f);
  gesso_image_clear (&image);
  gesso_image_clear (&edges);
}

/* Scribble: a stroke layer's opaque pixels are white; an opaque picture's dark ones are. */
static void
test_scribble (void)
{
  GessoImage layer = square_on_black (16, 4, 8, TRUE);
  GessoImage paper = square_on_black (16, 4, 8, FALSE);
  GessoImage a = { 0 }, b = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_true (gesso_control_preprocess (&layer, GESSO_CONTROL_PREPROCESS_SCRIBBLE, NULL, &a,
                                           &error));
  g_assert_true (gesso_control_preprocess (&paper, GESSO_CONTROL_PREPROCESS_SCRIBBLE, NULL, &b,
                                           &error));
  g_assert_cmpfloat (grey_at (&a, 5, 5), ==, 1.0f);
  g_assert_cmpfloat (grey_at (&a, 12, 12), ==, 0.0f);
  /* on paper the square is white and the rest black: the black is the drawing */
  g_assert_cmpfloat (grey_at (&b, 5, 5), ==, 0.0f);
  g_assert_cmpfloat (grey_at (&b, 12, 12), ==, 1.0f);
  gesso_image_clear (&layer);
  gesso_image_clear (&paper);
  gesso_image_clear (&a);
  gesso_image_clear (&b);
}

/* Inpaint: the masked pixels are -1, the others the picture's colours. */
static void
test_inpaint_control_image (void)
{
  GessoImage image = square_on_black (8, 2, 6, FALSE), out = { 0 };
  GessoMask mask;
  g_autoptr (GError) error = NULL;

  g_assert_true (gesso_mask_init (&mask, 8, 8, &error));
  mask.values[0] = 1.0f;
  g_assert_false (gesso_control_preprocess (&image, GESSO_CONTROL_PREPROCESS_INPAINT, NULL, &out,
                                            &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (gesso_control_preprocess (&image, GESSO_CONTROL_PREPROCESS_INPAINT, &mask, &out,
                                           &error));
  g_assert_cmpfloat (grey_at (&out, 0, 0), ==, -1.0f);
  g_assert_cmpfloat (grey_at (&out, 3, 3), ==, 1.0f);
  g_assert_cmpfloat (grey_at (&out, 7, 7), ==, 0.0f);
  gesso_image_clear (&image);
  gesso_image_clear (&out);
  gesso_mask_clear (&mask);
}

/* --- Whole edits ---------------------------------------------------------------------------- */

static gboolean
generate (GessoModel *model, const GessoControl *control, float start, float end,
          GessoEditResult *result)
{
  g_autoptr (GError) error = NULL;
  GessoEditParams p;
  gboolean ok;

  gesso_edit_params_init (&p, GESSO_EDIT_GENERATE);
  p.prompt = "a house on a hill";
  p.steps = 4;
  p.width = p.height = 32;
  p.seed = 7;
  p.controls = control;
  p.n_controls = control != NULL;
  p.control_start = start;
  p.control_end = end;
  ok = gesso_edit_run (model, &p, NULL, NULL, result, &error);
  g_assert_no_error (error);
  return ok;
}

static gboolean
same_image (const GessoEditResult *a, const GessoEditResult *b)
{
  return a->image.width == b->image.width && a->image.height == b->image.height
         && memcmp (a->image.pixels, b->image.pixels,
                    (size_t) a->image.width * (size_t) a->image.height * 4 * sizeof (float))
              == 0;
}

/* Through the public API: a ControlNet at scale 0, or one outside its start/end for every
 * step, gives the picture without it bit for bit; at scale 1 it changes the picture, and
 * acting in half of the steps gives a third picture. */
static void
test_edit_with_control (void)
{
  g_autofree char *model_dir = model_path ("tiny-sd1", "diffusers");
  g_autofree char *cn_path = model_path ("tiny-controlnet", "diffusers");
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModel) model = NULL;
  GessoImage edges = square_on_black (32, 8, 24, FALSE);
  GessoControl control = { .model = cn_path, .image = &edges, .scale = 0.0f,
                           .preprocess = GESSO_CONTROL_PREPROCESS_CANNY };
  GessoEditResult plain, zero, off, on, half;
  GessoModelParams mp;

  if (!g_file_test (model_dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      gesso_image_clear (&edges);
      return;
    }
  gesso_model_params_init (&mp);
  mp.path = model_dir;
  model = gesso_model_open (&mp, &error);
  g_assert_no_error (error);
  g_assert_true (generate (model, NULL, 0, 1, &plain));
  g_assert_true (generate (model, &control, 0, 1, &zero));
  control.scale = 1.0f;
  g_assert_true (generate (model, &control, 0, 0, &off));
  g_assert_true (generate (model, &control, 0, 1, &on));
  g_assert_true (generate (model, &control, 0, 0.5f, &half));
  g_assert_true (same_image (&plain, &zero));
  g_assert_true (same_image (&plain, &off));
  g_assert_false (same_image (&plain, &on));
  g_assert_false (same_image (&plain, &half));
  g_assert_false (same_image (&on, &half));
  gesso_edit_result_clear (&plain);
  gesso_edit_result_clear (&zero);
  gesso_edit_result_clear (&off);
  gesso_edit_result_clear (&on);
  gesso_edit_result_clear (&half);
  gesso_image_clear (&edges);
}

/* Bad settings are refused before anything runs, one line each. */
static void
test_edit_control_errors (void)
{
  g_autofree char *model_dir = model_path ("tiny-sd1", "diffusers");
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModel) model = NULL;
  GessoImage image = square_on_black (16, 4, 8, FALSE);
  GessoControl control = { .model = "/nonexistent/cn.safetensors", .image = &image,
                           .scale = 1.0f };
  GessoEditResult result;
  GessoEditParams p;
  GessoModelParams mp;

  if (!g_file_test (model_dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      gesso_image_clear (&image);
      return;
    }
  gesso_model_params_init (&mp);
  mp.path = model_dir;
  model = gesso_model_open (&mp, &error);
  g_assert_no_error (error);
  gesso_edit_params_init (&p, GESSO_EDIT_GENERATE);
  p.prompt = "x";
  p.steps = 1;
  p.width = p.height = 32;
  p.controls = &control;
  p.n_controls = 1;
  g_assert_false (gesso_edit_run (model, &p, NULL, NULL, &result, &error));
  g_test_message ("%s", error->message);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_IO);
  g_clear_error (&error);
  control.scale = NAN;
  g_assert_false (gesso_edit_run (model, &p, NULL, NULL, &result, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  control.scale = 1.0f;
  p.control_start = 0.8f;
  p.control_end = 0.2f;
  g_assert_false (gesso_edit_run (model, &p, NULL, NULL, &result, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  p.control_start = 0.0f;
  p.control_end = 1.0f;
  control.preprocess = GESSO_CONTROL_PREPROCESS_INPAINT;
  g_assert_false (gesso_edit_run (model, &p, NULL, NULL, &result, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  gesso_image_clear (&image);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/controlnet/scale-zero-is-no-control", test_scale_zero_is_no_control);
  g_test_add_func ("/controlnet/residuals-accumulate", test_residuals_accumulate);
  g_test_add_func ("/controlnet/embedding-reused", test_embedding_reused);
  g_test_add_func ("/controlnet/other-family-refused", test_other_family_refused);
  g_test_add_func ("/controlnet/not-a-checkpoint", test_not_a_checkpoint);
  g_test_add_func ("/controlnet/image/canny-square", test_canny_square);
  g_test_add_func ("/controlnet/image/scribble", test_scribble);
  g_test_add_func ("/controlnet/image/inpaint", test_inpaint_control_image);
  g_test_add_func ("/controlnet/edit/with-control", test_edit_with_control);
  g_test_add_func ("/controlnet/edit/errors", test_edit_control_errors);
  return g_test_run ();
}
