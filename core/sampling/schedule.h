/* Noise schedules: the training-time betas and alpha-bars, and the inference timesteps and
 * sigmas built from them, computed exactly as diffusers 0.36 computes them.
 *
 * A DDPM-family model is trained on x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with
 * abar_t = prod_{s<=t} (1 - beta_s) (Ho et al. 2020, eq. 4); the equivalent "sigma" of
 * Karras et al. 2022 (the noise level of x_t / sqrt(abar_t)) is sigma_t = sqrt((1-abar_t)/abar_t).
 *
 * Bit-exactness matters here because timesteps are compared exactly and sigmas feed every
 * step. diffusers builds the betas in float32 with torch (torch.linspace, CPU scalar path:
 * start + step*i below the midpoint, end - step*(n-1-i) from it, each one fused
 * multiply-add), takes the cumulative product
 * in float32 output with a double accumulator (torch's CPU cumprod), and then computes timestep
 * grids in float64 numpy. The helpers below reproduce each of those operations, including
 * numpy's linspace, arange and interp arithmetic and round-half-to-even.
 */
#ifndef GESSO_SCHEDULE_H
#define GESSO_SCHEDULE_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef enum
{
  GESSO_BETA_LINEAR,            /* "linear": betas evenly spaced from beta_start to beta_end */
  GESSO_BETA_SCALED_LINEAR,     /* "scaled_linear": evenly spaced in sqrt(beta) (SD 1.x/2.x) */
  GESSO_BETA_SQUAREDCOS_CAP_V2, /* "squaredcos_cap_v2": Nichol & Dhariwal 2021 cosine, eq. 17 */
  GESSO_BETA_SIGMOID,           /* "sigmoid": sigmoid(linspace(-6, 6)) rescaled (DDPM, RePaint) */
} GessoBetaSchedule;

typedef enum
{
  GESSO_SPACING_LEADING,        /* 0, r, 2r, ... (+ steps_offset), r = T // n */
  GESSO_SPACING_TRAILING,       /* round(T, T - T/n, ...) - 1: always ends at T - 1 */
  GESSO_SPACING_LINSPACE,       /* linspace(0, T - 1, n) */
} GessoTimestepSpacing;

typedef struct
{
  int num_train_timesteps;      /* T */
  float *betas;                 /* [T], float32 as diffusers keeps them */
  float *alphas_cumprod;        /* [T], abar_t */
} GessoSchedule;

/* Builds the betas and alpha-bars. RESCALE_ZERO_SNR applies Lin et al. 2024 ("Common
 * diffusion noise schedules and sample steps are flawed", Algorithm 1): the sqrt(abar) curve
 * is shifted and scaled so that abar_{T-1} = 0 exactly. */
gboolean gesso_schedule_init (GessoSchedule *schedule, int num_train_timesteps,
                              GessoBetaSchedule kind, double beta_start, double beta_end,
                              gboolean rescale_zero_snr, GError **error);
void gesso_schedule_clear (GessoSchedule *schedule);

/* sigma_t = sqrt((1 - abar_t) / abar_t) in float32 arithmetic, as diffusers' sigma tables. */
float gesso_schedule_sigma (const GessoSchedule *schedule, int t);

/* Inference timesteps for DDIM, DDPM, Euler, LMS and the like, in the order they are used
 * (descending). ROUND_LINSPACE: "linspace" values are rounded to integers (DDIM, DDPM) or
 * kept as float32 fractions (Euler, LMS). "trailing" may yield one more or less than N
 * entries when T/N does not divide evenly, exactly as numpy's arange does; *N_OUT says how
 * many. *OUT is newly allocated (g_free). */
gboolean gesso_schedule_timesteps (GessoTimestepSpacing spacing, int num_train_timesteps,
                                   int n, int steps_offset, gboolean round_linspace,
                                   double **out, guint *n_out, GError **error);

/* --- Reproductions of the array operations diffusers uses -------------------------------- */

/* torch.linspace (START, END, STEPS, dtype=torch.float32) on the CPU. */
void gesso_torch_linspace_f32 (float start, float end, int64_t steps, float *out);
/* numpy.linspace (START, STOP, NUM) in float64 (endpoint included). */
void gesso_np_linspace (double start, double stop, int64_t num, double *out);
/* The length numpy.arange (START, STOP, STEP) has, and its values. */
int64_t gesso_np_arange_length (double start, double stop, double step);
void gesso_np_arange (double start, double step, int64_t length, double *out);
/* numpy.interp (X, arange (N), FP) for a float32 table FP. */
double gesso_np_interp (double x, const float *fp, int64_t n);
/* numpy.log on a float32 array (its SIMD kernel, not correctly rounded), for X > 0. */
float gesso_np_logf (float x);
/* numpy.round: half to even. */
double gesso_np_round (double x);

/* diffusers' _sigma_to_t: the (fractional) timestep whose log-sigma is SIGMA's, linearly
 * interpolated in LOG_SIGMAS (numpy's float32 log of the ascending sigma table, N entries). */
double gesso_sigma_to_t (double sigma, const float *log_sigmas, int64_t n);
/* Karras et al. 2022, eq. 5 with rho = 7: N sigmas from SIGMA_MAX down to SIGMA_MIN evenly
 * spaced in sigma^(1/rho). */
void gesso_karras_sigmas (double sigma_min, double sigma_max, int n, double *out);
/* N sigmas from SIGMA_MAX to SIGMA_MIN evenly spaced in log sigma. */
void gesso_exponential_sigmas (double sigma_min, double sigma_max, int n, double *out);

G_END_DECLS

#endif /* GESSO_SCHEDULE_H */
