/* 16-bit weights kept as stored compute exactly what widened weights computed.
 *
 * The kernels with a GessoWeight (gesso_linear_weight, gesso_conv2d_weight) against the
 * float32 kernels on the same weights widened element by element here (gesso_f16_to_f32 and
 * gesso_bf16_to_f32, not the kernels' array conversions), bit for bit, on odd shapes and on
 * every convolution method; then whole networks of the tiny conformance models (F16 and BF16
 * single files; skipped without ../shared/conformance): the UNet and the VAE decoder with
 * their weights kept 16-bit against the same networks with every weight widened at load
 * (gesso_weights_preload), bit for bit.
 */
#include <string.h>

#include "gesso-config.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"
#include "ops/ops.h"
#include "tensor/half.h"
#include "unit/ops-testutil.h"

static const GessoDType dtypes[] = { GESSO_DTYPE_F16, GESSO_DTYPE_BF16 };

/* N random weights stored as DTYPE into STORED, and their exact float32 values into WIDE. */
static void
random_weights (TestRng *rng, GessoDType dtype, size_t n, uint16_t *stored, float *wide)
{
  for (size_t i = 0; i < n; i++)
    {
      float v = test_rng_uniform (rng, -1.0f, 1.0f);

      if (dtype == GESSO_DTYPE_F16)
        {
          stored[i] = gesso_f32_to_f16 (v);
          wide[i] = gesso_f16_to_f32 (stored[i]);
        }
      else
        {
          stored[i] = gesso_f32_to_bf16 (v);
          wide[i] = gesso_bf16_to_f32 (stored[i]);
        }
    }
}

static void
random_floats (TestRng *rng, size_t n, float *x)
{
  for (size_t i = 0; i < n; i++)
    x[i] = test_rng_uniform (rng, -1.0f, 1.0f);
}

static void
test_linear_bits (void)
{
  /* rows x in -> out: odd sizes, both GEMM splits (rows > out and out > rows), one serial */
  static const int64_t shapes[][3] = {
    { 77, 129, 301 }, { 517, 67, 45 }, { 3, 5, 7 }, { 1031, 320, 96 }, { 33, 1283, 2 },
  };
  TestRng rng = { 11 };

  for (guint d = 0; d < G_N_ELEMENTS (dtypes); d++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      {
        const int64_t rows = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        g_autofree uint16_t *stored = g_new (uint16_t, out * in);
        g_autofree float *wide = g_new (float, out * in);
        g_autofree float *x = g_new (float, rows * in);
        g_autofree float *bias = g_new (float, out);
        g_autofree float *want = g_new (float, rows * out);
        g_autofree float *got = g_new (float, rows * out);
        const GessoWeight weight = { .data = stored, .dtype = dtypes[d] };

        random_weights (&rng, dtypes[d], (size_t) (out * in), stored, wide);
        random_floats (&rng, (size_t) (rows * in), x);
        random_floats (&rng, (size_t) out, bias);
        gesso_linear (x, rows, in, wide, bias, out, want);
        gesso_linear_weight (x, rows, in, &weight, bias, out, got);
        g_assert_cmpmem (got, rows * out * sizeof (float), want, rows * out * sizeof (float));
      }
}

static void
check_conv (TestRng *rng, GessoDType dtype, const GessoConv2dShape *shape)
{
  const int64_t oh = gesso_conv2d_out_height (shape), ow = gesso_conv2d_out_width (shape);
  const int64_t wn = shape->out_channels * shape->in_channels * shape->kernel_h
                     * shape->kernel_w;
  const int64_t xn = shape->batch * shape->in_channels * shape->in_height * shape->in_width;
  const size_t yn = (size_t) (shape->batch * shape->out_channels * oh * ow);
  g_autofree uint16_t *stored = g_new (uint16_t, wn);
  g_autofree float *wide = g_new (float, wn);
  g_autofree float *x = g_new (float, xn);
  g_autofree float *bias = g_new (float, shape->out_channels);
  g_autofree float *want = g_new (float, yn);
  g_autofree float *got = g_new (float, yn);
  g_autoptr (GessoArena) arena = NULL;
  g_autoptr (GError) error = NULL;
  const GessoWeight weight = { .data = stored, .dtype = dtype };

  random_weights (rng, dtype, (size_t) wn, stored, wide);
  random_floats (rng, (size_t) xn, x);
  random_floats (rng, (size_t) shape->out_channels, bias);
  arena = gesso_arena_new (gesso_conv2d_scratch_bytes (shape), &error);
  g_assert_no_error (error);
  g_assert_true (gesso_conv2d (shape, x, wide, bias, want, arena, &error));
  g_assert_no_error (error);
  g_assert_true (gesso_conv2d_weight (shape, x, &weight, bias, got, arena, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, yn * sizeof (float), want, yn * sizeof (float));
}

static void
test_conv_bits (void)
{
  /* batch, cin, h, w, cout, kh, kw, stride, padding: 1x1 (a plain product), stride 2 and few
   * channels (unfolded), 3x3 on a wide image with many channels (shifted views) */
  static const GessoConv2dShape shapes[] = {
    { 2, 37, 9, 11, 19, 1, 1, 1, 0 },
    { 1, 5, 17, 13, 7, 3, 3, 2, 1 },
    { 2, 33, 35, 37, 21, 3, 3, 1, 1 },
    { 2, 48, 6, 5, 131, 3, 3, 1, 1 },
  };
  TestRng rng = { 12 };

  for (guint d = 0; d < G_N_ELEMENTS (dtypes); d++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      check_conv (&rng, dtypes[d], &shapes[s]);
}

static char *
conformance_model (const char *model, const char *file)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  if (env != NULL && *env != '\0')
    return g_build_filename (env, "models", model, file, NULL);
  return g_build_filename (source ? source : GESSO_SOURCE_DIR, "..", "shared", "conformance",
                           "models", model, file, NULL);
}

/* One UNet evaluation (a guidance pair) and one VAE decode of FILE's networks. */
static void
run_networks (GessoModelFiles *files, gboolean widen_all, float *unet_out, float *image)
{
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GessoVae) vae = NULL;
  g_autoptr (GError) error = NULL;
  const GessoUnetConfig *c;
  const int64_t h = 8, w = 8, ctx = 77;
  TestRng rng = { 13 };
  const float t[2] = { 901.0f, 901.0f };
  g_autofree float *sample = NULL, *context = NULL, *latent = NULL;

  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  if (widen_all)
    {
      gesso_weights_preload (weights, GESSO_COMPONENT_COUNT, &error);
      g_assert_no_error (error);
    }
  unet = gesso_unet_new_for_model (files, weights, NULL, &error);
  g_assert_no_error (error);
  vae = gesso_vae_new_for_model (files, weights, NULL, &error);
  g_assert_no_error (error);
  c = gesso_unet_get_config (unet);
  sample = g_new (float, 2 * c->in_channels * h * w);
  context = g_new (float, 2 * ctx * c->cross_attention_dim);
  latent = g_new (float, 4 * h * w);
  random_floats (&rng, (size_t) (2 * c->in_channels * h * w), sample);
  random_floats (&rng, (size_t) (2 * ctx * c->cross_attention_dim), context);
  random_floats (&rng, (size_t) (4 * h * w), latent);
  g_assert_true (gesso_unet_forward (unet, sample, t, context, 2, h, w, ctx, unet_out, NULL,
                                     &error));
  g_assert_no_error (error);
  g_assert_true (gesso_vae_decode (vae, latent, h, w, image, NULL, &error));
  g_assert_no_error (error);
}

static void
check_model (const char *model, const char *file, GessoDType dtype)
{
  g_autofree char *path = conformance_model (model, file);
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoVae) vae = NULL;
  GessoWeight stored;
  int ndim;
  int64_t shape[8];
  size_t unet_n, image_n;
  int f;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("no conformance models (../shared/conformance)");
      return;
    }
  files = gesso_model_files_open (path, &error);
  g_assert_no_error (error);

  /* the weights really stay as stored */
  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  g_assert_true (gesso_weights_shape (weights, GESSO_COMPONENT_UNET, "conv_in.weight", &ndim,
                                      shape));
  g_assert_true (gesso_weights_get_stored (weights, GESSO_COMPONENT_UNET, "conv_in.weight",
                                           ndim, shape, &stored, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stored.dtype, ==, dtype);
  vae = gesso_vae_new_for_model (files, weights, NULL, &error);
  g_assert_no_error (error);
  f = gesso_vae_latent_factor (vae);

  unet_n = 2 * 4 * 8 * 8;
  image_n = (size_t) (3 * 8 * f * 8 * f);
  {
    g_autofree float *unet_kept = g_new (float, unet_n), *unet_wide = g_new (float, unet_n);
    g_autofree float *image_kept = g_new (float, image_n), *image_wide = g_new (float, image_n);

    run_networks (files, FALSE, unet_kept, image_kept);
    run_networks (files, TRUE, unet_wide, image_wide);
    g_assert_cmpmem (unet_kept, unet_n * sizeof (float), unet_wide, unet_n * sizeof (float));
    g_assert_cmpmem (image_kept, image_n * sizeof (float), image_wide,
                     image_n * sizeof (float));
  }
}

static void
test_model_f16 (void)
{
  check_model ("tiny-sd1", "tiny-sd1-fp16.safetensors", GESSO_DTYPE_F16);
}

static void
test_model_bf16 (void)
{
  check_model ("tiny-sd1-inpaint", "tiny-sd1-inpaint-bf16.safetensors", GESSO_DTYPE_BF16);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ops/weight16/linear-bits", test_linear_bits);
  g_test_add_func ("/ops/weight16/conv-bits", test_conv_bits);
  g_test_add_func ("/model/weight16/tiny-sd1-f16", test_model_f16);
  g_test_add_func ("/model/weight16/tiny-sd1-inpaint-bf16", test_model_bf16);
  return g_test_run ();
}
