/* Noise sources: Gesso's RNG, or whatever a test injects. */
#include "edit/noise.h"

static gboolean
rng_draw (gpointer data, float *out, size_t n, GError **error)
{
  gesso_rng_next_normal (data, out, n);
  return TRUE;
}

void
gesso_noise_source_init (GessoNoiseSource *source, GessoNoiseFunc draw, gpointer data)
{
  g_return_if_fail (source != NULL && draw != NULL);
  source->draw = draw;
  source->data = data;
  source->n_draws = 0;
}

void
gesso_noise_source_init_rng (GessoNoiseSource *source, GessoRng *rng)
{
  gesso_noise_source_init (source, rng_draw, rng);
}

gboolean
gesso_noise_source_draw (GessoNoiseSource *source, float *out, size_t n, GError **error)
{
  g_return_val_if_fail (source != NULL && source->draw != NULL, FALSE);
  if (!source->draw (source->data, out, n, error))
    return FALSE;
  source->n_draws++;
  return TRUE;
}
