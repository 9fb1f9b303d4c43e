/* Shared by the kernel tests: a seeded generator and comparisons against double references. */
#ifndef GESSO_OPS_TESTUTIL_H
#define GESSO_OPS_TESTUTIL_H

#include <glib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* splitmix64: tiny, seeded, and the same sequence on every platform, so a failure can be
 * replayed from its seed. */
typedef struct
{
  uint64_t state;
} TestRng;

static inline uint64_t
test_rng_next (TestRng *rng)
{
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15u);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float
test_rng_uniform (TestRng *rng, float lo, float hi)
{
  double u = (double) (test_rng_next (rng) >> 11) * 0x1.0p-53;

  return (float) (lo + (hi - lo) * u);
}

static inline float
test_rng_normal (TestRng *rng)
{
  double u1 = ((double) (test_rng_next (rng) >> 11) + 1.0) * 0x1.0p-53;
  double u2 = (double) (test_rng_next (rng) >> 11) * 0x1.0p-53;

  return (float) (sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
}

static inline float *
test_floats_uniform (TestRng *rng, size_t n, float lo, float hi)
{
  float *x = g_new (float, n ? n : 1);

  for (size_t i = 0; i < n; i++)
    x[i] = test_rng_uniform (rng, lo, hi);
  return x;
}

/* mean + std * N(0, 1) */
static inline float *
test_floats_normal (TestRng *rng, size_t n, float mean, float std)
{
  float *x = g_new (float, n ? n : 1);

  for (size_t i = 0; i < n; i++)
    x[i] = mean + std * test_rng_normal (rng);
  return x;
}

static inline float *
test_floats_dup (const float *x, size_t n)
{
  return g_memdup2 (x, (n ? n : 1) * sizeof (float));
}

/* Every |got - want| <= atol + rtol |want|; on failure, names the first bad index. Returns
 * the largest error seen, in units of (atol + rtol |want|), for test logs. */
static inline double
test_check_close (const char *what, const float *got, const double *want, size_t n, double atol,
                  double rtol)
{
  double worst = 0.0;

  for (size_t i = 0; i < n; i++)
    {
      double bound = atol + rtol * fabs (want[i]);
      double err = fabs ((double) got[i] - want[i]);

      if (!(err <= bound))
        g_error ("%s: index %zu: got %.9g, want %.9g (error %.3g, bound %.3g)", what, i,
                 (double) got[i], want[i], err, bound);
      if (err / bound > worst)
        worst = err / bound;
    }
  return worst;
}

#endif /* GESSO_OPS_TESTUTIL_H */
