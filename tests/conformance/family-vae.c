/* vae/ cases: image -> latent mean, std and log-variance (unscaled); decode_input ->
 * decoded; latent_mean -> decoded_from_mean. Run for every file of the model (its diffusers
 * folder and each single file); a single file takes its hyperparameters from the model's
 * diffusers folder, and the config inferred from its weights' shapes must agree with them.
 * One result per variant: the largest difference over the five outputs, with each output's
 * own figure in the detail so a failure names the output. */
#include <math.h>
#include <string.h>

#include "families.h"
#include "gesso.h"
#include "io/config.h"
#include "io/model_files.h"
#include "model/vae.h"
#include "model/weights.h"

enum
{
  OUT_MEAN,
  OUT_STD,
  OUT_LOGVAR,
  OUT_DECODED,
  OUT_DECODED_FROM_MEAN,
  N_OUTPUTS
};

static const char *const output_names[N_OUTPUTS] = {
  "latent_mean", "latent_std", "latent_logvar", "decoded", "decoded_from_mean",
};

typedef struct
{
  GessoTensor image;
  GessoTensor decode_input;
  GessoTensor want[N_OUTPUTS];
} VaeCase;

static void
vae_case_clear (VaeCase *vc)
{
  gesso_tensor_free (&vc->image);
  gesso_tensor_free (&vc->decode_input);
  for (int i = 0; i < N_OUTPUTS; i++)
    gesso_tensor_free (&vc->want[i]);
}

static gboolean
is_nchw (const GessoTensor *t)
{
  return t->ndim == 4 && t->shape[0] == 1;
}

/* The manifest names the model first ("tiny-sd1 (vae; ...)"). */
static char *
model_name (const ConformanceCase *c)
{
  const char *model = conformance_manifest_string (c, "model");
  size_t n;

  if (model == NULL)
    return NULL;
  n = strcspn (model, " (");
  return n > 0 ? g_strndup (model, n) : NULL;
}

/* The config for variant V: its own vae/config.json for a diffusers folder; for a single
 * file the diffusers folder's, after checking that the shapes say the same. */
static gboolean
variant_config (const ConformanceVariant *v, GessoModelFiles *files, GessoWeights *weights,
                GessoVaeConfig *config, GError **error)
{
  JsonObject *json = gesso_model_files_config (files, "vae");
  g_autoptr (JsonObject) sidecar = NULL;
  g_autofree char *name = NULL;
  GessoVaeConfig inferred;

  if (json == NULL)
    {
      if (v->diffusers_dir == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                       "single file without a diffusers folder to take the VAE config from");
          return FALSE;
        }
      name = g_build_filename (v->diffusers_dir, "vae", "config.json", NULL);
      sidecar = gesso_config_load (name, error);
      if (sidecar == NULL)
        return FALSE;
      json = sidecar;
    }
  if (!gesso_vae_config_from_json (config, json, name ? name : "vae/config.json", error)
      || !gesso_vae_config_infer (&inferred, weights, error))
    return FALSE;
  /* the one thing shapes cannot tell: tiny-sdxl's 8 groups are SD's 32 to inference */
  inferred.norm_num_groups = config->norm_num_groups;
  if (!gesso_vae_config_same_architecture (config, &inferred)
      || inferred.scaling_factor != config->scaling_factor)
    {
      g_autofree char *want = gesso_vae_config_to_string (config);
      g_autofree char *got = gesso_vae_config_to_string (&inferred);

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "config inferred from the weights (%s) differs from config.json (%s)", got,
                   want);
      return FALSE;
    }
  return TRUE;
}

/* Runs variant V on the case; DIFFS gets each output's max-abs difference. */
static gboolean
check_variant (const ConformanceVariant *v, const VaeCase *vc, double diffs[N_OUTPUTS],
               GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoVae) vae = NULL;
  g_autofree float *buffer = NULL;
  GessoVaeConfig config;
  const int64_t height = vc->image.shape[2], width = vc->image.shape[3];
  float *got[N_OUTPUTS];
  size_t numel[N_OUTPUTS], total = 0;
  int f;

  files = gesso_model_files_open (v->path, error);
  if (files == NULL)
    return FALSE;
  weights = gesso_weights_new (files, error);
  if (weights == NULL || !variant_config (v, files, weights, &config, error))
    return FALSE;
  vae = gesso_vae_new (weights, &config, error);
  if (vae == NULL)
    return FALSE;

  f = gesso_vae_latent_factor (vae);
  for (int i = 0; i < N_OUTPUTS; i++)
    {
      const gboolean latent = i < OUT_DECODED;
      const int64_t shape[4] = { 1, latent ? config.latent_channels : config.out_channels,
                                 latent ? height / f : height, latent ? width / f : width };
      const GessoTensor *want = &vc->want[i];

      if (want->ndim != 4 || memcmp (want->shape, shape, sizeof shape) != 0)
        {
          g_autofree char *s_want = gesso_tensor_shape_string (want->ndim, want->shape);
          g_autofree char *s_got = gesso_tensor_shape_string (4, shape);

          g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                       "%s is %s in the case but the VAE makes %s", output_names[i], s_want,
                       s_got);
          return FALSE;
        }
      numel[i] = (size_t) gesso_shape_numel (4, shape);
      total += numel[i];
    }
  buffer = g_new (float, total);
  got[0] = buffer;
  for (int i = 1; i < N_OUTPUTS; i++)
    got[i] = got[i - 1] + numel[i - 1];

  if (!gesso_vae_encode (vae, vc->image.data, height, width, got[OUT_MEAN], got[OUT_LOGVAR],
                         got[OUT_STD], NULL, error)
      || !gesso_vae_decode (vae, vc->decode_input.data, vc->decode_input.shape[2],
                            vc->decode_input.shape[3], got[OUT_DECODED], NULL, error)
      || !gesso_vae_decode (vae, got[OUT_MEAN], height / f, width / f,
                            got[OUT_DECODED_FROM_MEAN], NULL, error))
    return FALSE;

  for (int i = 0; i < N_OUTPUTS; i++)
    diffs[i] = conformance_max_abs_diff (got[i], vc->want[i].data, numel[i]);
  return TRUE;
}

static void
run_variant (ConformanceRun *run, const ConformanceCase *c, const ConformanceVariant *v,
             const VaeCase *vc, double tol)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) detail = g_string_new (NULL);
  double diffs[N_OUTPUTS], worst = 0.0;
  int worst_output = 0;
  gboolean ok;

  if (!check_variant (v, vc, diffs, &error))
    {
      conformance_report_error (run, c, v->label, tol, error);
      return;
    }
  for (int i = 0; i < N_OUTPUTS; i++)
    {
      g_string_append_printf (detail, "%s%s %.3g", i ? ", " : "", output_names[i], diffs[i]);
      /* NaN counts as the worst difference there is */
      if (!isnan (worst) && (isnan (diffs[i]) || diffs[i] > worst))
        {
          worst = diffs[i];
          worst_output = i;
        }
    }
  ok = !isnan (worst) && worst <= tol;
  if (!ok)
    g_string_append_printf (detail, "; worst: %s", output_names[worst_output]);
  conformance_report (run, c, ok ? CONFORMANCE_PASS : CONFORMANCE_FAIL, v->label, worst, tol,
                      "%s", detail->str);
}

static gboolean
load_case (const ConformanceCase *c, VaeCase *vc, GError **error)
{
  if (!conformance_case_tensor (c, "image", &vc->image, error)
      || !conformance_case_tensor (c, "decode_input", &vc->decode_input, error))
    return FALSE;
  for (int i = 0; i < N_OUTPUTS; i++)
    if (!conformance_case_tensor (c, output_names[i], &vc->want[i], error))
      return FALSE;
  if (!is_nchw (&vc->image) || !is_nchw (&vc->decode_input))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "image and decode_input must be [1, C, H, W]");
      return FALSE;
    }
  return TRUE;
}

void
conformance_family_vae (ConformanceRun *run, const ConformanceCase *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) variants = NULL;
  g_autofree char *model = model_name (c);
  VaeCase vc = { 0 };
  double tol;

  if (model == NULL || !conformance_tolerance (c, &tol))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, 0,
                          "the manifest lacks \"model\" or \"tolerance\".max_abs");
      return;
    }
  variants = conformance_model_variants (c, model);
  if (!load_case (c, &vc, &error))
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "%s", error->message);
  else if (variants->len == 0)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "model '%s' has no files",
                        model);
  else
    for (guint i = 0; i < variants->len; i++)
      run_variant (run, c, variants->pdata[i], &vc, tol);
  vae_case_clear (&vc);
}
