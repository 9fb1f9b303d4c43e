/* Samplers and noise schedules: properties that need no reference data, and every
 * ../shared/conformance/scheduler case replayed directly (the same replay the conformance
 * harness runs), one test per case with its tolerance in the name. */
#include <math.h>
#include <string.h>

#include "conformance/scheduler-case.h"
#include "gesso.h"
#include "unit/io-fixtures.h"
#include "io/safetensors.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "sampling/schedule.h"

/* --- helpers ------------------------------------------------------------------------------- */

static GessoSampler *
make_sampler (GessoSamplerKind kind, const char *json, GError **error)
{
  GessoSamplerConfig cfg;
  g_autoptr (JsonParser) parser = json_parser_new ();

  gesso_sampler_config_init (&cfg, kind);
  if (json != NULL)
    {
      if (!json_parser_load_from_data (parser, json, -1, error))
        return NULL;
      JsonNode *root = json_parser_get_root (parser);

      if (!gesso_sampler_config_from_json (&cfg, json_node_get_object (root), "test config",
                                           error))
        return NULL;
    }
  return gesso_sampler_new (&cfg, error);
}

/* Stable Diffusion's schedule, as its scheduler_config.json has it. */
#define SD_CONFIG "{\"beta_start\": 0.00085, \"beta_end\": 0.012, " \
                  "\"beta_schedule\": \"scaled_linear\", \"steps_offset\": 1, " \
                  "\"set_alpha_to_one\": false, \"clip_sample\": false"

/* --- schedules ------------------------------------------------------------------------------ */

static void
test_schedule_sd_sigmas (void)
{
  g_autoptr (GError) error = NULL;
  GessoSchedule s;

  /* diffusers' float32 values for the SD 1.x schedule (its Euler init_noise_sigma, and the
   * sigma at t = 0), bit for bit */
  g_assert_true (gesso_schedule_init (&s, 1000, GESSO_BETA_SCALED_LINEAR, 0.00085, 0.012, FALSE,
                                      &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (gesso_schedule_sigma (&s, 999), ==, 14.614646911621094f);
  g_assert_cmpfloat (gesso_schedule_sigma (&s, 0), ==, 0.029167532920837402f);
  g_assert_cmpfloat (gesso_schedule_sigma (&s, 444), ==, 1.344928503036499f);
  gesso_schedule_clear (&s);

  /* zero terminal SNR (Lin et al. 2024): abar ends at exactly 0, starts where it did */
  g_assert_true (gesso_schedule_init (&s, 1000, GESSO_BETA_SCALED_LINEAR, 0.00085, 0.012, TRUE,
                                      &error));
  g_assert_cmpfloat (s.alphas_cumprod[999], ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (s.alphas_cumprod[0], 1 - 0.00085, 1e-6);
  gesso_schedule_clear (&s);

  g_assert_true (gesso_schedule_init (&s, 1000, GESSO_BETA_SQUAREDCOS_CAP_V2, 0, 0, FALSE,
                                      &error));
  g_assert_cmpfloat (s.betas[999], ==, 0.999f);
  gesso_schedule_clear (&s);

  g_assert_false (gesso_schedule_init (&s, 1000, GESSO_BETA_LINEAR, 0.5, 0.1, FALSE, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
}

static void
test_schedule_spacing (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree double *ts = NULL;
  guint n;

  g_assert_true (gesso_schedule_timesteps (GESSO_SPACING_TRAILING, 1000, 10, 0, TRUE, &ts, &n,
                                           &error));
  g_assert_cmpuint (n, ==, 10);
  g_assert_cmpfloat (ts[0], ==, 999);
  g_assert_cmpfloat (ts[9], ==, 99);
  g_clear_pointer (&ts, g_free);
  g_assert_true (gesso_schedule_timesteps (GESSO_SPACING_LINSPACE, 1000, 4, 0, TRUE, &ts, &n,
                                           &error));
  /* linspace(0, 999, 4) = 0, 333, 666, 999 */
  g_assert_cmpfloat (ts[1], ==, 666);
  g_clear_pointer (&ts, g_free);
  g_assert_false (gesso_schedule_timesteps (GESSO_SPACING_LEADING, 1000, 0, 1, TRUE, &ts, &n,
                                            &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
}

/* --- configuration ------------------------------------------------------------------------- */

static void
test_config_keys (void)
{
  g_autoptr (GError) error = NULL;
  GessoSampler *s;

  /* keys of other schedulers (PNDM's skip_prk_steps) and metadata are ignored */
  s = make_sampler (GESSO_SAMPLER_EULER, SD_CONFIG ", \"skip_prk_steps\": true, "
                    "\"_class_name\": \"PNDMScheduler\", \"trained_betas\": null}", &error);
  g_assert_no_error (error);
  g_assert_nonnull (s);
  g_assert_cmpint (gesso_sampler_get_config (s)->timestep_spacing, ==, GESSO_SPACING_LINSPACE);
  gesso_sampler_free (s);

  /* nothing unknown passes silently */
  s = make_sampler (GESSO_SAMPLER_DDIM, SD_CONFIG ", \"prediction_typ\": \"v_prediction\"}",
                    &error);
  g_assert_null (s);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "prediction_typ"));
  g_clear_error (&error);

  s = make_sampler (GESSO_SAMPLER_DDIM, SD_CONFIG ", \"trained_betas\": [0.1, 0.2]}", &error);
  g_assert_null (s);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  s = make_sampler (GESSO_SAMPLER_EULER, SD_CONFIG ", \"use_beta_sigmas\": true}", &error);
  g_assert_null (s);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  s = make_sampler (GESSO_SAMPLER_DDIM, SD_CONFIG ", \"timestep_spacing\": \"karras\"}", &error);
  g_assert_null (s);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "leading"));
  g_clear_error (&error);

  s = make_sampler (GESSO_SAMPLER_DDIM, SD_CONFIG ", \"clip_sample\": 1}", &error);
  g_assert_null (s);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_clear_error (&error);

  s = make_sampler (GESSO_SAMPLER_DPMPP_2M, SD_CONFIG ", \"algorithm_type\": \"dpmsolver\"}",
                    &error);
  g_assert_null (s);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  s = make_sampler (GESSO_SAMPLER_EULER_ANCESTRAL, SD_CONFIG ", \"prediction_type\": \"sample\"}",
                    &error);
  g_assert_null (s);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
}

static void
test_config_defaults (void)
{
  GessoSamplerConfig c;
  GessoSamplerKind kind;

  /* diffusers' per-class defaults differ */
  gesso_sampler_config_init (&c, GESSO_SAMPLER_DDIM);
  g_assert_true (c.clip_sample && c.set_alpha_to_one);
  g_assert_cmpint (c.timestep_spacing, ==, GESSO_SPACING_LEADING);
  gesso_sampler_config_init (&c, GESSO_SAMPLER_LCM);
  g_assert_cmpint (c.beta_schedule, ==, GESSO_BETA_SCALED_LINEAR);
  g_assert_false (c.clip_sample);
  gesso_sampler_config_init (&c, GESSO_SAMPLER_EULER);
  g_assert_cmpint (c.timestep_spacing, ==, GESSO_SPACING_LINSPACE);

  g_assert_true (gesso_sampler_kind_from_name ("DPMSolverMultistepScheduler", &kind));
  g_assert_cmpint (kind, ==, GESSO_SAMPLER_DPMPP_2M);
  g_assert_true (gesso_sampler_kind_from_name ("euler_a", &kind));
  g_assert_cmpint (kind, ==, GESSO_SAMPLER_EULER_ANCESTRAL);
  g_assert_false (gesso_sampler_kind_from_name ("PNDMScheduler", &kind));
}

/* --- sampler properties ---------------------------------------------------------------------- */

static void
test_sampler_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSampler) s = make_sampler (GESSO_SAMPLER_EULER, SD_CONFIG "}", &error);
  const int64_t shape[] = { 1, 4, 2, 2 }, other[] = { 1, 4, 2, 3 };
  float a[16] = { 0 }, b[16] = { 0 }, c[24] = { 0 };
  GessoTensor x = gesso_tensor_view (a, 4, shape), m = gesso_tensor_view (b, 4, shape);
  GessoTensor bad = gesso_tensor_view (c, 4, other);
  const double *ts;

  g_assert_no_error (error);
  /* no timesteps yet */
  g_assert_false (gesso_sampler_step (s, &m, 999, &x, NULL, &x, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_sampler_set_timesteps (s, 0, &error));
  g_clear_error (&error);
  g_assert_false (gesso_sampler_set_timesteps (s, 1001, &error));
  g_clear_error (&error);

  g_assert_true (gesso_sampler_set_timesteps (s, 5, &error));
  ts = gesso_sampler_get_timesteps (s, NULL);
  /* a shape mismatch, NaN, a timestep not in the schedule, a step past the end */
  g_assert_false (gesso_sampler_step (s, &bad, ts[0], &x, NULL, &x, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_sampler_step (s, &m, NAN, &x, NULL, &x, NULL, &error));
  g_clear_error (&error);
  g_assert_false (gesso_sampler_step (s, &m, 123.5, &x, NULL, &x, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  for (int i = 0; i < 5; i++)
    g_assert_true (gesso_sampler_step (s, &m, ts[i], &x, NULL, &x, NULL, &error));
  g_assert_false (gesso_sampler_step (s, &m, ts[4], &x, NULL, &x, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* RePaint needs its own step */
  gesso_sampler_free (g_steal_pointer (&s));
  s = make_sampler (GESSO_SAMPLER_REPAINT, NULL, &error);
  g_assert_true (gesso_sampler_set_timesteps (s, 10, &error));
  g_assert_false (gesso_sampler_step (s, &m, 900, &x, &x, &x, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
}

/* The data distribution a single point X0: the exact noise prediction is linear in x,
 * eps(x, t) = (x - sqrt(abar_t) x0) / sqrt(1 - abar_t), and DDIM (eta = 0) inverts exactly. */
static void
point_mass_eps (const GessoSchedule *sched, double abar, const float *x, const float *x0,
                float *eps, size_t n)
{
  for (size_t i = 0; i < n; i++)
    eps[i] = (float) ((x[i] - sqrt (abar) * x0[i]) / sqrt (1 - abar));
}

static void
test_ddim_inverse_roundtrip (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSampler) fwd = make_sampler (GESSO_SAMPLER_DDIM, SD_CONFIG "}", &error);
  g_autoptr (GessoSampler) inv = make_sampler (GESSO_SAMPLER_DDIM_INVERSE, SD_CONFIG "}", &error);
  const GessoSchedule *sched = gesso_sampler_get_schedule (fwd);
  const int64_t shape[] = { 1, 4, 8, 8 };
  enum { N = 256 };
  float x0[N], start[N], x[N], eps[N];
  GessoTensor tx = gesso_tensor_view (x, 4, shape), te = gesso_tensor_view (eps, 4, shape);
  const double *ts;
  guint n;
  double worst = 0, moved = 0, a0;
  const int steps = 10, T = 1000;

  g_assert_no_error (error);
  gesso_rng_normal (7, 0, 0, x0, N);
  gesso_rng_normal (7, 1, 0, eps, N);
  /* start at the bottom of the chain: abar "at t = -r" is abar_0 (set_alpha_to_one false) */
  a0 = sched->alphas_cumprod[0];
  for (int i = 0; i < N; i++)
    start[i] = x[i] = (float) (sqrt (a0) * x0[i] + sqrt (1 - a0) * eps[i]);

  /* invert up the schedule: the step to t uses the model at the point one spacing below */
  g_assert_true (gesso_sampler_set_timesteps (inv, steps, &error));
  ts = gesso_sampler_get_timesteps (inv, &n);
  for (guint i = 0; i < n; i++)
    {
      int below = (int) ts[i] - T / steps;
      double abar = below >= 0 ? sched->alphas_cumprod[below] : a0;
      point_mass_eps (sched, abar, x, x0, eps, N);
      g_assert_true (gesso_sampler_step (inv, &te, ts[i], &tx, NULL, &tx, NULL, &error));
    }
  for (int i = 0; i < N; i++)
    moved = MAX (moved, fabs (x[i] - start[i]));
  g_assert_cmpfloat (moved, >, 0.5);

  /* and back down with DDIM */
  g_assert_true (gesso_sampler_set_timesteps (fwd, steps, &error));
  ts = gesso_sampler_get_timesteps (fwd, &n);
  for (guint i = 0; i < n; i++)
    {
      point_mass_eps (sched, sched->alphas_cumprod[(int) ts[i]], x, x0, eps, N);
      g_assert_true (gesso_sampler_step (fwd, &te, ts[i], &tx, NULL, &tx, NULL, &error));
    }
  for (int i = 0; i < N; i++)
    worst = MAX (worst, fabs (x[i] - start[i]));
  g_assert_cmpfloat (worst, <, 1e-5);
}

/* DDIM with eta = 1 is the DDPM posterior step (Song et al. 2020, sec. 4.1). */
static void
test_ddim_eta1_is_ddpm (void)
{
  g_autoptr (GError) error = NULL;
  GessoSamplerConfig cfg;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GessoSampler) ddim = NULL, ddpm = NULL;
  const int64_t shape[] = { 2, 4, 4, 4 };
  enum { N = 128 };
  float x[N], m[N], z[N], a[N], b[N];
  GessoTensor tx = gesso_tensor_view (x, 4, shape), tm = gesso_tensor_view (m, 4, shape);
  GessoTensor tz = gesso_tensor_view (z, 4, shape), ta = gesso_tensor_view (a, 4, shape);
  GessoTensor tb = gesso_tensor_view (b, 4, shape);
  const double *ts;
  guint n;
  double worst = 0;

  g_assert_true (json_parser_load_from_data (parser, SD_CONFIG "}", -1, &error));
  gesso_sampler_config_init (&cfg, GESSO_SAMPLER_DDIM);
  g_assert_true (gesso_sampler_config_from_json (&cfg, json_node_get_object (
                                                   json_parser_get_root (parser)), "t", &error));
  cfg.eta = 1;
  cfg.set_alpha_to_one = TRUE;       /* DDPM ends the chain at abar = 1 */
  ddim = gesso_sampler_new (&cfg, &error);
  gesso_sampler_config_init (&cfg, GESSO_SAMPLER_DDPM);
  g_assert_true (gesso_sampler_config_from_json (&cfg, json_node_get_object (
                                                   json_parser_get_root (parser)), "t", &error));
  ddpm = gesso_sampler_new (&cfg, &error);
  g_assert_no_error (error);
  g_assert_true (gesso_sampler_set_timesteps (ddim, 20, &error));
  g_assert_true (gesso_sampler_set_timesteps (ddpm, 20, &error));
  ts = gesso_sampler_get_timesteps (ddim, &n);
  gesso_rng_normal (1, 0, 0, x, N);
  gesso_rng_normal (1, 1, 0, m, N);
  gesso_rng_normal (1, 2, 0, z, N);
  for (guint i = 0; i + 1 < n; i++)
    {
      g_assert_cmpuint (gesso_sampler_step_noise_count (ddim, ts[i]), ==, 1);
      g_assert_cmpuint (gesso_sampler_step_noise_count (ddpm, ts[i]), ==, 1);
      g_assert_true (gesso_sampler_step (ddim, &tm, ts[i], &tx, &tz, &ta, NULL, &error));
      g_assert_true (gesso_sampler_step (ddpm, &tm, ts[i], &tx, &tz, &tb, NULL, &error));
      for (int k = 0; k < N; k++)
        worst = MAX (worst, fabs (a[k] - b[k]));
    }
  g_assert_cmpfloat (worst, <, 1e-5);
}

/* LMS of order 1 is Euler: its single coefficient integrates 1 from sigma_i to sigma_{i+1}. */
static void
test_lms_order1_is_euler (void)
{
  g_autoptr (GError) error = NULL;
  GessoSamplerConfig cfg;
  g_autoptr (GessoSampler) lms = NULL, euler = NULL;
  const int64_t shape[] = { 1, 4, 4, 4 };
  enum { N = 64 };
  float x[N], y[N], m[N];
  GessoTensor tx = gesso_tensor_view (x, 4, shape), ty = gesso_tensor_view (y, 4, shape);
  GessoTensor tm = gesso_tensor_view (m, 4, shape);
  const double *ts;
  guint n;
  double worst = 0;

  gesso_sampler_config_init (&cfg, GESSO_SAMPLER_LMS);
  cfg.lms_order = 1;
  lms = gesso_sampler_new (&cfg, &error);
  gesso_sampler_config_init (&cfg, GESSO_SAMPLER_EULER);
  euler = gesso_sampler_new (&cfg, &error);
  g_assert_no_error (error);
  g_assert_true (gesso_sampler_set_timesteps (lms, 12, &error));
  g_assert_true (gesso_sampler_set_timesteps (euler, 12, &error));
  ts = gesso_sampler_get_timesteps (lms, &n);
  gesso_rng_normal (3, 0, 0, x, N);
  memcpy (y, x, sizeof x);
  for (guint i = 0; i < n; i++)
    {
      gesso_rng_normal (3, 1 + i, 0, m, N);
      g_assert_true (gesso_sampler_step (lms, &tm, ts[i], &tx, NULL, &tx, NULL, &error));
      g_assert_true (gesso_sampler_step (euler, &tm, ts[i], &ty, NULL, &ty, NULL, &error));
    }
  for (int k = 0; k < N; k++)
    worst = MAX (worst, fabs (x[k] - y[k]) / (1 + fabs (y[k])));
  g_assert_cmpfloat (worst, <, 1e-5);
}

/* Every sampler runs a full schedule, in place, with noise where it asks for it. */
static void
test_all_samplers_run (void)
{
  const int64_t shape[] = { 1, 4, 4, 4 };
  enum { N = 64 };

  for (int kind = 0; kind < GESSO_SAMPLER_COUNT; kind++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GessoSampler) s = NULL;
      float x[N], m[N], z[N * 2];
      GessoTensor tx = gesso_tensor_view (x, 4, shape), tm = gesso_tensor_view (m, 4, shape);
      GessoTensor tz = gesso_tensor_view (z, 4, shape);
      const double *ts;
      guint n;

      if (kind == GESSO_SAMPLER_REPAINT)
        continue;
      s = make_sampler (kind, kind == GESSO_SAMPLER_DDIM_INVERSE ? NULL : SD_CONFIG "}", &error);
      g_assert_no_error (error);
      g_assert_true (gesso_sampler_set_timesteps (s, 8, &error));
      ts = gesso_sampler_get_timesteps (s, &n);
      g_assert_cmpuint (n, ==, 8);
      gesso_rng_normal (9, 0, 0, x, N);
      for (int i = 0; i < N; i++)
        x[i] *= (float) gesso_sampler_get_init_noise_sigma (s);
      for (guint i = 0; i < n; i++)
        {
          guint need = gesso_sampler_step_noise_count (s, ts[i]);
          g_assert_cmpuint (need, <=, 1);
          gesso_rng_normal (9, 1 + i, 0, z, N);
          g_assert_true (gesso_sampler_scale_model_input (s, &tx, ts[i], &tm, &error));
          for (int k = 0; k < N; k++)
            m[k] *= 0.5f;
          g_assert_true (gesso_sampler_step (s, &tm, ts[i], &tx, need ? &tz : NULL, &tx, NULL,
                                             &error));
          g_assert_no_error (error);
        }
      for (int k = 0; k < N; k++)
        g_assert_true (isfinite (x[k]));
    }
}

static void
test_repaint_schedule (void)
{
  g_autoptr (GError) error = NULL;
  GessoSamplerConfig cfg;
  g_autoptr (GessoSampler) s = NULL;
  const double *ts;
  guint n, undo = 0;

  gesso_sampler_config_init (&cfg, GESSO_SAMPLER_REPAINT);
  cfg.jump_length = 5;
  cfg.jump_n_sample = 3;
  s = gesso_sampler_new (&cfg, &error);
  g_assert_true (gesso_sampler_set_timesteps (s, 10, &error));
  ts = gesso_sampler_get_timesteps (s, &n);
  /* 10 steps, then from t = 0 two jumps of 5 back up and down again */
  g_assert_cmpuint (n, ==, 30);
  g_assert_cmpfloat (ts[0], ==, 900);
  g_assert_cmpfloat (ts[9], ==, 0);
  g_assert_cmpfloat (ts[10], ==, 100);
  g_assert_cmpfloat (ts[n - 1], ==, 0);
  for (guint i = 1; i < n; i++)
    undo += ts[i] > ts[i - 1];
  g_assert_cmpuint (undo, ==, 10);
  g_assert_cmpuint (gesso_sampler_repaint_undo_noise_count (s), ==, 100);
}

/* LCMScheduler.set_timesteps (n, strength) by hand, T = 1000, original_inference_steps 50,
 * so k = T / 50 = 20: the distillation schedule keeps L = int(50 * strength) timesteps
 * {19, 39, ..., 20 L - 1}; reversed, entry j is 20 (L - j) - 1, and the n steps take the
 * entries at floor(i L / n) (linspace(0, L, n, endpoint=False)). The products are Python's
 * doubles: 50 * 0.58 = 28.999999999999996, so L = 28 there. */
static void
test_lcm_strength_timesteps (void)
{
  static const struct
  {
    double strength;
    int n;
    double expected[4];
  } cases[] = {
    { 1.0, 4, { 999, 759, 499, 259 } },   /* L = 50, entries 0, 12, 25, 37 */
    { 0.5, 4, { 499, 379, 259, 139 } },   /* L = 25, entries 0, 6, 12, 18 */
    { 0.7, 4, { 699, 539, 359, 179 } },   /* L = 35, entries 0, 8, 17, 26 */
    { 0.3, 3, { 299, 199, 99 } },         /* L = 15, entries 0, 5, 10 */
    { 0.58, 4, { 559, 419, 279, 139 } },  /* L = 28, entries 0, 7, 14, 21 */
    { 0.02, 1, { 19 } },                  /* L = 1 */
  };
  g_autoptr (GError) error = NULL;
  GessoSamplerConfig cfg;

  for (size_t c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GessoSampler) s = NULL;
      const double *ts;
      guint n;

      gesso_sampler_config_init (&cfg, GESSO_SAMPLER_LCM);
      cfg.lcm_strength = cases[c].strength;
      s = gesso_sampler_new (&cfg, &error);
      g_assert_no_error (error);
      g_assert_true (gesso_sampler_set_timesteps (s, cases[c].n, &error));
      g_assert_no_error (error);
      ts = gesso_sampler_get_timesteps (s, &n);
      g_assert_cmpuint (n, ==, (guint) cases[c].n);
      for (guint i = 0; i < n; i++)
        g_assert_cmpfloat (ts[i], ==, cases[c].expected[i]);
    }

  /* more steps than timesteps kept: 29 at 0.58 (L = 28), 4 at 0.05 (L = 2), 1 at 0.01 */
  {
    static const struct
    {
      double strength;
      int n;
    } too_few[] = { { 0.58, 29 }, { 0.05, 4 }, { 0.01, 1 } };

    for (size_t c = 0; c < G_N_ELEMENTS (too_few); c++)
      {
        g_autoptr (GessoSampler) s = NULL;

        gesso_sampler_config_init (&cfg, GESSO_SAMPLER_LCM);
        cfg.lcm_strength = too_few[c].strength;
        s = gesso_sampler_new (&cfg, &error);
        g_assert_no_error (error);
        g_assert_false (gesso_sampler_set_timesteps (s, too_few[c].n, &error));
        g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull (strstr (error->message, "strength above"));
        g_clear_error (&error);
      }
  }

  /* a strength outside (0, 1] is refused when the sampler is made */
  gesso_sampler_config_init (&cfg, GESSO_SAMPLER_LCM);
  cfg.lcm_strength = 0;
  g_assert_null (gesso_sampler_new (&cfg, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  cfg.lcm_strength = 1.5;
  g_assert_null (gesso_sampler_new (&cfg, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
}

/* --- conformance cases --------------------------------------------------------------------- */

static char *
conformance_dir (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *src = g_getenv ("GESSO_SOURCE_DIR");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_build_filename (src ? src : ".", "..", "shared", "conformance", NULL);
}

/* Python's json writes Infinity/-Infinity/NaN; JSON has no such tokens. Outside strings they
 * become 1e999/-1e999 (which parse to +-inf) and null. */
static char *
pythonic_json_to_json (const char *text)
{
  GString *out = g_string_new (NULL);
  gboolean in_string = FALSE;

  for (const char *p = text; *p; p++)
    {
      if (in_string)
        {
          g_string_append_c (out, *p);
          if (*p == '\\' && p[1])
            g_string_append_c (out, *++p);
          else if (*p == '"')
            in_string = FALSE;
        }
      else if (*p == '"')
        {
          in_string = TRUE;
          g_string_append_c (out, *p);
        }
      else if (g_str_has_prefix (p, "Infinity"))
        {
          g_string_append (out, "1e999");
          p += strlen ("Infinity") - 1;
        }
      else if (g_str_has_prefix (p, "NaN"))
        {
          g_string_append (out, "null");
          p += strlen ("NaN") - 1;
        }
      else
        g_string_append_c (out, *p);
    }
  return g_string_free (out, FALSE);
}

static JsonObject *
load_manifest (const char *path, GError **error)
{
  g_autofree char *text = NULL, *clean = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  clean = pythonic_json_to_json (text);
  if (!json_parser_load_from_data (parser, clean, -1, error))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

typedef struct
{
  guint checks;
  guint failures;
  GString *log;
} CaseResult;

static void
on_check (const char *check, gboolean pass, double max_abs, double tol, const char *detail,
          gpointer user_data)
{
  CaseResult *r = user_data;

  r->checks++;
  r->failures += !pass;
  g_string_append_printf (r->log, "%s %s max_abs=%.3g tol=%.3g (%s)\n", pass ? "PASS" : "FAIL",
                          check, max_abs, tol, detail ? detail : "");
}

static void
test_conformance_case (gconstpointer data)
{
  const char *path = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) manifest = load_manifest (path, &error);
  g_autofree char *base = g_strndup (path, strlen (path) - strlen (".json"));
  g_autofree char *st_path = g_strconcat (base, ".safetensors", NULL);
  g_autoptr (GessoSafetensors) st = NULL;
  CaseResult r = { 0, 0, g_string_new (NULL) };
  gboolean ran;

  g_assert_no_error (error);
  st = gesso_safetensors_open (st_path, &error);
  g_assert_no_error (error);
  ran = scheduler_case_run (manifest, st, on_check, &r, &error);
  g_test_message ("%s", r.log->str);
  if (r.failures > 0 || !ran)
    g_printerr ("%s: %s%s", path, r.log->str, error ? error->message : "");
  g_assert_no_error (error);
  g_assert_true (ran);
  g_assert_cmpuint (r.checks, >, 0);
  g_assert_cmpuint (r.failures, ==, 0);
  g_string_free (r.log, TRUE);
}

/* A rollout case may record only the first steps of a longer schedule. Such a case is made
 * here from a recorded one by keeping its first KEEP steps: the reference numbers stay the
 * reference implementation's own, only fewer of them. */
typedef struct
{
  int64_t keep;
  const char *perturb;          /* a per-step tensor whose last kept step is nudged, or NULL */
} PrefixCut;

static gboolean
is_per_step_tensor (const char *name)
{
  static const char *const per_step[] = { "model_outputs", "scaled_model_inputs",
                                          "prev_samples", "pred_original_samples" };
  for (size_t i = 0; i < G_N_ELEMENTS (per_step); i++)
    if (strcmp (name, per_step[i]) == 0)
      return TRUE;
  return FALSE;
}

static void
cut_to_prefix (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
               const void *values, gpointer user_data)
{
  const PrefixCut *cut = user_data;
  g_auto (GStrv) dims = NULL;
  g_autoptr (GString) shape = NULL;
  g_autofree float *kept = NULL;
  int64_t per_step = 1;

  if (!is_per_step_tensor (name))
    {
      fixture_st_add (st, name, dtype, shape_json, values);
      return;
    }
  g_assert_cmpstr (dtype, ==, "F32");
  dims = g_strsplit_set (shape_json, "[], ", -1);
  shape = g_string_new ("[");
  for (guint i = 0, n = 0; dims[i] != NULL; i++)
    {
      if (*dims[i] == '\0')
        continue;
      int64_t d = g_ascii_strtoll (dims[i], NULL, 10);
      if (n++ == 0)
        g_string_append_printf (shape, "%" G_GINT64_FORMAT, cut->keep);
      else
        {
          g_string_append_printf (shape, ", %" G_GINT64_FORMAT, d);
          per_step *= d;
        }
    }
  g_string_append (shape, "]");
  kept = g_memdup2 (values, (gsize) (cut->keep * per_step) * sizeof (float));
  if (cut->perturb != NULL && strcmp (name, cut->perturb) == 0)
    kept[(cut->keep - 1) * per_step] += 0.01f;
  fixture_st_add (st, name, dtype, shape->str, kept);
}

static guint
run_prefix_case (const char *case_name, const PrefixCut *cut)
{
  g_autofree char *dir = conformance_dir ();
  g_autofree char *base = g_build_filename (dir, "scheduler", case_name, NULL);
  g_autofree char *json_path = g_strconcat (base, ".json", NULL);
  g_autofree char *st_path = g_strconcat (base, ".safetensors", NULL);
  g_autofree char *tmp = NULL, *cut_path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) manifest = NULL;
  g_autoptr (GessoSafetensors) st = NULL;
  g_autoptr (GBytes) bytes = NULL;
  JsonArray *recorded, *prefix;
  CaseResult r = { 0, 0, g_string_new (NULL) };
  FixtureSt builder;
  guint failures;

  manifest = load_manifest (json_path, &error);
  g_assert_no_error (error);
  recorded = json_object_get_array_member (manifest, "rollout_timesteps");
  g_assert_cmpint (json_array_get_length (recorded), >, cut->keep);
  prefix = json_array_new ();
  for (guint i = 0; i < cut->keep; i++)
    json_array_add_double_element (prefix, json_array_get_double_element (recorded, i));
  json_object_set_array_member (manifest, "rollout_timesteps", prefix);

  fixture_st_init (&builder);
  fixture_st_add_file (&builder, st_path, cut_to_prefix, (gpointer) cut);
  bytes = fixture_st_finish (&builder);
  tmp = fixture_make_tmpdir ();
  cut_path = fixture_write (tmp, "prefix.safetensors", bytes);
  st = gesso_safetensors_open (cut_path, &error);
  g_assert_no_error (error);

  g_assert_true (scheduler_case_run (manifest, st, on_check, &r, &error));
  g_assert_no_error (error);
  g_test_message ("%s", r.log->str);
  g_assert_cmpuint (r.checks, >, 0);
  failures = r.failures;
  g_string_free (r.log, TRUE);
  fixture_remove_tree (tmp);
  return failures;
}

/* The first 3 steps of DPM-Solver++(2M)'s 5-step rollout pass: the sampler keeps the 5-step
 * schedule (its multistep and final-step rules depend on it) and stops where the case does. */
static void
test_conformance_prefix_passes (void)
{
  PrefixCut cut = { 3, NULL };
  g_autofree char *dir = conformance_dir ();

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance directory (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  g_assert_cmpuint (run_prefix_case ("sched-dpmpp_2m-epsilon-5steps-s100", &cut), ==, 0);
  g_assert_cmpuint (run_prefix_case ("sched-ddim-v_prediction-5steps-s100", &cut), ==, 0);
}

/* ... and the recorded steps are really compared: a nudged last kept step fails. */
static void
test_conformance_prefix_compares (void)
{
  PrefixCut cut = { 3, "prev_samples" };
  g_autofree char *dir = conformance_dir ();

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance directory (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  g_assert_cmpuint (run_prefix_case ("sched-dpmpp_2m-epsilon-5steps-s100", &cut), >, 0);
}

static void
test_conformance_absent (void)
{
  g_test_skip ("no conformance directory (set GESSO_CONFORMANCE_DIR)");
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
add_conformance_tests (void)
{
  g_autofree char *dir = conformance_dir ();
  g_autofree char *sched_dir = g_build_filename (dir, "scheduler", NULL);
  g_autoptr (GDir) d = g_dir_open (sched_dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *entry;

  if (d == NULL)
    {
      g_test_add_func ("/sampling/conformance/absent", test_conformance_absent);
      return;
    }
  while ((entry = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (entry, ".json"))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      char *path = g_build_filename (sched_dir, name, NULL);   /* lives as long as the test */
      g_autoptr (JsonObject) m = load_manifest (path, NULL);
      g_autofree char *stem = g_strndup (name, strlen (name) - strlen (".json"));
      g_autofree char *test_name = NULL;
      double tol = NAN;

      if (m != NULL && json_object_has_member (m, "tolerance")
          && JSON_NODE_HOLDS_OBJECT (json_object_get_member (m, "tolerance")))
        tol = json_object_get_double_member_with_default (
          json_object_get_object_member (m, "tolerance"), "max_abs", NAN);
      test_name = g_strdup_printf ("/sampling/conformance/%s/tol=%.2g", stem, tol);
      g_test_add_data_func_full (test_name, path, test_conformance_case, g_free);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sampling/schedule/sd-sigmas", test_schedule_sd_sigmas);
  g_test_add_func ("/sampling/schedule/spacing", test_schedule_spacing);
  g_test_add_func ("/sampling/config/keys", test_config_keys);
  g_test_add_func ("/sampling/config/defaults", test_config_defaults);
  g_test_add_func ("/sampling/sampler/errors", test_sampler_errors);
  g_test_add_func ("/sampling/sampler/all-run", test_all_samplers_run);
  g_test_add_func ("/sampling/ddim/inverse-roundtrip", test_ddim_inverse_roundtrip);
  g_test_add_func ("/sampling/ddim/eta1-is-ddpm", test_ddim_eta1_is_ddpm);
  g_test_add_func ("/sampling/lms/order1-is-euler", test_lms_order1_is_euler);
  g_test_add_func ("/sampling/repaint/schedule", test_repaint_schedule);
  g_test_add_func ("/sampling/lcm/strength-timesteps", test_lcm_strength_timesteps);
  g_test_add_func ("/sampling/conformance-prefix/passes", test_conformance_prefix_passes);
  g_test_add_func ("/sampling/conformance-prefix/compares", test_conformance_prefix_compares);
  add_conformance_tests ();
  return g_test_run ();
}
