/* The GEMM seam: every matrix product in the engine goes through here, so another provider
 * (oneDNN, our own BF16 kernels) can replace OpenBLAS in one file. */
#include <cblas.h>
#include <omp.h>

#include "ops/ops.h"

static int configured_threads;          /* 0 = all cores */
static int threads_before_serial;

static int
available_threads (void)
{
  return configured_threads > 0 ? configured_threads : omp_get_num_procs ();
}

void
gesso_ops_set_threads (int n_threads)
{
  configured_threads = n_threads > 0 ? n_threads : 0;
  omp_set_num_threads (available_threads ());
  openblas_set_num_threads (available_threads ());
}

int
gesso_ops_get_threads (void)
{
  return available_threads ();
}

static inline CBLAS_TRANSPOSE
cblas_trans (gboolean trans)
{
  return trans ? CblasTrans : CblasNoTrans;
}

void
gesso_gemm (gboolean trans_a, gboolean trans_b, int64_t m, int64_t n, int64_t k, float alpha,
            const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
            int64_t ldc)
{
  if (m <= 0 || n <= 0)
    return;
  cblas_sgemm (CblasRowMajor, cblas_trans (trans_a), cblas_trans (trans_b), (blasint) m,
               (blasint) n, (blasint) k, alpha, a, (blasint) lda, b, (blasint) ldb, beta, c,
               (blasint) ldc);
}

void
gesso_gemm_serial_begin (void)
{
  threads_before_serial = openblas_get_num_threads ();
  openblas_set_num_threads (1);
}

void
gesso_gemm_serial_end (void)
{
  openblas_set_num_threads (threads_before_serial);
}

void
gesso_gemm_serial (gboolean trans_a, gboolean trans_b, int64_t m, int64_t n, int64_t k,
                   float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc)
{
  gesso_gemm (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
