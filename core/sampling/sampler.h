/* Samplers: one interface over the diffusers schedulers Gesso reproduces.
 *
 *   kind              diffusers class                      paper
 *   ddim              DDIMScheduler                        Song et al. 2020, eq. 12
 *   ddim_inverse      DDIMInverseScheduler                 eq. 12 run from t-1 to t (inversion)
 *   ddpm              DDPMScheduler                        Ho et al. 2020, eqs. 6-7
 *   euler             EulerDiscreteScheduler               Karras et al. 2022, Algorithm 2
 *   euler_a           EulerAncestralDiscreteScheduler      k-diffusion's ancestral Euler
 *   dpmpp_2m          DPMSolverMultistepScheduler          Lu et al. 2022 (DPM-Solver++), Alg. 2
 *   lms               LMSDiscreteScheduler                 linear multistep in sigma (k-diffusion)
 *   lcm               LCMScheduler                         Luo et al. 2023, eqs. 9-10
 *   repaint           RePaintScheduler                     Lugmayr et al. 2022, Algorithm 1
 *
 * Use: fill a GessoSamplerConfig (gesso_sampler_config_init() gives diffusers' defaults for
 * the kind; gesso_sampler_config_from_json() reads a scheduler_config.json over them), make
 * the sampler, set_timesteps(n), then for each timestep t of get_timesteps():
 *   scale_model_input(sample, t) -> the UNet's input; the UNet gives model_output;
 *   step(model_output, t, sample, noise) -> prev_sample (and the predicted x_0).
 * A step that needs Gaussian noise says so (gesso_sampler_step_noise_count); the caller draws
 * it (sampling/rng.h) and passes it in, so recorded noise can be replayed.
 *
 * Numbers: schedules (betas, alpha-bars, sigmas, timesteps) are bit-for-bit diffusers'
 * float32 values; per-element updates are computed in double from them and stored as float
 * (RePaint alone repeats diffusers' float32 arithmetic operation for operation, see repaint.c).
 * Tensors are float32, any shape; the first dimension is the batch (thresholding works per
 * batch item). prev_sample may be the same tensor as sample (in place); no other output may
 * overlap an input.
 */
#ifndef GESSO_SAMPLER_H
#define GESSO_SAMPLER_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "sampling/schedule.h"
#include "tensor/tensor.h"

G_BEGIN_DECLS

typedef enum
{
  GESSO_SAMPLER_DDIM,
  GESSO_SAMPLER_DDIM_INVERSE,
  GESSO_SAMPLER_DDPM,
  GESSO_SAMPLER_EULER,
  GESSO_SAMPLER_EULER_ANCESTRAL,
  GESSO_SAMPLER_DPMPP_2M,
  GESSO_SAMPLER_LMS,
  GESSO_SAMPLER_LCM,
  GESSO_SAMPLER_REPAINT,
  GESSO_SAMPLER_COUNT,
} GessoSamplerKind;

typedef enum
{
  GESSO_PREDICTION_EPSILON,       /* the model predicts the noise eps */
  GESSO_PREDICTION_V,             /* v = sqrt(abar) eps - sqrt(1 - abar) x_0 (Salimans & Ho 2022) */
  GESSO_PREDICTION_SAMPLE,        /* the model predicts x_0 */
} GessoPrediction;

typedef enum
{
  GESSO_DDPM_VARIANCE_FIXED_SMALL,      /* posterior variance beta~_t (Ho et al. eq. 7) */
  GESSO_DDPM_VARIANCE_FIXED_SMALL_LOG,  /* the same, through exp(0.5 log) */
  GESSO_DDPM_VARIANCE_FIXED_LARGE,      /* beta_t */
} GessoDdpmVariance;

typedef enum
{
  GESSO_SIGMAS_DEFAULT,           /* the training sigmas at the spaced timesteps */
  GESSO_SIGMAS_KARRAS,            /* Karras et al. 2022, eq. 5, rho = 7 */
  GESSO_SIGMAS_EXPONENTIAL,       /* evenly spaced in log sigma */
  GESSO_SIGMAS_LU_LAMBDAS,        /* DPM-Solver: evenly spaced in lambda = -log sigma */
} GessoSigmaSpacing;

typedef enum
{
  GESSO_DPM_DPMSOLVER_PP,         /* "dpmsolver++": data prediction (Lu et al. 2022b) */
  GESSO_DPM_DPMSOLVER,            /* "dpmsolver": noise prediction (Lu et al. 2022a) */
  GESSO_DPM_SDE_DPMSOLVER_PP,     /* "sde-dpmsolver++": stochastic, needs noise each step */
  GESSO_DPM_SDE_DPMSOLVER,        /* "sde-dpmsolver" */
} GessoDpmAlgorithm;

typedef struct
{
  GessoSamplerKind kind;

  /* training schedule */
  int num_train_timesteps;
  double beta_start;
  double beta_end;
  GessoBetaSchedule beta_schedule;
  gboolean rescale_betas_zero_snr;
  GessoPrediction prediction_type;

  /* inference timesteps */
  GessoTimestepSpacing timestep_spacing;
  int steps_offset;

  /* alpha-space samplers (DDIM, DDIM inverse, DDPM, LCM, RePaint) */
  gboolean set_alpha_to_one;      /* abar "before" t = 0: 1, or abar_0 */
  gboolean clip_sample;           /* clamp x_0 to [-clip_sample_range, clip_sample_range] */
  double clip_sample_range;
  gboolean thresholding;          /* dynamic thresholding (Saharia et al. 2022, sec. 2.3) */
  double dynamic_thresholding_ratio;
  double sample_max_value;
  double eta;                     /* DDIM / RePaint stochasticity, 0 (deterministic) to 1 */
  GessoDdpmVariance variance_type;

  /* sigma-space samplers (Euler, Euler ancestral, LMS, DPM-Solver) */
  GessoSigmaSpacing sigma_spacing;
  double sigma_min;               /* Euler: overrides for Karras/exponential sigmas; NAN = */
  double sigma_max;               /* take them from the schedule */
  gboolean log_linear_sigmas;     /* Euler interpolation_type "log_linear" */
  gboolean continuous_timesteps;  /* Euler timestep_type "continuous" (v-prediction only) */
  gboolean final_sigma_min;       /* final_sigmas_type "sigma_min" (else "zero") */

  /* DPM-Solver multistep */
  int solver_order;               /* 1, 2 or 3 */
  GessoDpmAlgorithm algorithm_type;
  gboolean solver_heun;           /* solver_type "heun" (else "midpoint") */
  gboolean lower_order_final;
  gboolean euler_at_final;
  double lambda_min_clipped;

  /* LMS: the order of the multistep (a step() argument in diffusers, default 4) */
  int lms_order;

  /* LCM */
  int original_inference_steps;
  double timestep_scaling;
  /* set_timesteps' strength in diffusers (img2img): the steps are spread over the first
   * int(original_inference_steps * lcm_strength) timesteps of the distillation schedule,
   * counted from the clean end; 1 = all of them */
  double lcm_strength;

  /* RePaint (set_timesteps() arguments in diffusers) */
  int jump_length;
  int jump_n_sample;
} GessoSamplerConfig;

/* "ddim", "euler_a", ... and diffusers class names ("DDIMScheduler", ...). FALSE if unknown. */
gboolean gesso_sampler_kind_from_name (const char *name, GessoSamplerKind *kind);
const char *gesso_sampler_kind_name (GessoSamplerKind kind);

/* diffusers' __init__ defaults for KIND (they differ per scheduler class). */
void gesso_sampler_config_init (GessoSamplerConfig *config, GessoSamplerKind kind);
/* Reads the keys of a scheduler_config.json over CONFIG (whose kind decides which keys
 * apply). Keys that belong to other diffusers schedulers are ignored as diffusers ignores
 * them; an unknown key, a wrong type or a value Gesso does not implement is an error naming
 * NAME (the file) and the key. */
gboolean gesso_sampler_config_from_json (GessoSamplerConfig *config, JsonObject *json,
                                         const char *name, GError **error);

typedef struct GessoSampler GessoSampler;

GessoSampler *gesso_sampler_new (const GessoSamplerConfig *config, GError **error);
void gesso_sampler_free (GessoSampler *sampler);
const GessoSamplerConfig *gesso_sampler_get_config (const GessoSampler *sampler);
/* The training schedule (betas, alpha-bars) the sampler was built on. */
const GessoSchedule *gesso_sampler_get_schedule (const GessoSampler *sampler);

/* Builds the inference schedule for NUM_INFERENCE_STEPS steps and resets the step state. */
gboolean gesso_sampler_set_timesteps (GessoSampler *sampler, int num_inference_steps,
                                      GError **error);
/* The timesteps to run, in order (integers for DDIM/DDPM/DPM/LCM/RePaint, float32 fractions
 * for Euler/LMS); valid until the next set_timesteps. */
const double *gesso_sampler_get_timesteps (const GessoSampler *sampler, guint *n);
/* Sigma samplers: the sigma for each timestep plus the final one (N + 1 values, or N + 2 for
 * Euler's log_linear quirk); NULL for alpha-space samplers. */
const float *gesso_sampler_get_sigmas (const GessoSampler *sampler, guint *n);
/* What the initial Gaussian latents are multiplied by (1, or the largest sigma). */
double gesso_sampler_get_init_noise_sigma (const GessoSampler *sampler);
/* Starts the step counter at INDEX instead of at the first use of a timestep (img2img:
 * denoising starts part-way down the schedule). */
gboolean gesso_sampler_set_begin_index (GessoSampler *sampler, int index, GError **error);

/* OUT = the UNet input for SAMPLE at timestep T (sigma samplers divide by sqrt(sigma^2 + 1);
 * others copy). OUT may be SAMPLE. */
gboolean gesso_sampler_scale_model_input (GessoSampler *sampler, const GessoTensor *sample,
                                          double t, GessoTensor *out, GError **error);

/* How many noise tensors (shaped like the sample) the step at T consumes: 0 or 1. */
guint gesso_sampler_step_noise_count (const GessoSampler *sampler, double t);

/* One reverse step from T. NOISE: as many tensors as step_noise_count() said, stacked
 * (NULL when 0). PRED_ORIGINAL (may be NULL) receives the predicted x_0 (for LCM, the
 * boundary-condition "denoised" sample, which is what LCM returns). */
gboolean gesso_sampler_step (GessoSampler *sampler, const GessoTensor *model_output, double t,
                             const GessoTensor *sample, const GessoTensor *noise,
                             GessoTensor *prev_sample, GessoTensor *pred_original,
                             GError **error);

/* OUT = ORIGINAL noised to timestep T with NOISE (img2img, inpainting): sqrt(abar_t) x +
 * sqrt(1 - abar_t) n for alpha samplers, x + sigma n for Euler/LMS, alpha_t x + sigma_t n for
 * DPM-Solver. OUT may be ORIGINAL or NOISE. With a begin index set (img2img) the sigma
 * samplers use the sigma at the begin index, or at the current step once stepping started,
 * like diffusers; otherwise the sigma at T. */
gboolean gesso_sampler_add_noise (GessoSampler *sampler, const GessoTensor *original,
                                  const GessoTensor *noise, double t, GessoTensor *out,
                                  GError **error);

/* --- RePaint (kind GESSO_SAMPLER_REPAINT) ------------------------------------------------ */

/* One RePaint reverse step at T (Lugmayr et al. 2022, Algorithm 1, lines 4-8 with DDIM's
 * eq. 12 for the unknown part): the known region (MASK = 1) is ORIGINAL forward-noised to
 * the previous timestep, the rest is the denoised sample. MASK is shaped like SAMPLE or has
 * one channel ([N|1, 1, H, W]) and broadcasts. NOISE: one tensor, used both for the known
 * part and (eta > 0, t > 0) for the DDIM variance, as diffusers does. */
gboolean gesso_sampler_repaint_step (GessoSampler *sampler, const GessoTensor *model_output,
                                     double t, const GessoTensor *sample,
                                     const GessoTensor *original, const GessoTensor *mask,
                                     const GessoTensor *noise, GessoTensor *prev_sample,
                                     GessoTensor *pred_original, GError **error);
/* How many noise tensors an undo_step consumes: T / num_inference_steps. */
guint gesso_sampler_repaint_undo_noise_count (const GessoSampler *sampler);
/* Algorithm 1, line 10, one training step at a time: x <- sqrt(1 - beta_s) x + sqrt(beta_s) n
 * for s = T0 .. T0 + T/steps - 1 (T0 = the timestep jumped back from). NOISE holds
 * undo_noise_count tensors, stacked. OUT may be SAMPLE. */
gboolean gesso_sampler_repaint_undo_step (GessoSampler *sampler, const GessoTensor *sample,
                                          double t, const GessoTensor *noise, GessoTensor *out,
                                          GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoSampler, gesso_sampler_free)

G_END_DECLS

#endif /* GESSO_SAMPLER_H */
