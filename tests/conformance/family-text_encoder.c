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
  g_autoptr (GessoTextEncoder) enc = NULL;
  g_autofree float *got = NULL;
  const GessoTextEncoderConfig *config;
  size_t row_ids, row_floats, n_rows;

  if (files == NULL)
    return FALSE;
  weights = gesso_weights_new (files, error);
  if (weights == NULL)
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
