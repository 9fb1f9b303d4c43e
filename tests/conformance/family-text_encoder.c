/* text_encoder/ cases: input_ids -> last_hidden_state, and where the case has them the
 * penultimate layer's raw output (penultimate_hidden_state) and its final_layer_norm
 * (penultimate_ln, clip skip 1), through every file of the model.
 *
 * A single file takes its hyperparameters from the model's diffusers folder, and they must
 * agree with what the weights imply on their own (given only the head count, which a 32-wide
 * model cannot reveal): that checks the layout-driven defaults, above all the SD2 one - the
 * single file stores three OpenCLIP blocks, the folder two layers, and both must give
 * ln_final(output of block 1). One result per variant: the largest difference over the
 * outputs, each output's own figure in the detail. */
#include <math.h>
#include <string.h>

#include "edit/model-private.h"
#include "families.h"
#include "gesso.h"
#include "io/config.h"
#include "io/model_files.h"
#include "model/text_encoder.h"
#include "model/weights.h"

typedef struct
{
  const char *name;
  int clip_skip;
  gboolean final_norm;
} Output;

static const Output outputs[] = {
  { "last_hidden_state", 0, TRUE },
  { "penultimate_hidden_state", 1, FALSE },
  { "penultimate_ln", 1, TRUE },
};

/* The manifest names the model first ("tiny-sd1", possibly followed by a remark). */
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
same_config (const GessoTextEncoderConfig *a, const GessoTextEncoderConfig *b)
{
  return a->hidden_size == b->hidden_size && a->n_layers == b->n_layers
         && a->n_heads == b->n_heads && a->intermediate_size == b->intermediate_size
         && a->max_positions == b->max_positions && a->vocab_size == b->vocab_size
         && a->layer_norm_eps == b->layer_norm_eps && a->activation == b->activation;
}

static char *
config_string (const GessoTextEncoderConfig *c)
{
  static const char *const acts[] = { "auto", "quick_gelu", "gelu", "gelu_tanh" };

  return g_strdup_printf ("hidden %d, %d layers, %d heads, mlp %d, %d positions, vocab %d, "
                          "eps %g, %s", c->hidden_size, c->n_layers, c->n_heads,
                          c->intermediate_size, c->max_positions, c->vocab_size,
                          c->layer_norm_eps, acts[c->activation]);
}

/* The encoder for variant V: a diffusers folder with its own text_encoder/config.json; a
 * single file with the folder's, checked against the single file's own defaults. */
static GessoTextEncoder *
variant_encoder (const ConformanceVariant *v, GessoModelFiles *files, GessoWeights *weights,
                 GError **error)
{
  JsonObject *json = gesso_model_files_config (files, "text_encoder");
  g_autoptr (JsonObject) sidecar = NULL;
  g_autoptr (GessoTextEncoder) inferred = NULL;
  GessoTextEncoder *enc;
  GessoTextEncoderConfig heads_only;

  if (json != NULL)
    return gesso_text_encoder_new (weights, NULL, json, error);
  if (v->diffusers_dir == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "single file without a diffusers folder to take the text encoder config "
                   "from");
      return NULL;
    }
  {
    g_autofree char *path = g_build_filename (v->diffusers_dir, "text_encoder", "config.json",
                                              NULL);
    sidecar = gesso_config_load (path, error);
    if (sidecar == NULL)
      return NULL;
  }
  enc = gesso_text_encoder_new (weights, NULL, sidecar, error);
  if (enc == NULL)
    return NULL;

  gesso_text_encoder_config_init (&heads_only);
  heads_only.n_heads = gesso_text_encoder_get_config (enc)->n_heads;
  inferred = gesso_text_encoder_new (weights, &heads_only, NULL, error);
  if (inferred == NULL
      || !same_config (gesso_text_encoder_get_config (enc),
                       gesso_text_encoder_get_config (inferred)))
    {
      g_autofree char *want = config_string (gesso_text_encoder_get_config (enc));
      g_autofree char *got = inferred ? config_string (gesso_text_encoder_get_config (inferred))
                                      : NULL;

      if (inferred != NULL)
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                     "config implied by the weights (%s) differs from config.json (%s)", got,
                     want);
      gesso_text_encoder_free (enc);
      return NULL;
    }
  return enc;
}

/* Runs variant V on token rows IDS (N_ROWS x max_positions); DIFFS[i] gets output i's
 * max-abs difference, NAN when the case does not have it. */
static gboolean
check_variant (const ConformanceCase *c, const ConformanceVariant *v, const int64_t *ids,
               size_t n_ids, const GessoTensor want[], double diffs[], GError **error)
{
  g_autoptr (GessoModelFiles) files = gesso_model_files_open (v->path, error);
  g_autoptr (GessoWeights) weights = NULL;
  g_auto (ConformanceLoras) loras = { 0 };
  g_autoptr (GessoTextEncoder) enc = NULL;
  g_autofree float *got = NULL;
  const GessoTextEncoderConfig *config;
  size_t row_ids, row_floats, n_rows;

  if (files == NULL)
    return FALSE;
  weights = gesso_weights_new (files, error);
  if (weights == NULL || !conformance_apply_loras (c, weights, &loras, error))
    return FALSE;
  enc = variant_encoder (v, files, weights, error);
  if (enc == NULL)
    return FALSE;
  config = gesso_text_encoder_get_config (enc);
  row_ids = (size_t) config->max_positions;
  row_floats = row_ids * (size_t) config->hidden_size;
  if (n_ids == 0 || n_ids % row_ids != 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "input_ids has %zu ids, not rows of %zu", n_ids, row_ids);
      return FALSE;
    }
  n_rows = n_ids / row_ids;
  got = g_new (float, row_floats);

  for (size_t o = 0; o < G_N_ELEMENTS (outputs); o++)
    {
      diffs[o] = NAN;
      if (want[o].data == NULL)
        continue;
      if ((size_t) gesso_tensor_numel (&want[o]) != n_rows * row_floats)
        {
          g_autofree char *shape = gesso_tensor_shape_string (want[o].ndim, want[o].shape);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                       "%s is %s in the case, but the encoder makes %zu x %d x %d",
                       outputs[o].name, shape, n_rows, config->max_positions,
                       config->hidden_size);
          return FALSE;
        }
      diffs[o] = 0;
      for (size_t r = 0; r < n_rows; r++)
        {
          gboolean ok = outputs[o].final_norm
                          ? gesso_text_encoder_encode (enc, ids + r * row_ids,
                                                       outputs[o].clip_skip, got, error)
                          : gesso_text_encoder_hidden_state (enc, ids + r * row_ids,
                                                             outputs[o].clip_skip, got, error);
          double d;

          if (!ok)
            return FALSE;
          d = conformance_max_abs_diff (want[o].data + r * row_floats, got, row_floats);
          diffs[o] = isnan (d) ? NAN : MAX (diffs[o], d);
        }
    }
  return TRUE;
}

static void
check_variants (ConformanceRun *run, const ConformanceCase *c, const char *model, double tol,
                const int64_t *ids, size_t n_ids, const GessoTensor want[])
{
  g_autoptr (GPtrArray) variants = conformance_model_variants (c, model);
  g_autoptr (GError) error = NULL;

  if (variants->len == 0)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "no files of model '%s'",
                        model);
  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      double diffs[G_N_ELEMENTS (outputs)], max_abs = 0;
      g_autoptr (GString) detail = g_string_new (NULL);

      if (!check_variant (c, v, ids, n_ids, want, diffs, &error))
        {
          conformance_report_error (run, c, v->label, tol, error);
          g_clear_error (&error);
          continue;
        }
      for (size_t o = 0; o < G_N_ELEMENTS (outputs); o++)
        {
          if (want[o].data == NULL)
            continue;
          g_string_append_printf (detail, "%s%s %.3g", detail->len ? ", " : "",
                                  outputs[o].name, diffs[o]);
          max_abs = isnan (diffs[o]) || isnan (max_abs) ? NAN : MAX (max_abs, diffs[o]);
        }
      conformance_report (run, c, max_abs <= tol ? CONFORMANCE_PASS : CONFORMANCE_FAIL,
                          v->label, max_abs, tol, "%s", detail->str);
    }
}

/* --- SDXL: two encoders ------------------------------------------------------------------- */

/* SDXL outputs, each from one encoder's ids (1: input_ids, 2: input_ids_2). */
typedef enum
{
  SDXL_TE1_PENULTIMATE,
  SDXL_TE2_PENULTIMATE,
  SDXL_TE2_LAST,
  SDXL_TEXT_EMBEDS,
  SDXL_PROMPT_EMBEDS,
  SDXL_N_OUTPUTS,
} SdxlOutput;

static const char *const sdxl_names[SDXL_N_OUTPUTS] = {
  "te1_penultimate", "te2_penultimate", "te2_last_hidden_state", "text_embeds", "prompt_embeds",
};

/* Encoder COMPONENT of variant V: the folder's own config, or for a single file the
 * diffusers folder's (SUB/config.json). */
static GessoTextEncoder *
sdxl_encoder (const ConformanceVariant *v, GessoModelFiles *files, GessoWeights *weights,
              GessoComponent component, GError **error)
{
  const char *sub = gesso_component_name (component);
  JsonObject *json = gesso_model_files_config (files, sub);
  g_autoptr (JsonObject) sidecar = NULL;
  g_autofree char *path = NULL;

  if (json == NULL && v->diffusers_dir == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "single file without a diffusers folder to take the %s config from", sub);
      return NULL;
    }
  if (json == NULL)
    {
      path = g_build_filename (v->diffusers_dir, sub, "config.json", NULL);
      sidecar = gesso_config_load (path, error);
      if (sidecar == NULL)
        return NULL;
      json = sidecar;
    }
  return gesso_text_encoder_new_for (weights, component, NULL, json, error);
}

/* The SDXL outputs of variant V from the case's token ids into GOT (each as large as the
 * case's tensor of that name). */
static gboolean
sdxl_outputs (const ConformanceVariant *v, const int64_t *ids, const int64_t *ids_2,
              float *got[SDXL_N_OUTPUTS], GError **error)
{
  g_autoptr (GessoModelFiles) files = gesso_model_files_open (v->path, error);
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoTextEncoder) enc_1 = NULL;
  g_autoptr (GessoTextEncoder) enc_2 = NULL;
  int64_t t, w1, w2;

  if (files == NULL)
    return FALSE;
  weights = gesso_weights_new (files, error);
  if (weights == NULL)
    return FALSE;
  enc_1 = sdxl_encoder (v, files, weights, GESSO_COMPONENT_TEXT_ENCODER, error);
  enc_2 = enc_1 ? sdxl_encoder (v, files, weights, GESSO_COMPONENT_TEXT_ENCODER_2, error)
                : NULL;
  if (enc_2 == NULL)
    return FALSE;
  t = gesso_text_encoder_get_config (enc_1)->max_positions;
  w1 = gesso_text_encoder_get_config (enc_1)->hidden_size;
  w2 = gesso_text_encoder_get_config (enc_2)->hidden_size;
  if (!gesso_text_encoder_hidden_state (enc_1, ids, 1, got[SDXL_TE1_PENULTIMATE], error)
      || !gesso_text_encoder_hidden_state (enc_2, ids_2, 1, got[SDXL_TE2_PENULTIMATE], error)
      || !gesso_text_encoder_encode (enc_2, ids_2, 0, got[SDXL_TE2_LAST], error)
      || !gesso_text_encoder_pooled (enc_2, ids_2, got[SDXL_TEXT_EMBEDS], error))
    return FALSE;
  for (int64_t i = 0; i < t; i++)
    {
      memcpy (got[SDXL_PROMPT_EMBEDS] + i * (w1 + w2), got[SDXL_TE1_PENULTIMATE] + i * w1,
              (size_t) w1 * sizeof (float));
      memcpy (got[SDXL_PROMPT_EMBEDS] + i * (w1 + w2) + w1, got[SDXL_TE2_PENULTIMATE] + i * w2,
              (size_t) w2 * sizeof (float));
    }
  return TRUE;
}

/* The whole text path of an opened model (its tokenizers, both encoders, the prompt cache)
 * on the case's prompt, when the case used it for both encoders: prompt_embeds and
 * text_embeds as the pipelines get them. */
static gboolean
sdxl_model_path (const ConformanceCase *c, const ConformanceVariant *v,
                 const GessoTensor want[SDXL_N_OUTPUTS], double *prompt_diff,
                 double *pooled_diff, GError **error)
{
  const char *prompt = conformance_manifest_string (c, "prompt");
  g_autoptr (GessoModel) model = NULL;
  g_autofree float *embeds = NULL;
  g_autofree float *pooled = NULL;
  GessoModelParams mp;

  *prompt_diff = *pooled_diff = NAN;
  if (prompt == NULL || conformance_manifest_string (c, "prompt_2") != NULL)
    return TRUE;
  gesso_model_params_init (&mp);
  mp.path = v->path;
  model = gesso_model_open (&mp, error);
  if (model == NULL)
    return FALSE;
  if (gesso_tensor_numel (&want[SDXL_PROMPT_EMBEDS])
        != gesso_model_context_tokens (model) * gesso_model_context_width (model)
      || gesso_tensor_numel (&want[SDXL_TEXT_EMBEDS])
           != gesso_prompt_cache_pooled_width (model->prompts))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the opened model's embeddings do not have the case's sizes");
      return FALSE;
    }
  embeds = g_new (float, (size_t) gesso_tensor_numel (&want[SDXL_PROMPT_EMBEDS]));
  pooled = g_new (float, (size_t) gesso_tensor_numel (&want[SDXL_TEXT_EMBEDS]));
  if (!gesso_prompt_cache_encode_pooled (model->prompts, prompt, 0, embeds, pooled, error))
    return FALSE;
  *prompt_diff = conformance_max_abs_diff (want[SDXL_PROMPT_EMBEDS].data, embeds,
                                           (size_t) gesso_tensor_numel (&want[SDXL_PROMPT_EMBEDS]));
  *pooled_diff = conformance_max_abs_diff (want[SDXL_TEXT_EMBEDS].data, pooled,
                                           (size_t) gesso_tensor_numel (&want[SDXL_TEXT_EMBEDS]));
  return TRUE;
}

static void
check_sdxl_variant (ConformanceRun *run, const ConformanceCase *c, const ConformanceVariant *v,
                    double tol, const int64_t *ids, const int64_t *ids_2,
                    const GessoTensor want[SDXL_N_OUTPUTS])
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) detail = g_string_new (NULL);
  float *got[SDXL_N_OUTPUTS];
  double max_abs = 0, prompt_diff, pooled_diff;
  gboolean ok;

  for (int o = 0; o < SDXL_N_OUTPUTS; o++)
    got[o] = g_new0 (float, (size_t) gesso_tensor_numel (&want[o]));
  ok = sdxl_outputs (v, ids, ids_2, got, &error)
       && sdxl_model_path (c, v, want, &prompt_diff, &pooled_diff, &error);
  if (ok)
    {
      for (int o = 0; o < SDXL_N_OUTPUTS; o++)
        {
          double d = conformance_max_abs_diff (want[o].data, got[o],
                                               (size_t) gesso_tensor_numel (&want[o]));
          g_string_append_printf (detail, "%s%s %.3g", o ? ", " : "", sdxl_names[o], d);
          max_abs = isnan (d) || isnan (max_abs) ? NAN : MAX (max_abs, d);
        }
      if (!isnan (prompt_diff))
        {
          g_string_append_printf (detail, "; from the prompt through the model's tokenizers: "
                                  "prompt_embeds %.3g, text_embeds %.3g", prompt_diff,
                                  pooled_diff);
          max_abs = isnan (prompt_diff) || isnan (pooled_diff) || isnan (max_abs)
                      ? NAN : MAX (max_abs, MAX (prompt_diff, pooled_diff));
        }
      conformance_report (run, c, max_abs <= tol ? CONFORMANCE_PASS : CONFORMANCE_FAIL,
                          v->label, max_abs, tol, "%s", detail->str);
    }
  else
    conformance_report_error (run, c, v->label, tol, error);
  for (int o = 0; o < SDXL_N_OUTPUTS; o++)
    g_free (got[o]);
}

/* te-tiny-sdxl cases: input_ids and input_ids_2 -> both penultimate states, the second
 * encoder's last state and pooled (projected) output, and their concatenation. */
static void
check_sdxl (ConformanceRun *run, const ConformanceCase *c, const char *model, double tol)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) variants = conformance_model_variants (c, model);
  g_autofree int64_t *ids = NULL;
  g_autofree int64_t *ids_2 = NULL;
  GessoTensor want[SDXL_N_OUTPUTS];
  size_t n_ids = 0, n_ids_2 = 0;
  gboolean loaded;

  memset (want, 0, sizeof want);
  loaded = conformance_case_tensor_i64 (c, "input_ids", &ids, &n_ids, &error)
           && conformance_case_tensor_i64 (c, "input_ids_2", &ids_2, &n_ids_2, &error);
  for (int o = 0; o < SDXL_N_OUTPUTS && loaded; o++)
    loaded = conformance_case_tensor (c, sdxl_names[o], &want[o], &error);
  if (loaded && (n_ids != n_ids_2 || want[SDXL_PROMPT_EMBEDS].ndim != 3
                 || want[SDXL_PROMPT_EMBEDS].shape[0] != 1
                 || (size_t) want[SDXL_PROMPT_EMBEDS].shape[1] != n_ids))
    {
      g_set_error (&error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the case is not one prompt of two id rows of one length");
      loaded = FALSE;
    }
  if (!loaded)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "%s", error->message);
  else if (variants->len == 0)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "no files of model '%s'",
                        model);
  for (guint i = 0; loaded && i < variants->len; i++)
    check_sdxl_variant (run, c, variants->pdata[i], tol, ids, ids_2, want);
  for (int o = 0; o < SDXL_N_OUTPUTS; o++)
    gesso_tensor_free (&want[o]);
}

void
conformance_family_text_encoder (ConformanceRun *run, const ConformanceCase *c)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *model = model_name (c);
  g_autofree int64_t *ids = NULL;
  GessoTensor want[G_N_ELEMENTS (outputs)];
  size_t n_ids = 0;
  gboolean loaded = TRUE;
  double tol;

  if (model == NULL || !conformance_tolerance (c, &tol))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, 0,
                          "the manifest lacks 'model' or 'tolerance.max_abs'");
      return;
    }
  if (c->tensors != NULL && gesso_safetensors_lookup (c->tensors, "input_ids_2") != NULL)
    {
      check_sdxl (run, c, model, tol);
      return;
    }
  if (!conformance_case_tensor_i64 (c, "input_ids", &ids, &n_ids, &error))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "%s", error->message);
      return;
    }
  memset (want, 0, sizeof want);
  for (size_t o = 0; o < G_N_ELEMENTS (outputs) && loaded; o++)
    if (c->tensors != NULL && gesso_safetensors_lookup (c->tensors, outputs[o].name) != NULL)
      loaded = conformance_case_tensor (c, outputs[o].name, &want[o], &error);
  if (!loaded)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol, "%s", error->message);
  else if (want[0].data == NULL)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol,
                        "the case has no last_hidden_state");
  else
    check_variants (run, c, model, tol, ids, n_ids, want);
  for (size_t o = 0; o < G_N_ELEMENTS (outputs); o++)
    gesso_tensor_free (&want[o]);
}
