/* The shared sampling loop; see denoise.h for the algorithm and the soft-mask rule. */
#include "edit/denoise.h"

#include <math.h>
#include <string.h>
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

float *
gesso_job_progress_estimate (GessoJobProgress *p)
{
  if (p == NULL || p->previewer == NULL)
    return NULL;
  return gesso_previewer_latent (p->previewer, NULL);
}

gboolean
gesso_job_progress_step (GessoJobProgress *p, GError **error)
{
  const GessoImage *preview;

  if (p == NULL)
    return TRUE;
  p->done++;
  if (p->func == NULL)
    return TRUE;
  preview = p->previewer != NULL ? gesso_previewer_render (p->previewer) : NULL;
  if (!p->func (p->done, p->total, preview, p->data))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CANCELLED, _("cancelled after step %d of %d"),
                   p->done, p->total);
      return FALSE;
    }
  return TRUE;
}

static gboolean
is_repaint (const GessoDenoise *d)
{
  return gesso_sampler_get_config (d->sampler)->kind == GESSO_SAMPLER_REPAINT;
}

/* Training timesteps between two RePaint levels. */
static int
repaint_scale (const GessoDenoise *d)
{
  const GessoSamplerConfig *c = gesso_sampler_get_config (d->sampler);
  guint undo = gesso_sampler_repaint_undo_noise_count (d->sampler);

  return undo > 0 ? (int) undo : c->num_train_timesteps;
}

gboolean
gesso_denoise_init (GessoDenoise *d, GessoSampler *sampler, GessoGuider *guider,
                    GessoNoiseSource *noise, GessoPrediction prediction, GError **error)
{
  guint n_noise = 1;

  g_return_val_if_fail (d != NULL && sampler != NULL && guider != NULL && noise != NULL, FALSE);
  memset (d, 0, sizeof *d);
  d->sampler = sampler;
  d->guider = guider;
  d->noise = noise;
  d->prediction = prediction;
  d->phase = "denoise";
  d->plane = (size_t) (guider->height * guider->width);
  d->numel = (size_t) guider->latent_channels * d->plane;
  if (is_repaint (d))
    n_noise = MAX (1, gesso_sampler_repaint_undo_noise_count (sampler));
  else
    {
      guint n;
      const double *ts = gesso_sampler_get_timesteps (sampler, &n);

      for (guint i = 0; i < n; i++)
        n_noise = MAX (n_noise, gesso_sampler_step_noise_count (sampler, ts[i]));
    }
  d->scaled = g_try_new (float, d->numel);
  d->prediction_buf = g_try_new (float, d->numel);
  d->noise_buf = g_try_new (float, (size_t) n_noise * d->numel);
  d->known = g_try_new (float, d->numel);
  d->keep = g_try_new (float, d->plane);
  if (d->scaled == NULL || d->prediction_buf == NULL || d->noise_buf == NULL || d->known == NULL
      || d->keep == NULL)
    {
      gesso_denoise_clear (d);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory for the sampler's %u noise tensors"), n_noise);
      return FALSE;
    }
  return TRUE;
}

void
gesso_denoise_clear (GessoDenoise *d)
{
  if (d == NULL)
    return;
  g_free (d->scaled);
  g_free (d->prediction_buf);
  g_free (d->noise_buf);
  g_free (d->known);
  g_free (d->keep);
  memset (d, 0, sizeof *d);
}

int
gesso_denoise_count_steps (const GessoDenoise *d)
{
  guint n;
  const double *ts = gesso_sampler_get_timesteps (d->sampler, &n);

  n = d->end > 0 ? MIN (d->end, n) : n;
  double t_last;
  int count = 0;

  if (!is_repaint (d))
    return d->first < n ? (int) (n - d->first) : 0;
  if (d->first >= n)
    return 0;
  t_last = ts[d->first] + 1;
  for (guint i = d->first; i < n; i++)
    {
      if (ts[i] < t_last)
        count++;
      t_last = ts[i];
    }
  return count;
}

gboolean
gesso_denoise_repaint_first (const GessoDenoise *d, int level, guint *first)
{
  guint n;
  const double *ts = gesso_sampler_get_timesteps (d->sampler, &n);
  double t = (double) level * repaint_scale (d);

  for (guint i = 0; i < n; i++)
    if (ts[i] == t)
      {
        *first = i;
        return TRUE;
      }
  return FALSE;
}

/* Sets d->keep for a step at remaining noise fraction RHO: held (1) where rho > m. */
static void
hold_mask (GessoDenoise *d, double rho)
{
  for (size_t c = 0; c < d->plane; c++)
    d->keep[c] = d->change == NULL ? 0.0f : rho > (double) d->change[c] ? 1.0f : 0.0f;
}

static GessoTensor
latent_view (const GessoDenoise *d, float *data)
{
  int64_t shape[4] = { 1, d->guider->latent_channels, d->guider->height, d->guider->width };

  return gesso_tensor_view (data, 4, shape);
}

/* After a generic step at index I (of N): held cells become the original noised to the
 * level the step reached. */
static gboolean
impose_known (GessoDenoise *d, guint i, guint n, double next_t, float *x, GError **error)
{
  const size_t plane = d->plane;
  guint levels = n - d->first;
  double rho = (double) (levels - (i - d->first)) / (double) levels;
  const float *known = d->original;

  if (d->original == NULL || d->change == NULL)
    return TRUE;
  hold_mask (d, rho);
  if (i + 1 < n)
    {
      GessoTensor orig = latent_view (d, (float *) d->original);
      GessoTensor noise = latent_view (d, d->noise_buf);
      GessoTensor out = latent_view (d, d->known);

      if (!gesso_noise_source_draw (d->noise, d->noise_buf, d->numel, error)
          || !gesso_sampler_add_noise (d->sampler, &orig, &noise, next_t, &out, error))
        return FALSE;
      known = d->known;
    }
  for (size_t e = 0; e < d->numel; e++)
    if (d->keep[e % plane] != 0)
      x[e] = known[e];
  return TRUE;
}

/* The preview's estimate where the step held cells: the original, where the run keeps them. */
static void
estimate_known (const GessoDenoise *d, float *estimate)
{
  if (d->original == NULL || d->change == NULL)
    return;
  for (size_t e = 0; e < d->numel; e++)
    if (d->keep[e % d->plane] != 0)
      estimate[e] = d->original[e];
}

static gboolean
generic_step (GessoDenoise *d, guint i, guint n, const double *ts, float *x, GError **error)
{
  GessoTensor xt = latent_view (d, x);
  GessoTensor scaled = latent_view (d, d->scaled);
  GessoTensor pred = latent_view (d, d->prediction_buf);
  float *estimate = gesso_job_progress_estimate (d->progress);
  GessoTensor x0 = latent_view (d, estimate);
  GessoTensor noise;
  double t = ts[i];
  guint n_noise = gesso_sampler_step_noise_count (d->sampler, t);

  /* diffusers' controlnet_keep: step i of the n run spans [i / n, (i + 1) / n] */
  gesso_guider_set_progress (d->guider, (double) (i - d->first) / (double) (n - d->first),
                             (double) (i + 1 - d->first) / (double) (n - d->first));
  if (!gesso_sampler_scale_model_input (d->sampler, &xt, t, &scaled, error)
      || !gesso_guider_predict (d->guider, d->scaled, t, d->prediction_buf, error))
    return FALSE;
  for (guint k = 0; k < n_noise; k++)
    if (!gesso_noise_source_draw (d->noise, d->noise_buf + (size_t) k * d->numel, d->numel,
                                  error))
      return FALSE;
  {
    int64_t shape[5] = { n_noise, 1, d->guider->latent_channels, d->guider->height,
                         d->guider->width };
    noise = gesso_tensor_view (d->noise_buf, n_noise > 1 ? 5 : 4,
                               n_noise > 1 ? shape : shape + 1);
  }
  if (!gesso_sampler_step (d->sampler, &pred, t, &xt, n_noise > 0 ? &noise : NULL, &xt,
                           estimate != NULL ? &x0 : NULL, error)
      || !impose_known (d, i, n, i + 1 < n ? ts[i + 1] : 0, x, error))
    return FALSE;
  if (estimate != NULL)
    estimate_known (d, estimate);
  return TRUE;
}

/* diffusers' RePaint step reads epsilon; other predictions are converted at the point x:
 * v (Salimans & Ho 2022, eq. 9) gives eps = sqrt(abar) v + sqrt(1 - abar) x, an x_0
 * prediction eps = (x - sqrt(abar) x_0) / sqrt(1 - abar). */
static void
to_epsilon (GessoDenoise *d, double t, const float *x)
{
  const GessoSchedule *s = gesso_sampler_get_schedule (d->sampler);
  double abar = s->alphas_cumprod[(int) t];
  double sa = sqrt (abar), sb = sqrt (1 - abar);
  float *m = d->prediction_buf;

  if (d->prediction == GESSO_PREDICTION_V)
    for (size_t e = 0; e < d->numel; e++)
      m[e] = (float) (sa * m[e] + sb * x[e]);
  else if (d->prediction == GESSO_PREDICTION_SAMPLE)
    for (size_t e = 0; e < d->numel; e++)
      m[e] = (float) ((x[e] - sa * m[e]) / sb);
}

static gboolean
repaint_step (GessoDenoise *d, double t, int levels, float *x, GError **error)
{
  GessoTensor xt = latent_view (d, x);
  GessoTensor scaled = latent_view (d, d->scaled);
  GessoTensor pred = latent_view (d, d->prediction_buf);
  GessoTensor orig = latent_view (d, (float *) d->original);
  GessoTensor noise = latent_view (d, d->noise_buf);
  int64_t mask_shape[4] = { 1, 1, d->guider->height, d->guider->width };
  GessoTensor keep = gesso_tensor_view (d->keep, 4, mask_shape);
  float *estimate = gesso_job_progress_estimate (d->progress);
  GessoTensor x0 = latent_view (d, estimate);
  int level = (int) (t / repaint_scale (d));

  /* RePaint's schedule jumps back and forth: where it is comes from the timestep, the level
   * counted down from the top */
  gesso_guider_set_progress (d->guider, (double) (levels - 1 - level) / (double) levels,
                             (double) (levels - level) / (double) levels);
  if (!gesso_sampler_scale_model_input (d->sampler, &xt, t, &scaled, error)
      || !gesso_guider_predict (d->guider, d->scaled, t, d->prediction_buf, error))
    return FALSE;
  if (d->prediction != GESSO_PREDICTION_EPSILON)
    to_epsilon (d, t, x);
  hold_mask (d, (double) (level + 1) / (double) levels);
  if (!gesso_noise_source_draw (d->noise, d->noise_buf, d->numel, error))
    return FALSE;
  if (!gesso_sampler_repaint_step (d->sampler, &pred, t, &xt, &orig, &keep, &noise, &xt,
                                   estimate != NULL ? &x0 : NULL, error))
    return FALSE;
  if (estimate != NULL)
    estimate_known (d, estimate);
  return TRUE;
}

static gboolean
repaint_undo (GessoDenoise *d, double t_from, float *x, GError **error)
{
  guint count = gesso_sampler_repaint_undo_noise_count (d->sampler);
  GessoTensor xt = latent_view (d, x);
  int64_t shape[5] = { count, 1, d->guider->latent_channels, d->guider->height,
                       d->guider->width };
  GessoTensor noise = gesso_tensor_view (d->noise_buf, 5, shape);

  for (guint k = 0; k < count; k++)
    if (!gesso_noise_source_draw (d->noise, d->noise_buf + (size_t) k * d->numel, d->numel,
                                  error))
      return FALSE;
  return gesso_sampler_repaint_undo_step (d->sampler, &xt, t_from, &noise, &xt, error);
}

/* A NaN or an infinity in the latents (weights that overflow float32, a broken fp16
 * conversion that slipped past the load check) would go on to decode as a black image
 * reported as success; stop at the step that made it, saying so. */
static gboolean
check_finite (const GessoDenoise *d, guint i, guint n, const float *x, GError **error)
{
  int bad = 0;

  for (size_t e = 0; e < d->numel; e++)
    bad |= !isfinite (x[e]);
  if (!bad)
    return TRUE;
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
               _("%s produced NaN or infinite values at step %u of %u; the model's weights are "
               "broken or overflow float32 (a failed float16 conversion?): use another copy "
               "of the model"), d->phase != NULL && strcmp (d->phase, "inversion") == 0
                               ? "DDIM inversion" : "sampling", i - d->first + 1, n - d->first);
  return FALSE;
}

gboolean
gesso_denoise_run (GessoDenoise *d, float *x, GError **error)
{
  guint n_all, n;
  const double *ts = gesso_sampler_get_timesteps (d->sampler, &n_all);
  gboolean repaint = is_repaint (d);
  double t_last = 0;
  int levels = 0;

  g_return_val_if_fail (d != NULL && x != NULL, FALSE);
  n = d->end > 0 ? MIN (d->end, n_all) : n_all;
  if (d->first >= n)
    return TRUE;
  if (repaint)
    {
      if (d->original == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("RePaint needs the original latent"));
          return FALSE;
        }
      t_last = ts[d->first] + 1;
      levels = (int) (ts[d->first] / repaint_scale (d)) + 1;
    }
  for (guint i = d->first; i < n; i++)
    {
      double t = ts[i];
      gboolean evaluated = TRUE;
      gboolean ok;

      if (!repaint)
        ok = generic_step (d, i, n, ts, x, error);
      else if (t < t_last)
        ok = repaint_step (d, t, levels, x, error);
      else
        {
          ok = repaint_undo (d, t_last, x, error);
          evaluated = FALSE;
        }
      if (!ok || !check_finite (d, i, n, x, error))
        return FALSE;
      t_last = t;
      if (d->observe != NULL)
        d->observe (d->observe_data, d->phase, i - d->first, t, x, d->numel);
      if (evaluated && !gesso_job_progress_step (d->progress, error))
        return FALSE;
    }
  return TRUE;
}
