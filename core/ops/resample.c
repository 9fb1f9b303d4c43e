/* Nearest-neighbour 2x upsampling, as torch.nn.functional.interpolate (scale_factor=2,
 * mode="nearest") in the UNet and VAE decoder up blocks: every value becomes a 2x2 block.
 *
 * Pure data movement, so the point is to touch memory once: each output row pair is written
 * from one read of the input row, the second row copied from the first while it is in L1.
 */
#include <string.h>
#include <omp.h>

#include "ops/ops.h"

/* Copies run at several GB/s; below this many output values threads do not pay. */
#define PARALLEL_MIN_VALUES ((int64_t) 1 << 17)

__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
widen_row (const float *x, int64_t w, float *out)
{
#pragma omp simd
  for (int64_t j = 0; j < w; j++)
    {
      out[2 * j] = x[j];
      out[2 * j + 1] = x[j];
    }
}

void
gesso_upsample_nearest2x (const float *x, int64_t planes, int64_t h, int64_t w, float *out)
{
  int n_threads = gesso_ops_get_threads ();
  int64_t rows = planes * h;
  gboolean parallel;

  g_return_if_fail (planes >= 0 && h >= 0 && w >= 0);
  g_return_if_fail ((x != NULL && out != NULL) || rows * w == 0);
  if (rows * w == 0)
    return;

  parallel = n_threads > 1 && rows > 1 && 4 * rows * w >= PARALLEL_MIN_VALUES;

  /* Input row r (plane r / h, row r % h) becomes output rows 2r and 2r + 1, because the
   * output planes are 2h rows tall: the mapping needs no division. */
#pragma omp parallel for num_threads (n_threads) schedule (static) if (parallel)
  for (int64_t r = 0; r < rows; r++)
    {
      float *top = out + 2 * r * 2 * w;

      widen_row (x + r * w, w, top);
      memcpy (top + 2 * w, top, (size_t) (2 * w) * sizeof (float));
    }
}
