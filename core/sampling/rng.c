/* Counter-based Gaussian numbers: Philox4x32-10 + Box-Muller. See rng.h for the contract. */
#include "sampling/rng.h"

#include <math.h>

#define PHILOX_M0 UINT32_C (0xD2511F53)
#define PHILOX_M1 UINT32_C (0xCD9E8D57)
#define PHILOX_W0 UINT32_C (0x9E3779B9)
#define PHILOX_W1 UINT32_C (0xBB67AE85)

void
gesso_philox4x32_10 (const uint32_t counter[4], const uint32_t key[2], uint32_t out[4])
{
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];

  for (int round = 0; round < 10; round++)
    {
      /* One Philox S-box: two 32x32->64 multiplies, the high halves xored with the other
       * two words and the round key; the key is bumped by the Weyl constants between rounds. */
      uint64_t p0 = (uint64_t) PHILOX_M0 * c0;
      uint64_t p1 = (uint64_t) PHILOX_M1 * c2;
      uint32_t hi0 = (uint32_t) (p0 >> 32), lo0 = (uint32_t) p0;
      uint32_t hi1 = (uint32_t) (p1 >> 32), lo1 = (uint32_t) p1;

      c0 = hi1 ^ c1 ^ k0;
      c1 = lo1;
      c2 = hi0 ^ c3 ^ k1;
      c3 = lo0;
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* The four normals of block BLOCK of (SEED, STREAM). */
static void
normal_block (uint64_t seed, uint64_t stream, uint64_t block, float z[4])
{
  const uint32_t key[2] = { (uint32_t) seed, (uint32_t) (seed >> 32) };
  const uint32_t counter[4] = { (uint32_t) block, (uint32_t) (block >> 32), (uint32_t) stream,
                                (uint32_t) (stream >> 32) };
  uint32_t w[4];

  gesso_philox4x32_10 (counter, key, w);
  for (int pair = 0; pair < 2; pair++)
    {
      /* (w + 0.5) / 2^32 is never 0 (no log(0)) and never 1 */
      double u0 = ((double) w[2 * pair] + 0.5) * 0x1p-32;
      double u1 = ((double) w[2 * pair + 1] + 0.5) * 0x1p-32;
      double r = sqrt (-2.0 * log (u0));
      double theta = 2.0 * G_PI * u1;

      z[2 * pair] = (float) (r * cos (theta));
      z[2 * pair + 1] = (float) (r * sin (theta));
    }
}

void
gesso_rng_normal (uint64_t seed, uint64_t stream, uint64_t first, float *out, size_t n)
{
  size_t done = 0;

  g_return_if_fail (out != NULL || n == 0);
  while (done < n)
    {
      uint64_t index = first + done;
      uint64_t block = index / 4;
      unsigned lane = (unsigned) (index % 4);
      float z[4];

      normal_block (seed, stream, block, z);
      for (; lane < 4 && done < n; lane++)
        out[done++] = z[lane];
    }
}

void
gesso_rng_init (GessoRng *rng, uint64_t seed)
{
  g_return_if_fail (rng != NULL);
  rng->seed = seed;
  rng->next_stream = 0;
}

uint64_t
gesso_rng_next_normal (GessoRng *rng, float *out, size_t n)
{
  uint64_t stream;

  g_return_val_if_fail (rng != NULL, 0);
  stream = rng->next_stream++;
  gesso_rng_normal (rng->seed, stream, 0, out, n);
  return stream;
}
