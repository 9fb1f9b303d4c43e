/* taesd/ cases: image -> latents and their [0, 1] storage form; decode_input -> decoded;
 * latents -> decoded_from_latents. Run for every file of the model: the diffusers
 * AutoencoderTiny folder and each of madebyollin's two files (each opens its partner, so
 * both halves of that layout are checked from either name). One result per variant: the
 * largest difference over the four outputs, each output's own figure in the detail. */
#include <math.h>
#include <string.h>

#include "families.h"
#include "gesso.h"
#include "model/taesd.h"

enum
{
  OUT_LATENTS,
  OUT_LATENTS_01,
  OUT_DECODED,
  OUT_DECODED_FROM_LATENTS,
  N_OUTPUTS
};

static const char *const output_names[N_OUTPUTS] = {
  "latents", "latents_scaled_01", "decoded", "decoded_from_latents",
};

typedef struct
{
  GessoTensor image;
  GessoTensor decode_input;
  GessoTensor want[N_OUTPUTS];
  double magnitude, shift;      /* scale_latents: clamp (z / (2 magnitude) + shift, 0, 1) */
} TaesdCase;

static void
taesd_case_clear (TaesdCase *tc)
{
  gesso_tensor_free (&tc->image);
  gesso_tensor_free (&tc->decode_input);
  for (int i = 0; i < N_OUTPUTS; i++)
    gesso_tensor_free (&tc->want[i]);
}

static gboolean
is_nchw (const GessoTensor *t)
{
  return t->ndim == 4 && t->shape[0] == 1;
}

static gboolean
check_variant (const ConformanceVariant *v, const TaesdCase *tc, double diffs[N_OUTPUTS],
               GError **error)
{
  g_autoptr (GessoTaesd) taesd = gesso_taesd_open (v->path, error);
  g_autofree float *buffer = NULL;
  float *got[N_OUTPUTS];
  size_t numel[N_OUTPUTS], total = 0;
  int f;

  if (taesd == NULL)
    return FALSE;
  f = gesso_taesd_latent_factor (taesd);
  for (int i = 0; i < N_OUTPUTS; i++)
    {
      const GessoTensor *want = &tc->want[i];
      const gboolean latent = i < OUT_DECODED;
      const int64_t h = i == OUT_DECODED ? tc->decode_input.shape[2] * f
                        : latent ? tc->image.shape[2] / f : tc->image.shape[2];
      const int64_t w = i == OUT_DECODED ? tc->decode_input.shape[3] * f
                        : latent ? tc->image.shape[3] / f : tc->image.shape[3];
      const int64_t shape[4] = { 1, latent ? gesso_taesd_latent_channels (taesd) : 3, h, w };

      if (want->ndim != 4 || memcmp (want->shape, shape, sizeof shape) != 0)
        {
          g_autofree char *s_want = gesso_tensor_shape_string (want->ndim, want->shape);
          g_autofree char *s_got = gesso_tensor_shape_string (4, shape);

          g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                       "%s is %s in the case but TAESD makes %s", output_names[i], s_want,
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

  if (!gesso_taesd_encode (taesd, tc->image.data, tc->image.shape[2], tc->image.shape[3],
                           got[OUT_LATENTS], NULL, error)
      || !gesso_taesd_decode (taesd, tc->decode_input.data, tc->decode_input.shape[2],
                              tc->decode_input.shape[3], got[OUT_DECODED], NULL, error)
      || !gesso_taesd_decode (taesd, got[OUT_LATENTS], tc->image.shape[2] / f,
                              tc->image.shape[3] / f, got[OUT_DECODED_FROM_LATENTS], NULL,
                              error))
    return FALSE;
  for (size_t i = 0; i < numel[OUT_LATENTS]; i++)
    got[OUT_LATENTS_01][i] = (float) CLAMP (got[OUT_LATENTS][i] / (2.0 * tc->magnitude)
                                              + tc->shift, 0.0, 1.0);

  for (int i = 0; i < N_OUTPUTS; i++)
    diffs[i] = conformance_max_abs_diff (got[i], tc->want[i].data, numel[i]);
  return TRUE;
}

static void
run_variant (ConformanceRun *run, const ConformanceCase *c, const ConformanceVariant *v,
             const TaesdCase *tc, double tol)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) detail = g_string_new (NULL);
  double diffs[N_OUTPUTS], worst = 0.0;
  int worst_output = 0;
  gboolean ok;

  if (!check_variant (v, tc, diffs, &error))
    {
      conformance_report_error (run, c, v->label, tol, error);
      return;
    }
  for (int i = 0; i < N_OUTPUTS; i++)
    {
      g_string_append_printf (detail, "%s%s %.3g", i ? ", " : "", output_names[i], diffs[i]);
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
manifest_number (const ConformanceCase *c, const char *key, double *value)
{
  JsonNode *node = json_object_get_member (c->manifest, key);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  *value = json_node_get_double (node);
  return TRUE;
}

static gboolean
load_case (const ConformanceCase *c, TaesdCase *tc, GError **error)
{
  if (!manifest_number (c, "latent_magnitude", &tc->magnitude)
      || !manifest_number (c, "latent_shift", &tc->shift) || tc->magnitude <= 0.0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the manifest lacks a positive latent_magnitude or latent_shift");
      return FALSE;
    }
  if (!conformance_case_tensor (c, "image", &tc->image, error)
      || !conformance_case_tensor (c, "decode_input", &tc->decode_input, error))
    return FALSE;
  for (int i = 0; i < N_OUTPUTS; i++)
    if (!conformance_case_tensor (c, output_names[i], &tc->want[i], error))
      return FALSE;
  if (!is_nchw (&tc->image) || !is_nchw (&tc->decode_input))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "image and decode_input must be [1, C, H, W]");
      return FALSE;
    }
  return TRUE;
}

void
conformance_family_taesd (ConformanceRun *run, const ConformanceCase *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) variants = NULL;
  const char *model = conformance_manifest_string (c, "model");
  TaesdCase tc = { 0 };
  double tol;

  if (model == NULL || !conformance_tolerance (c, &tol))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, 0,
                          "the manifest lacks \"model\" or \"tolerance\".max_abs");
      return;
    }
  variants = conformance_model_variants (c, model);
  if (!load_case (c, &tc, &error))
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "%s", error->message);
  else if (variants->len == 0)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "model '%s' has no files",
                        model);
  else
    for (guint i = 0; i < variants->len; i++)
      run_variant (run, c, variants->pdata[i], &tc, tol);
  taesd_case_clear (&tc);
}
