/* Replays one scheduler-family case against core/sampling; see scheduler-case.h. */
#include "scheduler-case.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "sampling/sampler.h"
#include "tensor/tensor.h"

typedef struct
{
  SchedulerCheckFunc func;
  gpointer user_data;
} Reporter;

static void
report (Reporter *r, const char *check, gboolean pass, double max_abs, double tol,
        const char *format, ...) G_GNUC_PRINTF (6, 7);

static void
report (Reporter *r, const char *check, gboolean pass, double max_abs, double tol,
        const char *format, ...)
{
  g_autofree char *detail = NULL;

  if (format != NULL)
    {
      va_list args;
      va_start (args, format);
      detail = g_strdup_vprintf (format, args);
      va_end (args);
    }
  r->func (check, pass, max_abs, tol, detail, r->user_data);
}

/* --- manifest and tensors ----------------------------------------------------------------- */

static gboolean
load_tensor (GessoSafetensors *st, const char *name, GessoTensor *out, GError **error)
{
  const GessoSafetensorsEntry *e = st ? gesso_safetensors_lookup (st, name) : NULL;

  memset (out, 0, sizeof *out);
  if (e == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING, "the case has no tensor '%s'", name);
      return FALSE;
    }
  if (e->ndim > GESSO_TENSOR_MAX_DIMS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED, "tensor '%s' has %d dimensions",
                   name, e->ndim);
      return FALSE;
    }
  if (!gesso_tensor_new (out, e->ndim, e->shape, error))
    return FALSE;
  if (!gesso_safetensors_entry_to_f32 (e, out->data, error))
    {
      gesso_tensor_free (out);
      return FALSE;
    }
  return TRUE;
}

static gboolean
has_tensor (GessoSafetensors *st, const char *name)
{
  return st != NULL && gesso_safetensors_lookup (st, name) != NULL;
}

/* Item K of a stacked [K, ...] tensor, as a view. */
static GessoTensor
item (const GessoTensor *stack, int64_t k)
{
  int64_t per = gesso_tensor_numel (stack) / MAX (stack->shape[0], 1);

  return gesso_tensor_view (stack->data + k * per, stack->ndim - 1, stack->shape + 1);
}

static double
max_abs_diff (const float *a, const float *b, size_t n, size_t *where)
{
  double worst = 0;

  *where = 0;
  for (size_t i = 0; i < n; i++)
    {
      double d = fabs ((double) a[i] - (double) b[i]);
      if (isnan (d))
        d = INFINITY;
      if (d > worst)
        {
          worst = d;
          *where = i;
        }
    }
  return worst;
}

static JsonNode *
member (JsonObject *m, const char *key)
{
  JsonObject *params;

  if (json_object_has_member (m, key))
    return json_object_get_member (m, key);
  if (json_object_has_member (m, "parameters")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (m, "parameters")))
    {
      params = json_object_get_object_member (m, "parameters");
      if (json_object_has_member (params, key))
        return json_object_get_member (params, key);
    }
  return NULL;
}

static gboolean
member_number (JsonObject *m, const char *key, double *out)
{
  JsonNode *node = member (m, key);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || (json_node_get_value_type (node) != G_TYPE_DOUBLE
          && json_node_get_value_type (node) != G_TYPE_INT64))
    return FALSE;
  *out = json_node_get_double (node);
  return TRUE;
}

/* A JSON array of numbers as doubles; NULL if KEY is not such an array. */
static double *
number_array (JsonObject *m, const char *key, guint *n)
{
  JsonNode *node = member (m, key);
  JsonArray *a;
  double *v;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  a = json_node_get_array (node);
  *n = json_array_get_length (a);
  v = g_new (double, MAX (*n, 1));
  for (guint i = 0; i < *n; i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e))
        {
          g_free (v);
          return NULL;
        }
      v[i] = json_node_get_double (e);
    }
  return v;
}

static gboolean
make_sampler_config (JsonObject *m, GessoSamplerConfig *cfg, GError **error)
{
  const char *class_name = NULL;
  JsonNode *node = json_object_get_member (m, "scheduler");
  GessoSamplerKind kind;
  double v;

  if (node != NULL && JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_STRING)
    class_name = json_node_get_string (node);
  if (!gesso_sampler_kind_from_name (class_name, &kind))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "scheduler '%s' is not one Gesso implements", class_name ? class_name : "?");
      return FALSE;
    }
  gesso_sampler_config_init (cfg, kind);
  node = json_object_get_member (m, "config");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "the manifest has no \"config\"");
      return FALSE;
    }
  if (!gesso_sampler_config_from_json (cfg, json_node_get_object (node), "manifest config",
                                       error))
    return FALSE;
  /* step()/set_timesteps() arguments diffusers takes outside the config */
  if (kind != GESSO_SAMPLER_REPAINT && member_number (m, "eta", &v))
    cfg->eta = v;
  if (member_number (m, "order", &v))
    cfg->lms_order = (int) v;
  if (member_number (m, "jump_length", &v))
    cfg->jump_length = (int) v;
  if (member_number (m, "jump_n_sample", &v))
    cfg->jump_n_sample = (int) v;
  return TRUE;
}

/* Compares our timesteps with the reference list (tensor NAME if present, else the JSON
 * array NAME); appends a message to MISMATCH on the first difference. With PREFIX_OK the
 * reference may be the first part of ours: a rollout case may record only the first steps of
 * a longer schedule. */
static void
compare_timesteps (JsonObject *m, GessoSafetensors *st, const char *name, const double *ours,
                   guint n_ours, gboolean prefix_ok, GString *mismatch, guint *checked)
{
  g_autofree double *ref = NULL;
  guint n_ref = 0;

  if (has_tensor (st, name))
    {
      GessoTensor t;
      if (load_tensor (st, name, &t, NULL))
        {
          n_ref = (guint) gesso_tensor_numel (&t);
          ref = g_new (double, MAX (n_ref, 1));
          for (guint i = 0; i < n_ref; i++)
            ref[i] = t.data[i];
          gesso_tensor_free (&t);
        }
    }
  if (ref == NULL)
    ref = number_array (m, name, &n_ref);
  if (ref == NULL)
    return;
  (*checked)++;
  if (prefix_ok && n_ref < n_ours)
    n_ours = n_ref;
  if (n_ref != n_ours)
    {
      g_string_append_printf (mismatch, "%s%s: %u timesteps, want %u", mismatch->len ? "; " : "",
                              name, n_ours, n_ref);
      return;
    }
  for (guint i = 0; i < n_ref; i++)
    if ((float) ours[i] != (float) ref[i])
      {
        g_string_append_printf (mismatch, "%s%s[%u]: got %.9g, want %.9g",
                                mismatch->len ? "; " : "", name, i, ours[i], ref[i]);
        return;
      }
}

/* --- rollout cases ------------------------------------------------------------------------ */

typedef struct
{
  double worst;
  char *what;
} Worst;

static void
note_worst (Worst *w, double d, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
note_worst (Worst *w, double d, const char *format, ...)
{
  va_list args;

  if (!(d > w->worst) && w->what != NULL)
    return;
  w->worst = d;
  g_free (w->what);
  va_start (args, format);
  w->what = g_strdup_vprintf (format, args);
  va_end (args);
}

static gboolean
run_schedules (JsonObject *m, GessoSafetensors *st, GessoSampler *s, double tol, Reporter *r,
               GError **error)
{
  g_autoptr (GList) members = json_object_get_members (m);
  g_autoptr (GString) mismatch = g_string_new (NULL);
  guint checked = 0, sigma_sets = 0;
  Worst sig = { 0 };

  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *key = l->data;
      char *end;
      long n;
      const double *ts;
      guint n_ts;
      g_autofree char *sigma_name = NULL;

      if (!g_str_has_prefix (key, "timesteps_"))
        continue;
      n = strtol (key + strlen ("timesteps_"), &end, 10);
      if (*end != '\0' || n < 1 || n > 100000)
        continue;
      if (!gesso_sampler_set_timesteps (s, (int) n, error))
        return FALSE;
      ts = gesso_sampler_get_timesteps (s, &n_ts);
      compare_timesteps (m, st, key, ts, n_ts, FALSE, mismatch, &checked);

      sigma_name = g_strdup_printf ("sigmas_%ld", n);
      if (has_tensor (st, sigma_name))
        {
          GessoTensor ref;
          guint n_sig = 0;
          const float *sigmas = gesso_sampler_get_sigmas (s, &n_sig);

          if (!load_tensor (st, sigma_name, &ref, error))
            return FALSE;
          sigma_sets++;
          if (sigmas == NULL || (int64_t) n_sig != gesso_tensor_numel (&ref))
            note_worst (&sig, INFINITY, "%s: %u sigmas, want %" G_GINT64_FORMAT, sigma_name,
                        n_sig, gesso_tensor_numel (&ref));
          else
            {
              size_t at;
              double d = max_abs_diff (sigmas, ref.data, n_sig, &at);
              note_worst (&sig, d, "%s[%zu]: %.9g vs %.9g", sigma_name, at, (double) sigmas[at],
                          (double) ref.data[at]);
            }
          gesso_tensor_free (&ref);
        }
    }
  report (r, "timesteps", checked > 0 && mismatch->len == 0, 0, 0, "%s",
          checked == 0 ? "the case lists no timesteps" : mismatch->len ? mismatch->str
                                                       : "exact");
  if (sigma_sets > 0)
    report (r, "sigmas", sig.worst <= tol, sig.worst, tol, "%u sets, %s%s", sigma_sets,
            sig.worst == 0 ? "bit-exact" : "worst ", sig.worst == 0 ? "" : sig.what);
  g_free (sig.what);
  return TRUE;
}

static gboolean
run_rollout (JsonObject *m, GessoSafetensors *st, GessoSampler *s, double tol, Reporter *r,
             GError **error)
{
  static const char *const outputs[] = { "scaled_model_inputs", "prev_samples",
                                         "pred_original_samples" };
  GessoTensor init = { 0 }, mo = { 0 }, noise = { 0 }, refs[3] = { { 0 } };
  GessoTensor sample = { 0 }, scaled = { 0 }, prev = { 0 }, x0 = { 0 };
  g_autoptr (GString) mismatch = g_string_new (NULL);
  gboolean have[3] = { FALSE }, ok = FALSE;
  const double *ts;
  guint n_ts, n_recorded, dummy = 0;
  double n_steps, ref_sigma;
  int64_t n_noise = 0, used = 0;
  Worst w = { 0 };

  if (!member_number (m, "rollout_num_inference_steps", &n_steps))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the manifest has no rollout_num_inference_steps");
      return FALSE;
    }
  if (!load_tensor (st, "initial_sample", &init, error)
      || !load_tensor (st, "model_outputs", &mo, error))
    goto out;
  for (int k = 0; k < 3; k++)
    if (has_tensor (st, outputs[k]))
      {
        if (!load_tensor (st, outputs[k], &refs[k], error))
          goto out;
        have[k] = TRUE;
      }
  if (has_tensor (st, "noise"))
    {
      if (!load_tensor (st, "noise", &noise, error))
        goto out;
      n_noise = noise.shape[0];
    }
  if (!gesso_tensor_new (&sample, init.ndim, init.shape, error)
      || !gesso_tensor_new (&scaled, init.ndim, init.shape, error)
      || !gesso_tensor_new (&prev, init.ndim, init.shape, error)
      || !gesso_tensor_new (&x0, init.ndim, init.shape, error))
    goto out;
  memcpy (sample.data, init.data, (size_t) gesso_tensor_numel (&init) * sizeof (float));

  if (!gesso_sampler_set_timesteps (s, (int) n_steps, error))
    goto out;
  ts = gesso_sampler_get_timesteps (s, &n_ts);
  compare_timesteps (m, st, "rollout_timesteps", ts, n_ts, TRUE, mismatch, &dummy);
  if (mismatch->len > 0)
    note_worst (&w, INFINITY, "%s", mismatch->str);
  if (member_number (m, "init_noise_sigma", &ref_sigma))
    note_worst (&w, fabs (gesso_sampler_get_init_noise_sigma (s) - ref_sigma),
                "init_noise_sigma %.9g vs %.9g", gesso_sampler_get_init_noise_sigma (s),
                ref_sigma);
  /* The case may record the first steps of a longer schedule: the sampler is set up for the
   * whole schedule (multistep and final-step rules depend on its length) and stepped as far
   * as the case recorded. */
  if (mo.shape[0] < 1 || mo.shape[0] > (int64_t) n_ts)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "model_outputs holds %" G_GINT64_FORMAT " steps; the schedule has %u",
                   mo.shape[0], n_ts);
      goto out;
    }
  n_recorded = (guint) mo.shape[0];
  for (int k = 0; k < 3; k++)
    if (have[k] && refs[k].shape[0] < (int64_t) n_recorded)
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                     "%s holds %" G_GINT64_FORMAT " steps; model_outputs holds %u", outputs[k],
                     refs[k].shape[0], n_recorded);
        goto out;
      }

  for (guint i = 0; i < n_recorded; i++)
    {
      GessoTensor out_i = item (&mo, i), noise_i = { 0 };
      guint need = gesso_sampler_step_noise_count (s, ts[i]);
      GessoTensor *mine[3] = { &scaled, &prev, &x0 };

      if (!gesso_sampler_scale_model_input (s, &sample, ts[i], &scaled, error))
        goto out;
      if (need > 0)
        {
          if (used + need > n_noise)
            {
              note_worst (&w, INFINITY, "step %u needs noise draw %" G_GINT64_FORMAT
                          " but the case recorded %" G_GINT64_FORMAT, i, used, n_noise);
              break;
            }
          noise_i = gesso_tensor_view (noise.data + used * gesso_tensor_numel (&sample),
                                       sample.ndim, sample.shape);
          if (need > 1)
            noise_i.shape[0] *= need;
          used += need;
        }
      if (!gesso_sampler_step (s, &out_i, ts[i], &sample, need ? &noise_i : NULL, &prev, &x0,
                               error))
        goto out;
      for (int k = 0; k < 3; k++)
        if (have[k])
          {
            GessoTensor ref = item (&refs[k], i);
            size_t at;
            double d = max_abs_diff (mine[k]->data, ref.data, (size_t) gesso_tensor_numel (&ref),
                                     &at);
            note_worst (&w, d, "%s[%u] at %zu: %.9g vs %.9g", outputs[k], i, at,
                        (double) mine[k]->data[at], (double) ref.data[at]);
          }
      memcpy (sample.data, prev.data, (size_t) gesso_tensor_numel (&prev) * sizeof (float));
    }
  if (used != n_noise)
    note_worst (&w, INFINITY, "used %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                " recorded noise draws", used, n_noise);
  report (r, "rollout", w.worst <= tol, w.worst, tol, "%s%s", w.worst > 0 ? "worst " : "",
          w.worst > 0 && w.what ? w.what : "bit-exact");
  ok = TRUE;

out:
  g_free (w.what);
  gesso_tensor_free (&init);
  gesso_tensor_free (&mo);
  gesso_tensor_free (&noise);
  for (int k = 0; k < 3; k++)
    gesso_tensor_free (&refs[k]);
  gesso_tensor_free (&sample);
  gesso_tensor_free (&scaled);
  gesso_tensor_free (&prev);
  gesso_tensor_free (&x0);
  return ok;
}

/* --- RePaint cases ------------------------------------------------------------------------ */

static gboolean
run_repaint (JsonObject *m, GessoSafetensors *st, GessoSampler *s, double tol, Reporter *r,
             GError **error)
{
  GessoTensor init = { 0 }, orig = { 0 }, mask = { 0 }, mo = { 0 }, noise = { 0 };
  GessoTensor ref = { 0 }, sample = { 0 };
  g_autoptr (GString) mismatch = g_string_new (NULL);
  JsonNode *ops_node = json_object_get_member (m, "ops");
  JsonArray *ops;
  const double *ts;
  guint n_ts, checked = 0, n_ops;
  double n_steps, t_last;
  int64_t numel, n_noise, used = 0;
  gboolean ok = FALSE;
  Worst w = { 0 };

  if (!member_number (m, "num_inference_steps", &n_steps))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the RePaint manifest has no num_inference_steps");
      return FALSE;
    }
  if (ops_node == NULL || !JSON_NODE_HOLDS_ARRAY (ops_node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "the RePaint manifest has no ops");
      return FALSE;
    }
  ops = json_node_get_array (ops_node);
  n_ops = json_array_get_length (ops);
  if (!gesso_sampler_set_timesteps (s, (int) n_steps, error))
    return FALSE;
  ts = gesso_sampler_get_timesteps (s, &n_ts);
  compare_timesteps (m, st, "timesteps", ts, n_ts, FALSE, mismatch, &checked);
  report (r, "timesteps", checked > 0 && mismatch->len == 0, 0, 0, "%s",
          checked == 0 ? "the case lists no timesteps" : mismatch->len ? mismatch->str
                                                       : "exact");

  if (!load_tensor (st, "initial_sample", &init, error)
      || !load_tensor (st, "original_image", &orig, error)
      || !load_tensor (st, "mask", &mask, error)
      || !load_tensor (st, "model_outputs", &mo, error)
      || !load_tensor (st, "noise", &noise, error) || !load_tensor (st, "samples", &ref, error)
      || !gesso_tensor_new (&sample, init.ndim, init.shape, error))
    goto out;
  numel = gesso_tensor_numel (&init);
  n_noise = gesso_tensor_numel (&noise) / numel;
  memcpy (sample.data, init.data, (size_t) numel * sizeof (float));
  if (n_ops > n_ts || (int64_t) n_ops > ref.shape[0])
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%u ops but %u timesteps and %" G_GINT64_FORMAT " recorded samples", n_ops,
                   n_ts, ref.shape[0]);
      goto out;
    }

  /* diffusers' RePaintPipeline loop: t_last = timesteps[0] + 1; a timestep below t_last is a
   * reverse step, anything else an undo_step from t_last */
  t_last = ts[0] + 1;
  for (guint i = 0; i < n_ops; i++)
    {
      JsonObject *op = json_array_get_object_element (ops, i);
      const char *kind = op && json_object_has_member (op, "op")
                           ? json_object_get_string_member (op, "op") : "";
      gboolean is_step = ts[i] < t_last;
      GessoTensor ref_i = item (&ref, i);
      size_t at;
      double d;

      if (is_step != (g_strcmp0 (kind, "step") == 0))
        {
          note_worst (&w, INFINITY, "op %u is '%s' but the schedule says %s at t=%g", i, kind,
                      is_step ? "step" : "undo_step", ts[i]);
          break;
        }
      if (is_step)
        {
          gint64 index = json_object_has_member (op, "model_output_index")
                           ? json_object_get_int_member (op, "model_output_index") : i;
          GessoTensor mo_i, noise_i;

          if (index < 0 || index >= mo.shape[0] || used + 1 > n_noise)
            {
              note_worst (&w, INFINITY, "op %u: model output %" G_GINT64_FORMAT
                          " or noise draw %" G_GINT64_FORMAT " missing", i, index, used);
              break;
            }
          mo_i = item (&mo, index);
          noise_i = gesso_tensor_view (noise.data + used * numel, init.ndim, init.shape);
          used++;
          if (!gesso_sampler_repaint_step (s, &mo_i, ts[i], &sample, &orig, &mask, &noise_i,
                                           &sample, NULL, error))
            goto out;
        }
      else
        {
          guint need = gesso_sampler_repaint_undo_noise_count (s);
          GessoTensor noise_i;

          if (used + need > n_noise)
            {
              note_worst (&w, INFINITY, "op %u (undo_step) needs %u noise draws from %"
                          G_GINT64_FORMAT "; the case recorded %" G_GINT64_FORMAT, i, need,
                          used, n_noise);
              break;
            }
          noise_i = gesso_tensor_view (noise.data + used * numel, init.ndim, init.shape);
          noise_i.shape[0] *= need;
          used += need;
          if (!gesso_sampler_repaint_undo_step (s, &sample, t_last, &noise_i, &sample, error))
            goto out;
        }
      d = max_abs_diff (sample.data, ref_i.data, (size_t) numel, &at);
      note_worst (&w, d, "samples[%u] (%s t=%g) at %zu: %.9g vs %.9g", i, kind, ts[i], at,
                  (double) sample.data[at], (double) ref_i.data[at]);
      t_last = ts[i];
    }
  if (used != n_noise && w.worst <= tol)
    note_worst (&w, INFINITY, "used %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                " recorded noise draws", used, n_noise);
  report (r, "ops", w.worst <= tol, w.worst, tol, "%u ops, %s%s", n_ops,
          w.worst > 0 ? "worst " : "", w.worst > 0 && w.what ? w.what : "bit-exact");
  ok = TRUE;

out:
  g_free (w.what);
  gesso_tensor_free (&init);
  gesso_tensor_free (&orig);
  gesso_tensor_free (&mask);
  gesso_tensor_free (&mo);
  gesso_tensor_free (&noise);
  gesso_tensor_free (&ref);
  gesso_tensor_free (&sample);
  return ok;
}

gboolean
scheduler_case_run (JsonObject *manifest, GessoSafetensors *tensors, SchedulerCheckFunc func,
                    gpointer user_data, GError **error)
{
  Reporter r = { func, user_data };
  GessoSamplerConfig cfg;
  g_autoptr (GessoSampler) s = NULL;
  JsonNode *tol_node = json_object_get_member (manifest, "tolerance");
  double tol;

  if (tol_node == NULL || !JSON_NODE_HOLDS_OBJECT (tol_node)
      || !member_number (json_node_get_object (tol_node), "max_abs", &tol))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the manifest has no tolerance.max_abs");
      return FALSE;
    }
  if (tensors == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING, "the case has no tensor file");
      return FALSE;
    }
  if (!make_sampler_config (manifest, &cfg, error))
    return FALSE;
  s = gesso_sampler_new (&cfg, error);
  if (s == NULL)
    return FALSE;
  if (cfg.kind == GESSO_SAMPLER_REPAINT)
    return run_repaint (manifest, tensors, s, tol, &r, error);
  if (!run_schedules (manifest, tensors, s, tol, &r, error))
    return FALSE;
  return run_rollout (manifest, tensors, s, tol, &r, error);
}
