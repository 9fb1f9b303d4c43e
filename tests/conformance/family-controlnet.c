/* controlnet/ cases: one ControlNet (cn-*) or two summed (multicn-*) on tiny-sd1's UNet.
 * sample, timestep, encoder_hidden_states and the control image(s) -> the six down residuals
 * and the middle one (already scaled), then noise_pred = the UNet with those residuals added.
 * Run for every file of the ControlNet (its diffusers folder and its original-layout single
 * file, which carries no config and takes the base UNet's structure); with two ControlNets the
 * files of the same kind go together. */
#include <math.h>
#include <string.h>

#include "families.h"
#include "gesso.h"
#include "io/model_files.h"
#include "model/controlnet.h"
#include "model/unet.h"
#include "model/weights.h"

#define MAX_NETS 4
#define N_DOWN_MAX 32

typedef struct
{
  int n_nets;
  const char *names[MAX_NETS];
  double scales[MAX_NETS];
  GessoTensor images[MAX_NETS];
  GessoTensor sample, timestep, context, noise_pred;
  float *residuals;             /* the recorded ones, packed as the UNet takes them */
  size_t n_residuals;
} ControlCase;

static void
control_case_clear (ControlCase *cc)
{
  for (int j = 0; j < cc->n_nets; j++)
    gesso_tensor_free (&cc->images[j]);
  gesso_tensor_free (&cc->sample);
  gesso_tensor_free (&cc->timestep);
  gesso_tensor_free (&cc->context);
  gesso_tensor_free (&cc->noise_pred);
  g_free (cc->residuals);
}

/* "controlnet" + "conditioning_scale", or the lists "controlnets" + "conditioning_scales". */
static gboolean
read_nets (const ConformanceCase *c, ControlCase *cc, GError **error)
{
  JsonObject *m = c->manifest;
  JsonNode *names_node = json_object_get_member (m, "controlnets");
  JsonNode *scales_node = json_object_get_member (m, "conditioning_scales");
  JsonArray *names = names_node && JSON_NODE_HOLDS_ARRAY (names_node)
                       ? json_node_get_array (names_node) : NULL;
  JsonArray *scales = scales_node && JSON_NODE_HOLDS_ARRAY (scales_node)
                        ? json_node_get_array (scales_node) : NULL;

  if (json_object_has_member (m, "controlnet"))
    {
      cc->n_nets = 1;
      cc->names[0] = json_object_get_string_member (m, "controlnet");
      cc->scales[0] = json_object_get_double_member_with_default (m, "conditioning_scale", NAN);
    }
  else if (names != NULL && scales != NULL
           && json_array_get_length (names) == json_array_get_length (scales)
           && json_array_get_length (names) >= 1 && json_array_get_length (names) <= MAX_NETS)
    {
      cc->n_nets = (int) json_array_get_length (names);
      for (int j = 0; j < cc->n_nets; j++)
        {
          cc->names[j] = json_array_get_string_element (names, j);
          cc->scales[j] = json_array_get_double_element (scales, j);
        }
    }
  for (int j = 0; j < cc->n_nets; j++)
    if (cc->names[j] == NULL || !isfinite (cc->scales[j]))
      cc->n_nets = 0;
  if (cc->n_nets == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the manifest names no ControlNet with its conditioning scale");
      return FALSE;
    }
  return TRUE;
}

static gboolean
load_case (const ConformanceCase *c, ControlCase *cc, GError **error)
{
  g_autoptr (GByteArray) packed = g_byte_array_new ();

  if (!read_nets (c, cc, error)
      || !conformance_case_tensor (c, "sample", &cc->sample, error)
      || !conformance_case_tensor (c, "timestep", &cc->timestep, error)
      || !conformance_case_tensor (c, "encoder_hidden_states", &cc->context, error)
      || !conformance_case_tensor (c, "noise_pred", &cc->noise_pred, error))
    return FALSE;
  for (int j = 0; j < cc->n_nets; j++)
    {
      g_autofree char *name = cc->n_nets == 1 ? g_strdup ("controlnet_cond")
                                              : g_strdup_printf ("controlnet_cond_%d", j);
      if (!conformance_case_tensor (c, name, &cc->images[j], error))
        return FALSE;
    }
  for (int k = 0; k <= N_DOWN_MAX; k++)
    {
      g_autofree char *name = g_strdup_printf ("down_block_res_sample_%d", k);
      GessoTensor t = { 0 };

      if (gesso_safetensors_lookup (c->tensors, name) == NULL)
        g_snprintf (name, strlen (name) + 1, "mid_block_res_sample");
      if (!conformance_case_tensor (c, name, &t, error))
        return FALSE;
      g_byte_array_append (packed, (const guint8 *) t.data,
                           (guint) gesso_tensor_numel (&t) * sizeof (float));
      gesso_tensor_free (&t);
      if (strcmp (name, "mid_block_res_sample") == 0)
        break;
    }
  cc->n_residuals = packed->len / sizeof (float);
  cc->residuals = (float *) g_byte_array_free (g_steal_pointer (&packed), FALSE);
  return TRUE;
}

/* The base UNet, from the model's diffusers folder. */
static GessoUnet *
open_base (const ConformanceCase *c, const char *model, GessoModelFiles **files,
           GessoWeights **weights, GError **error)
{
  g_autofree char *dir = conformance_model_dir (c, model);
  g_autofree char *folder = g_build_filename (dir, "diffusers", NULL);

  *files = gesso_model_files_open (folder, error);
  *weights = *files ? gesso_weights_new (*files, error) : NULL;
  return *weights ? gesso_unet_new_for_model (*files, *weights, NULL, error) : NULL;
}

typedef struct
{
  double residuals;
  double noise_pred;
} ControlResult;

/* The files of every net that are of the same kind as the first net's file VARIANT (its
 * diffusers folder, or its single file). */
static gboolean
check_variant (const ConformanceCase *c, const ControlCase *cc, GessoUnet *unet,
               guint variant, ControlResult *result, GError **error)
{
  const int64_t batch = cc->sample.shape[0], h = cc->sample.shape[2], w = cc->sample.shape[3];
  const int64_t ctx_len = cc->context.shape[1];
  size_t n = gesso_unet_residual_floats (unet, batch, h, w);
  g_autofree float *residuals = NULL;
  g_autofree float *noise_pred = NULL;

  if (n != cc->n_residuals)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the case records %zu residual values; this UNet takes %zu", cc->n_residuals,
                   n);
      return FALSE;
    }
  residuals = g_new (float, n);
  for (int j = 0; j < cc->n_nets; j++)
    {
      g_autoptr (GPtrArray) variants = conformance_model_variants (c, cc->names[j]);
      g_autoptr (GessoControlNet) cn = NULL;
      const ConformanceVariant *v;

      if (variant >= variants->len)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                       "ControlNet '%s' has no file number %u", cc->names[j], variant);
          return FALSE;
        }
      v = variants->pdata[variant];
      cn = gesso_controlnet_open (v->path, unet, error);
      if (cn == NULL
          || !gesso_controlnet_forward (cn, cc->sample.data, cc->timestep.data, cc->context.data,
                                        cc->images[j].data, (float) cc->scales[j], batch, h, w,
                                        ctx_len, j > 0, residuals, NULL, error))
        return FALSE;
    }
  result->residuals = conformance_max_abs_diff (residuals, cc->residuals, n);
  noise_pred = g_new (float, gesso_tensor_numel (&cc->noise_pred));
  if (!gesso_unet_forward_controlled (unet, cc->sample.data, cc->timestep.data,
                                      cc->context.data, batch, h, w, ctx_len, residuals,
                                      noise_pred, NULL, error))
    return FALSE;
  result->noise_pred = conformance_max_abs_diff (noise_pred, cc->noise_pred.data,
                                                 (size_t) gesso_tensor_numel (&cc->noise_pred));
  return TRUE;
}

void
conformance_family_controlnet (ConformanceRun *run, const ConformanceCase *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GPtrArray) variants = NULL;
  const char *model = conformance_manifest_string (c, "model");
  ControlCase cc = { 0 };
  double tol;

  if (model == NULL || !conformance_tolerance (c, &tol))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, 0,
                          "the manifest lacks 'model' or 'tolerance.max_abs'");
      return;
    }
  if (!load_case (c, &cc, &error)
      || (unet = open_base (c, model, &files, &weights, &error)) == NULL)
    {
      conformance_report_error (run, c, NULL, tol, error);
      control_case_clear (&cc);
      return;
    }
  variants = conformance_model_variants (c, cc.names[0]);
  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      ControlResult r = { NAN, NAN };

      g_clear_error (&error);
      if (!check_variant (c, &cc, unet, i, &r, &error))
        {
          conformance_report_error (run, c, v->label, tol, error);
          continue;
        }
      conformance_report (run, c,
                          r.residuals <= tol && r.noise_pred <= tol ? CONFORMANCE_PASS
                                                                    : CONFORMANCE_FAIL,
                          v->label, MAX (r.residuals, r.noise_pred), tol,
                          "residuals %.3g, noise_pred %.3g", r.residuals, r.noise_pred);
    }
  control_case_clear (&cc);
}
