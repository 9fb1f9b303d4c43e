/* gesso_edit_run: one edit from the user's image to a result layer.
 *
 *   1. check every parameter (a NaN, an out-of-range value or a missing input is an
 *      INVALID_ARGUMENT error naming the parameter and its range);
 *   2. plan the region (region.h): the mask grown and feathered, its box plus the context
 *      margin as the crop, the crop resized to a working size of the pixel budget's area in
 *      multiples of latent factor x 2^(UNet levels - 1);
 *   3. run the pipeline (pipeline.h) on the working-size image with the working-size pixel
 *      mask and its area-averaged latent mask, with noise from the seed's RNG;
 *   4. decode, resize back to the crop, and hand back the crop with its blend mask; where the
 *      blend is 0 the result holds the input's pixels bit for bit.
 *
 * Samplers: NULL picks the method's default (gesso_edit_sampler_name: dpmpp_2m; lcm with an
 * LCM-LoRA; inpainting with an ordinary model: RePaint; restyle: ddim, the only one it
 * accepts). "_karras" after a sigma sampler's name
 * ("dpmpp_2m_karras", "euler_karras", "euler_a_karras", "lms_karras") spaces its sigmas as
 * Karras et al. 2022, eq. 5. Inpainting with an ordinary model and a sampler other than
 * "repaint" runs that sampler with the known region imposed after every step (RePaint
 * without resampling), at the given strength. "lcm" under a strength below 1 (SDEdit,
 * inpaint) runs all its steps over the lower part of its schedule (pipeline.h); restyle
 * refuses any sampler but ddim with GESSO_ERROR_UNSUPPORTED.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include "edit/controls.h"
#include "edit/mask.h"
#include "edit/model-private.h"
#include "edit/pipeline.h"
#include "edit/preview.h"
#include "edit/region.h"
#include "edit/resample.h"
#include <glib/gi18n-lib.h>

#define MAX_GUIDANCE 100.0f
#define MAX_MASK_RADIUS 4096.0f
#define MAX_CONTEXT_MARGIN 65536
#define MAX_SIDE 65536
#define MAX_PREVIEW_SIDE 4096

void
gesso_edit_params_init (GessoEditParams *params, GessoEditKind kind)
{
  g_return_if_fail (params != NULL);
  memset (params, 0, sizeof *params);
  params->kind = kind;
  params->negative_prompt = "";
  params->guidance = 7.5f;
  params->guidance_rescale = 0.0f;
  params->strength = 1.0f;
  params->eta = 0.0f;
  params->jump_length = 5;
  params->resample_count = 2;
  params->context_margin = 64;
  /* nothing outside the selection changes unless the user grows it: the seam is softened
   * inside it (mask.h) */
  params->mask_grow = 0.0f;
  params->mask_feather = 8.0f;
  params->preview_size = 0;
  params->control_start = 0.0f;
  params->control_end = 1.0f;
  switch (kind)
    {
    case GESSO_EDIT_GENERATE:
      params->steps = 25;
      params->mask_grow = 0.0f;
      params->mask_feather = 0.0f;
      params->context_margin = 0;
      break;
    case GESSO_EDIT_INPAINT:
      /* RePaint: 20 steps with one resampling every 5 make 35 model evaluations */
      params->steps = 20;
      break;
    case GESSO_EDIT_SDEDIT:
      params->steps = 30;
      params->strength = 0.6f;
      break;
    case GESSO_EDIT_RESTYLE:
      params->steps = 30;
      params->strength = 0.8f;
      params->guidance = 5.0f;
      break;
    default:
      break;
    }
}

void
gesso_edit_result_clear (GessoEditResult *result)
{
  if (result == NULL)
    return;
  gesso_image_clear (&result->image);
  gesso_mask_clear (&result->blend);
  result->x = 0;
  result->y = 0;
}

/* --- checking ------------------------------------------------------------------------------ */

static gboolean
invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError **error, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

static gboolean
check_range (const char *name, double value, double lo, double hi, GError **error)
{
  if (!(value >= lo && value <= hi))
    return invalid (error, _("%s is %g; it must be a number between %g and %g"), name, value, lo,
                    hi);
  return TRUE;
}

static gboolean
check_params (const GessoEditParams *p, GError **error)
{
  if ((unsigned) p->kind > GESSO_EDIT_RESTYLE)
    return invalid (error, _("unknown edit kind %d"), (int) p->kind);
  if (p->prompt == NULL)
    return invalid (error, _("no prompt given (an empty prompt is allowed)"));
  if (p->kind == GESSO_EDIT_RESTYLE && p->source_prompt == NULL)
    return invalid (error, _("restyle needs a source prompt describing the image as it is"));
  if (p->steps < 1 || p->steps > 1000)
    return invalid (error, _("steps is %d; it must be between 1 and 1000"), p->steps);
  if (!check_range ("guidance", p->guidance, 0, MAX_GUIDANCE, error)
      || !check_range ("guidance rescale", p->guidance_rescale, 0, 1, error)
      || !check_range ("strength", p->strength, 0, 1, error)
      || !check_range ("eta", p->eta, 0, 1, error)
      || !check_range ("mask grow", p->mask_grow, 0, MAX_MASK_RADIUS, error)
      || !check_range ("mask feather", p->mask_feather, 0, MAX_MASK_RADIUS, error))
    return FALSE;
  if (p->kind == GESSO_EDIT_GENERATE
      && (p->width < 0 || p->height < 0 || p->width > MAX_SIDE || p->height > MAX_SIDE))
    return invalid (error, _("the size %d x %d is out of range; give 1 to %d pixels a side (0 for "
                    "the model's native size)"), p->width, p->height, MAX_SIDE);
  if (p->jump_length < 1 || p->jump_length > 1000)
    return invalid (error, _("jump length is %d; it must be between 1 and 1000"), p->jump_length);
  if (p->resample_count < 1 || p->resample_count > 100)
    return invalid (error, _("resample count is %d; it must be between 1 (no resampling) and 100"),
                    p->resample_count);
  if (p->context_margin < 0 || p->context_margin > MAX_CONTEXT_MARGIN)
    return invalid (error, _("context margin is %d; it must be between 0 and %d pixels"),
                    p->context_margin, MAX_CONTEXT_MARGIN);
  if (p->clip_skip < 0)
    return invalid (error, _("clip skip is %d; it must be 0 (last layer) or more"), p->clip_skip);
  if (p->pixel_budget < 0)
    return invalid (error, _("pixel budget is %d; it must be 0 (the model's native area) or a "
                    "positive pixel count"), p->pixel_budget);
  if (p->preview_size < 0 || p->preview_size > MAX_PREVIEW_SIDE)
    return invalid (error, _("preview size is %d; it must be 0 (no previews) or up to %d pixels"),
                    p->preview_size, MAX_PREVIEW_SIDE);
  if (p->n_loras < 0 || p->n_loras > GESSO_MAX_LORAS || (p->n_loras > 0 && p->loras == NULL))
    return invalid (error, "%d LoRAs given; at most %d can be used together", p->n_loras,
                    GESSO_MAX_LORAS);
  return gesso_edit_controls_check (p, error);
}

static gboolean
check_inputs (const GessoEditParams *p, const GessoImage *input, const GessoMask *mask,
              GError **error)
{
  if (p->kind == GESSO_EDIT_GENERATE)
    return TRUE;
  if (input == NULL || input->pixels == NULL || input->width < 1 || input->height < 1)
    return invalid (error, _("this edit needs an input image with pixels"));
  if (input->width > MAX_SIDE || input->height > MAX_SIDE)
    return invalid (error, _("the image is %d x %d; Gesso edits images up to %d pixels a side"),
                    input->width, input->height, MAX_SIDE);
  if (mask != NULL
      && (mask->values == NULL || mask->width != input->width || mask->height != input->height))
    return invalid (error, _("the mask is %d x %d but the image %d x %d; they must match"),
                    mask->width, mask->height, input->width, input->height);
  return TRUE;
}

/* --- samplers ------------------------------------------------------------------------------ */

/* diffusers' timestep_spacing names: a single file carries no scheduler config to say that a
 * few-step model (SDXL-Turbo, Lightning) was distilled on trailing timesteps */
static gboolean
spacing_from_name (const char *name, GessoTimestepSpacing *out)
{
  static const struct
  {
    const char *name;
    GessoTimestepSpacing spacing;
  } spacings[] = {
    { "leading", GESSO_SPACING_LEADING },
    { "trailing", GESSO_SPACING_TRAILING },
    { "linspace", GESSO_SPACING_LINSPACE },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (spacings); i++)
    if (strcmp (name, spacings[i].name) == 0)
      {
        *out = spacings[i].spacing;
        return TRUE;
      }
  return FALSE;
}

const char *
gesso_edit_sampler_name (const GessoModel *model, const GessoEditParams *p)
{
  g_return_val_if_fail (model != NULL && p != NULL, NULL);
  if (p->sampler != NULL && p->sampler[0] != '\0')
    return p->sampler;
  if (p->kind == GESSO_EDIT_RESTYLE)
    return "ddim";
  /* an LCM-LoRA was distilled for LCM's few steps: other samplers make mush of them */
  if (gesso_model_uses_lcm_lora (model))
    return "lcm";
  if (p->kind == GESSO_EDIT_INPAINT && !gesso_model_is_inpainting (model))
    return "repaint";
  return "dpmpp_2m";
}

static gboolean
sampler_config (GessoModel *model, const GessoEditParams *p, GessoSamplerConfig *config,
                GError **error)
{
  const char *name = gesso_edit_sampler_name (model, p);
  g_autofree char *base = NULL;
  gboolean karras = FALSE;
  GessoSamplerKind kind;

  base = g_strdup (name);
  if (g_str_has_suffix (base, "_karras"))
    {
      base[strlen (base) - strlen ("_karras")] = '\0';
      karras = TRUE;
    }
  if (!gesso_sampler_kind_from_name (base, &kind) || kind == GESSO_SAMPLER_DDIM_INVERSE
      || (karras && kind != GESSO_SAMPLER_EULER && kind != GESSO_SAMPLER_EULER_ANCESTRAL
          && kind != GESSO_SAMPLER_DPMPP_2M && kind != GESSO_SAMPLER_LMS))
    return invalid (error, _("unknown sampler \"%s\"; use ddim, euler, euler_a, dpmpp_2m, "
                    "dpmpp_2m_karras, ddpm, lms, lcm or repaint"), name);
  if (kind == GESSO_SAMPLER_REPAINT
      && (p->kind != GESSO_EDIT_INPAINT || gesso_model_is_inpainting (model)))
    return invalid (error, _("the repaint sampler is for inpainting with an ordinary (not "
                    "9-channel) model; choose another sampler"));
  if (p->kind == GESSO_EDIT_RESTYLE && kind != GESSO_SAMPLER_DDIM)
    {
      /* LCM and the others do not retrace DDIM's deterministic path (LCM re-noises with
       * fresh noise at every step), so the inverted latent would not lead back to the image */
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("restyle inverts the image with DDIM and can only sample it back with DDIM; "
                   "\"%s\" cannot retrace that path, use the ddim sampler"), name);
      return FALSE;
    }
  if (!gesso_model_sampler_config (model, kind, config, error))
    return FALSE;
  if (karras)
    config->sigma_spacing = GESSO_SIGMAS_KARRAS;
  if (p->timestep_spacing != NULL && p->timestep_spacing[0] != '\0'
      && !spacing_from_name (p->timestep_spacing, &config->timestep_spacing))
    return invalid (error, "unknown timestep spacing \"%s\"; use leading, trailing or "
                    "linspace", p->timestep_spacing);
  config->eta = p->eta;
  config->jump_length = p->jump_length;
  config->jump_n_sample = p->resample_count;
  return TRUE;
}

/* --- the run ------------------------------------------------------------------------------- */

typedef struct
{
  GessoRegion region;
  GessoMask prepared;           /* the user's mask grown and feathered, image size */
  GessoMask blend;              /* that, cropped to the region */
  float *work_image;            /* [1, 3, H, W] in [-1, 1] */
  float *work_mask;             /* [H * W] */
  float *latent_mask;           /* [h * w] */
  float *latents;
  float *decoded;
  GessoImage crop;
  GessoPreviewer *previewer;    /* NULL: no previews asked for */
  GessoEditControls controls;
} EditJob;

static void
edit_job_clear (EditJob *job)
{
  gesso_mask_clear (&job->prepared);
  gesso_mask_clear (&job->blend);
  gesso_image_clear (&job->crop);
  g_free (job->work_image);
  g_free (job->work_mask);
  g_free (job->latent_mask);
  g_free (job->latents);
  g_free (job->decoded);
  gesso_previewer_free (job->previewer);
  gesso_edit_controls_clear (&job->controls);
}

static int
size_multiple (const GessoModel *model)
{
  const GessoUnetConfig *u = gesso_unet_get_config (model->unet);

  return gesso_vae_latent_factor (model->vae) << (u->n_levels - 1);
}

static float *
alloc_floats (size_t n, GError **error)
{
  float *p = g_try_new (float, MAX (n, 1));

  if (p == NULL)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                 _("not enough memory for the edit's working buffers (%zu MiB)"),
                 n * sizeof (float) >> 20);
  return p;
}

/* Steps 2 and the inputs of 3: region, working image, masks. */
static gboolean
plan (GessoModel *model, const GessoEditParams *p, const GessoImage *input,
      const GessoMask *mask, EditJob *job, GError **error)
{
  int multiple = size_multiple (model), f = gesso_vae_latent_factor (model->vae);
  int budget = p->pixel_budget > 0 ? p->pixel_budget : model->native_size * model->native_size;
  size_t work_px, latent_px;

  if (p->kind == GESSO_EDIT_GENERATE)
    {
      int w = p->width > 0 ? p->width : model->native_size;
      int h = p->height > 0 ? p->height : model->native_size;

      return gesso_region_plan (w, h, NULL, 0, budget, multiple, &job->region, error);
    }
  if (mask != NULL && !gesso_mask_prepare (mask, p->mask_grow, p->mask_feather, &job->prepared,
                                           error))
    return FALSE;
  if (!gesso_region_plan (input->width, input->height, mask ? &job->prepared : NULL,
                          p->context_margin, budget, multiple, &job->region, error)
      || !gesso_region_crop_mask (mask ? &job->prepared : NULL, &job->region, &job->blend,
                                  error))
    return FALSE;
  work_px = (size_t) job->region.work_width * (size_t) job->region.work_height;
  latent_px = work_px / (size_t) (f * f);
  job->work_image = alloc_floats (3 * work_px, error);
  if (job->work_image == NULL || !gesso_region_to_model (input, &job->region, job->work_image,
                                                         error))
    return FALSE;
  if (mask == NULL)
    return TRUE;
  job->work_mask = alloc_floats (work_px, error);
  job->latent_mask = job->work_mask ? alloc_floats (latent_px, error) : NULL;
  if (job->latent_mask == NULL)
    return FALSE;
  return gesso_resample_plane (job->blend.values, job->blend.width, job->blend.width,
                               job->blend.height, job->work_mask, job->region.work_width,
                               job->region.work_height, 0.0f, 1.0f, error)
         && gesso_mask_resize_area (job->work_mask, job->region.work_width,
                                    job->region.work_height, job->latent_mask,
                                    job->region.work_width / f, job->region.work_height / f,
                                    error);
}

static gboolean
run_pipeline (GessoModel *model, const GessoEditParams *p, const GessoImage *input,
              EditJob *job, GError **error)
{
  GessoPipelineParams pp = { 0 };
  GessoPipelineInput in = { 0 };
  GessoNoiseSource noise;
  GessoRng rng;
  int f = gesso_vae_latent_factor (model->vae);
  size_t latent_numel;

  if (!sampler_config (model, p, &pp.sampler, error))
    return FALSE;
  if (p->kind == GESSO_EDIT_RESTYLE
      && !gesso_model_sampler_config (model, GESSO_SAMPLER_DDIM_INVERSE, &pp.inverse, error))
    return FALSE;
  gesso_rng_init (&rng, p->seed);
  gesso_noise_source_init_rng (&noise, &rng);
  pp.model = model;
  pp.steps = p->steps;
  pp.guidance = p->guidance;
  pp.guidance_rescale = p->guidance_rescale;
  pp.strength = p->kind == GESSO_EDIT_RESTYLE && p->full_inversion ? 1.0f : p->strength;
  pp.prompt = p->prompt;
  /* no negative prompt is diffusers' None: an SDXL model that forces zeros for it gets them */
  pp.negative_prompt = p->negative_prompt != NULL && p->negative_prompt[0] != '\0'
                         ? p->negative_prompt : NULL;
  pp.source_prompt = p->source_prompt;
  pp.clip_skip = p->clip_skip;
  pp.noise = &noise;
  pp.progress = p->progress;
  pp.progress_data = p->progress_data;
  /* previews only for someone who reads them */
  if (p->preview_size > 0 && p->progress != NULL)
    {
      job->previewer = gesso_previewer_new (model, p->preview_size, &job->region,
                                            p->kind == GESSO_EDIT_GENERATE ? NULL : input,
                                            job->blend.values != NULL ? &job->blend : NULL,
                                            error);
      if (job->previewer == NULL)
        return FALSE;
    }
  pp.previewer = job->previewer;

  in.height = job->region.work_height;
  in.width = job->region.work_width;
  in.image = job->work_image;
  in.pixel_mask = job->work_mask;
  in.latent_mask = job->latent_mask;
  latent_numel = (size_t) gesso_vae_latent_channels (model->vae) * (size_t) (in.height / f)
                 * (size_t) (in.width / f);
  job->latents = alloc_floats (latent_numel, error);
  job->decoded = job->latents ? alloc_floats (3 * (size_t) (in.height * in.width), error) : NULL;
  if (job->decoded == NULL)
    return FALSE;
  if (!gesso_edit_controls_prepare (&job->controls, model, p, input, &job->region,
                                    p->kind == GESSO_EDIT_GENERATE ? job->region.width
                                                                   : input->width,
                                    p->kind == GESSO_EDIT_GENERATE ? job->region.height
                                                                   : input->height,
                                    job->work_mask, (int) in.width / f, (int) in.height / f,
                                    error))
    return FALSE;
  pp.controls = job->controls.controls;
  pp.n_controls = job->controls.n;
  pp.control_start = p->control_start;
  pp.control_end = p->control_end;

  switch (p->kind)
    {
    case GESSO_EDIT_GENERATE:
      if (!gesso_pipeline_txt2img (&pp, &in, job->latents, error))
        return FALSE;
      break;
    case GESSO_EDIT_INPAINT:
      if (!gesso_model_is_inpainting (model) && pp.sampler.kind != GESSO_SAMPLER_REPAINT)
        {
          /* RePaint without resampling, with the chosen sampler */
          if (!gesso_pipeline_img2img (&pp, &in, job->latents, error))
            return FALSE;
        }
      else if (!gesso_pipeline_inpaint (&pp, &in, job->latents, error))
        return FALSE;
      break;
    case GESSO_EDIT_SDEDIT:
      if (!gesso_pipeline_img2img (&pp, &in, job->latents, error))
        return FALSE;
      break;
    case GESSO_EDIT_RESTYLE:
    default:
      if (!gesso_pipeline_restyle (&pp, &in, job->latents, error))
        return FALSE;
      break;
    }
  /* the decoder's activations are the job's peak: without the UNet beside them when allowed */
  gesso_model_sampling_done (model);
  return gesso_pipeline_decode (model, job->latents, in.height / f, in.width / f, job->decoded,
                                error);
}

/* Step 4: the crop and its blend mask; outside the mask, the input's own pixels. */
static gboolean
finish (const GessoEditParams *p, const GessoImage *input, EditJob *job,
        GessoEditResult *result, GError **error)
{
  const GessoRegion *r = &job->region;

  if (!gesso_region_from_model (job->decoded, p->kind == GESSO_EDIT_GENERATE ? NULL : input,
                                r, &job->crop, error))
    return FALSE;
  if (job->blend.values == NULL)
    {
      if (!gesso_mask_init (&job->blend, r->width, r->height, error))
        return FALSE;
      for (size_t i = 0; i < (size_t) r->width * (size_t) r->height; i++)
        job->blend.values[i] = 1.0f;
    }
  else
    for (int y = 0; y < r->height; y++)
      for (int x = 0; x < r->width; x++)
        {
          size_t i = (size_t) y * (size_t) r->width + (size_t) x;
          size_t src = (size_t) (r->y + y) * (size_t) input->width + (size_t) (r->x + x);

          if (!(job->blend.values[i] > 0.0f))
            {
              job->blend.values[i] = 0.0f;
              memcpy (job->crop.pixels + 4 * i, input->pixels + 4 * src, 4 * sizeof (float));
            }
        }
  result->image = job->crop;
  result->blend = job->blend;
  result->x = r->x;
  result->y = r->y;
  memset (&job->crop, 0, sizeof job->crop);
  memset (&job->blend, 0, sizeof job->blend);
  return TRUE;
}

/* Strength 0 asks for no change: the input itself, laid over nothing (a blend of 0 keeps the
 * input's pixels bit for bit), not its round trip through the VAE. */
static gboolean
unchanged (const GessoImage *input, GessoEditResult *result, GError **error)
{
  if (!gesso_image_init (&result->image, input->width, input->height, error)
      || !gesso_mask_init (&result->blend, input->width, input->height, error))
    {
      gesso_edit_result_clear (result);
      return FALSE;
    }
  memcpy (result->image.pixels, input->pixels,
          (size_t) input->width * (size_t) input->height * 4 * sizeof (float));
  result->x = result->y = 0;
  return TRUE;
}

gboolean
gesso_edit_run (GessoModel *model, const GessoEditParams *params, const GessoImage *input,
                const GessoMask *mask, GessoEditResult *result, GError **error)
{
  EditJob job;
  gboolean ok;

  g_return_val_if_fail (model != NULL && params != NULL && result != NULL, FALSE);
  memset (result, 0, sizeof *result);
  memset (&job, 0, sizeof job);
  if (params->kind != GESSO_EDIT_GENERATE && params->strength == 0.0f
      && !(params->kind == GESSO_EDIT_RESTYLE && params->full_inversion))
    return check_params (params, error) && check_inputs (params, input, mask, error)
           && unchanged (input, result, error);
  ok = check_params (params, error) && check_inputs (params, input, mask, error)
       && gesso_edit_check_memory (model, params,
                                   params->kind == GESSO_EDIT_GENERATE ? params->width
                                                                       : input->width,
                                   params->kind == GESSO_EDIT_GENERATE ? params->height
                                                                       : input->height,
                                   mask != NULL, 0, error)
       && gesso_model_use_loras (model, params->loras, params->n_loras, error)
       && plan (model, params, input, mask, &job, error)
       && run_pipeline (model, params, input, &job, error)
       && finish (params, input, &job, result, error);
  edit_job_clear (&job);
  return ok;
}
