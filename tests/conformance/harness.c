/* Conformance harness: finds the case manifests, hands each to its family's handler and
 * keeps the score. See harness.h for the output format. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gesso.h"
#include "io/config.h"
#include "io/model_files.h"
#include "model/weights.h"
#include "model/taesd.h"
#include "run.h"

void
conformance_report (ConformanceRun *run, const ConformanceCase *c, ConformanceOutcome outcome,
                    const char *variant, double max_abs, double tol, const char *detail, ...)
{
  static const char *const words[] = { "PASS", "FAIL", "SKIP" };
  g_autofree char *text = NULL;

  if (detail != NULL)
    {
      va_list args;
      va_start (args, detail);
      text = g_strdup_vprintf (detail, args);
      va_end (args);
    }
  printf ("%s %s%s%s max_abs=%.3g tol=%.3g%s%s%s\n", words[outcome], c->name,
          variant ? " " : "", variant ? variant : "", max_abs, tol,
          text ? " (" : "", text ? text : "", text ? ")" : "");
  fflush (stdout);
  run->counts[outcome]++;
  run->reports_for_case++;
}

void
conformance_report_compare (ConformanceRun *run, const ConformanceCase *c, const char *variant,
                            double max_abs, double tol)
{
  gboolean ok = !isnan (max_abs) && max_abs <= tol;
  conformance_report (run, c, ok ? CONFORMANCE_PASS : CONFORMANCE_FAIL, variant, max_abs, tol,
                      NULL);
}

void
conformance_report_error (ConformanceRun *run, const ConformanceCase *c, const char *variant,
                          double tol, const GError *error)
{
  gboolean pending = g_error_matches (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);

  conformance_report (run, c, pending ? CONFORMANCE_SKIP : CONFORMANCE_FAIL, variant, NAN, tol,
                      "%s", error->message);
}

/* Not a checkpoint, but a ControlNet whose files the engine reads. */
static gboolean
opens_as_controlnet (const char *path)
{
  g_autoptr (GessoModelFiles) files = gesso_model_files_open_controlnet (path, NULL);
  g_autoptr (GessoWeights) weights = files ? gesso_weights_new (files, NULL) : NULL;

  return weights != NULL;
}

/* Not a checkpoint, but a tiny autoencoder the engine reads. */
static gboolean
opens_as_taesd (const char *path)
{
  g_autoptr (GessoTaesd) taesd = gesso_taesd_open (path, NULL);

  return taesd != NULL;
}

/* The engine's verdict on MODEL: "" when one of its files probes (or fails for a reason other
 * than UNSUPPORTED, which the cases then report as failures), else the first reason given. */
static char *
probe_model (const ConformanceCase *c, const char *model)
{
  g_autoptr (GPtrArray) variants = conformance_model_variants (c, model);
  g_autofree char *reason = NULL;

  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (GessoModelProbe) probe = NULL;
      GessoModelParams params;

      gesso_model_params_init (&params);
      params.path = v->path;
      params.config_dir = strcmp (v->label, "diffusers") != 0 ? v->diffusers_dir : NULL;
      probe = gesso_model_probe (&params, &error);
      if (!g_error_matches (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED)
          || opens_as_controlnet (v->path) || opens_as_taesd (v->path))
        return g_strdup ("");
      if (reason == NULL)
        reason = g_strdup (error->message);
    }
  return reason != NULL ? g_steal_pointer (&reason) : g_strdup ("");
}

const char *
conformance_model_unsupported (ConformanceRun *run, const ConformanceCase *c, const char *model)
{
  const char *reason;

  if (run->unsupported == NULL)
    run->unsupported = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  reason = g_hash_table_lookup (run->unsupported, model);
  if (reason == NULL)
    {
      reason = probe_model (c, model);
      g_hash_table_insert (run->unsupported, g_strdup (model), (char *) reason);
    }
  return *reason != '\0' ? reason : NULL;
}

char *
conformance_model_dir (const ConformanceCase *c, const char *model)
{
  return g_build_filename (c->dir, "models", model, NULL);
}

void
conformance_variant_free (gpointer data)
{
  ConformanceVariant *v = data;
  g_free (v->label);
  g_free (v->path);
  g_free (v->diffusers_dir);
  g_free (v);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

GPtrArray *
conformance_model_variants (const ConformanceCase *c, const char *model)
{
  GPtrArray *variants = g_ptr_array_new_with_free_func (conformance_variant_free);
  g_autofree char *model_dir = conformance_model_dir (c, model);
  g_autofree char *diffusers = g_build_filename (model_dir, "diffusers", NULL);
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) dir = g_dir_open (model_dir, 0, NULL);
  const char *entry;

  if (g_file_test (diffusers, G_FILE_TEST_IS_DIR))
    {
      ConformanceVariant *v = g_new0 (ConformanceVariant, 1);
      v->label = g_strdup ("diffusers");
      v->path = g_strdup (diffusers);
      v->diffusers_dir = g_strdup (diffusers);
      g_ptr_array_add (variants, v);
    }
  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (entry, ".safetensors"))
      g_ptr_array_add (files, g_strdup (entry));
  g_ptr_array_sort (files, compare_strings);
  for (guint i = 0; i < files->len; i++)
    {
      ConformanceVariant *v = g_new0 (ConformanceVariant, 1);
      v->label = g_strdup (files->pdata[i]);
      v->path = g_build_filename (model_dir, files->pdata[i], NULL);
      v->diffusers_dir = g_file_test (diffusers, G_FILE_TEST_IS_DIR) ? g_strdup (diffusers) : NULL;
      g_ptr_array_add (variants, v);
    }
  return variants;
}

gboolean
conformance_tolerance (const ConformanceCase *c, double *tol)
{
  JsonObject *t;

  if (!json_object_has_member (c->manifest, "tolerance"))
    return FALSE;
  t = json_object_get_object_member (c->manifest, "tolerance");
  if (t == NULL || !json_object_has_member (t, "max_abs"))
    return FALSE;
  *tol = json_object_get_double_member (t, "max_abs");
  return TRUE;
}

static const char *
string_member (JsonObject *o, const char *key)
{
  JsonNode *n;

  if (o == NULL || !json_object_has_member (o, key))
    return NULL;
  n = json_object_get_member (o, key);
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static JsonObject *
object_member (JsonObject *o, const char *key)
{
  JsonNode *n;

  if (!json_object_has_member (o, key))
    return NULL;
  n = json_object_get_member (o, key);
  return JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

const char *
conformance_manifest_string (const ConformanceCase *c, const char *key)
{
  const char *s = string_member (c->manifest, key);

  if (s == NULL)
    s = string_member (object_member (c->manifest, "parameters"), key);
  if (s == NULL)
    s = string_member (object_member (c->manifest, "inputs"), key);
  return s;
}

static const GessoSafetensorsEntry *
case_entry (const ConformanceCase *c, const char *name, GError **error)
{
  const GessoSafetensorsEntry *e = NULL;

  if (c->tensors != NULL)
    e = gesso_safetensors_lookup (c->tensors, name);
  if (e == NULL)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING, "case %s has no tensor '%s'", c->name,
                 name);
  return e;
}

gboolean
conformance_case_tensor (const ConformanceCase *c, const char *name, GessoTensor *out,
                         GError **error)
{
  const GessoSafetensorsEntry *e = case_entry (c, name, error);

  if (e == NULL)
    return FALSE;
  if (!gesso_tensor_new (out, MIN (e->ndim, GESSO_TENSOR_MAX_DIMS), e->shape, error))
    return FALSE;
  if (!gesso_safetensors_entry_to_f32 (e, out->data, error))
    {
      gesso_tensor_free (out);
      return FALSE;
    }
  return TRUE;
}

gboolean
conformance_case_tensor_i64 (const ConformanceCase *c, const char *name, int64_t **out,
                             size_t *n, GError **error)
{
  const GessoSafetensorsEntry *e = case_entry (c, name, error);

  if (e == NULL)
    return FALSE;
  *out = g_new (int64_t, MAX (e->numel, 1));
  *n = (size_t) e->numel;
  if (!gesso_safetensors_entry_to_i64 (e, *out, error))
    {
      g_clear_pointer (out, g_free);
      return FALSE;
    }
  return TRUE;
}

double
conformance_max_abs_diff (const float *a, const float *b, size_t n)
{
  double worst = 0.0;

  for (size_t i = 0; i < n; i++)
    {
      double d = fabs ((double) a[i] - (double) b[i]);
      if (isnan (d))
        return NAN;
      if (d > worst)
        worst = d;
    }
  return worst;
}

gboolean
conformance_apply_loras (const ConformanceCase *c, GessoWeights *weights,
                         ConformanceLoras *loras, GError **error)
{
  JsonArray *list = json_object_has_member (c->manifest, "loras")
                      ? json_object_get_array_member (c->manifest, "loras") : NULL;
  g_autofree char *case_dir = g_path_get_dirname (c->manifest_path);
  g_autofree float *scales = NULL;
  guint n = list != NULL ? json_array_get_length (list) : 0;

  memset (loras, 0, sizeof *loras);
  if (n == 0)
    return TRUE;
  loras->loras = g_ptr_array_new_with_free_func ((GDestroyNotify) gesso_lora_free);
  scales = g_new (float, n);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *use = json_array_get_object_element (list, i);
      g_autofree char *path = g_build_filename (case_dir,
                                                json_object_get_string_member (use, "file"),
                                                NULL);
      GessoLora *lora = gesso_lora_open (path, error);

      if (lora == NULL)
        return FALSE;
      g_ptr_array_add (loras->loras, lora);
      if (!gesso_lora_bind (lora, weights, error))
        return FALSE;
      scales[i] = (float) json_object_get_double_member (use, "weight");
    }
  loras->deltas = gesso_lora_set_deltas ((GessoLora *const *) loras->loras->pdata, scales,
                                         (int) n, weights, NULL, error);
  if (loras->deltas == NULL)
    return FALSE;
  loras->weights = weights;
  return TRUE;
}

void
conformance_loras_clear (ConformanceLoras *loras)
{
  if (loras->weights != NULL)
    gesso_weights_clear_deltas (loras->weights);
  g_clear_pointer (&loras->deltas, g_free);
  g_clear_pointer (&loras->loras, g_ptr_array_unref);
  loras->weights = NULL;
}
