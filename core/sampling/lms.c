/* Linear multistep in sigma, as diffusers' LMSDiscreteScheduler (k-diffusion's sample_lms).
 *
 * The probability-flow ODE dx/dsigma = d(x, sigma) = (x - x0) / sigma (Karras et al. 2022,
 * eq. 3 in this parameterisation) is integrated from sigma_i to sigma_{i+1} with the
 * Adams-Bashforth idea: interpolate d through the last r derivatives d_i, d_{i-1}, ...,
 * d_{i-r+1} (at sigma_i, sigma_{i-1}, ...) with the Lagrange polynomial and integrate it
 * exactly, so
 *   x_{i+1} = x_i + sum_j c_j d_{i-j},
 *   c_j = integral from sigma_i to sigma_{i+1} of prod_{k != j} (s - sigma_{i-k}) /
 *         (sigma_{i-j} - sigma_{i-k}) ds,
 * with r = min(i + 1, order). The integrand is a polynomial of degree r - 1 <= 7, which
 * 4-point Gauss-Legendre quadrature integrates exactly (degree <= 7); diffusers' adaptive
 * scipy quad converges to the same values.
 */
#include "sampling/sampler-private.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define LMS_MAX_ORDER 8

/* 4-point Gauss-Legendre nodes and weights on [-1, 1] */
static const double gl_nodes[4] = { -0.86113631159405257522, -0.33998104358485626480,
                                    0.33998104358485626480, 0.86113631159405257522 };
static const double gl_weights[4] = { 0.34785484513745385737, 0.65214515486254614263,
                                      0.65214515486254614263, 0.34785484513745385737 };

/* c_j for a step from sigma[I] with R derivatives. */
static double
lms_coefficient (const float *sigmas, int i, int r, int j)
{
  double a = sigmas[i], b = sigmas[i + 1];
  double half = (b - a) / 2, mid = (a + b) / 2, sum = 0;

  for (int q = 0; q < 4; q++)
    {
      double tau = half * gl_nodes[q] + mid, prod = 1;

      for (int k = 0; k < r; k++)
        if (k != j)
          prod *= (tau - sigmas[i - k]) / ((double) sigmas[i - j] - sigmas[i - k]);
      sum += gl_weights[q] * prod;
    }
  return half * sum;
}

static gboolean
lms_set_timesteps (GessoSampler *s, int n, GError **error)
{
  return sampler_sigma_timesteps (s, n, error);
}

static gboolean
lms_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  int order = s->config.lms_order, i, r, used;
  double sigma, coeff[LMS_MAX_ORDER];
  float *d;

  if (!sampler_current_index (s, st->t, error))
    return FALSE;
  i = s->step_index;
  sigma = s->sigmas[i];
  sampler_history_reserve (s, (guint) order, st->numel);

  d = sampler_history_push (s);
  for (size_t e = 0; e < st->numel; e++)
    {
      double x = st->sample[e], m = st->model_output[e], x0;

      switch (s->config.prediction_type)
        {
        case GESSO_PREDICTION_EPSILON:
          x0 = x - sigma * m;
          break;
        case GESSO_PREDICTION_V:
          x0 = m * (-sigma / sqrt (sigma * sigma + 1)) + x / (sigma * sigma + 1);
          break;
        case GESSO_PREDICTION_SAMPLE:
        default:
          x0 = m;
          break;
        }
      st->x0[e] = (float) x0;
      d[e] = (float) ((x - x0) / sigma);
    }

  /* diffusers pairs min(i + 1, order) coefficients with the derivatives it has kept, newest
   * first; after a mid-schedule start there are fewer derivatives than coefficients */
  r = MIN (i + 1, order);
  used = MIN (r, (int) s->n_history);
  for (int j = 0; j < used; j++)
    coeff[j] = lms_coefficient (s->sigmas, i, r, j);
  for (size_t e = 0; e < st->numel; e++)
    {
      double x = st->sample[e];

      for (int j = 0; j < used; j++)
        x += coeff[j] * sampler_history (s, s->n_history - 1 - (guint) j)[e];
      st->prev[e] = (float) x;
    }
  s->step_index++;
  return TRUE;
}

const SamplerClass gesso_lms_class = {
  .set_timesteps = lms_set_timesteps,
  .scale_divisor = sampler_sigma_scale_divisor,
  .step = lms_step,
  .add_noise_coeffs = sampler_sigma_add_noise_coeffs,
};
