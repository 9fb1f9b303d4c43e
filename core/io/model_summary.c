/* What `gesso info` reports about a model: counts per component and an architecture guess.
 *
 * Parameters are the elements of floating-point tensors (F32, F16, BF16, F64, F8): weights,
 * and in single files also the LDM schedule buffers (betas, alphas_cumprod, ...) and
 * model_ema.decay, all of which land in the "other" component. Integer and bool tensors
 * (position_ids, model_ema.num_updates) are indices and counters, counted as tensors but not
 * as parameters; that keeps a single file's text encoder count equal to its diffusers
 * folder's, whose files leave position_ids out.
 */
#include "gesso.h"

#include <string.h>

#include "io/config.h"
#include "io/model_files.h"

static gboolean
is_float_dtype (GessoDType dtype)
{
  switch (dtype)
    {
    case GESSO_DTYPE_F32:
    case GESSO_DTYPE_F16:
    case GESSO_DTYPE_BF16:
    case GESSO_DTYPE_F64:
    case GESSO_DTYPE_F8_E4M3:
    case GESSO_DTYPE_F8_E5M2:
      return TRUE;
    default:
      return FALSE;
    }
}

/* The UNet tensor stored under either naming: diffusers' or the LDM checkpoint's. */
static const GessoModelTensor *
lookup_unet (const GessoModelFiles *files, const char *diffusers_key, const char *ldm_key)
{
  const GessoModelTensor *t = gesso_model_files_lookup (files, GESSO_COMPONENT_UNET,
                                                        diffusers_key);

  return t != NULL ? t : gesso_model_files_lookup (files, GESSO_COMPONENT_UNET, ldm_key);
}

/* A best-effort guess from key names and shapes, for people reading `gesso info`; the engine
 * does its own detection in core/model and never relies on this string.
 *   SDXL: a second text encoder (conditioner.embedders.1, text_encoder_2/) or the UNet's
 *     add_embedding (diffusers) / label_emb (LDM) for its size and crop conditioning; the
 *     refiner keeps OpenCLIP bigG alone as conditioner.embedders.0.
 *   SD 1.x vs 2.x: SD1's transformer blocks project in with 1x1 convs, SD2's with linear
 *     layers; without a UNet attention block the text encoder decides (OpenCLIP: SD2).
 *   Inpainting and other variants show in the UNet's conv_in input channels (4 normally). */
static char *
guess_architecture (const GessoModelFiles *files)
{
  g_autoptr (GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *joined = NULL;
  const GessoModelTensor *conv_in;
  JsonObject *scheduler;
  const char *prediction;
  const char *family = NULL;
  gboolean has_unet = FALSE, sdxl = FALSE, open_clip = FALSE;
  int proj_in_ndim = 0;

  for (guint i = 0; i < gesso_model_files_count (files); i++)
    {
      const GessoModelTensor *t = gesso_model_files_tensor (files, i);

      if (t->component == GESSO_COMPONENT_UNET)
        {
          has_unet = TRUE;
          if (strstr (t->key, "add_embedding.") != NULL
              || g_str_has_prefix (t->key, "model.diffusion_model.label_emb."))
            sdxl = TRUE;
          if (proj_in_ndim == 0 && g_str_has_suffix (t->key, "proj_in.weight"))
            proj_in_ndim = t->entry->ndim;
        }
      else if (t->component == GESSO_COMPONENT_TEXT_ENCODER_2)
        sdxl = TRUE;
      else if (t->component == GESSO_COMPONENT_TEXT_ENCODER)
        {
          if (g_str_has_prefix (t->key, "conditioner.embedders.0.model."))
            return g_strdup ("Stable Diffusion XL refiner (not supported)");
          if (g_str_has_prefix (t->key, "cond_stage_model.model."))
            open_clip = TRUE;
        }
    }

  if (!has_unet)
    return g_strdup (sdxl ? "Stable Diffusion XL" : "unknown");
  if (sdxl)
    family = "Stable Diffusion XL";
  else if (proj_in_ndim == 4)
    family = "Stable Diffusion 1.x";
  else if (proj_in_ndim == 2 || open_clip)
    family = "Stable Diffusion 2.x";
  else
    return g_strdup ("unknown");

  conv_in = lookup_unet (files, "conv_in.weight", "model.diffusion_model.input_blocks.0.0.weight");
  if (conv_in != NULL && conv_in->entry->ndim == 4 && conv_in->entry->shape[1] != 4)
    {
      int64_t channels = conv_in->entry->shape[1];
      g_ptr_array_add (notes, channels == 9
                                ? g_strdup ("inpainting, 9 input channels")
                                : g_strdup_printf ("%" G_GINT64_FORMAT " input channels",
                                                   channels));
    }
  /* only a diffusers folder says how the UNet was trained to predict */
  scheduler = gesso_model_files_config (files, "scheduler");
  if (scheduler != NULL
      && gesso_config_get_string (scheduler, "scheduler_config.json", "prediction_type",
                                  &prediction, NULL)
      && strcmp (prediction, "v_prediction") == 0)
    g_ptr_array_add (notes, g_strdup ("v-prediction"));

  if (notes->len == 0)
    return g_strdup (family);
  g_ptr_array_add (notes, NULL);
  joined = g_strjoinv (", ", (char **) notes->pdata);
  return g_strdup_printf ("%s (%s)", family, joined);
}

GessoModelSummary *
gesso_model_summary_new (const char *path, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  GessoModelSummary *summary;

  g_return_val_if_fail (path != NULL, NULL);

  files = gesso_model_files_open (path, error);
  if (files == NULL)
    return NULL;

  summary = g_new0 (GessoModelSummary, 1);
  summary->path = g_strdup (path);
  summary->layout = gesso_model_files_layout (files);
  summary->n_files = gesso_model_files_n_files (files);
  for (guint i = 0; i < gesso_model_files_count (files); i++)
    {
      const GessoModelTensor *t = gesso_model_files_tensor (files, i);
      GessoComponentSummary *c = &summary->components[t->component];
      /* validated: numel >= 0, and all numels of a file sum to at most its size */
      guint64 params = is_float_dtype (t->entry->dtype) ? (guint64) t->entry->numel : 0;

      c->n_tensors++;
      c->n_params += params;
      c->n_tensors_by_dtype[t->entry->dtype]++;
      summary->n_tensors++;
      summary->n_params += params;
    }
  summary->architecture = guess_architecture (files);
  return summary;
}

void
gesso_model_summary_free (GessoModelSummary *summary)
{
  if (summary == NULL)
    return;
  g_free (summary->path);
  g_free (summary->architecture);
  g_free (summary);
}
