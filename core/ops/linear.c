/* Linear layer, out = x W^T + b, as torch.nn.Linear stores W ([out_features, in_features]).
 *
 * One GEMM with W read transposed in place. The bias is written into OUT first and the
 * product accumulated onto it (beta = 1): the provider then makes no pass of its own over
 * OUT, so the bias costs nothing beyond that one write.
 */
#include <string.h>

#include "ops/ops.h"

void
gesso_linear (const float *x, int64_t rows, int64_t in_features, const float *weight,
              const float *bias, int64_t out_features, float *out)
{
  g_return_if_fail (rows >= 0 && in_features >= 0 && out_features >= 0);
  g_return_if_fail (out != NULL || rows * out_features == 0);
  g_return_if_fail ((x != NULL && weight != NULL) || rows * out_features * in_features == 0);
  if (rows == 0 || out_features == 0)
    return;

  if (bias != NULL)
    {
      for (int64_t r = 0; r < rows; r++)
        memcpy (out + r * out_features, bias, (size_t) out_features * sizeof (float));
    }
  else if (in_features == 0)
    {
      memset (out, 0, (size_t) (rows * out_features) * sizeof (float));
    }

  /* With no inputs the product is empty, and BLAS rejects a leading dimension of 0. */
  if (in_features == 0)
    return;

  gesso_gemm (FALSE, TRUE, rows, out_features, in_features, 1.0f, x, in_features, weight,
              in_features, bias != NULL ? 1.0f : 0.0f, out, out_features);
}

void
gesso_linear_weight (const float *x, int64_t rows, int64_t in_features, const GessoWeight *weight,
                     const float *bias, int64_t out_features, float *out)
{
  gesso_linear (x, rows, in_features, gesso_weight_widened (weight, out_features * in_features),
                bias, out_features, out);
}
