/* unet/ cases: sample [B, C, h, w], timestep [B], encoder_hidden_states [B, 77, D] (and for
 * SDXL text_embeds [B, P] and time_ids [B, 6]) -> noise_pred [B, 4, h, w], the raw model
 * output (epsilon for SD1 and SDXL, v for SD2). Run for every
 * file of the model (its diffusers folder and each single file, fp32/fp16/bf16). A single
 * file carries no config: it takes the diffusers folder's unet/config.json, and the config
 * inferred from its weights' shapes must agree with that (all but the heads, which shapes
 * cannot tell). One result per variant; the detail gives the forward's time and the arena it
 * planned and used. */
#include <math.h>
#include <string.h>

#include "families.h"
#include "gesso.h"
#include "io/config.h"
#include "io/model_files.h"
#include "model/unet.h"
#include "model/weights.h"
#include "tensor/arena.h"

typedef struct
{
  GessoTensor sample;
  GessoTensor timestep;
  GessoTensor context;
  GessoTensor text_embeds;      /* SDXL's added conditioning; empty for other models */
  GessoTensor time_ids;
  GessoTensor want;
} UnetCase;

static void
unet_case_clear (UnetCase *uc)
{
  gesso_tensor_free (&uc->sample);
  gesso_tensor_free (&uc->timestep);
  gesso_tensor_free (&uc->context);
  gesso_tensor_free (&uc->text_embeds);
  gesso_tensor_free (&uc->time_ids);
  gesso_tensor_free (&uc->want);
}

/* The manifest names the model first ("tiny-sd1", or "tiny-sd1 (unet; ...)"). */
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

static gboolean
load_case (const ConformanceCase *c, UnetCase *uc, GError **error)
{
  const GessoTensor *s, *t, *e, *w;

  if (!conformance_case_tensor (c, "sample", &uc->sample, error)
      || !conformance_case_tensor (c, "timestep", &uc->timestep, error)
      || !conformance_case_tensor (c, "encoder_hidden_states", &uc->context, error)
      || !conformance_case_tensor (c, "noise_pred", &uc->want, error))
    return FALSE;
  if (gesso_safetensors_lookup (c->tensors, "text_embeds") != NULL
      && (!conformance_case_tensor (c, "text_embeds", &uc->text_embeds, error)
          || !conformance_case_tensor (c, "time_ids", &uc->time_ids, error)))
    return FALSE;
  s = &uc->sample;
  t = &uc->timestep;
  e = &uc->context;
  w = &uc->want;
  if (s->ndim != 4 || t->ndim != 1 || e->ndim != 3 || w->ndim != 4 || t->shape[0] != s->shape[0]
      || e->shape[0] != s->shape[0] || w->shape[0] != s->shape[0] || w->shape[2] != s->shape[2]
      || w->shape[3] != s->shape[3])
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the case's tensors do not have UNet shapes (sample [B,C,h,w], timestep [B], "
                   "encoder_hidden_states [B,L,D], noise_pred [B,4,h,w])");
      return FALSE;
    }
  return TRUE;
}

/* The config for variant V: its own unet/config.json for a diffusers folder; for a single
 * file the diffusers folder's, after checking that the shapes say the same. *OVERRIDE gets
 * the JSON a single file must be built with (NULL for a folder). */
static gboolean
variant_config (const ConformanceVariant *v, GessoModelFiles *files, GessoWeights *weights,
                JsonObject **override, GError **error)
{
  g_autofree char *name = NULL;
  g_autoptr (JsonObject) sidecar = NULL;
  GessoUnetConfig declared, inferred;

  *override = NULL;
  if (gesso_model_files_config (files, "unet") != NULL)
    return TRUE;
  if (v->diffusers_dir == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "single file without a diffusers folder to take the UNet config from");
      return FALSE;
    }
  name = g_build_filename (v->diffusers_dir, "unet", "config.json", NULL);
  sidecar = gesso_config_load (name, error);
  if (sidecar == NULL
      || !gesso_unet_config_from_json (sidecar, name, &declared, error)
      || !gesso_unet_config_infer (weights, &inferred, error)
      || !gesso_unet_config_check (&declared, &inferred, name, error))
    return FALSE;
  /* what shapes cannot tell is inferred as SD's values: these models keep them, but for
   * tiny-sdxl's 8 norm groups (with 32 on 32 channels its embeddings would have no effect) */
  if ((inferred.norm_num_groups != declared.norm_num_groups
       && declared.addition_input_dim == 0)
      || inferred.addition_time_embed_dim != declared.addition_time_embed_dim
      || inferred.norm_eps != declared.norm_eps
      || inferred.flip_sin_to_cos != declared.flip_sin_to_cos
      || inferred.freq_shift != declared.freq_shift
      || inferred.time_embed_dim != declared.time_embed_dim)
    {
      g_autofree char *want = gesso_unet_config_describe (&declared);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the defaults inferred for what shapes cannot tell differ from %s (%s)",
                   name, want);
      return FALSE;
    }
  *override = g_steal_pointer (&sidecar);
  return TRUE;
}

typedef struct
{
  double max_abs;
  double seconds;
  size_t planned;
  size_t used;
} UnetResult;

static gboolean
check_variant (const ConformanceCase *c, const ConformanceVariant *v, const UnetCase *uc,
               UnetResult *result, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_auto (ConformanceLoras) loras = { 0 };
  g_autoptr (JsonObject) override = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GessoArena) arena = NULL;
  g_autofree float *got = NULL;
  const GessoUnetConfig *config;
  const GessoUnetAdded added = { uc->text_embeds.data, uc->time_ids.data };
  const int64_t batch = uc->sample.shape[0], height = uc->sample.shape[2];
  const int64_t width = uc->sample.shape[3], ctx_len = uc->context.shape[1];
  size_t numel = (size_t) gesso_tensor_numel (&uc->want);
  gint64 start;

  files = gesso_model_files_open (v->path, error);
  if (files == NULL)
    return FALSE;
  weights = gesso_weights_new (files, error);
  if (weights == NULL || !variant_config (v, files, weights, &override, error)
      || !conformance_apply_loras (c, weights, &loras, error))
    return FALSE;
  unet = gesso_unet_new_for_model (files, weights, override, error);
  if (unet == NULL)
    return FALSE;
  config = gesso_unet_get_config (unet);
  if (uc->sample.shape[1] != config->in_channels || uc->want.shape[1] != config->out_channels
      || uc->context.shape[2] != config->cross_attention_dim)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the case has %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT " channels and "
                   "context width %" G_GINT64_FORMAT "; the UNet %d -> %d and %d",
                   uc->sample.shape[1], uc->want.shape[1], uc->context.shape[2],
                   config->in_channels, config->out_channels, config->cross_attention_dim);
      return FALSE;
    }

  if (uc->text_embeds.data != NULL
      && (gesso_tensor_numel (&uc->text_embeds) != batch * gesso_unet_config_pooled_dim (config)
          || gesso_tensor_numel (&uc->time_ids) != batch * GESSO_UNET_TIME_IDS))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the case's text_embeds / time_ids do not have %" G_GINT64_FORMAT " rows of "
                   "%d / %d values", batch, gesso_unet_config_pooled_dim (config),
                   GESSO_UNET_TIME_IDS);
      return FALSE;
    }
  result->planned = gesso_unet_scratch_bytes (unet, batch, height, width, ctx_len);
  arena = gesso_arena_new (result->planned, error);
  if (arena == NULL)
    return FALSE;
  got = g_new (float, numel);
  /* a first run widens fp16/bf16 weights and warms the caches; time the second */
  if (!gesso_unet_forward_full (unet, uc->sample.data, uc->timestep.data, uc->context.data,
                                uc->text_embeds.data ? &added : NULL, batch, height, width,
                                ctx_len, NULL, got, arena, error))
    return FALSE;
  start = g_get_monotonic_time ();
  if (!gesso_unet_forward_full (unet, uc->sample.data, uc->timestep.data, uc->context.data,
                                uc->text_embeds.data ? &added : NULL, batch, height, width,
                                ctx_len, NULL, got, arena, error))
    return FALSE;
  result->seconds = (double) (g_get_monotonic_time () - start) / 1e6;
  result->used = gesso_arena_peak (arena);
  result->max_abs = conformance_max_abs_diff (got, uc->want.data, numel);
  if (result->used > result->planned)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the forward used %zu bytes of arena but planned %zu", result->used,
                   result->planned);
      return FALSE;
    }
  return TRUE;
}

void
conformance_family_unet (ConformanceRun *run, const ConformanceCase *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) variants = NULL;
  g_autofree char *model = model_name (c);
  UnetCase uc = { 0 };
  double tol;

  if (!conformance_tolerance (c, &tol))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, NAN,
                          "the manifest has no tolerance.max_abs");
      return;
    }
  if (model == NULL)
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol,
                          "the manifest names no model");
      return;
    }
  if (!load_case (c, &uc, &error))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "%s", error->message);
      unet_case_clear (&uc);
      return;
    }
  variants = conformance_model_variants (c, model);
  if (variants->len == 0)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol,
                        "no files for model '%s' under models/", model);
  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      UnetResult r = { 0 };
      gboolean ok;

      g_clear_error (&error);
      if (!check_variant (c, v, &uc, &r, &error))
        {
          conformance_report_error (run, c, v->label, tol, error);
          continue;
        }
      ok = !isnan (r.max_abs) && r.max_abs <= tol;
      conformance_report (run, c, ok ? CONFORMANCE_PASS : CONFORMANCE_FAIL, v->label,
                          r.max_abs, tol, "forward %.1f ms, arena %.2f MiB planned, %.2f used",
                          r.seconds * 1e3, (double) r.planned / 1048576.0,
                          (double) r.used / 1048576.0);
    }
  unet_case_clear (&uc);
}
