/* Classifier-free guidance over one batch-2 UNet call; see guidance.h. */
#include "edit/guidance.h"

#include <math.h>
#include <string.h>

#include "gesso.h"

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
  g_free (g->input);
  g_free (g->output);
  memset (g, 0, sizeof *g);
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

gboolean
gesso_guider_predict (GessoGuider *g, const float *sample, double t, float *out, GError **error)
{
  size_t plane = (size_t) (g->height * g->width);
  size_t n_sample = (size_t) g->latent_channels * plane;
  size_t n_input = (size_t) g->in_channels * plane;
  size_t n_cond = n_input - n_sample;
  gboolean pair = g->guidance != 1.0f;
  int64_t batch = pair ? 2 : 1;
  /* the UNet reads float32 timesteps, as diffusers casts them */
  float timesteps[2] = { (float) t, (float) t };
  const float *context = pair ? g->context : gesso_guider_conditional (g);

  if (n_cond > 0 && g->conditioning == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "this UNet reads %d input channels and needs the inpainting mask and "
                   "masked image", g->in_channels);
      return FALSE;
    }
  for (int64_t b = 0; b < batch; b++)
    {
      memcpy (g->input + b * n_input, sample, n_sample * sizeof (float));
      if (n_cond > 0)
        memcpy (g->input + b * n_input + n_sample, g->conditioning, n_cond * sizeof (float));
    }
  if (!gesso_unet_forward (g->unet, g->input, timesteps, context, batch, g->height, g->width,
                           g->tokens, g->output, g->arena, error))
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
