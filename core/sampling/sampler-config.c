/* Sampler configuration: diffusers' per-class defaults and scheduler_config.json keys.
 *
 * A scheduler_config.json is written for one diffusers class but users pick any sampler, so
 * (like diffusers' from_config) keys that belong to other scheduler classes are ignored.
 * Every key of the chosen class is read and checked; a value Gesso does not implement is an
 * error, never a silent fallback, and so is a key no diffusers scheduler knows.
 */
#include "sampling/sampler-private.h"

#include <string.h>
#include <glib/gi18n-lib.h>

typedef struct
{
  const char *name;             /* ours */
  const char *class_name;       /* diffusers' */
} KindName;

static const KindName kind_names[GESSO_SAMPLER_COUNT] = {
  [GESSO_SAMPLER_DDIM] = { "ddim", "DDIMScheduler" },
  [GESSO_SAMPLER_DDIM_INVERSE] = { "ddim_inverse", "DDIMInverseScheduler" },
  [GESSO_SAMPLER_DDPM] = { "ddpm", "DDPMScheduler" },
  [GESSO_SAMPLER_EULER] = { "euler", "EulerDiscreteScheduler" },
  [GESSO_SAMPLER_EULER_ANCESTRAL] = { "euler_a", "EulerAncestralDiscreteScheduler" },
  [GESSO_SAMPLER_DPMPP_2M] = { "dpmpp_2m", "DPMSolverMultistepScheduler" },
  [GESSO_SAMPLER_LMS] = { "lms", "LMSDiscreteScheduler" },
  [GESSO_SAMPLER_LCM] = { "lcm", "LCMScheduler" },
  [GESSO_SAMPLER_REPAINT] = { "repaint", "RePaintScheduler" },
};

gboolean
gesso_sampler_kind_from_name (const char *name, GessoSamplerKind *kind)
{
  g_return_val_if_fail (kind != NULL, FALSE);
  if (name == NULL)
    return FALSE;
  for (int i = 0; i < GESSO_SAMPLER_COUNT; i++)
    if (g_ascii_strcasecmp (name, kind_names[i].name) == 0
        || strcmp (name, kind_names[i].class_name) == 0)
      {
        *kind = (GessoSamplerKind) i;
        return TRUE;
      }
  return FALSE;
}

const char *
gesso_sampler_kind_name (GessoSamplerKind kind)
{
  return (unsigned) kind < GESSO_SAMPLER_COUNT ? kind_names[kind].name : "unknown";
}

void
gesso_sampler_config_init (GessoSamplerConfig *config, GessoSamplerKind kind)
{
  g_return_if_fail (config != NULL);
  memset (config, 0, sizeof *config);
  config->kind = kind;
  config->num_train_timesteps = 1000;
  config->beta_start = 0.0001;
  config->beta_end = 0.02;
  config->beta_schedule = GESSO_BETA_LINEAR;
  config->prediction_type = GESSO_PREDICTION_EPSILON;
  config->timestep_spacing = GESSO_SPACING_LINSPACE;
  config->set_alpha_to_one = TRUE;
  config->clip_sample = TRUE;
  config->clip_sample_range = 1.0;
  config->dynamic_thresholding_ratio = 0.995;
  config->sample_max_value = 1.0;
  config->variance_type = GESSO_DDPM_VARIANCE_FIXED_SMALL;
  config->sigma_spacing = GESSO_SIGMAS_DEFAULT;
  config->sigma_min = NAN;
  config->sigma_max = NAN;
  config->solver_order = 2;
  config->algorithm_type = GESSO_DPM_DPMSOLVER_PP;
  config->lower_order_final = TRUE;
  config->lambda_min_clipped = -INFINITY;
  config->lms_order = 4;
  config->original_inference_steps = 50;
  config->timestep_scaling = 10.0;
  config->lcm_strength = 1.0;
  config->jump_length = 10;
  config->jump_n_sample = 10;

  switch (kind)
    {
    case GESSO_SAMPLER_DDIM:
    case GESSO_SAMPLER_DDIM_INVERSE:
    case GESSO_SAMPLER_DDPM:
      config->timestep_spacing = GESSO_SPACING_LEADING;
      break;
    case GESSO_SAMPLER_LCM:
      config->beta_start = 0.00085;
      config->beta_end = 0.012;
      config->beta_schedule = GESSO_BETA_SCALED_LINEAR;
      config->clip_sample = FALSE;
      config->timestep_spacing = GESSO_SPACING_LEADING;
      break;
    default:
      break;
    }
}

/* --- which keys belong to which class --------------------------------------------------- */

#define K(kind) (1u << GESSO_SAMPLER_##kind)
#define ALL ((1u << GESSO_SAMPLER_COUNT) - 1)
#define ALPHA (K (DDIM) | K (DDIM_INVERSE) | K (DDPM) | K (LCM))
#define THRESH (K (DDIM) | K (DDPM) | K (DPMPP_2M) | K (LCM))
#define SIGMAS (K (EULER) | K (DPMPP_2M) | K (LMS))

typedef struct
{
  const char *key;
  guint kinds;                  /* the classes whose __init__ takes it */
} KeyInfo;

static const KeyInfo keys[] = {
  { "num_train_timesteps", ALL },
  { "beta_start", ALL },
  { "beta_end", ALL },
  { "beta_schedule", ALL },
  { "trained_betas", ALL },
  { "prediction_type", ALL & ~K (REPAINT) },
  { "timestep_spacing", ALL & ~K (REPAINT) },
  { "steps_offset", ALL & ~K (REPAINT) },
  { "rescale_betas_zero_snr", ALL & ~(K (LMS) | K (REPAINT)) },
  { "set_alpha_to_one", K (DDIM) | K (DDIM_INVERSE) | K (LCM) },
  { "set_alpha_to_zero", K (DDIM_INVERSE) },
  { "clip_sample", ALPHA | K (REPAINT) },
  { "clip_sample_range", ALPHA },
  { "thresholding", THRESH },
  { "dynamic_thresholding_ratio", THRESH },
  { "sample_max_value", THRESH },
  { "variance_type", K (DDPM) | K (DPMPP_2M) },
  { "eta", K (REPAINT) },
  { "use_karras_sigmas", SIGMAS },
  { "use_exponential_sigmas", SIGMAS },
  { "use_beta_sigmas", SIGMAS },
  { "sigma_min", K (EULER) },
  { "sigma_max", K (EULER) },
  { "interpolation_type", K (EULER) },
  { "timestep_type", K (EULER) },
  { "final_sigmas_type", K (EULER) | K (DPMPP_2M) },
  { "solver_order", K (DPMPP_2M) },
  { "algorithm_type", K (DPMPP_2M) },
  { "solver_type", K (DPMPP_2M) },
  { "lower_order_final", K (DPMPP_2M) },
  { "euler_at_final", K (DPMPP_2M) },
  { "use_lu_lambdas", K (DPMPP_2M) },
  { "use_flow_sigmas", K (DPMPP_2M) },
  { "flow_shift", K (DPMPP_2M) },
  { "lambda_min_clipped", K (DPMPP_2M) },
  { "use_dynamic_shifting", K (DPMPP_2M) },
  { "time_shift_type", K (DPMPP_2M) },
  { "original_inference_steps", K (LCM) },
  { "timestep_scaling", K (LCM) },
};

/* Keys other diffusers 0.36 schedulers take (PNDM, UniPC, DEIS, Heun, KDPM2, EDM, flow
 * matching, ...): a config written for them is usable here, minus these. */
static const char *const foreign_keys[] = {
  "skip_prk_steps", "predict_x0", "solver_p", "disable_corrector", "lower_order_final",
  "rho", "sigma_data", "sigma_schedule", "shift", "use_dynamic_shifting", "base_shift",
  "max_shift", "base_image_seq_len", "max_image_seq_len", "invert_sigmas", "shift_terminal",
  "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_flow_sigmas",
  "flow_shift", "time_shift_type", "stochastic_sampling", "s_noise", "s", "snr", "x",
  "seed", "noise_sampler_seed", "sampling_eps", "scaler", "scale_factors", "snr_shift_scale",
  "predictor_order", "corrector_order", "correct_steps", "clip_denoised", "tau_func", "t0",
  "t1", "upscale_mode", "transform", "num_vec_classes", "masking_schedule", "mask_token_id",
  "gamma_cum_start", "gamma_cum_end", "alpha_cum_start", "alpha_cum_end", "sigma_min",
  "sigma_max", "solver_order", "solver_type", "algorithm_type", "euler_at_final",
  "lambda_min_clipped", "use_lu_lambdas", "final_sigmas_type", "interpolation_type",
  "timestep_type", "timestep_scaling", "original_inference_steps", "eta", "variance_type",
  "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "clip_sample",
  "clip_sample_range", "set_alpha_to_one", "set_alpha_to_zero", "rescale_betas_zero_snr",
  "prediction_type", "timestep_spacing", "steps_offset",
};

static const KeyInfo *
find_key (const char *key)
{
  for (size_t i = 0; i < G_N_ELEMENTS (keys); i++)
    if (strcmp (keys[i].key, key) == 0)
      return &keys[i];
  return NULL;
}

static gboolean
is_foreign_key (const char *key)
{
  for (size_t i = 0; i < G_N_ELEMENTS (foreign_keys); i++)
    if (strcmp (foreign_keys[i], key) == 0)
      return TRUE;
  return FALSE;
}

/* --- typed values -------------------------------------------------------------------------- */

static gboolean
type_error (GError **error, const char *name, const char *key, const char *what)
{
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, _("%s: '%s' must be %s"), name, key, what);
  return FALSE;
}

static GType
value_type (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
}

static gboolean
read_bool (JsonNode *node, const char *name, const char *key, gboolean *out, GError **error)
{
  if (value_type (node) != G_TYPE_BOOLEAN)
    return type_error (error, name, key, "true or false");
  *out = json_node_get_boolean (node);
  return TRUE;
}

/* A number; +-Infinity only where ALLOW_INFINITE (Python writes -Infinity for -inf). */
static gboolean
read_double (JsonNode *node, const char *name, const char *key, double min, double max,
             gboolean allow_infinite, double *out, GError **error)
{
  GType type = value_type (node);
  double v;

  if (type != G_TYPE_DOUBLE && type != G_TYPE_INT64)
    return type_error (error, name, key, "a number");
  v = json_node_get_double (node);
  if (isnan (v) || (!allow_infinite && !isfinite (v)) || (isfinite (v) && (v < min || v > max)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("%s: '%s' is %g; it must be between %g and %g"), name, key, v, min, max);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

static gboolean
read_int (JsonNode *node, const char *name, const char *key, gint64 min, gint64 max, int *out,
          GError **error)
{
  GType type = value_type (node);
  double d = type == G_TYPE_DOUBLE ? json_node_get_double (node) : 0;
  gint64 v;

  /* integers, and floats with an integral value ("50.0"), which some writers emit */
  if (type == G_TYPE_INT64)
    v = json_node_get_int (node);
  else if (type == G_TYPE_DOUBLE && d == floor (d) && fabs (d) < 1e15)
    v = (gint64) d;
  else
    return type_error (error, name, key, "an integer");
  if (v < min || v > max)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "%s: '%s' is %" G_GINT64_FORMAT "; it must be between %" G_GINT64_FORMAT
                   " and %" G_GINT64_FORMAT, name, key, v, min, max);
      return FALSE;
    }
  *out = (int) v;
  return TRUE;
}

/* A string that must be one of CHOICES (NULL-terminated); *OUT its index. */
static gboolean
read_choice (JsonNode *node, const char *name, const char *key, const char *const *choices,
             int *out, GError **error)
{
  const char *v;
  g_autoptr (GString) list = NULL;

  if (value_type (node) != G_TYPE_STRING)
    return type_error (error, name, key, "a string");
  v = json_node_get_string (node);
  for (int i = 0; choices[i] != NULL; i++)
    if (strcmp (v, choices[i]) == 0)
      {
        *out = i;
        return TRUE;
      }
  list = g_string_new (NULL);
  for (int i = 0; choices[i] != NULL; i++)
    g_string_append_printf (list, "%s\"%s\"", i ? ", " : "", choices[i]);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               _("%s: '%s' is \"%s\", which Gesso does not support here; supported: %s"), name, key,
               v, list->str);
  return FALSE;
}

static gboolean
unsupported (GError **error, const char *name, const char *key, const char *why)
{
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED, _("%s: '%s': %s"), name, key, why);
  return FALSE;
}

/* Flags gathered over all keys, resolved once the whole object is read. */
typedef struct
{
  gboolean karras, exponential, beta, lu, flow;
  gboolean have_alpha_to_zero, alpha_to_zero;
} Pending;

static gboolean
read_key (GessoSamplerConfig *c, Pending *p, const char *key, JsonNode *node, const char *name,
          GError **error)
{
  static const char *const schedules[] = { "linear", "scaled_linear", "squaredcos_cap_v2",
                                           "sigmoid", NULL };
  static const char *const predictions[] = { "epsilon", "v_prediction", "sample", NULL };
  static const char *const spacings[] = { "leading", "trailing", "linspace", NULL };
  static const char *const ddpm_variances[] = { "fixed_small", "fixed_small_log", "fixed_large",
                                                NULL };
  static const char *const interpolations[] = { "linear", "log_linear", NULL };
  static const char *const timestep_types[] = { "discrete", "continuous", NULL };
  static const char *const final_sigmas[] = { "zero", "sigma_min", NULL };
  static const char *const algorithms[] = { "dpmsolver++", "dpmsolver", "sde-dpmsolver++",
                                            "sde-dpmsolver", "deis", NULL };
  static const char *const solver_types[] = { "midpoint", "heun", "logrho", "bh1", "bh2", NULL };
  static const char *const time_shifts[] = { "exponential", NULL };
  int i = 0;

  if (strcmp (key, "num_train_timesteps") == 0)
    return read_int (node, name, key, 2, 100000, &c->num_train_timesteps, error);
  if (strcmp (key, "beta_start") == 0)
    return read_double (node, name, key, 0, 1, FALSE, &c->beta_start, error);
  if (strcmp (key, "beta_end") == 0)
    return read_double (node, name, key, 0, 1, FALSE, &c->beta_end, error);
  if (strcmp (key, "beta_schedule") == 0)
    {
      if (!read_choice (node, name, key, schedules, &i, error))
        return FALSE;
      if (i == GESSO_BETA_SIGMOID && c->kind != GESSO_SAMPLER_DDPM
          && c->kind != GESSO_SAMPLER_REPAINT)
        return unsupported (error, name, key, "\"sigmoid\" betas exist only for ddpm and "
                            "repaint (as in diffusers)");
      c->beta_schedule = (GessoBetaSchedule) i;
      return TRUE;
    }
  if (strcmp (key, "trained_betas") == 0)
    return unsupported (error, name, key, "explicit trained betas are not supported; use "
                        "beta_start, beta_end and beta_schedule instead");
  if (strcmp (key, "prediction_type") == 0)
    {
      if (!read_choice (node, name, key, predictions, &i, error))
        return FALSE;
      c->prediction_type = (GessoPrediction) i;
      return TRUE;
    }
  if (strcmp (key, "timestep_spacing") == 0)
    {
      if (!read_choice (node, name, key, spacings, &i, error))
        return FALSE;
      c->timestep_spacing = (GessoTimestepSpacing) i;
      return TRUE;
    }
  if (strcmp (key, "steps_offset") == 0)
    return read_int (node, name, key, 0, 100000, &c->steps_offset, error);
  if (strcmp (key, "rescale_betas_zero_snr") == 0)
    return read_bool (node, name, key, &c->rescale_betas_zero_snr, error);
  if (strcmp (key, "set_alpha_to_one") == 0)
    return read_bool (node, name, key, &c->set_alpha_to_one, error);
  if (strcmp (key, "set_alpha_to_zero") == 0)
    {
      p->have_alpha_to_zero = TRUE;
      return read_bool (node, name, key, &p->alpha_to_zero, error);
    }
  if (strcmp (key, "clip_sample") == 0)
    return read_bool (node, name, key, &c->clip_sample, error);
  if (strcmp (key, "clip_sample_range") == 0)
    return read_double (node, name, key, 1e-6, 1e6, FALSE, &c->clip_sample_range, error);
  if (strcmp (key, "thresholding") == 0)
    return read_bool (node, name, key, &c->thresholding, error);
  if (strcmp (key, "dynamic_thresholding_ratio") == 0)
    return read_double (node, name, key, 0, 1, FALSE, &c->dynamic_thresholding_ratio, error);
  if (strcmp (key, "sample_max_value") == 0)
    return read_double (node, name, key, 1, 1e6, FALSE, &c->sample_max_value, error);
  if (strcmp (key, "variance_type") == 0)
    {
      if (c->kind == GESSO_SAMPLER_DPMPP_2M)
        return unsupported (error, name, key, "learned variances (6-channel model outputs) are "
                            "not supported; set it to null");
      if (!read_choice (node, name, key, ddpm_variances, &i, error))
        return FALSE;
      c->variance_type = (GessoDdpmVariance) i;
      return TRUE;
    }
  if (strcmp (key, "eta") == 0)
    return read_double (node, name, key, 0, 1, FALSE, &c->eta, error);
  if (strcmp (key, "use_karras_sigmas") == 0)
    return read_bool (node, name, key, &p->karras, error);
  if (strcmp (key, "use_exponential_sigmas") == 0)
    return read_bool (node, name, key, &p->exponential, error);
  if (strcmp (key, "use_beta_sigmas") == 0)
    return read_bool (node, name, key, &p->beta, error);
  if (strcmp (key, "use_lu_lambdas") == 0)
    return read_bool (node, name, key, &p->lu, error);
  if (strcmp (key, "use_flow_sigmas") == 0)
    return read_bool (node, name, key, &p->flow, error);
  if (strcmp (key, "sigma_min") == 0)
    return read_double (node, name, key, 0, 1e6, FALSE, &c->sigma_min, error);
  if (strcmp (key, "sigma_max") == 0)
    return read_double (node, name, key, 0, 1e6, FALSE, &c->sigma_max, error);
  if (strcmp (key, "interpolation_type") == 0)
    {
      if (!read_choice (node, name, key, interpolations, &i, error))
        return FALSE;
      c->log_linear_sigmas = i == 1;
      return TRUE;
    }
  if (strcmp (key, "timestep_type") == 0)
    {
      if (!read_choice (node, name, key, timestep_types, &i, error))
        return FALSE;
      c->continuous_timesteps = i == 1;
      return TRUE;
    }
  if (strcmp (key, "final_sigmas_type") == 0)
    {
      if (!read_choice (node, name, key, final_sigmas, &i, error))
        return FALSE;
      c->final_sigma_min = i == 1;
      return TRUE;
    }
  if (strcmp (key, "solver_order") == 0)
    return read_int (node, name, key, 1, 3, &c->solver_order, error);
  if (strcmp (key, "algorithm_type") == 0)
    {
      if (!read_choice (node, name, key, algorithms, &i, error))
        return FALSE;
      /* diffusers maps the retired "deis" to dpmsolver++ */
      c->algorithm_type = i == 4 ? GESSO_DPM_DPMSOLVER_PP : (GessoDpmAlgorithm) i;
      return TRUE;
    }
  if (strcmp (key, "solver_type") == 0)
    {
      if (!read_choice (node, name, key, solver_types, &i, error))
        return FALSE;
      /* diffusers maps UniPC's "logrho", "bh1", "bh2" to midpoint */
      c->solver_heun = i == 1;
      return TRUE;
    }
  if (strcmp (key, "lower_order_final") == 0)
    return read_bool (node, name, key, &c->lower_order_final, error);
  if (strcmp (key, "euler_at_final") == 0)
    return read_bool (node, name, key, &c->euler_at_final, error);
  if (strcmp (key, "flow_shift") == 0)
    {
      double unused;
      /* only used with use_flow_sigmas, which is refused */
      return read_double (node, name, key, 1e-6, 1e6, FALSE, &unused, error);
    }
  if (strcmp (key, "lambda_min_clipped") == 0)
    return read_double (node, name, key, -1e6, 1e6, TRUE, &c->lambda_min_clipped, error);
  if (strcmp (key, "use_dynamic_shifting") == 0)
    {
      gboolean on;
      /* shifting needs a resolution-dependent mu passed to set_timesteps; without one
       * diffusers does not shift either */
      return read_bool (node, name, key, &on, error);
    }
  if (strcmp (key, "time_shift_type") == 0)
    return read_choice (node, name, key, time_shifts, &i, error);
  if (strcmp (key, "original_inference_steps") == 0)
    return read_int (node, name, key, 1, 100000, &c->original_inference_steps, error);
  if (strcmp (key, "timestep_scaling") == 0)
    return read_double (node, name, key, 1e-6, 1e6, FALSE, &c->timestep_scaling, error);

  g_return_val_if_reached (FALSE);
}

gboolean
gesso_sampler_config_from_json (GessoSamplerConfig *config, JsonObject *json, const char *name,
                                GError **error)
{
  g_autoptr (GList) members = NULL;
  Pending p = { 0 };
  GessoSamplerConfig c;
  guint mask;

  g_return_val_if_fail (config != NULL && json != NULL, FALSE);
  if (name == NULL)
    name = "scheduler config";
  c = *config;
  mask = 1u << c.kind;
  p.karras = c.sigma_spacing == GESSO_SIGMAS_KARRAS;
  p.exponential = c.sigma_spacing == GESSO_SIGMAS_EXPONENTIAL;
  p.lu = c.sigma_spacing == GESSO_SIGMAS_LU_LAMBDAS;

  members = json_object_get_members (json);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *key = l->data;
      JsonNode *node = json_object_get_member (json, key);
      const KeyInfo *info;

      if (key[0] == '_')        /* _class_name, _diffusers_version */
        continue;
      info = find_key (key);
      if (info == NULL || !(info->kinds & mask))
        {
          if (info != NULL || is_foreign_key (key))
            {
              g_debug ("%s: '%s' is not a %s setting; ignored as diffusers ignores it", name,
                       key, gesso_sampler_kind_name (c.kind));
              continue;
            }
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       _("%s: unknown scheduler setting '%s'; Gesso cannot tell what it would "
                       "change, so remove it if it is not needed"), name, key);
          return FALSE;
        }
      if (JSON_NODE_HOLDS_NULL (node))  /* diffusers writes null for "unset": keep the default */
        continue;
      if (!read_key (&c, &p, key, node, name, error))
        return FALSE;
    }

  if (p.have_alpha_to_zero)
    c.set_alpha_to_one = p.alpha_to_zero;
  if (p.karras + p.exponential + p.beta > 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("%s: only one of use_karras_sigmas, use_exponential_sigmas and "
                   "use_beta_sigmas can be true"), name);
      return FALSE;
    }
  if (p.beta)
    return unsupported (error, name, "use_beta_sigmas",
                        "beta-distribution sigmas are not supported; use Karras or "
                        "exponential sigmas");
  if (p.flow && !p.karras && !p.lu && !p.exponential)
    return unsupported (error, name, "use_flow_sigmas",
                        "flow-matching sigmas are for flow models, which Gesso does not run");
  /* diffusers' precedence: karras, then lu lambdas, then exponential */
  c.sigma_spacing = p.karras ? GESSO_SIGMAS_KARRAS
                    : p.lu ? GESSO_SIGMAS_LU_LAMBDAS
                    : p.exponential ? GESSO_SIGMAS_EXPONENTIAL
                    : GESSO_SIGMAS_DEFAULT;
  *config = c;
  return TRUE;
}
