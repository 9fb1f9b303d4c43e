/* gesso_conv2d against a plain double-precision convolution written here from the definition.
 *
 * Inputs and biases are uniform in [-1, 1) and weights uniform in [-1, 1) / sqrt(K)
 * (K = in_channels * kh * kw), so outputs are of order 1 whatever the shape; the tolerance in
 * each test path is then an absolute bound per output value. The shapes are chosen to reach
 * every path of the kernel: plain GEMM (1x1), im2col (whole images, column blocks of a huge
 * image, small images side by side), shifted GEMM (stride 1 with >= 32 input channels, whole
 * images and row blocks of a huge image), odd sizes, channel counts that are not multiples of
 * the SIMD widths, images smaller than the kernel, and empty outputs.
 */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "ops/ops.h"

#define SEED 20240607

typedef struct
{
  const char *name;
  int64_t batch, in_channels, height, width, out_channels, kernel_h, kernel_w, stride, padding;
  gboolean bias;
  int tolerance_exp;      /* outputs must be within 10^-tolerance_exp of the reference */
} ConvCase;

static const ConvCase cases[] = {
  /* 1x1, stride 1, no padding: a plain GEMM */
  { "1x1", 1, 5, 7, 9, 3, 1, 1, 1, 0, TRUE, 5 },
  { "1x1-batch3-nobias", 3, 17, 6, 5, 11, 1, 1, 1, 0, FALSE, 5 },
  { "1x1-wide", 2, 40, 33, 35, 150, 1, 1, 1, 0, TRUE, 5 },
  /* 1x1 that still needs unfolding */
  { "1x1-stride2", 1, 6, 9, 7, 4, 1, 1, 2, 0, TRUE, 5 },
  { "1x1-pad1-batch3", 3, 3, 5, 4, 4, 1, 1, 1, 1, FALSE, 5 },
  /* 3x3 */
  { "3x3-pad1", 1, 13, 11, 9, 7, 3, 3, 1, 1, TRUE, 5 },
  { "3x3-pad1-batch3-nobias", 3, 9, 8, 8, 21, 3, 3, 1, 1, FALSE, 5 },
  { "3x3-pad0", 1, 5, 10, 7, 6, 3, 3, 1, 0, TRUE, 5 },
  { "3x3-pad0-batch3-nobias", 3, 7, 12, 13, 9, 3, 3, 1, 0, FALSE, 5 },
  { "3x3-stride2", 1, 7, 13, 11, 5, 3, 3, 2, 1, TRUE, 5 },
  { "3x3-stride2-pad0-batch3", 3, 4, 9, 10, 3, 3, 3, 2, 0, FALSE, 5 },
  { "3x3-stride2-even-batch3", 3, 16, 16, 16, 24, 3, 3, 2, 1, TRUE, 5 },
  { "3x3-1x1-image", 2, 6, 1, 1, 5, 3, 3, 1, 1, TRUE, 5 },
  { "3x3-1x1-image-stride2", 1, 3, 1, 1, 2, 3, 3, 2, 1, FALSE, 5 },
  { "3x3-1xN-image", 3, 5, 1, 17, 4, 3, 3, 1, 1, TRUE, 5 },
  /* large enough to be split into several work items / blocks */
  { "3x3-pad1-large-image", 2, 32, 70, 67, 37, 3, 3, 1, 1, TRUE, 5 },
  { "3x3-pad1-large-image-few-channels", 2, 19, 70, 67, 37, 3, 3, 1, 1, TRUE, 5 },
  { "3x3-pad1-many-channels", 2, 200, 12, 11, 150, 3, 3, 1, 1, TRUE, 5 },
  { "3x3-pad1-small-images-batch3", 3, 96, 6, 6, 200, 3, 3, 1, 1, FALSE, 5 },
  { "3x3-pad0-large-image", 1, 40, 60, 90, 20, 3, 3, 1, 0, FALSE, 5 },
  { "3x3-stride2-large-image", 2, 10, 65, 64, 24, 3, 3, 2, 1, TRUE, 5 },
  /* images whose scratch would pass the kernel's budget, so they are computed in blocks of
   * output rows (stride 1) or of output columns (stride 2) */
  { "3x3-pad1-huge-image-rows-in-blocks", 1, 32, 1000, 384, 2, 3, 3, 1, 1, TRUE, 5 },
  { "3x3-pad1-huge-image-columns-in-blocks", 1, 1, 2100, 2000, 1, 3, 3, 1, 1, TRUE, 5 },
  { "3x3-stride2-huge-image-columns-in-blocks", 1, 64, 320, 320, 2, 3, 3, 2, 1, TRUE, 5 },
  /* any other kernel */
  { "5x5-pad2", 1, 3, 9, 8, 4, 5, 5, 1, 2, TRUE, 5 },
  { "5x5-pad2-1x1-image", 2, 3, 1, 1, 2, 5, 5, 1, 2, TRUE, 5 },
  { "5x5-pad2-2x3-image", 1, 4, 2, 3, 3, 5, 5, 1, 2, FALSE, 5 },
  { "3x1-pad1", 2, 4, 7, 6, 3, 3, 1, 1, 1, TRUE, 5 },
  { "3x1-pad1-wide-image", 2, 32, 5, 40, 3, 3, 1, 1, 1, FALSE, 5 },
  { "1x1-pad1-wide-image", 1, 32, 6, 40, 5, 1, 1, 1, 1, TRUE, 5 },
  { "7x7-stride2-pad3", 1, 3, 15, 14, 8, 7, 7, 2, 3, TRUE, 5 },
  { "4x4-stride2-pad1", 2, 5, 10, 9, 6, 4, 4, 2, 1, FALSE, 5 },
  { "3x3-image-of-kernel-size-pad0", 2, 2, 3, 5, 3, 3, 3, 1, 0, TRUE, 5 },
  /* nothing to compute */
  { "3x3-larger-than-image-pad0", 1, 2, 2, 5, 3, 3, 3, 1, 0, TRUE, 5 },
  { "3x3-no-input-channels", 2, 0, 4, 4, 3, 3, 3, 1, 1, TRUE, 5 },
};

static GessoConv2dShape
case_shape (const ConvCase *c)
{
  return (GessoConv2dShape) {
    .batch = c->batch, .in_channels = c->in_channels, .in_height = c->height,
    .in_width = c->width, .out_channels = c->out_channels, .kernel_h = c->kernel_h,
    .kernel_w = c->kernel_w, .stride = c->stride, .padding = c->padding,
  };
}

typedef struct
{
  GessoConv2dShape shape;
  int64_t out_h, out_w;
  size_t n_in, n_weight, n_out;
  float *input, *weight, *bias;
} ConvData;

static void
conv_data_init (ConvData *d, const GessoConv2dShape *shape, gboolean with_bias, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  double k = (double) (shape->in_channels * shape->kernel_h * shape->kernel_w);

  d->shape = *shape;
  d->out_h = gesso_conv2d_out_height (shape);
  d->out_w = gesso_conv2d_out_width (shape);
  d->n_in = (size_t) (shape->batch * shape->in_channels * shape->in_height * shape->in_width);
  d->n_weight = (size_t) (shape->out_channels * k);
  d->n_out = (size_t) (shape->batch * shape->out_channels * d->out_h * d->out_w);
  d->input = g_new (float, d->n_in);
  d->weight = g_new (float, d->n_weight);
  d->bias = with_bias ? g_new (float, shape->out_channels) : NULL;
  for (size_t i = 0; i < d->n_in; i++)
    d->input[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  for (size_t i = 0; i < d->n_weight; i++)
    d->weight[i] = (float) (g_rand_double_range (rand, -1.0, 1.0) / sqrt (k));
  for (int64_t i = 0; with_bias && i < shape->out_channels; i++)
    d->bias[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
}

static void
conv_data_clear (ConvData *d)
{
  g_free (d->input);
  g_free (d->weight);
  g_free (d->bias);
}

/* The definition: out[b, o, y, x] = bias[o] + sum over (c, i, j) of
 * w[o, c, i, j] * in[b, c, y * stride - pad + i, x * stride - pad + j], zero outside. */
static double *
reference_conv (const ConvData *d)
{
  const GessoConv2dShape *s = &d->shape;
  double *out = g_new (double, d->n_out ? d->n_out : 1);
  size_t at = 0;

  for (int64_t b = 0; b < s->batch; b++)
    for (int64_t o = 0; o < s->out_channels; o++)
      for (int64_t y = 0; y < d->out_h; y++)
        for (int64_t x = 0; x < d->out_w; x++)
          {
            double acc = d->bias != NULL ? d->bias[o] : 0.0;
            for (int64_t c = 0; c < s->in_channels; c++)
              for (int64_t i = 0; i < s->kernel_h; i++)
                for (int64_t j = 0; j < s->kernel_w; j++)
                  {
                    int64_t iy = y * s->stride - s->padding + i;
                    int64_t ix = x * s->stride - s->padding + j;
                    if (iy < 0 || iy >= s->in_height || ix < 0 || ix >= s->in_width)
                      continue;
                    acc += (double) d->weight[((o * s->in_channels + c) * s->kernel_h + i)
                                              * s->kernel_w + j]
                           * d->input[((b * s->in_channels + c) * s->in_height + iy)
                                      * s->in_width + ix];
                  }
            out[at++] = acc;
          }
  return out;
}

/* Runs the kernel in an arena of exactly the advertised size, after a prior allocation, and
 * checks that the arena comes back to its mark. The output starts as NaN so a value the
 * kernel forgot to write cannot pass. */
static float *
run_conv (const ConvData *d)
{
  g_autoptr (GError) error = NULL;
  size_t need = gesso_conv2d_scratch_bytes (&d->shape);
  g_autoptr (GessoArena) arena = gesso_arena_new (64 + need, &error);
  float *out = g_new (float, d->n_out ? d->n_out : 1);

  g_assert_no_error (error);
  g_assert_nonnull (gesso_arena_alloc (arena, 1));
  size_t mark = gesso_arena_mark (arena);
  for (size_t i = 0; i < d->n_out; i++)
    out[i] = NAN;
  g_assert_true (gesso_conv2d (&d->shape, d->input, d->weight, d->bias, out, arena, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (gesso_arena_used (arena), ==, mark);
  g_assert_cmpuint (gesso_arena_peak (arena), <=, mark + need);
  return out;
}

static void
test_against_reference (gconstpointer data)
{
  const ConvCase *c = data;
  GessoConv2dShape shape = case_shape (c);
  ConvData d;
  double tolerance = pow (10.0, -c->tolerance_exp), worst = 0.0;

  conv_data_init (&d, &shape, c->bias, SEED);
  g_autofree double *want = reference_conv (&d);
  g_autofree float *got = run_conv (&d);

  for (size_t i = 0; i < d.n_out; i++)
    {
      double err = fabs ((double) got[i] - want[i]);
      if (!(err <= tolerance))
        g_error ("%s: output %zu is %.9g, reference %.9g", c->name, i, got[i], want[i]);
      worst = MAX (worst, err);
    }
  g_test_message ("%s: %zu outputs, worst error %.3g", c->name, d.n_out, worst);
  conv_data_clear (&d);
}

static void
test_out_size (void)
{
  GessoConv2dShape s = { 1, 1, 64, 64, 1, 3, 3, 1, 1 };

  g_assert_cmpint (gesso_conv2d_out_height (&s), ==, 64);
  s.stride = 2;
  g_assert_cmpint (gesso_conv2d_out_height (&s), ==, 32);
  s.in_height = 65;
  s.in_width = 7;
  s.padding = 0;
  g_assert_cmpint (gesso_conv2d_out_height (&s), ==, 32);
  g_assert_cmpint (gesso_conv2d_out_width (&s), ==, 3);
  s.kernel_h = 1;
  s.kernel_w = 1;
  s.stride = 1;
  g_assert_cmpint (gesso_conv2d_out_width (&s), ==, 7);
}

static void
test_1x1_needs_no_scratch (void)
{
  g_autoptr (GError) error = NULL;
  GessoConv2dShape shape = { 2, 30, 20, 21, 25, 1, 1, 1, 0 };
  g_autoptr (GessoArena) arena = gesso_arena_new (0, &error);
  ConvData d;

  g_assert_no_error (error);
  g_assert_cmpuint (gesso_conv2d_scratch_bytes (&shape), ==, 0);
  conv_data_init (&d, &shape, TRUE, SEED);
  g_autofree float *out = g_new (float, d.n_out);
  g_assert_true (gesso_conv2d (&shape, d.input, d.weight, d.bias, out, arena, &error));
  g_assert_no_error (error);
  conv_data_clear (&d);
}

static void
test_scratch_too_small (void)
{
  /* a 3x3 convolution of each kind the kernel plans differently */
  const GessoConv2dShape shapes[] = {
    { 1, 8, 9, 9, 4, 3, 3, 1, 1 },
    { 3, 96, 6, 6, 200, 3, 3, 1, 1 },
    { 2, 32, 70, 67, 37, 3, 3, 1, 1 },
    { 1, 7, 13, 11, 5, 3, 3, 2, 1 },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      g_autoptr (GError) error = NULL;
      size_t need = gesso_conv2d_scratch_bytes (&shapes[i]);
      ConvData d;

      g_assert_cmpuint (need, >, 0);
      /* a short arena holding one byte, so the mark it must come back to is not zero */
      g_autoptr (GessoArena) arena = gesso_arena_new (64 + need - GESSO_ARENA_ALIGN, &error);
      g_assert_no_error (error);
      g_assert_nonnull (gesso_arena_alloc (arena, 1));
      conv_data_init (&d, &shapes[i], TRUE, SEED);
      g_autofree float *out = g_new0 (float, d.n_out);
      g_assert_false (gesso_conv2d (&shapes[i], d.input, d.weight, d.bias, out, arena, &error));
      g_assert_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY);
      g_assert_cmpuint (gesso_arena_used (arena), ==, 64);
      conv_data_clear (&d);
    }
}

/* Work is split over output tiles that do not depend on the thread count, so neither the
 * bits of the result nor the scratch a caller must plan can change with it. */
static void
test_threads_bit_exact (void)
{
  const GessoConv2dShape shapes[] = {
    { 2, 40, 33, 35, 150, 1, 1, 1, 0 },
    { 2, 32, 70, 67, 37, 3, 3, 1, 1 },
    { 2, 200, 12, 11, 150, 3, 3, 1, 1 },
    { 3, 96, 6, 6, 200, 3, 3, 1, 1 },
    { 2, 10, 65, 64, 24, 3, 3, 2, 1 },
    { 1, 64, 32, 32, 64, 3, 3, 1, 1 },
  };
  int threads_before = gesso_ops_get_threads ();

  for (size_t i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      ConvData d;

      conv_data_init (&d, &shapes[i], TRUE, SEED + (guint32) i);
      gesso_ops_set_threads (1);
      size_t scratch_one = gesso_conv2d_scratch_bytes (&shapes[i]);
      g_autofree float *one = run_conv (&d);
      gesso_ops_set_threads (2);
      g_assert_cmpuint (gesso_conv2d_scratch_bytes (&shapes[i]), ==, scratch_one);
      g_autofree float *two = run_conv (&d);
      g_assert_cmpmem (one, d.n_out * sizeof (float), two, d.n_out * sizeof (float));
      conv_data_clear (&d);
    }
  gesso_ops_set_threads (threads_before);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/core/ops/conv2d/%s-tol1e-%d", cases[i].name,
                                               cases[i].tolerance_exp);
      g_test_add_data_func (path, &cases[i], test_against_reference);
    }
  g_test_add_func ("/core/ops/conv2d/out-size", test_out_size);
  g_test_add_func ("/core/ops/conv2d/1x1-needs-no-scratch", test_1x1_needs_no_scratch);
  g_test_add_func ("/core/ops/conv2d/scratch-too-small", test_scratch_too_small);
  g_test_add_func ("/core/ops/conv2d/threads-1-vs-2-bit-exact", test_threads_bit_exact);
  return g_test_run ();
}
