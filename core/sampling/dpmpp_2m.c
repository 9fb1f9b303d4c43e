/* DPM-Solver multistep, as diffusers' DPMSolverMultistepScheduler; "dpmpp_2m" is its
 * default: algorithm dpmsolver++, order 2, midpoint.
 *
 * With alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma alpha_t (the variance-preserving
 * pair of a Karras sigma) and lambda = log(alpha_t / sigma_t) (half the log-SNR), the exact
 * solution of the diffusion ODE from s to t in data-prediction form is (Lu et al. 2022,
 * "DPM-Solver++", eq. 9)
 *   x_t = (sigma_t / sigma_s) x_s + sigma_t integral_{lambda_s}^{lambda_t} e^lambda x0 dlambda.
 * Freezing x0 gives the first-order update (eq. 10, = DDIM)
 *   x_t = (sigma_t / sigma_s) x_s - alpha_t (e^-h - 1) x0_s,  h = lambda_t - lambda_s,
 * and the multistep second order (Algorithm 2) adds the finite difference of the last two
 * x0's: with r = h_prev / h, D1 = (x0_s - x0_prev) / r,
 *   x_t = (sigma_t / sigma_s) x_s - alpha_t (e^-h - 1) (x0_s + D1 / 2)        ("midpoint")
 * or + alpha_t ((e^-h - 1) / h + 1) D1 ("heun"). "dpmsolver" is the same in noise-prediction
 * form (Lu et al. 2022a, eq. 3.7), the SDE variants add fresh noise (Lu et al. 2022b, sec. 5),
 * and order 3 uses the next difference (Algorithm 2's third-order update in diffusers).
 * Like diffusers, the last step (and with fewer than 15 steps the last two) drops to a lower
 * order, which keeps few-step sampling stable.
 */
#include "sampling/sampler-private.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* lambda_min_clipped cuts the schedule where lambda_t (float32, as diffusers' lambda_t
 * buffer) drops below it: the number of usable training timesteps. */
static int
last_timestep (const GessoSampler *s)
{
  int T = s->config.num_train_timesteps, clipped = 0;

  /* searchsorted (flip (lambda_t), lambda_min_clipped): lambda falls with t */
  for (int k = 0; k < T; k++)
    {
      float abar = s->schedule.alphas_cumprod[T - 1 - k];
      float lambda = logf (sqrtf (abar)) - logf (sqrtf (1.0f - abar));

      if (lambda >= s->config.lambda_min_clipped)
        break;
      clipped++;
    }
  return T - clipped;
}

static gboolean
dpm_set_timesteps (GessoSampler *s, int n, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int T = c->num_train_timesteps, last = last_timestep (s);
  g_autofree float *sig = NULL, *log_sig = NULL;
  g_autofree double *d = NULL;
  double *ts = NULL;
  float *sigmas;
  guint len = 0;

  if (last < 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("lambda_min_clipped %g removes every timestep"), c->lambda_min_clipped);
      return FALSE;
    }
  switch (c->timestep_spacing)
    {
    case GESSO_SPACING_LINSPACE:
      {
        g_autofree double *grid = g_new (double, n + 1);

        gesso_np_linspace (0, last - 1, n + 1, grid);
        len = n;
        ts = g_new (double, len);
        for (int i = 0; i < n; i++)       /* reversed, without the final 0 */
          ts[i] = gesso_np_round (grid[n - i]);
      }
      break;
    case GESSO_SPACING_LEADING:
      {
        int ratio = last / (n + 1);

        len = n;
        ts = g_new (double, len);
        for (int i = 0; i < n; i++)
          ts[i] = (double) (n - i) * ratio + c->steps_offset;
      }
      break;
    case GESSO_SPACING_TRAILING:
      {
        double ratio = (double) T / n;
        int64_t count = gesso_np_arange_length (last, 0, -ratio);

        len = (guint) count;
        ts = g_new (double, MAX (count, 1));
        gesso_np_arange (last, -ratio, count, ts);
        for (guint i = 0; i < len; i++)
          ts[i] = gesso_np_round (ts[i]) - 1;
      }
      break;
    }
  if (len == 0)
    {
      g_free (ts);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%d steps give an empty DPM-Solver schedule"), n);
      return FALSE;
    }

  sig = sampler_train_sigmas (s, &log_sig);
  if (c->sigma_spacing == GESSO_SIGMAS_DEFAULT)
    {
      d = g_new (double, len);
      for (guint i = 0; i < len; i++)
        d[i] = gesso_np_interp (ts[i], sig, T);
    }
  else
    {
      /* the training sigmas reversed (descending): ends sig[T-1] .. sig[0] */
      gboolean round_t = c->beta_schedule != GESSO_BETA_SQUAREDCOS_CAP_V2;

      len = n;
      d = g_new (double, len);
      switch (c->sigma_spacing)
        {
        case GESSO_SIGMAS_KARRAS:
          gesso_karras_sigmas (sig[0], sig[T - 1], n, d);
          break;
        case GESSO_SIGMAS_LU_LAMBDAS:
          /* Lu et al. 2022: evenly spaced in lambda (here log sigma = -lambda), as
           * diffusers' ramp: max + ramp (min - max) */
          gesso_np_linspace (0, 1, n, d);
          for (guint i = 0; i < len; i++)
            d[i] = exp ((double) log_sig[T - 1]
                        + d[i] * ((double) log_sig[0] - (double) log_sig[T - 1]));
          break;
        case GESSO_SIGMAS_EXPONENTIAL:
        default:
          gesso_exponential_sigmas (sig[0], sig[T - 1], n, d);
          round_t = FALSE;
          break;
        }
      g_free (ts);
      ts = g_new (double, len);
      for (guint i = 0; i < len; i++)
        {
          double t = gesso_sigma_to_t (d[i], log_sig, T);
          /* diffusers rounds, then stores int64 (which truncates whatever is left) */
          ts[i] = trunc (round_t ? gesso_np_round (t) : t);
        }
    }

  sigmas = g_new (float, len + 1);
  for (guint i = 0; i < len; i++)
    sigmas[i] = (float) d[i];
  sigmas[len] = c->final_sigma_min ? sig[0] : 0.0f;
  sampler_take_timesteps (s, ts, len);
  sampler_take_sigmas (s, sigmas, len + 1);
  s->num_inference_steps = (int) len;
  return sampler_check_train_range (s, error);
}

static guint
dpm_noise_count (const GessoSampler *s, double t)
{
  return s->config.algorithm_type == GESSO_DPM_SDE_DPMSOLVER_PP
         || s->config.algorithm_type == GESSO_DPM_SDE_DPMSOLVER;
}

typedef struct
{
  double alpha, sigma, lambda;
} Point;

static Point
point (double sigma)
{
  Point p;

  p.alpha = 1 / sqrt (sigma * sigma + 1);
  p.sigma = sigma * p.alpha;
  p.lambda = sigma > 0 ? log (p.alpha) - log (p.sigma) : INFINITY;
  return p;
}

/* The converted model output (x0 for the ++ variants, eps otherwise) into M, x0 into X0. */
static void
convert_model_output (GessoSampler *s, const SamplerStep *st, Point p, float *m)
{
  const GessoSamplerConfig *c = &s->config;
  gboolean data = c->algorithm_type == GESSO_DPM_DPMSOLVER_PP
                  || c->algorithm_type == GESSO_DPM_SDE_DPMSOLVER_PP;

  for (size_t i = 0; i < st->numel; i++)
    st->x0[i] = (float) sampler_x0 (c->prediction_type, st->sample[i], st->model_output[i],
                                    p.alpha, p.sigma);
  if (c->thresholding)
    sampler_threshold (s, st->x0, st->numel, st->batch);
  if (data)
    memcpy (m, st->x0, st->numel * sizeof (float));
  else
    for (size_t i = 0; i < st->numel; i++)
      {
        /* eps as the model gave it, or recovered from the thresholded x0 */
        double x = st->sample[i];
        m[i] = c->thresholding || c->prediction_type != GESSO_PREDICTION_EPSILON
                 ? (float) ((x - p.alpha * st->x0[i]) / p.sigma)
                 : st->model_output[i];
      }
}

static gboolean
dpm_step (GessoSampler *s, const SamplerStep *st, GError **error)
{
  const GessoSamplerConfig *c = &s->config;
  int i, N = (int) s->n_timesteps, order;
  gboolean final_low, second_low, data, sde;
  Point pt, p0, p1 = { 0 }, p2 = { 0 };
  double h, e, cx, a0, a1 = 0, a2 = 0, cn = 0, r0 = 1, r1 = 1;
  const float *m0, *m1 = NULL, *m2 = NULL;
  float *m;

  if (!sampler_current_index (s, st->t, error))
    return FALSE;
  i = s->step_index;
  final_low = i == N - 1
              && (c->euler_at_final || (c->lower_order_final && N < 15) || !c->final_sigma_min);
  second_low = i == N - 2 && c->lower_order_final && N < 15;
  data = c->algorithm_type == GESSO_DPM_DPMSOLVER_PP
         || c->algorithm_type == GESSO_DPM_SDE_DPMSOLVER_PP;
  sde = c->algorithm_type == GESSO_DPM_SDE_DPMSOLVER_PP
        || c->algorithm_type == GESSO_DPM_SDE_DPMSOLVER;

  sampler_history_reserve (s, (guint) c->solver_order, st->numel);
  pt = point (s->sigmas[i + 1]);
  p0 = point (s->sigmas[i]);
  m = sampler_history_push (s);
  convert_model_output (s, st, p0, m);

  if (c->solver_order == 1 || s->lower_order_nums < 1 || final_low)
    order = 1;
  else if (c->solver_order == 2 || s->lower_order_nums < 2 || second_low)
    order = 2;
  else
    order = 3;
  /* a batch-shape change mid-run restarted the history */
  order = MIN (order, (int) s->n_history);

  h = pt.lambda - p0.lambda;
  m0 = sampler_history (s, s->n_history - 1);
  if (order >= 2)
    {
      p1 = point (s->sigmas[i - 1]);
      m1 = sampler_history (s, s->n_history - 2);
      r0 = (p0.lambda - p1.lambda) / h;
    }
  if (order == 3)
    {
      p2 = point (s->sigmas[i - 2]);
      m2 = sampler_history (s, s->n_history - 3);
      r1 = (p1.lambda - p2.lambda) / h;
    }

  /* x_t = cx x + a0 D0 + a1 D1 + a2 D2 + cn z, the coefficients per variant and order */
  if (data && !sde)
    {
      e = expm1 (-h);                                 /* e^-h - 1 */
      cx = pt.sigma / p0.sigma;
      a0 = -pt.alpha * e;
      if (order == 2)
        a1 = c->solver_heun ? pt.alpha * (e / h + 1) : -0.5 * pt.alpha * e;
      else if (order == 3)
        {
          a1 = pt.alpha * (e / h + 1);
          a2 = -pt.alpha * ((e + h) / (h * h) - 0.5);
        }
    }
  else if (data)
    {
      e = -expm1 (-2 * h);                            /* 1 - e^-2h */
      cx = pt.sigma / p0.sigma * exp (-h);
      a0 = pt.alpha * e;
      if (order == 2)
        a1 = c->solver_heun ? pt.alpha * (e / (-2 * h) + 1) : 0.5 * pt.alpha * e;
      else if (order == 3)
        {
          a1 = pt.alpha * (e / (-2 * h) + 1);
          a2 = pt.alpha * ((e - 2 * h) / (4 * h * h) - 0.5);
        }
      cn = pt.sigma * sqrt (e);
    }
  else if (!sde)
    {
      e = expm1 (h);                                  /* e^h - 1 */
      cx = pt.alpha / p0.alpha;
      a0 = -pt.sigma * e;
      if (order == 2)
        a1 = c->solver_heun ? -pt.sigma * (e / h - 1) : -0.5 * pt.sigma * e;
      else if (order == 3)
        {
          a1 = -pt.sigma * (e / h - 1);
          a2 = -pt.sigma * ((e - h) / (h * h) - 0.5);
        }
    }
  else
    {
      e = expm1 (h);
      cx = pt.alpha / p0.alpha;
      a0 = -2 * pt.sigma * e;
      if (order == 2)
        a1 = c->solver_heun ? -2 * pt.sigma * (e / h - 1) : -pt.sigma * e;
      cn = pt.sigma * sqrt (expm1 (2 * h));
    }
  if (pt.lambda == INFINITY)
    {
      /* sigma_next = 0 (final_sigmas_type "zero", always a first-order ++ step): the limit
       * h -> inf of the update is x0 itself */
      cx = 0;
      a0 = pt.alpha;
      cn = 0;
    }

  for (size_t k = 0; k < st->numel; k++)
    {
      double x = cx * st->sample[k] + a0 * m0[k];

      if (order == 2)
        x += a1 * ((m0[k] - (double) m1[k]) / r0);
      else if (order == 3)
        {
          double d10 = (m0[k] - (double) m1[k]) / r0, d11 = (m1[k] - (double) m2[k]) / r1;

          x += a1 * (d10 + r0 / (r0 + r1) * (d10 - d11)) + a2 * ((d10 - d11) / (r0 + r1));
        }
      if (sde)
        x += cn * st->noise[k];
      st->prev[k] = (float) x;
    }
  if (s->lower_order_nums < c->solver_order)
    s->lower_order_nums++;
  s->step_index++;
  return TRUE;
}

static gboolean
dpm_add_noise_coeffs (GessoSampler *s, double t, double *a, double *b, GError **error)
{
  int index;
  Point p;

  if (s->begin_index < 0)
    {
      if (!sampler_index_for_timestep (s, t, &index, error))
        return FALSE;
    }
  else
    index = s->step_index >= 0 ? s->step_index : s->begin_index;
  p = point (s->sigmas[index]);
  *a = p.alpha;
  *b = p.sigma;
  return TRUE;
}

const SamplerClass gesso_dpm_class = {
  .set_timesteps = dpm_set_timesteps,
  .noise_count = dpm_noise_count,
  .step = dpm_step,
  .add_noise_coeffs = dpm_add_noise_coeffs,
};
