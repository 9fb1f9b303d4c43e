/* bench-kernels: our GEMM-shaped kernels against raw cblas_sgemm on the same shapes.
 *
 * Absolute GFLOP/s on a shared 2-core box move by 2x from one minute to the next, so the
 * number that matters is the ratio of each kernel to the BLAS it is built on, measured in the
 * same run. The kernels of one shape take turns (--repeats rounds of each, at least --min-time
 * seconds per timing) so a change of load hits all of them, and each reports its best round.
 * Every timing starts with a warm-up, which also outlasts the spinning of whichever thread
 * pool (libgomp's or OpenBLAS's) ran last and would otherwise tax the other.
 *
 *   bench-kernels [--threads N] [--quick] [--repeats R] [--min-time S]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gesso.h"
#include "ops/ops.h"

#ifndef GESSO_BUILD_TYPE
#define GESSO_BUILD_TYPE "unknown"
#endif

typedef struct
{
  double min_time;       /* seconds per timed repetition */
  double warm_up;        /* seconds run before timing */
  int repeats;
} Timing;

typedef void (*KernelFunc) (gpointer data);

static double
now_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* Seconds per call, after a warm-up. */
static double
time_kernel (const Timing *timing, KernelFunc fn, gpointer data)
{
  double start = now_seconds (), elapsed;
  int calls = 0;

  do
    fn (data);
  while (now_seconds () - start < timing->warm_up);

  start = now_seconds ();
  do
    {
      fn (data);
      calls++;
      elapsed = now_seconds () - start;
    }
  while (elapsed < timing->min_time);
  return elapsed / calls;
}

/* GFLOP/s of each of N_FNS kernels, best of timing->repeats rounds in which they take turns. */
static void
best_rates (const Timing *timing, double flop, int n_fns, const KernelFunc *fns, gpointer data,
            double *rates)
{
  for (int i = 0; i < n_fns; i++)
    rates[i] = 0.0;
  for (int r = 0; r < timing->repeats; r++)
    for (int i = 0; i < n_fns; i++)
      rates[i] = MAX (rates[i], flop / time_kernel (timing, fns[i], data) * 1e-9);
}

/* Uniform in [-1, 1): no denormals, no NaN, nothing that changes a kernel's speed. An inline
 * xorshift, because GRand per value would make filling the 94 MB operands the slowest part
 * of --quick. */
static float *
random_floats (GRand *rand, size_t n)
{
  float *x = g_new (float, n);
  guint32 state = g_rand_int (rand) | 1u;

  for (size_t i = 0; i < n; i++)
    {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      x[i] = (float) state * 0x1.0p-31f - 1.0f;
    }
  return x;
}

static char *
cpu_model (void)
{
  g_autofree char *text = NULL;
  char *model = NULL;
  int cpus = 0;

  if (g_file_get_contents ("/proc/cpuinfo", &text, NULL, NULL))
    {
      g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
      for (char **line = lines; *line != NULL; line++)
        {
          if (g_str_has_prefix (*line, "processor"))
            cpus++;
          if (model == NULL && g_str_has_prefix (*line, "model name"))
            {
              const char *colon = strchr (*line, ':');
              if (colon != NULL)
                model = g_strstrip (g_strdup (colon + 1));
            }
        }
    }
  if (model == NULL)
    model = g_strdup ("unknown CPU");
  return g_strdup_printf ("%s (%d logical CPUs)", model, cpus);
}

/* --- Convolution ----------------------------------------------------------------------- */

typedef struct
{
  GessoConv2dShape shape;
  float *input, *weight, *bias, *output;
  GessoArena *arena;
  /* the equivalent GEMM: out[Cout, N] = weight[Cout, K] * col[K, N] */
  int64_t m, n, k;
  float *col, *c;
} ConvBench;

static void
run_conv (gpointer data)
{
  ConvBench *b = data;
  g_autoptr (GError) error = NULL;

  if (!gesso_conv2d (&b->shape, b->input, b->weight, b->bias, b->output, b->arena, &error))
    g_error ("conv2d: %s", error->message);
}

/* The baseline is OpenBLAS threading itself, as it comes. Gesso keeps OpenBLAS
 * single-threaded and runs the threads around it (core/ops/gemm.c), so each baseline call
 * turns OpenBLAS's own threads on for itself and off again. */
static void
baseline_begin (void)
{
  openblas_set_num_threads (gesso_ops_get_threads ());
}

static void
baseline_end (void)
{
  openblas_set_num_threads (1);
}

static void
run_conv_sgemm (gpointer data)
{
  ConvBench *b = data;

  baseline_begin ();
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint) b->m, (blasint) b->n,
               (blasint) b->k, 1.0f, b->weight, (blasint) b->k, b->col, (blasint) b->n, 0.0f,
               b->c, (blasint) b->n);
  baseline_end ();
}

/* One GEMM per image, each with its own [K, H*W] operand, as a per-image im2col would call
 * it. */
static void
run_conv_sgemm_per_image (gpointer data)
{
  ConvBench *b = data;
  int64_t n = b->n / b->shape.batch;

  baseline_begin ();
  for (int64_t i = 0; i < b->shape.batch; i++)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint) b->m, (blasint) n,
                 (blasint) b->k, 1.0f, b->weight, (blasint) b->k, b->col + i * b->k * n,
                 (blasint) n, 0.0f, b->c + i * b->m * n, (blasint) n);
  baseline_end ();
}

static gboolean
bench_conv (const Timing *timing, GRand *rand, const char *name, int64_t size, int64_t channels)
{
  g_autoptr (GError) error = NULL;
  ConvBench b = {
    .shape = { .batch = 2, .in_channels = channels, .in_height = size, .in_width = size,
               .out_channels = channels, .kernel_h = 3, .kernel_w = 3, .stride = 1,
               .padding = 1 },
  };
  size_t image = (size_t) (b.shape.batch * channels * size * size);

  b.m = channels;
  b.n = b.shape.batch * size * size;
  b.k = channels * 9;
  b.arena = gesso_arena_new (gesso_conv2d_scratch_bytes (&b.shape), &error);
  if (b.arena == NULL)
    {
      g_printerr ("%s: %s\n", name, error->message);
      return FALSE;
    }
  b.input = random_floats (rand, image);
  b.weight = random_floats (rand, (size_t) (b.m * b.k));
  b.bias = random_floats (rand, (size_t) channels);
  b.output = g_new (float, image);
  b.col = random_floats (rand, (size_t) (b.k * b.n));
  b.c = g_new (float, (size_t) (b.m * b.n));

  const KernelFunc fns[] = { run_conv, run_conv_sgemm, run_conv_sgemm_per_image };
  double rate[G_N_ELEMENTS (fns)];
  best_rates (timing, 2.0 * (double) b.m * (double) b.n * (double) b.k, G_N_ELEMENTS (fns),
              fns, &b, rate);
  double conv = rate[0], gemm = rate[1], gemm_image = rate[2];

  printf ("%-22s %5" G_GINT64_FORMAT " %5" G_GINT64_FORMAT " %6" G_GINT64_FORMAT
          " %7.1f %7.1f %6.2f %9.1f %6.2f %7.1f\n",
          name, b.m, b.n, b.k, conv, gemm, conv / gemm, gemm_image, conv / gemm_image,
          (double) gesso_conv2d_scratch_bytes (&b.shape) / (1024.0 * 1024.0));
  fflush (stdout);

  g_free (b.input);
  g_free (b.weight);
  g_free (b.bias);
  g_free (b.output);
  g_free (b.col);
  g_free (b.c);
  gesso_arena_free (b.arena);
  return TRUE;
}

/* --- Linear ------------------------------------------------------------------------------ */

typedef struct
{
  int64_t rows, in_features, out_features;
  float *x, *weight, *bias, *out;
} LinearBench;

static void
run_linear (gpointer data)
{
  LinearBench *b = data;

  gesso_linear (b->x, b->rows, b->in_features, b->weight, b->bias, b->out_features, b->out);
}

static void
run_linear_sgemm (gpointer data)
{
  LinearBench *b = data;

  baseline_begin ();
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (blasint) b->rows,
               (blasint) b->out_features, (blasint) b->in_features, 1.0f, b->x,
               (blasint) b->in_features, b->weight, (blasint) b->in_features, 0.0f, b->out,
               (blasint) b->out_features);
  baseline_end ();
}

static void
bench_linear (const Timing *timing, GRand *rand, const char *name, int64_t rows,
              int64_t in_features, int64_t out_features)
{
  LinearBench b = { rows, in_features, out_features, NULL, NULL, NULL, NULL };

  b.x = random_floats (rand, (size_t) (rows * in_features));
  b.weight = random_floats (rand, (size_t) (out_features * in_features));
  b.bias = random_floats (rand, (size_t) out_features);
  b.out = g_new (float, (size_t) (rows * out_features));

  const KernelFunc fns[] = { run_linear, run_linear_sgemm };
  double rate[G_N_ELEMENTS (fns)];
  best_rates (timing, 2.0 * (double) rows * (double) in_features * (double) out_features,
              G_N_ELEMENTS (fns), fns, &b, rate);
  double linear = rate[0], gemm = rate[1];

  printf ("%-22s %5" G_GINT64_FORMAT " %5" G_GINT64_FORMAT " %6" G_GINT64_FORMAT
          " %7.1f %7.1f %6.2f\n",
          name, rows, out_features, in_features, linear, gemm, linear / gemm);
  fflush (stdout);

  g_free (b.x);
  g_free (b.weight);
  g_free (b.bias);
  g_free (b.out);
}

int
main (int argc, char **argv)
{
  int threads = 0, repeats = 3;
  double min_time = 0.2;
  gboolean quick = FALSE, ok = TRUE;
  GOptionEntry entries[] = {
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (0 = all cores)", "N" },
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "A few short repetitions (smoke test)", NULL },
    { "repeats", 'r', 0, G_OPTION_ARG_INT, &repeats, "Timed repetitions per kernel", "R" },
    { "min-time", 'm', 0, G_OPTION_ARG_DOUBLE, &min_time, "Seconds per repetition", "S" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- kernel throughput vs sgemm");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  Timing timing = { .min_time = MAX (min_time, 0.0), .warm_up = 0.15,
                    .repeats = MAX (repeats, 1) };
  if (quick)
    timing = (Timing) { .min_time = 0.01, .warm_up = 0.0, .repeats = 1 };

  gesso_ops_set_threads (threads);
  g_autofree char *machine = cpu_model ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);

  printf ("machine:  %s\n", machine);
  printf ("threads:  %d\n", gesso_ops_get_threads ());
  printf ("build:    %s, gesso %s\n", GESSO_BUILD_TYPE, gesso_version ());
  printf ("blas:     %s\n", openblas_get_config ());
  printf ("timing:   best of %d rounds (kernels of a shape take turns), each >= %.2f s after\n"
          "          %.2f s of warm-up; GFLOP/s = 2*M*N*K / time\n\n",
          timing.repeats, timing.min_time, timing.warm_up);

  printf ("conv2d 3x3 s1 p1, batch 2 (M = Cout, N = batch*H*W, K = Cin*9); sgemm/img = one\n"
          "sgemm per image (N = H*W); ratio = conv / sgemm\n");
  printf ("%-22s %5s %5s %6s %7s %7s %6s %9s %6s %7s\n", "shape", "M", "N", "K", "conv",
          "sgemm", "ratio", "sgemm/img", "ratio", "scr.MiB");
  ok &= bench_conv (&timing, rand, "64x64 320->320", 64, 320);
  ok &= bench_conv (&timing, rand, "32x32 640->640", 32, 640);
  ok &= bench_conv (&timing, rand, "16x16 1280->1280", 16, 1280);
  ok &= bench_conv (&timing, rand, "8x8 1280->1280", 8, 1280);

  printf ("\nlinear, batch 2 (M = rows, N = out_features, K = in_features); ratio = linear / "
          "sgemm\n");
  printf ("%-22s %5s %5s %6s %7s %7s %6s\n", "shape", "M", "N", "K", "linear", "sgemm",
          "ratio");
  bench_linear (&timing, rand, "64x64 q/k/v/o 320", 8192, 320, 320);
  bench_linear (&timing, rand, "64x64 GEGLU-in 320", 8192, 320, 2560);
  bench_linear (&timing, rand, "32x32 q/k/v/o 640", 2048, 640, 640);
  bench_linear (&timing, rand, "16x16 q/k/v/o 1280", 512, 1280, 1280);
  bench_linear (&timing, rand, "8x8 q/k/v/o 1280", 128, 1280, 1280);
  bench_linear (&timing, rand, "x-attn K/V 77x768", 154, 768, 320);

  /* a kernel that could not run is a report, not a failed benchmark */
  if (!ok)
    printf ("\nsome shapes were skipped (see above)\n");
  return 0;
}
