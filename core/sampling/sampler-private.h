/* Internals shared by the sampler implementations (one file per diffusers scheduler). */
#ifndef GESSO_SAMPLER_PRIVATE_H
#define GESSO_SAMPLER_PRIVATE_H

#include <math.h>

#include "gesso.h"
#include "sampling/sampler.h"

G_BEGIN_DECLS

/* The arrays of one step; every pointer holds NUMEL floats (NOISE: noise_count * NUMEL, or
 * NULL). X0 is never NULL: the sampler's scratch stands in when the caller wants no x_0. */
typedef struct
{
  double t;
  const float *model_output;
  const float *sample;
  const float *noise;
  float *prev;
  float *x0;
  size_t numel;
  int64_t batch;                /* first dimension, for per-item thresholding */
} SamplerStep;

typedef struct
{
  /* Fills timesteps (and sigmas, init_noise_sigma) for N steps. */
  gboolean (*set_timesteps) (GessoSampler *s, int n, GError **error);
  /* What scale_model_input divides by; NULL means 1. */
  gboolean (*scale_divisor) (GessoSampler *s, double t, double *divisor, GError **error);
  guint (*noise_count) (const GessoSampler *s, double t);
  gboolean (*step) (GessoSampler *s, const SamplerStep *step, GError **error);
  /* add_noise: OUT = A * x + B * noise at T. */
  gboolean (*add_noise_coeffs) (GessoSampler *s, double t, double *a, double *b, GError **error);
} SamplerClass;

struct GessoSampler
{
  GessoSamplerConfig config;
  const SamplerClass *klass;
  GessoSchedule schedule;
  float final_alpha_cumprod;    /* abar past the end of the chain (DDIM, LCM, RePaint, inverse) */

  int num_inference_steps;      /* 0 until set_timesteps() */
  double *timesteps;
  guint n_timesteps;
  float *sigmas;                /* sigma samplers only */
  guint n_sigmas;
  double init_noise_sigma;
  int step_index;               /* -1: not started */
  int begin_index;              /* -1: unset */

  /* multistep history (LMS derivatives, DPM-Solver model outputs), newest last */
  float *history;
  size_t history_numel;
  guint history_slots;
  guint n_history;
  int lower_order_nums;

  float *scratch;
  size_t scratch_numel;
};

extern const SamplerClass gesso_ddim_class;
extern const SamplerClass gesso_ddim_inverse_class;
extern const SamplerClass gesso_ddpm_class;
extern const SamplerClass gesso_euler_class;
extern const SamplerClass gesso_euler_ancestral_class;
extern const SamplerClass gesso_dpm_class;
extern const SamplerClass gesso_lms_class;
extern const SamplerClass gesso_lcm_class;
extern const SamplerClass gesso_repaint_class;

/* T as an index into the training schedule: integral and in [0, num_train_timesteps). */
gboolean sampler_train_index (const GessoSampler *s, double t, int *index, GError **error);
/* diffusers' index_for_timestep: the position of T in the timesteps (the second one when T
 * occurs twice, so img2img starting mid-schedule does not skip a step). */
gboolean sampler_index_for_timestep (const GessoSampler *s, double t, int *index,
                                     GError **error);
/* Starts the step counter on first use (at begin_index, or where T is) and checks that T is
 * in the schedule and steps remain. */
gboolean sampler_current_index (GessoSampler *s, double t, GError **error);

/* x_0 from the model output M at a point x with alpha-bar abar, given SA = sqrt(abar) and
 * SB = sqrt(1 - abar): the "predicted x_0" of Song et al. 2020, eq. 12 (x = SA x_0 + SB eps);
 * for v (Salimans & Ho 2022, eq. 9: v = SA eps - SB x_0) x_0 = SA x - SB v. */
static inline double
sampler_x0 (GessoPrediction prediction, double x, double m, double sa, double sb)
{
  switch (prediction)
    {
    case GESSO_PREDICTION_EPSILON:
      return (x - sb * m) / sa;
    case GESSO_PREDICTION_V:
      return sa * x - sb * m;
    case GESSO_PREDICTION_SAMPLE:
    default:
      return m;
    }
}

/* The noise eps implied by M at the same point (for x_0-predicting models from the unclipped
 * prediction, as diffusers does): eps = SA v + SB x for v. */
static inline double
sampler_eps (GessoPrediction prediction, double x, double m, double sa, double sb)
{
  switch (prediction)
    {
    case GESSO_PREDICTION_EPSILON:
      return m;
    case GESSO_PREDICTION_V:
      return sa * m + sb * x;
    case GESSO_PREDICTION_SAMPLE:
    default:
      return (x - sa * m) / sb;
    }
}

/* Applies clip_sample or dynamic thresholding to X0 in place, as configured. */
void sampler_clip_x0 (GessoSampler *s, float *x0, size_t numel, int64_t batch);
/* Dynamic thresholding (Saharia et al. 2022, sec. 2.3): per batch item, s = the
 * dynamic_thresholding_ratio quantile of |x0| clamped to [1, sample_max_value]; x0 is
 * clamped to [-s, s] and divided by s. */
void sampler_threshold (GessoSampler *s, float *x0, size_t numel, int64_t batch);

/* Makes room for SLOTS history tensors of NUMEL floats (kept when the size is unchanged). */
void sampler_history_reserve (GessoSampler *s, guint slots, size_t numel);
/* The slot for history entry I (0 = oldest kept). */
float *sampler_history (GessoSampler *s, guint i);
/* Drops the oldest entry when full and returns the slot for a new newest entry. */
float *sampler_history_push (GessoSampler *s);

/* Euler-style sigma schedule (Euler, Euler ancestral, LMS): timesteps spaced as configured,
 * sigmas interpolated from the training table, optionally Karras/exponential, plus the
 * final sigma; init_noise_sigma as diffusers' property. */
gboolean sampler_sigma_timesteps (GessoSampler *s, int n, GError **error);
/* Integer timesteps from the spacing config (DDIM, DDIM inverse, DDPM; ddim.c). */
gboolean sampler_alpha_timesteps (GessoSampler *s, int n, GError **error);
/* Euler's scale_model_input divisor sqrt(sigma^2 + 1) (float32, as diffusers) and add_noise
 * x + sigma n, for LMS. */
gboolean sampler_sigma_scale_divisor (GessoSampler *s, double t, double *divisor,
                                      GError **error);
gboolean sampler_sigma_add_noise_coeffs (GessoSampler *s, double t, double *a, double *b,
                                         GError **error);
/* The training sigma table and its float32 logs (what diffusers' _sigma_to_t searches). */
float *sampler_train_sigmas (const GessoSampler *s, float **log_sigmas);

/* Fails unless every timestep indexes the training schedule. */
gboolean sampler_check_train_range (GessoSampler *s, GError **error);
/* add_noise for alpha samplers: sqrt(abar_t) x + sqrt(1 - abar_t) noise (Ho et al. eq. 4). */
gboolean sampler_alpha_add_noise_coeffs (GessoSampler *s, double t, double *a, double *b,
                                         GError **error);

/* Replaces the timesteps/sigmas arrays (takes ownership). */
void sampler_take_timesteps (GessoSampler *s, double *timesteps, guint n);
void sampler_take_sigmas (GessoSampler *s, float *sigmas, guint n);

G_END_DECLS

#endif /* GESSO_SAMPLER_PRIVATE_H */
