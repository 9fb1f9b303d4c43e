/* bench-unet: what one UNet evaluation of a real-sized model costs, in time and memory.
 *
 * Loads the UNet of MODEL (a .safetensors file or a diffusers folder; weights widened to
 * float32 as a job would), then times EVALS forwards at a latent of SIDE x SIDE cells with a
 * batch of BATCH (2 = a classifier-free guidance pair, what every guided step runs) on random
 * inputs. Prints the load time, each evaluation's time and the process's peak resident set
 * (getrusage), which is what `/usr/bin/time -v` reports as "Maximum resident set size".
 *
 *   bench-unet MODEL [--side 64] [--batch 2] [--evals 2] [--threads 0]
 */
#include <glib.h>
#include <stdio.h>
#include <sys/resource.h>

#include "gesso.h"
#include "io/model_files.h"
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

static gboolean
run (const char *path, int side, int batch, int evals, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  g_autofree float *sample = NULL, *context = NULL, *timesteps = NULL, *out = NULL;
  const GessoUnetConfig *config;
  size_t latent;
  gint64 start = g_get_monotonic_time ();

  files = gesso_model_files_open (path, error);
  if (files == NULL || (weights = gesso_weights_new (files, error)) == NULL
      || (unet = gesso_unet_new_for_model (files, weights, NULL, error)) == NULL)
    return FALSE;
  config = gesso_unet_get_config (unet);
  printf ("load:    %.2f s (UNet widened to float32), peak RSS %.2f GiB\n",
          (double) (g_get_monotonic_time () - start) / 1e6, peak_rss_gib ());
  if (!gesso_unet_check_size (unet, batch, side, side, CONTEXT_TOKENS, error))
    return FALSE;

  latent = (size_t) batch * (size_t) config->in_channels * (size_t) side * (size_t) side;
  sample = random_floats (rand, latent);
  context = random_floats (rand, (size_t) batch * CONTEXT_TOKENS
                                 * (size_t) config->cross_attention_dim);
  timesteps = g_new (float, batch);
  for (int b = 0; b < batch; b++)
    timesteps[b] = 500.0f;
  out = g_new (float, (size_t) batch * (size_t) config->out_channels * (size_t) side
                      * (size_t) side);
  for (int e = 1; e <= evals; e++)
    {
      start = g_get_monotonic_time ();
      if (!gesso_unet_forward (unet, sample, timesteps, context, batch, side, side,
                               CONTEXT_TOKENS, out, NULL, error))
        return FALSE;
      printf ("eval %d:  %.2f s (batch %d, latent %dx%d)%s, peak RSS %.2f GiB\n", e,
              (double) (g_get_monotonic_time () - start) / 1e6, batch, side, side,
              e == 1 ? ", sizing its arena" : "", peak_rss_gib ());
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  int side = 64, batch = 2, evals = 2, threads = 0;
  GOptionEntry entries[] = {
    { "side", 0, 0, G_OPTION_ARG_INT, &side, "Latent side in cells (64 = 512 px for SD)", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Batch (2 = a guidance pair)", "B" },
    { "evals", 0, 0, G_OPTION_ARG_INT, &evals, "Evaluations to time", "K" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads (0 = all cores)", "T" },
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
  if (!run (argv[1], side, batch, evals, &error))
    {
      fprintf (stderr, "bench-unet: %s\n", error->message);
      return 1;
    }
  return 0;
}
