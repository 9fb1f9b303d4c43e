/* pipeline/ cases: whole edits end to end at 64x64, replaying the reference's noise.
 *
 * Each case names its model, its scheduler and that scheduler's complete config, its
 * prompts and parameters, and every Gaussian draw the reference made (noise_k, in draw
 * order; an input "latents" is the initial noise and comes first). The handler opens the
 * model through gesso_model_open (so a single file finds its configs and tokenizer beside it
 * the way a user's would), builds the sampler from the recorded config, feeds the recorded
 * draws through an injected noise source, runs the engine's pipeline and compares what the
 * case provides:
 *   txt2img/img2img/inpaint  step_latents (after every step), final_latents, decoded, image;
 *   restyle                  z0, inversion_latents, regen_latents, final_latents, decoded,
 *                            image;
 *   repaint-latent           z0, latents (after every step and undo), final_latents, decoded,
 *                            image.
 *   controlnet[-img2img|-inpaint]  as txt2img/img2img/inpaint with a ControlNet (the case's
 *                            "controlnet", its control_image, controlnet_conditioning_scale and
 *                            control_guidance_start/end).
 * Timesteps (step_timesteps, inversion/regen_timesteps, timesteps) must match exactly, and the
 * pipeline must consume exactly the recorded draws. A case that uses another model's VAE (the
 * ControlNet cases: an 8x VAE for a 2x model) borrows it from that model, opened whole; while
 * the engine refuses that model, a case that only decodes is compared in latent space, and
 * says so in its detail (one that encodes is skipped before it gets here).
 *
 * Tolerances: latents take tolerance.max_abs_latents; image takes max_abs_image when the
 * case gives one, decoded twice that (decoded = 2 image - 1 where unclamped); cases with one
 * tolerance use it for everything (it is 20x the largest fp32-vs-fp64 figure over all their
 * outputs). One result per case and model file: the worst output relative to its tolerance
 * is the reported max_abs/tol, every output's figure is in the detail.
 */
#include <math.h>
#include <string.h>

#include "edit/model-private.h"
#include "edit/pipeline.h"
#include "derived-models.h"
#include "families.h"
#include "gesso.h"
#include "model/controlnet.h"

typedef enum
{
  KIND_TXT2IMG,
  KIND_IMG2IMG,
  KIND_INPAINT,
  KIND_RESTYLE,
  KIND_REPAINT,
} CaseKind;

/* --- recorded noise ------------------------------------------------------------------------ */

typedef struct
{
  GPtrArray *tensors;           /* of GessoTensor *, in draw order */
  guint next;
} Recording;

static void
tensor_free (gpointer data)
{
  gesso_tensor_free (data);
  g_free (data);
}

static gboolean
recording_draw (gpointer data, float *out, size_t n, GError **error)
{
  Recording *r = data;
  const GessoTensor *t;

  if (r->next >= r->tensors->len)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "the pipeline asked for draw %u but the case recorded only %u", r->next + 1,
                   r->tensors->len);
      return FALSE;
    }
  t = r->tensors->pdata[r->next];
  if ((size_t) gesso_tensor_numel (t) != n)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "draw %u wants %zu values but the recorded one has %" G_GINT64_FORMAT,
                   r->next + 1, n, gesso_tensor_numel (t));
      return FALSE;
    }
  memcpy (out, t->data, n * sizeof (float));
  r->next++;
  return TRUE;
}

static gboolean
load_recording (const ConformanceCase *c, gboolean latents_first, Recording *r, GError **error)
{
  JsonArray *draws = NULL;

  r->tensors = g_ptr_array_new_with_free_func (tensor_free);
  r->next = 0;
  if (latents_first)
    {
      GessoTensor *t = g_new0 (GessoTensor, 1);

      g_ptr_array_add (r->tensors, t);
      if (!conformance_case_tensor (c, "latents", t, error))
        return FALSE;
    }
  if (json_object_has_member (c->manifest, "noise_draws"))
    draws = json_object_get_array_member (c->manifest, "noise_draws");
  for (guint i = 0; draws != NULL && i < json_array_get_length (draws); i++)
    {
      JsonObject *d = json_array_get_object_element (draws, i);
      const char *name = d ? json_object_get_string_member_with_default (d, "name", NULL) : NULL;
      GessoTensor *t = g_new0 (GessoTensor, 1);

      g_ptr_array_add (r->tensors, t);
      if (name == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "noise_draws[%u] has no name", i);
          return FALSE;
        }
      if (!conformance_case_tensor (c, name, t, error))
        return FALSE;
    }
  return TRUE;
}

/* --- what the pipeline did --------------------------------------------------------------- */

typedef struct
{
  size_t numel;
  GArray *z0;                   /* floats */
  GArray *inversion;            /* floats, one latent per op */
  GArray *denoise;
  GArray *inversion_t;          /* doubles */
  GArray *denoise_t;
} Trace;

static void
trace_observe (gpointer data, const char *phase, guint index, double t, const float *latents,
               size_t numel)
{
  Trace *tr = data;
  GArray *dst = NULL, *ts = NULL;

  tr->numel = numel;
  if (strcmp (phase, "z0") == 0)
    {
      g_array_set_size (tr->z0, 0);
      dst = tr->z0;
    }
  else if (strcmp (phase, "inversion") == 0)
    {
      dst = tr->inversion;
      ts = tr->inversion_t;
    }
  else
    {
      dst = tr->denoise;
      ts = tr->denoise_t;
    }
  g_array_append_vals (dst, latents, (guint) numel);
  if (ts != NULL)
    g_array_append_val (ts, t);
}

static void
trace_init (Trace *tr)
{
  memset (tr, 0, sizeof *tr);
  tr->z0 = g_array_new (FALSE, FALSE, sizeof (float));
  tr->inversion = g_array_new (FALSE, FALSE, sizeof (float));
  tr->denoise = g_array_new (FALSE, FALSE, sizeof (float));
  tr->inversion_t = g_array_new (FALSE, FALSE, sizeof (double));
  tr->denoise_t = g_array_new (FALSE, FALSE, sizeof (double));
}

static void
trace_clear (Trace *tr)
{
  g_array_unref (tr->z0);
  g_array_unref (tr->inversion);
  g_array_unref (tr->denoise);
  g_array_unref (tr->inversion_t);
  g_array_unref (tr->denoise_t);
}

/* --- manifest reading ---------------------------------------------------------------------- */

static JsonObject *
object_member (JsonObject *o, const char *key)
{
  JsonNode *n = o != NULL ? json_object_get_member (o, key) : NULL;

  return n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

/* A number from PARAMS (if not NULL) or the manifest's top level. */
static gboolean
number (const ConformanceCase *c, JsonObject *params, const char *key, double *out)
{
  JsonObject *where[2] = { params, c->manifest };

  for (int i = 0; i < 2; i++)
    {
      JsonNode *n = where[i] != NULL ? json_object_get_member (where[i], key) : NULL;

      if (n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) != G_TYPE_STRING)
        {
          *out = json_node_get_double (n);
          return TRUE;
        }
    }
  return FALSE;
}

static const char *
string (const ConformanceCase *c, JsonObject *params, const char *key)
{
  JsonObject *where[2] = { params, c->manifest };

  for (int i = 0; i < 2; i++)
    {
      JsonNode *n = where[i] != NULL ? json_object_get_member (where[i], key) : NULL;

      if (n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
        return json_node_get_string (n);
    }
  return NULL;
}

/* A [height, width] pair (SDXL's original_size, crops_coords_top_left, target_size) of
 * PARAMS into OUT; left alone when absent. */
static void
size_pair (JsonObject *params, const char *key, int out[2])
{
  JsonNode *n = params != NULL ? json_object_get_member (params, key) : NULL;
  JsonArray *a;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return;
  a = json_node_get_array (n);
  if (json_array_get_length (a) != 2)
    return;
  for (guint i = 0; i < 2; i++)
    out[i] = (int) json_array_get_int_element (a, i);
}

static gboolean
sampler_from_manifest (const ConformanceCase *c, const char *config_key, GessoSamplerKind kind,
                       GessoSamplerConfig *config, GError **error)
{
  JsonObject *json = object_member (c->manifest, config_key);

  gesso_sampler_config_init (config, kind);
  if (json == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "the manifest has no %s",
                   config_key);
      return FALSE;
    }
  return gesso_sampler_config_from_json (config, json, config_key, error);
}

static gboolean
case_kind (const ConformanceCase *c, CaseKind *kind, GError **error)
{
  static const struct
  {
    const char *prefix;
    CaseKind kind;
  } kinds[] = {
    { "txt2img-", KIND_TXT2IMG }, { "img2img-", KIND_IMG2IMG }, { "inpaint-", KIND_INPAINT },
    { "controlnet-img2img-", KIND_IMG2IMG }, { "controlnet-inpaint-", KIND_INPAINT },
    { "controlnet-", KIND_TXT2IMG },
    { "restyle-", KIND_RESTYLE }, { "repaint-latent-", KIND_REPAINT },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (g_str_has_prefix (c->name, kinds[i].prefix))
      {
        *kind = kinds[i].kind;
        return TRUE;
      }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               "no pipeline for case '%s' (expected txt2img-, img2img-, inpaint-, restyle- or "
               "repaint-latent-)", c->name);
  return FALSE;
}

/* The pipeline parameters the case records (everything but the model and the noise). */
static gboolean
case_params (const ConformanceCase *c, CaseKind kind, GessoPipelineParams *p, GError **error)
{
  JsonObject *params = object_member (c->manifest, "params");
  GessoSamplerKind sk;
  double v;

  memset (p, 0, sizeof *p);
  p->guidance_rescale = 0;
  p->strength = 1.0f;
  if (!number (c, params, "num_inference_steps", &v))
    goto missing;
  p->steps = (int) v;
  if (!number (c, params, "guidance_scale", &v))
    goto missing;
  p->guidance = (float) v;
  if (number (c, params, "strength", &v))
    p->strength = (float) v;

  switch (kind)
    {
    case KIND_RESTYLE:
      p->prompt = string (c, NULL, "target_prompt");
      p->source_prompt = string (c, NULL, "source_prompt");
      /* the regeneration's unconditional pass is the empty prompt (see the notes) */
      p->negative_prompt = "";
      if (!sampler_from_manifest (c, "scheduler_config", GESSO_SAMPLER_DDIM, &p->sampler, error)
          || !sampler_from_manifest (c, "inverse_scheduler_config", GESSO_SAMPLER_DDIM_INVERSE,
                                     &p->inverse, error))
        return FALSE;
      break;
    case KIND_REPAINT:
      p->prompt = string (c, NULL, "prompt");
      p->negative_prompt = string (c, NULL, "negative_prompt");
      if (!sampler_from_manifest (c, "scheduler_config", GESSO_SAMPLER_REPAINT, &p->sampler,
                                  error))
        return FALSE;
      if (!number (c, NULL, "jump_length", &v))
        goto missing;
      p->sampler.jump_length = (int) v;
      if (!number (c, NULL, "jump_n_sample", &v))
        goto missing;
      p->sampler.jump_n_sample = (int) v;
      break;
    default:
      p->prompt = string (c, params, "prompt");
      p->negative_prompt = string (c, params, "negative_prompt");
      size_pair (params, "original_size", p->original_size);
      size_pair (params, "crops_coords_top_left", p->crop_top_left);
      size_pair (params, "target_size", p->target_size);
      if (!gesso_sampler_kind_from_name (string (c, NULL, "scheduler"), &sk))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "scheduler '%s' is not one Gesso implements",
                       string (c, NULL, "scheduler") ? string (c, NULL, "scheduler") : "?");
          return FALSE;
        }
      if (!sampler_from_manifest (c, "scheduler_config", sk, &p->sampler, error))
        return FALSE;
      break;
    }
  if (p->prompt == NULL)
    goto missing;
  return TRUE;

missing:
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
               "the manifest lacks a prompt, the step count or the guidance scale");
  return FALSE;
}

/* --- comparing ----------------------------------------------------------------------------- */

typedef struct
{
  double worst_ratio;
  double worst_abs;
  double worst_tol;
  const char *worst_name;
  GString *detail;
  GString *problems;
} Score;

static void
score_add (Score *s, const char *name, double max_abs, double tol)
{
  double ratio = isnan (max_abs) ? INFINITY : max_abs / tol;

  g_string_append_printf (s->detail, "%s%s %.3g", s->detail->len ? ", " : "", name, max_abs);
  if (s->worst_name == NULL || ratio > s->worst_ratio)
    {
      s->worst_ratio = ratio;
      s->worst_abs = max_abs;
      s->worst_tol = tol;
      s->worst_name = name;
    }
}

static void
score_problem (Score *s, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
score_problem (Score *s, const char *format, ...)
{
  va_list args;

  if (s->problems->len > 0)
    g_string_append (s->problems, "; ");
  va_start (args, format);
  g_string_append_vprintf (s->problems, format, args);
  va_end (args);
}

/* Compares GOT (N floats) with case tensor NAME when the case has it. */
static void
compare_tensor (const ConformanceCase *c, Score *s, const char *name, const float *got,
                size_t n, double tol)
{
  g_autoptr (GError) error = NULL;
  GessoTensor want = { 0 };

  if (c->tensors == NULL || gesso_safetensors_lookup (c->tensors, name) == NULL)
    return;
  if (!conformance_case_tensor (c, name, &want, &error))
    {
      score_problem (s, "%s", error->message);
      return;
    }
  if ((size_t) gesso_tensor_numel (&want) != n)
    score_problem (s, "%s: the case has %" G_GINT64_FORMAT " values, the engine made %zu", name,
                   gesso_tensor_numel (&want), n);
  else
    score_add (s, name, conformance_max_abs_diff (got, want.data, n), tol);
  gesso_tensor_free (&want);
}

static void
compare_timesteps (const ConformanceCase *c, Score *s, const char *name, GArray *got)
{
  g_autoptr (GError) error = NULL;
  GessoTensor want = { 0 };

  if (c->tensors == NULL || gesso_safetensors_lookup (c->tensors, name) == NULL)
    return;
  if (!conformance_case_tensor (c, name, &want, &error))
    {
      score_problem (s, "%s", error->message);
      return;
    }
  if ((guint) gesso_tensor_numel (&want) != got->len)
    score_problem (s, "%s: %" G_GINT64_FORMAT " in the case, %u run", name,
                   gesso_tensor_numel (&want), got->len);
  else
    for (guint i = 0; i < got->len; i++)
      if ((float) g_array_index (got, double, i) != want.data[i])
        {
          score_problem (s, "%s[%u] is %g, the case has %g", name, i,
                         g_array_index (got, double, i), (double) want.data[i]);
          break;
        }
  gesso_tensor_free (&want);
}

/* --- running one variant ------------------------------------------------------------------- */

/* The case's ControlNet (from its diffusers folder; the controlnet family covers the file
 * layouts) on MODEL's UNet, with its image, scale and start/end, into P. */
static gboolean
setup_control (const ConformanceCase *c, GessoModel *model, GessoControlNet **controlnet,
               GessoTensor *image, GessoGuiderControl *control, GessoPipelineParams *p,
               GError **error)
{
  const char *name = string (c, NULL, "controlnet");
  g_autofree char *dir = name ? conformance_model_dir (c, name) : NULL;
  g_autofree char *folder = dir ? g_build_filename (dir, "diffusers", NULL) : NULL;
  double scale = 1.0, start = 0.0, end = 1.0;

  if (folder == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "the case names no controlnet");
      return FALSE;
    }
  number (c, object_member (c->manifest, "params"), "controlnet_conditioning_scale", &scale);
  number (c, NULL, "control_guidance_start", &start);
  number (c, NULL, "control_guidance_end", &end);
  *controlnet = gesso_controlnet_open (folder, model->unet, error);
  if (*controlnet == NULL || !conformance_case_tensor (c, "control_image", image, error))
    return FALSE;
  control->net = *controlnet;
  control->image = image->data;
  control->scale = (float) scale;
  p->controls = control;
  p->n_controls = 1;
  p->control_start = start;
  p->control_end = end;
  return TRUE;
}

/* The model NAME whose VAE the case uses, opened whole from its diffusers folder, into LENDER;
 * NULL (and TRUE) while the engine refuses it as not supported yet. */
static gboolean
open_vae_lender (const ConformanceCase *c, const char *name, GessoModel **lender,
                 GError **error)
{
  g_autofree char *dir = conformance_model_dir (c, name);
  g_autofree char *folder = g_build_filename (dir, "diffusers", NULL);
  g_autoptr (GError) local = NULL;
  GessoModelParams mp;

  gesso_model_params_init (&mp);
  mp.path = folder;
  *lender = gesso_model_open (&mp, &local);
  if (*lender != NULL || g_error_matches (local, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

static gboolean
run_variant (const ConformanceCase *c, CaseKind kind, const ConformanceVariant *v,
             Score *score, double tol_latents, double tol_image, double tol_decoded,
             GError **error)
{
  g_autoptr (GessoModel) model = NULL;
  GessoModelParams mp;
  GessoPipelineParams p;
  GessoPipelineInput in = { 0 };
  GessoNoiseSource noise;
  Recording rec = { 0 };
  Trace trace;
  GessoTensor image = { 0 }, mask = { 0 };
  g_autofree float *latent_mask = NULL;
  g_autofree float *latents = NULL;
  g_autofree float *decoded = NULL;
  g_autofree float *clamped = NULL;
  g_autoptr (GessoControlNet) controlnet = NULL;
  GessoTensor control_image = { 0 }, initial = { 0 };
  GessoGuiderControl control;
  const char *vae = string (c, NULL, "vae");
  g_autoptr (GessoModel) vae_lender = NULL;
  GessoVae *own_vae = NULL;
  gboolean latents_only;
  int64_t lh, lw;
  size_t numel, pixels;
  gboolean ok = FALSE;
  int f;

  trace_init (&trace);
  gesso_model_params_init (&mp);
  mp.path = v->path;
  model = gesso_model_open (&mp, error);
  if (model == NULL || !case_params (c, kind, &p, error))
    goto out;
  if (vae != NULL && g_strcmp0 (vae, string (c, NULL, "model")) != 0)
    {
      if (!open_vae_lender (c, vae, &vae_lender, error))
        goto out;
      if (vae_lender != NULL)
        {
          own_vae = model->vae;
          model->vae = vae_lender->vae;
        }
    }
  latents_only = vae != NULL && own_vae == NULL && g_strcmp0 (vae, string (c, NULL, "model"));
  if (!load_recording (c, kind == KIND_TXT2IMG || kind == KIND_INPAINT, &rec, error))
    goto out;
  gesso_noise_source_init (&noise, recording_draw, &rec);
  p.model = model;
  p.noise = &noise;
  p.observe = trace_observe;
  p.observe_data = &trace;

  f = gesso_model_get_latent_factor (model);
  if (json_object_has_member (c->manifest, "controlnet")
      && !setup_control (c, model, &controlnet, &control_image, &control, &p, error))
    goto out;
  if (latents_only)
    {
      /* the size is the latent's, in this model's pixels */
      if (!conformance_case_tensor (c, "latents", &initial, error))
        goto out;
      in.height = initial.shape[2] * f;
      in.width = initial.shape[3] * f;
    }
  else if (kind == KIND_TXT2IMG)
    {
      double h = 0, w = 0;

      if (!number (c, object_member (c->manifest, "params"), "height", &h)
          || !number (c, object_member (c->manifest, "params"), "width", &w))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "the case gives no size");
          goto out;
        }
      in.height = (int64_t) h;
      in.width = (int64_t) w;
    }
  else
    {
      if (!conformance_case_tensor (c, "image_in", &image, error))
        goto out;
      in.height = image.shape[2];
      in.width = image.shape[3];
      /* diffusers' img2img and inpaint pipelines take [0, 1] and normalise it; the restyle
       * and RePaint loops hand image_in to the VAE as it is, in [-1, 1] */
      if (kind == KIND_IMG2IMG || kind == KIND_INPAINT)
        for (int64_t i = 0; i < gesso_tensor_numel (&image); i++)
          image.data[i] = 2.0f * image.data[i] - 1.0f;
      in.image = image.data;
    }
  lh = in.height / f;
  lw = in.width / f;
  numel = (size_t) (4 * lh * lw);
  pixels = (size_t) (in.height * in.width);
  if (kind == KIND_INPAINT)
    {
      if (!conformance_case_tensor (c, "mask_in", &mask, error))
        goto out;
      in.pixel_mask = mask.data;
    }
  if (kind == KIND_REPAINT)
    {
      /* the case's keep_mask (1 = known) is the complement of Gesso's change mask */
      if (!conformance_case_tensor (c, "keep_mask", &mask, error))
        goto out;
      latent_mask = g_new (float, (size_t) (lh * lw));
      for (int64_t i = 0; i < lh * lw; i++)
        latent_mask[i] = 1.0f - mask.data[i];
      in.latent_mask = latent_mask;
    }

  latents = g_new (float, numel);
  decoded = g_new (float, 3 * pixels);
  clamped = g_new (float, 3 * pixels);
  switch (kind)
    {
    case KIND_TXT2IMG:
      ok = gesso_pipeline_txt2img (&p, &in, latents, error);
      break;
    case KIND_IMG2IMG:
      ok = gesso_pipeline_img2img (&p, &in, latents, error);
      break;
    case KIND_INPAINT:
    case KIND_REPAINT:
      ok = gesso_pipeline_inpaint (&p, &in, latents, error);
      break;
    case KIND_RESTYLE:
    default:
      ok = gesso_pipeline_restyle (&p, &in, latents, error);
      break;
    }
  if (!ok || !gesso_pipeline_decode (model, latents, lh, lw, decoded, error))
    {
      ok = FALSE;
      goto out;
    }
  for (size_t i = 0; i < 3 * pixels; i++)
    {
      float x = decoded[i] / 2.0f + 0.5f;
      clamped[i] = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    }

  if (rec.next != rec.tensors->len)
    score_problem (score, "the pipeline drew %u of the %u recorded noise tensors", rec.next,
                   rec.tensors->len);
  compare_tensor (c, score, "z0", (float *) (void *) trace.z0->data, trace.z0->len, tol_latents);
  if (kind == KIND_RESTYLE)
    {
      compare_tensor (c, score, "inversion_latents", (float *) (void *) trace.inversion->data,
                      trace.inversion->len, tol_latents);
      compare_tensor (c, score, "regen_latents", (float *) (void *) trace.denoise->data,
                      trace.denoise->len, tol_latents);
      compare_timesteps (c, score, "inversion_timesteps", trace.inversion_t);
      compare_timesteps (c, score, "regen_timesteps", trace.denoise_t);
    }
  else if (kind == KIND_REPAINT)
    {
      compare_tensor (c, score, "latents", (float *) (void *) trace.denoise->data,
                      trace.denoise->len, tol_latents);
      compare_timesteps (c, score, "timesteps", trace.denoise_t);
    }
  else
    {
      compare_tensor (c, score, "step_latents", (float *) (void *) trace.denoise->data,
                      trace.denoise->len, tol_latents);
      compare_timesteps (c, score, "step_timesteps", trace.denoise_t);
    }
  compare_tensor (c, score, "final_latents", latents, numel, tol_latents);
  if (latents_only)
    g_string_append_printf (score->detail, "; decoded and image not compared: the case "
                            "decodes with %s's VAE", vae);
  else
    {
      compare_tensor (c, score, "decoded", decoded, 3 * pixels, tol_decoded);
      compare_tensor (c, score, "image", clamped, 3 * pixels, tol_image);
    }
  ok = TRUE;

out:
  if (own_vae != NULL)
    model->vae = own_vae;
  gesso_tensor_free (&control_image);
  gesso_tensor_free (&initial);
  if (rec.tensors != NULL)
    g_ptr_array_unref (rec.tensors);
  gesso_tensor_free (&image);
  gesso_tensor_free (&mask);
  trace_clear (&trace);
  return ok;
}

void
conformance_family_pipeline (ConformanceRun *run, const ConformanceCase *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) variants = NULL;
  JsonObject *tolerance = object_member (c->manifest, "tolerance");
  const char *model = string (c, NULL, "model");
  JsonObject *derived;
  char *derived_dir = NULL;
  double tol_latents = NAN, tol_image, tol_decoded;
  CaseKind kind;

  if (tolerance != NULL && json_object_has_member (tolerance, "max_abs_latents"))
    tol_latents = json_object_get_double_member (tolerance, "max_abs_latents");
  if (isnan (tol_latents) || model == NULL)
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, NAN,
                          "the manifest has no model or no tolerance.max_abs_latents");
      return;
    }
  tol_image = tol_decoded = tol_latents;
  if (json_object_has_member (tolerance, "max_abs_image"))
    {
      tol_image = json_object_get_double_member (tolerance, "max_abs_image");
      tol_decoded = 2 * tol_image;
    }
  if (!case_kind (c, &kind, &error))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol_latents, "%s",
                          error->message);
      return;
    }
  if ((derived = object_member (c->manifest, "derived_model")) != NULL)
    {
      variants = conformance_derived_variants (c, derived, &derived_dir, &error);
      if (variants == NULL)
        {
          conformance_report_error (run, c, NULL, tol_latents, error);
          return;
        }
    }
  else
    variants = conformance_model_variants (c, model);
  if (variants->len == 0)
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, tol_latents,
                        "no files of model '%s'", model);
  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      Score score = { 0 };
      gint64 start = g_get_monotonic_time ();
      double seconds;
      gboolean ok;

      score.detail = g_string_new (NULL);
      score.problems = g_string_new (NULL);
      g_clear_error (&error);
      ok = run_variant (c, kind, v, &score, tol_latents, tol_image, tol_decoded, &error);
      seconds = (double) (g_get_monotonic_time () - start) / 1e6;
      if (!ok)
        conformance_report_error (run, c, v->label, tol_latents, error);
      else if (score.worst_name == NULL)
        conformance_report (run, c, CONFORMANCE_FAIL, v->label, NAN, tol_latents,
                            "nothing compared%s%s", score.problems->len ? ": " : "",
                            score.problems->str);
      else
        {
          gboolean pass = score.worst_ratio <= 1.0 && score.problems->len == 0;

          conformance_report (run, c, pass ? CONFORMANCE_PASS : CONFORMANCE_FAIL, v->label,
                              score.worst_abs, score.worst_tol,
                              "worst %s; %s; %.2f s%s%s", score.worst_name, score.detail->str,
                              seconds, score.problems->len ? "; " : "", score.problems->str);
        }
      g_string_free (score.detail, TRUE);
      g_string_free (score.problems, TRUE);
    }
  conformance_remove_derived (derived_dir);
}
