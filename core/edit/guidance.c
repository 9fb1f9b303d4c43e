/* Classifier-free guidance over one batch-2 UNet call; see guidance.h. */
#include "edit/guidance.h"

#include <math.h>
#include <string.h>

#include "gesso.h"
#include <glib/gi18n-lib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

gboolean
gesso_guider_init (GessoGuider *g, GessoUnet *unet, int64_t height, int64_t width,
                   int64_t tokens, int64_t hidden, GError **error)
{
  const GessoUnetConfig *config;
  size_t plane = (size_t) (height * width);

  g_return_val_if_fail (g != NULL && unet != NULL, FALSE);
  memset (g, 0, sizeof *g);
  config = gesso_unet_get_config (unet);
  if (!gesso_unet_check_size (unet, 2, height, width, tokens, error))
    return FALSE;
  g->unet = unet;
  g->height = height;
  g->width = width;
  g->tokens = tokens;
  g->hidden = hidden;
  g->latent_channels = config->out_channels;
  g->in_channels = config->in_channels;
  g->guidance = 1.0f;
  g->arena = gesso_arena_new (gesso_unet_scratch_bytes (unet, 2, height, width, tokens), error);
  if (g->arena == NULL)
    return FALSE;
  g->context = g_try_new0 (float, (size_t) (2 * tokens * hidden));
  g->pooled_dim = gesso_unet_config_pooled_dim (config);
  g->pooled = g_new0 (float, (size_t) (2 * MAX (g->pooled_dim, 1)));
  g->input = g_try_new0 (float, 2 * (size_t) g->in_channels * plane);
  g->output = g_try_new0 (float, 2 * (size_t) g->latent_channels * plane);
  if (g->context == NULL || g->input == NULL || g->output == NULL)
    {
      gesso_guider_clear (g);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "not enough memory for a %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " latent's model inputs", width, height);
      return FALSE;
    }
  return TRUE;
}

void
gesso_guider_clear (GessoGuider *g)
{
  if (g == NULL)
    return;
  gesso_arena_free (g->arena);
  g_free (g->context);
  g_free (g->pooled);
  g_free (g->input);
  g_free (g->output);
  g_free (g->control_embeddings);
  g_free (g->control_sample);
  g_free (g->residuals);
  memset (g, 0, sizeof *g);
}

gboolean
gesso_guider_set_controls (GessoGuider *g, const GessoGuiderControl *controls, int n,
                           double start, double end, GError **error)
{
  const size_t plane = (size_t) (g->height * g->width);
  size_t per_image = 0, per_embedding;
  g_autofree float *pair = NULL;

  g_return_val_if_fail (g != NULL && n >= 0 && (n == 0 || controls != NULL), FALSE);
  g_clear_pointer (&g->control_embeddings, g_free);
  g_clear_pointer (&g->control_sample, g_free);
  g_clear_pointer (&g->residuals, g_free);
  g->controls = NULL;
  g->n_controls = 0;
  if (n == 0)
    return TRUE;
  for (int j = 0; j < n; j++)
    {
      int f = gesso_controlnet_get_image_factor (controls[j].net);
      size_t size = (size_t) gesso_controlnet_get_image_channels (controls[j].net) * plane
                    * (size_t) f * (size_t) f;
      if (j > 0 && size != per_image)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("the ControlNets used together take control images of different sizes "
                       "or channels; use ControlNets of one kind together"));
          return FALSE;
        }
      per_image = size;
    }
  per_embedding = gesso_controlnet_embedding_floats (controls[0].net, 2, g->height, g->width);
  pair = g_try_new (float, 2 * per_image);
  g->control_embeddings = g_try_new (float, per_embedding * (size_t) n);
  g->residuals = g_try_new (float, gesso_unet_residual_floats (g->unet, 2, g->height,
                                                                g->width));
  if (g->in_channels != g->latent_channels)
    g->control_sample = g_try_new (float, 2 * (size_t) g->latent_channels * plane);
  if (pair == NULL || g->control_embeddings == NULL || g->residuals == NULL
      || (g->in_channels != g->latent_channels && g->control_sample == NULL))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "not enough memory for the ControlNets' inputs at a %" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT " latent", g->width, g->height);
      return FALSE;
    }
  /* the image is the same at every step: embed it once, for both items of a guidance pair */
  for (int j = 0; j < n; j++)
    {
      for (int b = 0; b < 2; b++)
        memcpy (pair + (size_t) b * per_image, controls[j].image, per_image * sizeof (float));
      if (gesso_controlnet_embedding_floats (controls[j].net, 2, g->height, g->width)
            != per_embedding
          || !gesso_controlnet_embed (controls[j].net, pair, 2, g->height, g->width,
                                      g->control_embeddings + (size_t) j * per_embedding, NULL,
                                      error))
        {
          if (error == NULL || *error == NULL)
            g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                         _("the ControlNets used together have encoders of different widths"));
          return FALSE;
        }
    }
  g->controls = controls;
  g->n_controls = n;
  g->control_start = start;
  g->control_end = end;
  g->control_on = TRUE;
  return TRUE;
}

void
gesso_guider_set_progress (GessoGuider *g, double from, double to)
{
  g->control_on = !(from < g->control_start || to > g->control_end);
}

/* RESIDUALS = the sum of every ControlNet's for the batch the UNet is about to run. */
static gboolean
control_residuals (GessoGuider *g, const float *timesteps, const float *context, int64_t batch,
                   GError **error)
{
  const size_t plane = (size_t) (g->height * g->width);
  const size_t n_sample = (size_t) g->latent_channels * plane;
  const float *sample = g->input;

  if (g->control_sample != NULL)
    {
      for (int64_t b = 0; b < batch; b++)
        memcpy (g->control_sample + b * n_sample,
                g->input + b * (size_t) g->in_channels * plane, n_sample * sizeof (float));
      sample = g->control_sample;
    }
  for (int j = 0; j < g->n_controls; j++)
    {
      const GessoGuiderControl *c = &g->controls[j];
      const size_t per_embedding = gesso_controlnet_embedding_floats (c->net, 2, g->height,
                                                                      g->width);

      /* a batch of 1 reads the first item's half of the pair's embedding */
      if (!gesso_controlnet_forward_embedded (c->net, sample, timesteps, context,
                                              g->control_embeddings
                                                + (size_t) j * per_embedding,
                                              c->scale, batch, g->height, g->width, g->tokens,
                                              j > 0, g->residuals, NULL, error))
        return FALSE;
    }
  return TRUE;
}

float *
gesso_guider_unconditional (GessoGuider *g)
{
  return g->context;
}

float *
gesso_guider_conditional (GessoGuider *g)
{
  return g->context + g->tokens * g->hidden;
}

void
gesso_guider_set_scale (GessoGuider *g, float guidance, float rescale)
{
  g->guidance = guidance;
  g->rescale = rescale;
}

void
gesso_guider_set_conditioning (GessoGuider *g, const float *conditioning)
{
  g->conditioning = conditioning;
}

/* Unbiased standard deviation, in double. */
static double
std_dev (const float *x, size_t n)
{
  double mean = 0, ss = 0;

  for (size_t i = 0; i < n; i++)
    mean += x[i];
  mean /= (double) n;
  for (size_t i = 0; i < n; i++)
    ss += ((double) x[i] - mean) * ((double) x[i] - mean);
  return n > 1 ? sqrt (ss / (double) (n - 1)) : 0.0;
}

float *
gesso_guider_unconditional_pooled (GessoGuider *g)
{
  return g->pooled;
}

float *
gesso_guider_conditional_pooled (GessoGuider *g)
{
  return g->pooled + g->pooled_dim;
}

void
gesso_guider_set_time_ids (GessoGuider *g, const float time_ids[GESSO_UNET_TIME_IDS])
{
  for (int b = 0; b < 2; b++)
    memcpy (g->time_ids + b * GESSO_UNET_TIME_IDS, time_ids,
            GESSO_UNET_TIME_IDS * sizeof (float));
}

gboolean
gesso_guider_predict (GessoGuider *g, const float *sample, double t, float *out, GError **error)
{
  size_t plane = (size_t) (g->height * g->width);
  size_t n_sample = (size_t) g->latent_channels * plane;
  size_t n_input = (size_t) g->in_channels * plane;
  size_t n_cond = n_input - n_sample;
  /* as diffusers' do_classifier_free_guidance: a scale of 1 or less (SDXL-Turbo runs at 0)
   * is the prompt alone, not a mix leaning towards the negative prompt */
  gboolean pair = g->guidance > 1.0f;
  int64_t batch = pair ? 2 : 1;
  /* the UNet reads float32 timesteps, as diffusers casts them */
  float timesteps[2] = { (float) t, (float) t };
  const float *context = pair ? g->context : gesso_guider_conditional (g);
  const GessoUnetAdded added = {
    .text_embeds = pair ? g->pooled : gesso_guider_conditional_pooled (g),
    .time_ids = g->time_ids,
  };

  if (n_cond > 0 && g->conditioning == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("this UNet reads %d input channels and needs the inpainting mask and "
                   "masked image"), g->in_channels);
      return FALSE;
    }
  for (int64_t b = 0; b < batch; b++)
    {
      memcpy (g->input + b * n_input, sample, n_sample * sizeof (float));
      if (n_cond > 0)
        memcpy (g->input + b * n_input + n_sample, g->conditioning, n_cond * sizeof (float));
    }
  /* between evaluations: a core another program took since the last one is not waited on */
  gesso_ops_fit_threads_to_load ();
  if (g->n_controls > 0 && g->control_on)
    {
      if (!control_residuals (g, timesteps, context, batch, error)
          || !gesso_unet_forward_full (g->unet, g->input, timesteps, context, &added, batch,
                                       g->height, g->width, g->tokens, g->residuals, g->output,
                                       g->arena, error))
        return FALSE;
    }
  else if (!gesso_unet_forward_full (g->unet, g->input, timesteps, context, &added, batch,
                                     g->height, g->width, g->tokens, NULL, g->output, g->arena,
                                     error))
    return FALSE;
  if (!pair)
    {
      memcpy (out, g->output, n_sample * sizeof (float));
      return TRUE;
    }

  {
    const float *u = g->output, *c = g->output + n_sample;
    const float w = g->guidance;

    /* in float32, as the reference computes it */
    for (size_t i = 0; i < n_sample; i++)
      {
        float d = c[i] - u[i];
        out[i] = u[i] + w * d;
      }
    if (g->rescale > 0)
      {
        double s_cond = std_dev (c, n_sample), s_cfg = std_dev (out, n_sample);
        double ratio = s_cfg > 0 ? s_cond / s_cfg : 1.0;
        double phi = g->rescale;

        for (size_t i = 0; i < n_sample; i++)
          out[i] = (float) (phi * (out[i] * ratio) + (1 - phi) * out[i]);
      }
  }
  return TRUE;
}
