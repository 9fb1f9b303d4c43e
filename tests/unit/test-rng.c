/* Gesso's counter-based Gaussian RNG (core/sampling/rng.h): Philox4x32-10 against the
 * Random123 known answers, determinism whatever the chunking and thread count, and the
 * moments of the normals. */
#include <math.h>
#include <string.h>

#include "sampling/rng.h"

static void
test_rng_philox_kat (void)
{
  /* Random123's known-answer vectors for Philox4x32-10 */
  static const uint32_t cases[3][10] = {
    { 0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 },
    { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
      0x41c83b0e, 0xa20bc7c6, 0x6d5451fd },
    { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
      0x94fdcceb, 0x5001e420, 0x24126ea1 },
  };

  for (int i = 0; i < 3; i++)
    {
      uint32_t out[4];
      gesso_philox4x32_10 (cases[i], cases[i] + 4, out);
      for (int k = 0; k < 4; k++)
        g_assert_cmphex (out[k], ==, cases[i][6 + k]);
    }
}

typedef struct
{
  uint64_t seed, stream, first;
  float *out;
  size_t n;
} Chunk;

static gpointer
fill_chunk (gpointer data)
{
  Chunk *c = data;
  gesso_rng_normal (c->seed, c->stream, c->first, c->out, c->n);
  return NULL;
}

static void
test_rng_determinism (void)
{
  const size_t n = 10007;
  g_autofree float *a = g_new (float, n), *b = g_new (float, n), *c = g_new (float, n);
  GessoRng rng;
  GThread *threads[5];
  Chunk chunks[5];
  size_t same = 0;

  gesso_rng_normal (42, 3, 0, a, n);
  gesso_rng_normal (42, 3, 0, b, n);
  g_assert_cmpmem (a, n * sizeof (float), b, n * sizeof (float));

  /* any split, unaligned to the 4-wide blocks, gives the same numbers */
  memset (b, 0, n * sizeof (float));
  for (size_t at = 0, len = 1; at < n; at += len, len = len * 3 + 1)
    gesso_rng_normal (42, 3, at, b + at, MIN (len, n - at));
  g_assert_cmpmem (a, n * sizeof (float), b, n * sizeof (float));

  /* and so does any number of threads */
  memset (c, 0, n * sizeof (float));
  for (int t = 0; t < 5; t++)
    {
      size_t lo = n * t / 5, hi = n * (t + 1) / 5;
      chunks[t] = (Chunk) { 42, 3, lo, c + lo, hi - lo };
      threads[t] = g_thread_new ("rng", fill_chunk, &chunks[t]);
    }
  for (int t = 0; t < 5; t++)
    g_thread_join (threads[t]);
  g_assert_cmpmem (a, n * sizeof (float), c, n * sizeof (float));

  /* other streams and seeds are other numbers */
  gesso_rng_normal (42, 4, 0, b, n);
  gesso_rng_normal (43, 3, 0, c, n);
  for (size_t i = 0; i < n; i++)
    same += (a[i] == b[i]) + (a[i] == c[i]);
  g_assert_cmpuint (same, <, 4);

  /* the stateful form hands out streams 0, 1, 2 in call order */
  gesso_rng_init (&rng, 42);
  g_assert_cmpuint (gesso_rng_next_normal (&rng, b, 16), ==, 0);
  g_assert_cmpuint (gesso_rng_next_normal (&rng, b, 16), ==, 1);
  g_assert_cmpuint (gesso_rng_next_normal (&rng, b, 16), ==, 2);
  g_assert_cmpuint (gesso_rng_next_normal (&rng, b, 16), ==, 3);
  gesso_rng_normal (42, 3, 0, c, 16);
  g_assert_cmpmem (b, 16 * sizeof (float), c, 16 * sizeof (float));
}

static void
test_rng_statistics (void)
{
  const size_t n = 1000000;
  g_autofree float *z = g_new (float, n);
  double sum = 0, sum2 = 0, sum4 = 0, mean, var, kurt, maxabs = 0;
  size_t beyond2 = 0;

  gesso_rng_normal (20240601, 0, 0, z, n);
  for (size_t i = 0; i < n; i++)
    {
      double v = z[i];
      g_assert_true (isfinite (v));
      sum += v;
      sum2 += v * v;
      sum4 += v * v * v * v;
      beyond2 += fabs (v) > 2;
      maxabs = MAX (maxabs, fabs (v));
    }
  mean = sum / n;
  var = sum2 / n - mean * mean;
  kurt = sum4 / n;
  /* 5 standard errors: sd(mean) = 1/sqrt(n), sd(var) = sqrt(2/n), sd(E z^4) = sqrt(96/n) */
  g_assert_cmpfloat (fabs (mean), <, 5 / sqrt ((double) n));
  g_assert_cmpfloat (fabs (var - 1), <, 5 * sqrt (2.0 / n));
  g_assert_cmpfloat (fabs (kurt - 3), <, 5 * sqrt (96.0 / n));
  /* P(|z| > 2) = 0.0455003 */
  g_assert_cmpfloat (fabs ((double) beyond2 / n - 0.0455003),
                     <, 5 * sqrt (0.0455003 * (1 - 0.0455003) / n));
  g_assert_cmpfloat (maxabs, <, 6.9);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sampling/rng/philox-kat", test_rng_philox_kat);
  g_test_add_func ("/sampling/rng/determinism", test_rng_determinism);
  g_test_add_func ("/sampling/rng/statistics", test_rng_statistics);
  return g_test_run ();
}
