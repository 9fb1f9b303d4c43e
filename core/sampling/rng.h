/* Gesso's random numbers: a counter-based Gaussian generator.
 *
 * Every Gaussian number Gesso draws is a pure function of three integers, (seed, stream,
 * index), so a result never depends on the thread count, on how the work is split into
 * chunks, or on what was drawn before:
 *
 *   generator  Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy
 *              as 1, 2, 3", SC 2011), the Random123 reference algorithm: 10 rounds, multipliers
 *              0xD2511F53 / 0xCD9E8D57, Weyl key increments 0x9E3779B9 / 0xBB67AE85.
 *   key        {seed & 0xffffffff, seed >> 32}
 *   counter    for normal number INDEX of STREAM: block b = INDEX / 4,
 *              counter = {b & 0xffffffff, b >> 32, stream & 0xffffffff, stream >> 32}
 *   normals    the block's four 32-bit words w0..w3 become uniforms u_k = (w_k + 0.5) / 2^32,
 *              strictly inside (0, 1), and two Box-Muller pairs (Box & Muller 1958):
 *                z0 = r01 cos(2 pi u1), z1 = r01 sin(2 pi u1),  r01 = sqrt(-2 ln u0)
 *                z2 = r23 cos(2 pi u3), z3 = r23 sin(2 pi u3),  r23 = sqrt(-2 ln u2)
 *              computed in double and rounded to float. Normal INDEX is z_(INDEX mod 4).
 *
 * A "draw" (one noise tensor a sampler or pipeline asks for) uses one stream; GessoRng hands
 * out streams 0, 1, 2, ... in call order, so the n-th draw of a job is the same whatever
 * happened around it. |z| never exceeds sqrt(-2 ln 2^-33) ~ 6.8 (the smallest uniform).
 */
#ifndef GESSO_RNG_H
#define GESSO_RNG_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

/* One Philox4x32-10 block: OUT = philox(COUNTER, KEY). */
void gesso_philox4x32_10 (const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* Normals FIRST .. FIRST + N - 1 of (SEED, STREAM) into OUT. Any split of a range into
 * pieces gives the same numbers as one call over the whole range. */
void gesso_rng_normal (uint64_t seed, uint64_t stream, uint64_t first, float *out, size_t n);

/* A seeded sequence of draws: each gesso_rng_next_normal() call takes the next stream. */
typedef struct
{
  uint64_t seed;
  uint64_t next_stream;
} GessoRng;

void gesso_rng_init (GessoRng *rng, uint64_t seed);
/* Fills OUT with N normals from the next stream; returns the stream it used. */
uint64_t gesso_rng_next_normal (GessoRng *rng, float *out, size_t n);

G_END_DECLS

#endif /* GESSO_RNG_H */
