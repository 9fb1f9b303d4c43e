/* Where a job's Gaussian noise comes from.
 *
 * Every pipeline draws its noise through a GessoNoiseSource, one draw per tensor, in a fixed,
 * documented order (each pipeline's header says which draws it makes). In real use the
 * source is Gesso's counter-based RNG (sampling/rng.h): draw k of a job is stream k of the
 * seed, so the same seed gives the same noise whatever the thread count. Tests inject a
 * source that replays the tensors a reference implementation recorded, which is how the
 * pipelines are checked against diffusers without sharing its RNG.
 */
#ifndef GESSO_NOISE_H
#define GESSO_NOISE_H

#include <glib.h>
#include <stddef.h>

#include "sampling/rng.h"

G_BEGIN_DECLS

/* Fills OUT with N standard normal values: the next draw. FALSE (with ERROR) when the
 * source cannot give one (a recording that ran out or has another size). */
typedef gboolean (*GessoNoiseFunc) (gpointer data, float *out, size_t n, GError **error);

typedef struct
{
  GessoNoiseFunc draw;
  gpointer data;
  guint n_draws;                /* draws made so far */
} GessoNoiseSource;

/* A source over RNG (borrowed): draw k is the next stream of its seed. */
void gesso_noise_source_init_rng (GessoNoiseSource *source, GessoRng *rng);
void gesso_noise_source_init (GessoNoiseSource *source, GessoNoiseFunc draw, gpointer data);

gboolean gesso_noise_source_draw (GessoNoiseSource *source, float *out, size_t n,
                                  GError **error);

G_END_DECLS

#endif /* GESSO_NOISE_H */
