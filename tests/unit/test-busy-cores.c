/* The thread count fitted to the load (core/ops/busy_cores.c): the rule, and that a limit
 * never changes a result (the kernels split work independently of the thread count). */
#include "ops/ops.h"
#include "unit/ops-testutil.h"

static void
test_rule (void)
{
  /* an idle machine: every thread wanted, never more than wanted */
  g_assert_cmpint (gesso_ops_threads_for_load (2, 2, 0.0), ==, 2);
  g_assert_cmpint (gesso_ops_threads_for_load (8, 16, 0.2), ==, 8);
  g_assert_cmpint (gesso_ops_threads_for_load (16, 16, 0.4), ==, 16);
  /* one of two cores busy in another program: one thread */
  g_assert_cmpint (gesso_ops_threads_for_load (2, 2, 1.0), ==, 1);
  g_assert_cmpint (gesso_ops_threads_for_load (2, 2, 0.6), ==, 1);
  /* a core less than half used by others still counts as free */
  g_assert_cmpint (gesso_ops_threads_for_load (2, 2, 0.4), ==, 2);
  /* a machine busier than its cores: still one thread */
  g_assert_cmpint (gesso_ops_threads_for_load (4, 4, 9.0), ==, 1);
  g_assert_cmpint (gesso_ops_threads_for_load (0, 4, 0.0), ==, 1);
}

static void
test_limit_keeps_bits (void)
{
  const int64_t m = 301, n = 517, k = 129;
  g_autofree float *a = g_new (float, m * k), *b = g_new (float, k * n);
  g_autofree float *c_all = g_new (float, m * n), *c_one = g_new (float, m * n);
  TestRng rng = { 21 };

  for (int64_t i = 0; i < m * k; i++)
    a[i] = test_rng_uniform (&rng, -1.0f, 1.0f);
  for (int64_t i = 0; i < k * n; i++)
    b[i] = test_rng_uniform (&rng, -1.0f, 1.0f);
  gesso_ops_set_threads (0);
  gesso_gemm (FALSE, FALSE, m, n, k, 1.0f, a, k, b, n, 0.0f, c_all, n);
  gesso_ops_limit_threads (1);
  g_assert_cmpint (gesso_ops_get_threads (), ==, 1);
  gesso_gemm (FALSE, FALSE, m, n, k, 1.0f, a, k, b, n, 0.0f, c_one, n);
  g_assert_cmpmem (c_one, m * n * sizeof (float), c_all, m * n * sizeof (float));
  /* a new thread setting lifts the limit */
  gesso_ops_set_threads (0);
  g_assert_cmpint (gesso_ops_get_threads (), ==, gesso_ops_get_configured_threads ());
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ops/busy-cores/rule", test_rule);
  g_test_add_func ("/ops/busy-cores/limit-keeps-bits", test_limit_keeps_bits);
  return g_test_run ();
}
