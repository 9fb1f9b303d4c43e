/* bench-unet: what one UNet evaluation of a real-sized model costs, in time and memory.
 *
 * Loads the UNet of MODEL (a .safetensors file or a diffusers folder; weights kept as stored,
 * as a job keeps them), then times EVALS forwards at a latent of SIDE x SIDE cells with a
 * batch of BATCH (2 = a classifier-free guidance pair, what every guided step runs) on random
 * inputs (an SDXL UNet's pooled embedding too, with 1024 px size ids). Prints the load time, the activation memory planned for that shape, each
 * evaluation's time and the process's peak resident set (getrusage), which is what
 * `/usr/bin/time -v` reports as "Maximum resident set size". With --fit-threads the thread
 * count follows the load before each evaluation, as a sampling loop's does
 * (gesso_ops_fit_threads_to_load).
 *
 * With --controlnet CN it also opens that ControlNet for the UNet and times, interleaved in
 * the same run, a plain evaluation and a controlled one (the ControlNet, its random control
 * image embedded once as a sampling loop does, then the UNet with its residuals), and prints
 * their ratio in wall time and in CPU time (steadier on a busy machine).
 *
 *   bench-unet MODEL [--side 64] [--batch 2] [--evals 2] [--threads 0] [--fit-threads]
 *              [--controlnet CN]
 */
#include <glib.h>
#include <stdio.h>
#include <sys/resource.h>

#include "gesso.h"
#include "io/model_files.h"
#include "model/controlnet.h"
#include "model/unet.h"
#include "model/weights.h"
#include "ops/ops.h"

/* SD 1.x/2.x text contexts: 77 tokens; the width comes from the UNet's config */
#define CONTEXT_TOKENS 77

static double
peak_rss_gib (void)
{
  struct rusage usage;

  if (getrusage (RUSAGE_SELF, &usage) != 0)
    return 0.0;
  return (double) usage.ru_maxrss / (1024.0 * 1024.0);  /* ru_maxrss is in KiB on Linux */
}

static float *
random_floats (GRand *rand, size_t n)
{
  float *values = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    values[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  return values;
}

static double
seconds_since (gint64 start)
{
  return (double) (g_get_monotonic_time () - start) / 1e6;
}

/* CPU seconds this process has used (all threads): on a busy machine a steadier measure of
 * the work done than the wall clock. */
static double
cpu_seconds (void)
{
  struct rusage usage;

  if (getrusage (RUSAGE_SELF, &usage) != 0)
    return 0.0;
  return (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6
         + (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6;
}

/* Plain and controlled evaluations, interleaved, and the ratio of their best times. */
static gboolean
run_controlled (GessoUnet *unet, const char *controlnet_path, const float *sample,
                const float *timesteps, const float *context, float *out, int side, int batch,
                int evals, GRand *rand, GError **error)
{
  g_autoptr (GessoControlNet) cn = NULL;
  g_autofree float *image = NULL, *residuals = NULL, *embedding = NULL;
  double best_plain = G_MAXDOUBLE, best_controlled = G_MAXDOUBLE;
  double cpu_plain = G_MAXDOUBLE, cpu_controlled = G_MAXDOUBLE;
  gint64 start = g_get_monotonic_time ();
  int f;

  cn = gesso_controlnet_open (controlnet_path, unet, error);
  if (cn == NULL)
    return FALSE;
  f = gesso_controlnet_get_image_factor (cn);
  printf ("controlnet load: %.2f s, peak RSS %.2f GiB\n", seconds_since (start),
          peak_rss_gib ());
  image = random_floats (rand, (size_t) batch * 3 * (size_t) (side * f) * (size_t) (side * f));
  for (size_t i = 0; i < (size_t) batch * 3 * (size_t) (side * f) * (size_t) (side * f); i++)
    image[i] = image[i] > 0 ? 1.0f : 0.0f;
  residuals = g_new (float, gesso_unet_residual_floats (unet, batch, side, side));
  /* as a sampling loop runs it: the control image embedded once, then every step */
  embedding = g_new (float, gesso_controlnet_embedding_floats (cn, batch, side, side));
  start = g_get_monotonic_time ();
  if (!gesso_controlnet_embed (cn, image, batch, side, side, embedding, NULL, error))
    return FALSE;
  printf ("control image embedded once: %.2f s\n", seconds_since (start));
  for (int e = 0; e <= evals; e++)
    {
      double plain, controlled, cpu0, cpu1, cpu2;

      start = g_get_monotonic_time ();
      cpu0 = cpu_seconds ();
      if (!gesso_unet_forward (unet, sample, timesteps, context, batch, side, side,
                               CONTEXT_TOKENS, out, NULL, error))
        return FALSE;
      plain = seconds_since (start);
      cpu1 = cpu_seconds ();
      start = g_get_monotonic_time ();
      if (!gesso_controlnet_forward_embedded (cn, sample, timesteps, context, embedding, 1.0f,
                                              batch, side, side, CONTEXT_TOKENS, FALSE,
                                              residuals, NULL, error)
          || !gesso_unet_forward_controlled (unet, sample, timesteps, context, batch, side,
                                             side, CONTEXT_TOKENS, residuals, out, NULL, error))
        return FALSE;
      controlled = seconds_since (start);
      cpu2 = cpu_seconds ();
      printf ("round %d: plain %.2f s (CPU %.2f s), with ControlNet %.2f s (CPU %.2f s): "
              "%.2fx wall, %.2fx CPU%s, peak RSS %.2f GiB\n", e, plain, cpu1 - cpu0,
              controlled, cpu2 - cpu1, controlled / plain, (cpu2 - cpu1) / (cpu1 - cpu0),
              e == 0 ? ", warm-up" : "", peak_rss_gib ());
      if (e > 0)
        {
          best_plain = MIN (best_plain, plain);
          best_controlled = MIN (best_controlled, controlled);
          cpu_plain = MIN (cpu_plain, cpu1 - cpu0);
          cpu_controlled = MIN (cpu_controlled, cpu2 - cpu1);
        }
    }
  printf ("controlled / plain, best of %d: wall %.2f s / %.2f s = %.2fx; CPU %.2f s / %.2f s = "
          "%.2fx\n", evals, best_controlled, best_plain, best_controlled / best_plain,
          cpu_controlled, cpu_plain, cpu_controlled / cpu_plain);
  return TRUE;
}

static gboolean
run (const char *path, int side, int batch, int evals, gboolean fit_threads,
     const char *controlnet_path, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  g_autofree float *sample = NULL, *context = NULL, *timesteps = NULL, *out = NULL;
  g_autofree float *pooled = NULL, *time_ids = NULL;
  GessoUnetAdded added;
  const GessoUnetConfig *config;
  size_t latent;
  gint64 start = g_get_monotonic_time ();

  files = gesso_model_files_open (path, error);
  if (files == NULL || (weights = gesso_weights_new (files, error)) == NULL
      || (unet = gesso_unet_new_for_model (files, weights, NULL, error)) == NULL)
    return FALSE;
  config = gesso_unet_get_config (unet);
  printf ("load:    %.2f s (UNet weights as stored), peak RSS %.2f GiB\n",
          (double) (g_get_monotonic_time () - start) / 1e6, peak_rss_gib ());
  if (!gesso_unet_check_size (unet, batch, side, side, CONTEXT_TOKENS, error))
    return FALSE;
  printf ("activations planned: %.1f MiB (batch %d, latent %dx%d)\n",
          (double) gesso_unet_scratch_bytes (unet, batch, side, side, CONTEXT_TOKENS)
          / (1024.0 * 1024.0), batch, side, side);

  latent = (size_t) batch * (size_t) config->in_channels * (size_t) side * (size_t) side;
  sample = random_floats (rand, latent);
  context = random_floats (rand, (size_t) batch * CONTEXT_TOKENS
                                 * (size_t) config->cross_attention_dim);
  timesteps = g_new (float, batch);
  for (int b = 0; b < batch; b++)
    timesteps[b] = 500.0f;
  out = g_new (float, (size_t) batch * (size_t) config->out_channels * (size_t) side
                      * (size_t) side);
  if (controlnet_path != NULL)
    return run_controlled (unet, controlnet_path, sample, timesteps, context, out, side, batch,
                           evals, rand, error);
  /* an SDXL UNet also reads a pooled text embedding and its size ids (1024 px, uncropped) */
  pooled = random_floats (rand, (size_t) batch
                                 * (size_t) MAX (gesso_unet_config_pooled_dim (config), 1));
  time_ids = g_new0 (float, (size_t) batch * GESSO_UNET_TIME_IDS);
  for (int b = 0; b < batch; b++)
    {
      time_ids[b * GESSO_UNET_TIME_IDS + 0] = time_ids[b * GESSO_UNET_TIME_IDS + 4] = 1024.0f;
      time_ids[b * GESSO_UNET_TIME_IDS + 1] = time_ids[b * GESSO_UNET_TIME_IDS + 5] = 1024.0f;
    }
  added = (GessoUnetAdded) { pooled, time_ids };
  for (int e = 1; e <= evals; e++)
    {
      if (fit_threads)
        gesso_ops_fit_threads_to_load ();
      start = g_get_monotonic_time ();
      if (!gesso_unet_forward_full (unet, sample, timesteps, context, &added, batch, side, side,
                                    CONTEXT_TOKENS, NULL, out, NULL, error))
        return FALSE;
      printf ("eval %d:  %.2f s (batch %d, latent %dx%d, %d threads)%s, peak RSS %.2f GiB\n",
              e, (double) (g_get_monotonic_time () - start) / 1e6, batch, side, side,
              gesso_ops_get_threads (), e == 1 ? ", sizing its arena" : "", peak_rss_gib ());
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  int side = 64, batch = 2, evals = 2, threads = 0;
  gboolean fit_threads = FALSE;
  g_autofree char *controlnet = NULL;
  GOptionEntry entries[] = {
    { "side", 0, 0, G_OPTION_ARG_INT, &side, "Latent side in cells (64 = 512 px for SD)", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Batch (2 = a guidance pair)", "B" },
    { "evals", 0, 0, G_OPTION_ARG_INT, &evals, "Evaluations to time", "K" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads (0 = all cores)", "T" },
    { "fit-threads", 0, 0, G_OPTION_ARG_NONE, &fit_threads,
      "Fit the threads to the load before each evaluation, as a sampling loop does", NULL },
    { "controlnet", 0, 0, G_OPTION_ARG_FILENAME, &controlnet,
      "Also time evaluations with this ControlNet, interleaved", "CN" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) options = g_option_context_new ("MODEL");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || argc != 2)
    {
      fprintf (stderr, "bench-unet: %s\n",
               error ? error->message : "name one model: a .safetensors file or a folder");
      return 2;
    }
  if (side < 1 || batch < 1 || evals < 1 || threads < 0)
    {
      fprintf (stderr, "bench-unet: --side, --batch and --evals must be positive\n");
      return 2;
    }
  gesso_ops_set_threads (threads);
  if (!run (argv[1], side, batch, evals, fit_threads, controlnet, &error))
    {
      fprintf (stderr, "bench-unet: %s\n", error->message);
      return 1;
    }
  return 0;
}
