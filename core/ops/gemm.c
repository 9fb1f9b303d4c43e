/* The GEMM seam: every matrix product in the engine goes through here, so another provider
 * (oneDNN, our own BF16 kernels) can replace OpenBLAS in one file.
 *
 * One thread pool does all the parallel work: OpenMP's. OpenBLAS (Debian's default build
 * runs its own pthreads pool) is kept single-threaded, and gesso_gemm splits a product into
 * column (or row) blocks across OpenMP threads, each an OpenBLAS call on its block. With two
 * pools, each spins for a while after its work waiting for more (libgomp ~ms, OpenBLAS tens
 * of ms): on a machine with as many threads as cores the idle pool's spinning steals cores
 * from the busy one at every switch between a GEMM and an OpenMP kernel, which is many times
 * per UNet evaluation. Blocks split C, never the K reduction, so every element is summed in
 * the same order whatever the thread count; the blocks themselves are fixed by the shape and
 * the processor count (see gesso_gemm).
 */
#include <cblas.h>
#include <omp.h>

#include "ops/ops.h"

/* Products smaller than this many multiply-adds run on one thread: below it the fork costs
 * more than it saves. */
#define PARALLEL_MIN_MACS (1 << 20)
/* Block edges fall on multiples of this (the width of the providers' micro-kernels). */
#define BLOCK_ALIGN 16

static int configured_threads;          /* 0 = all cores */
static int load_limit;                  /* 0 = none; see gesso_ops_limit_threads */

int
gesso_ops_get_configured_threads (void)
{
  return configured_threads > 0 ? configured_threads : omp_get_num_procs ();
}

static int
available_threads (void)
{
  int n = gesso_ops_get_configured_threads ();

  return load_limit > 0 ? MIN (n, load_limit) : n;
}

static void
provider_single_threaded_once (void)
{
  static gsize done;

  if (g_once_init_enter (&done))
    {
      openblas_set_num_threads (1);
      g_once_init_leave (&done, 1);
    }
}

void
gesso_ops_set_threads (int n_threads)
{
  configured_threads = n_threads > 0 ? n_threads : 0;
  load_limit = 0;
  omp_set_num_threads (available_threads ());
  provider_single_threaded_once ();
}

void
gesso_ops_limit_threads (int n_threads)
{
  load_limit = n_threads > 0 ? n_threads : 0;
  omp_set_num_threads (available_threads ());
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
gesso_gemm_serial (gboolean trans_a, gboolean trans_b, int64_t m, int64_t n, int64_t k,
                   float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc)
{
  if (m <= 0 || n <= 0)
    return;
  provider_single_threaded_once ();
  cblas_sgemm (CblasRowMajor, cblas_trans (trans_a), cblas_trans (trans_b), (blasint) m,
               (blasint) n, (blasint) k, alpha, a, (blasint) lda, b, (blasint) ldb, beta, c,
               (blasint) ldc);
}

/* Elements [first, first + count) of a range of LENGTH split into N_BLOCKS aligned blocks. */
static void
block_range (int64_t length, int n_blocks, int block, int64_t *first, int64_t *count)
{
  int64_t units = (length + BLOCK_ALIGN - 1) / BLOCK_ALIGN;
  int64_t start = units * block / n_blocks * BLOCK_ALIGN;
  int64_t end = units * (block + 1) / n_blocks * BLOCK_ALIGN;

  *first = MIN (start, length);
  *count = MIN (end, length) - *first;
}

void
gesso_gemm (gboolean trans_a, gboolean trans_b, int64_t m, int64_t n, int64_t k, float alpha,
            const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
            int64_t ldc)
{
  /* split the longer side of C, so that each block stays a well-shaped product */
  gboolean split_n = n >= m;
  int64_t side = split_n ? n : m;
  int n_blocks, n_threads;

  if (m <= 0 || n <= 0)
    return;
  /* The blocks depend on the shape and the processor count, never on the thread count:
   * OpenBLAS does not sum a block the way it sums the whole (a small-matrix kernel takes
   * over on small blocks), so blocks that moved with the thread count would move bits. */
  n_blocks = (int) MIN ((int64_t) omp_get_num_procs (), (side + BLOCK_ALIGN - 1) / BLOCK_ALIGN);
  if (n_blocks <= 1 || m * n * MAX (k, 1) < PARALLEL_MIN_MACS)
    {
      gesso_gemm_serial (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  n_threads = omp_in_parallel () ? 1 : MIN (available_threads (), n_blocks);
#pragma omp parallel for num_threads (n_threads) schedule (static) if (n_threads > 1)
  for (int block = 0; block < n_blocks; block++)
    {
      int64_t first, count;

      block_range (side, n_blocks, block, &first, &count);
      if (count == 0)
        continue;
      if (split_n)
        /* columns FIRST.. of op(B) and C: B^T stores them as rows */
        gesso_gemm_serial (trans_a, trans_b, m, count, k, alpha, a, lda,
                           trans_b ? b + first * ldb : b + first, ldb, beta, c + first, ldc);
      else
        /* rows FIRST.. of op(A) and C: A^T stores them as columns */
        gesso_gemm_serial (trans_a, trans_b, count, n, k, alpha,
                           trans_a ? a + first : a + first * lda, lda, b, ldb, beta,
                           c + first * ldc, ldc);
    }
}
