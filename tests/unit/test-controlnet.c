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

static void
test_scale_zero_is_no_control (void)
{
  Base base = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoControlNet) cn = NULL;
  g_autofree char *cn_path = model_path ("tiny-controlnet", "tiny-controlnet-fp16.safetensors");
  float sample[B * 4 * H * W], context[B * L * D], t[B] = { 500.0f, 981.0f };
  float plain[B * 4 * H * W], controlled[B * 4 * H * W];
  g_autofree float *image = NULL, *residuals = NULL;
  size_t n_res;

  if (!open_base ("tiny-sd1", &base))
    return;
  cn = gesso_controlnet_open (cn_path, base.unet, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_controlnet_get_image_factor (cn), ==, 8);
  fill (sample, G_N_ELEMENTS (sample), 2.0f, 1);
  fill (context, G_N_ELEMENTS (context), 1.0f, 2);
  image = g_new (float, B * 3 * 8 * H * 8 * W);
  fill (image, (size_t) B * 3 * 64 * H * W, 1.0f, 3);
  n_res = gesso_unet_residual_floats (base.unet, B, H, W);
  residuals = g_new (float, n_res);

  g_assert_true (gesso_unet_forward (base.unet, sample, t, context, B, H, W, L, plain, NULL,
                                     &error));
  g_assert_true (gesso_controlnet_forward (cn, sample, t, context, image, 0.0f, B, H, W, L,
                                           FALSE, residuals, NULL, &error));
  g_assert_no_error (error);
  for (size_t i = 0; i < n_res; i++)
    g_assert_cmpfloat (residuals[i], ==, 0.0f);
  g_assert_true (gesso_unet_forward_controlled (base.unet, sample, t, context, B, H, W, L,
                                                residuals, controlled, NULL, &error));
  g_assert_cmpmem (plain, sizeof plain, controlled, sizeof controlled);

  /* and the same ControlNet at scale 1 does change it */
  g_assert_true (gesso_controlnet_forward (cn, sample, t, context, image, 1.0f, B, H, W, L,
                                           FALSE, residuals, NULL, &error));
  g_assert_true (gesso_unet_forward_controlled (base.unet, sample, t, context, B, H, W, L,
                                                residuals, controlled, NULL, &error));
  g_assert_true (memcmp (plain, controlled, sizeof plain) != 0);
  close_base (&base);
}

/* Two evaluations at scales a and b accumulated = one at a + b, up to rounding. */
static void
test_residuals_accumulate (void)
{
  Base base = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoControlNet) cn = NULL;
  g_autofree char *cn_path = model_path ("tiny-controlnet", "diffusers");
  float sample[B * 4 * H * W], context[B * L * D], t[B] = { 1.0f, 700.0f };
  g_autofree float *image = NULL, *twice = NULL, *once = NULL;
  size_t n_res;

  if (!open_base ("tiny-sd1", &base))
    return;
  cn = gesso_controlnet_open (cn_path, base.unet, &error);
  g_assert_no_error (error);
  fill (sample, G_N_ELEMENTS (sample), 2.0f, 4);
  fill (context, G_N_ELEMENTS (context), 1.0f, 5);
  image = g_new (float, B * 3 * 64 * H * W);
  fill (image, (size_t) B * 3 * 64 * H * W, 1.0f, 6);
  n_res = gesso_unet_residual_floats (base.unet, B, H, W);
  twice = g_new (float, n_res);
  once = g_new (float, n_res);
  g_assert_true (gesso_controlnet_forward (cn, sample, t, context, image, 0.25f, B, H, W, L,
                                           FALSE, twice, NULL, &error));
  g_assert_true (gesso_controlnet_forward (cn, sample, t, context, image, 0.5f, B, H, W, L,
                                           TRUE, twice, NULL, &error));
  g_assert_true (gesso_controlnet_forward (cn, sample, t, context, image, 0.75f, B, H, W, L,
                                           FALSE, once, NULL, &error));
  g_assert_no_error (error);
  for (size_t i = 0; i < n_res; i++)
    g_assert_cmpfloat_with_epsilon (twice[i], once[i], 1e-5f * (1.0f + fabsf (once[i])));
  close_base (&base);
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/controlnet/scale-zero-is-no-control", test_scale_zero_is_no_control);
  g_test_add_func ("/controlnet/residuals-accumulate", test_residuals_accumulate);
  g_test_add_func ("/controlnet/other-family-refused", test_other_family_refused);
  g_test_add_func ("/controlnet/not-a-checkpoint", test_not_a_checkpoint);
  return g_test_run ();
}
