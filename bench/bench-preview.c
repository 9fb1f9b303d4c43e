/* bench-preview: what a per-step preview costs next to the step it shows.
 *
 * Opens MODEL, fits its preview map (timed: the one-time cost of the first preview), then at
 * the model's native size times a preview render of the sampler's estimate (the cost added
 * to every step when previews are on), one UNet evaluation (batch 1) and the guided pair
 * (batch 2, what a step with guidance runs), and the VAE decode a full-quality preview would
 * need instead. Prints the times and the ratios, with the thread count and build type.
 *
 *   bench-preview MODEL [--size 160] [--threads 0]
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "edit/model-private.h"
#include "edit/pipeline.h"
#include "edit/preview.h"
#include "ops/ops.h"
#include "sampling/rng.h"

/* Seconds per call of FN, averaged over at least MIN_TIME seconds after one warm-up call. */
static double
time_calls (gboolean (*fn) (gpointer data, GError **error), gpointer data, double min_time,
            GError **error)
{
  gint64 start;
  double elapsed;
  int calls = 0;

  if (!fn (data, error))
    return -1;
  start = g_get_monotonic_time ();
  do
    {
      if (!fn (data, error))
        return -1;
      calls++;
      elapsed = (double) (g_get_monotonic_time () - start) / 1e6;
    }
  while (elapsed < min_time);
  return elapsed / calls;
}

typedef struct
{
  GessoModel *model;
  GessoPreviewer *previewer;
  int side;                     /* latent cells */
  int batch;
  float *sample, *timesteps, *context, *out;
  float *image;
} Bench;

static gboolean
render (gpointer data, GError **error)
{
  Bench *b = data;

  return gesso_previewer_render (b->previewer) != NULL;
}

static gboolean
unet (gpointer data, GError **error)
{
  Bench *b = data;

  return gesso_unet_forward (b->model->unet, b->sample, b->timesteps, b->context, b->batch,
                             b->side, b->side, gesso_model_context_tokens (b->model), b->out,
                             NULL, error);
}

static gboolean
decode (gpointer data, GError **error)
{
  Bench *b = data;

  return gesso_pipeline_decode (b->model, b->sample, b->side, b->side, b->image, error);
}

static gboolean
run (const char *path, int size, int threads, GError **error)
{
  g_autoptr (GessoModel) model = NULL;
  g_autoptr (GessoPreviewer) previewer = NULL;
  g_autofree float *sample = NULL, *timesteps = NULL, *context = NULL, *out = NULL;
  g_autofree float *image = NULL;
  GessoModelParams params;
  GessoRegion region = { 0 };
  Bench b = { 0 };
  int native, f, channels;
  size_t latent, ctx;
  gint64 start;
  double fit_s, render_s, unet1_s, unet2_s, decode_s;
  GessoRng rng;

  gesso_model_params_init (&params);
  params.path = path;
  params.n_threads = threads;
  if ((model = gesso_model_open (&params, error)) == NULL)
    return FALSE;
  native = gesso_model_get_native_size (model);
  f = gesso_model_get_latent_factor (model);
  channels = gesso_vae_latent_channels (model->vae);
  start = g_get_monotonic_time ();
  if (gesso_model_preview_map (model, error) == NULL)
    return FALSE;
  fit_s = (double) (g_get_monotonic_time () - start) / 1e6;

  region.width = region.height = region.work_width = region.work_height = native;
  if ((previewer = gesso_previewer_new (model, size, &region, NULL, NULL, error)) == NULL)
    return FALSE;
  b.model = model;
  b.previewer = previewer;
  b.side = native / f;
  latent = (size_t) channels * (size_t) b.side * (size_t) b.side;
  ctx = (size_t) (gesso_model_context_tokens (model) * gesso_model_context_width (model));
  sample = g_new (float, 2 * latent);
  context = g_new (float, 2 * ctx);
  timesteps = g_new (float, 2);
  out = g_new (float, 2 * latent);
  image = g_new (float, 3 * (size_t) native * (size_t) native);
  gesso_rng_init (&rng, 1);
  gesso_rng_next_normal (&rng, sample, 2 * latent);
  gesso_rng_next_normal (&rng, context, 2 * ctx);
  timesteps[0] = timesteps[1] = 500.0f;
  memcpy (gesso_previewer_latent (previewer, NULL), sample, latent * sizeof (float));
  b.sample = sample;
  b.context = context;
  b.timesteps = timesteps;
  b.out = out;
  b.image = image;

  gesso_model_apply_threads (model);
  if ((render_s = time_calls (render, &b, 0.5, error)) < 0)
    return FALSE;
  b.batch = 1;
  if ((unet1_s = time_calls (unet, &b, 1.0, error)) < 0)
    return FALSE;
  b.batch = 2;
  if ((unet2_s = time_calls (unet, &b, 1.0, error)) < 0)
    return FALSE;
  if ((decode_s = time_calls (decode, &b, 1.0, error)) < 0)
    return FALSE;

  printf ("model %s: %s, %d px native, latent %d x %d x %d; %d threads, %s build\n", path,
          gesso_model_get_architecture (model), native, channels, b.side, b.side,
          gesso_ops_get_threads (), GESSO_BUILD_TYPE);
  printf ("preview map fit (once per model):  %10.3f ms\n", fit_s * 1e3);
  printf ("preview render, %3d px:             %10.3f ms\n", size, render_s * 1e3);
  printf ("UNet evaluation, batch 1:          %10.3f ms   render / UNet %.2e\n", unet1_s * 1e3,
          render_s / unet1_s);
  printf ("UNet evaluation, batch 2 (guided): %10.3f ms   render / step %.2e\n", unet2_s * 1e3,
          render_s / unet2_s);
  printf ("VAE decode (a full preview):       %10.3f ms   render / decode %.2e\n",
          decode_s * 1e3, render_s / decode_s);
  return TRUE;
}

int
main (int argc, char **argv)
{
  int size = 160, threads = 0;
  GOptionEntry entries[] = {
    { "size", 0, 0, G_OPTION_ARG_INT, &size, "Preview size, longest side in pixels", "P" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads (0 = all cores)", "T" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) options = g_option_context_new ("MODEL");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || argc != 2)
    {
      fprintf (stderr, "bench-preview: %s\n",
               error ? error->message : "name one model: a .safetensors file or a folder");
      return 2;
    }
  if (size < 1 || threads < 0)
    {
      fprintf (stderr, "bench-preview: --size must be positive and --threads 0 or more\n");
      return 2;
    }
  if (!run (argv[1], size, threads, &error))
    {
      fprintf (stderr, "bench-preview: %s\n", error->message);
      return 1;
    }
  return 0;
}
