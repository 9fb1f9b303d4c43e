/* ControlNet: the UNet's encoder (core/model/unet.c builds it from the ControlNet's own
 * weights) plus the conditioning embedding and the zero convolutions, which live here.
 *
 * Memory: one arena, as the UNet's: the hint (kept until the down path has added it), the
 * skips, the middle block's buffers, then one residual at a time through its zero conv.
 */
#include "model/controlnet.h"

#include <math.h>
#include <string.h>

#include "io/io-private.h"
#include "io/model_files.h"
#include "model/unet_private.h"
#include "model/weights.h"

/* conv_in, then pairs (conv, conv stride 2); published ControlNets have 3 pairs */
#define MAX_HINT_BLOCKS 16

struct GessoControlNet
{
  GessoModelFiles *files;
  GessoWeights *weights;
  GessoUnet *encoder;
  char *path;

  int image_channels;
  int n_hint_blocks;
  int64_t hint_in_channels;                     /* conv_in's output */
  int64_t hint_block_channels[MAX_HINT_BLOCKS]; /* each block's output */
  UnetLayer hint_in, hint_blocks[MAX_HINT_BLOCKS], hint_out;

  int n_zero;
  UnetLayer zero[UNET_MAX_SKIPS];
  int64_t zero_channels[UNET_MAX_SKIPS];
  UnetLayer zero_mid;

  GessoArena *own_arena;
};

void
gesso_controlnet_free (GessoControlNet *cn)
{
  if (cn == NULL)
    return;
  gesso_unet_free (cn->encoder);
  gesso_weights_free (cn->weights);
  gesso_model_files_free (cn->files);
  gesso_arena_free (cn->own_arena);
  g_free (cn->path);
  g_free (cn);
}

int
gesso_controlnet_get_image_factor (const GessoControlNet *cn)
{
  g_return_val_if_fail (cn != NULL, 0);
  return 1 << (cn->n_hint_blocks / 2);
}

int
gesso_controlnet_get_image_channels (const GessoControlNet *cn)
{
  g_return_val_if_fail (cn != NULL, 0);
  return cn->image_channels;
}

/* --- Loading ------------------------------------------------------------------------------ */

static gboolean
shape_of (GessoControlNet *cn, const char *name, int ndim, int64_t *shape)
{
  int got;
  int64_t s[8];

  if (!gesso_weights_shape (cn->weights, GESSO_COMPONENT_UNET, name, &got, s) || got != ndim)
    return FALSE;
  memcpy (shape, s, (size_t) ndim * sizeof (int64_t));
  return TRUE;
}

static gboolean
load_conv (GessoControlNet *cn, const char *prefix, int64_t out, int64_t in, int64_t k,
           UnetLayer *layer, GError **error)
{
  g_autofree char *w = g_strdup_printf ("%s.weight", prefix);
  g_autofree char *b = g_strdup_printf ("%s.bias", prefix);

  if (!gesso_weights_get_stored (cn->weights, GESSO_COMPONENT_UNET, w, 4,
                                 (const int64_t[]) { out, in, k, k }, &layer->weight, error))
    return FALSE;
  layer->bias = gesso_weights_get (cn->weights, GESSO_COMPONENT_UNET, b, 1,
                                   (const int64_t[]) { out }, error);
  return layer->bias != NULL;
}

/* A ControlNetModel config holds a UNet2DConditionModel's encoder settings under the same
 * keys, plus its own (conditioning channels and widths), which the UNet reader ignores. It has
 * no decoder, so up_block_types is made the mirror of down_block_types for the reader, which
 * checks the two against each other; the encoder never uses it. */
static gboolean
encoder_config_from_json (JsonObject *json, GessoUnetConfig *config, GError **error)
{
  g_autoptr (JsonObject) unet = json_object_new ();
  g_autoptr (GList) members = json_object_get_members (json);
  JsonNode *down = json_object_get_member (json, "down_block_types");

  for (GList *l = members; l != NULL; l = l->next)
    if (strcmp (l->data, "_class_name") != 0)
      json_object_set_member (unet, l->data,
                              json_node_copy (json_object_get_member (json, l->data)));
  if (down != NULL && JSON_NODE_HOLDS_ARRAY (down))
    {
      JsonArray *types = json_node_get_array (down);
      JsonArray *up = json_array_new ();

      for (guint i = json_array_get_length (types); i-- > 0;)
        {
          const char *t = json_array_get_string_element (types, i);
          json_array_add_string_element (up, t != NULL && strcmp (t, "CrossAttnDownBlock2D") == 0
                                               ? "CrossAttnUpBlock2D" : "UpBlock2D");
        }
      json_object_set_array_member (unet, "up_block_types", up);
    }
  return gesso_unet_config_from_json (unet, "the ControlNet's config.json", config, error);
}

/* SD 1.x stores the transformers' proj_in as a 1x1 convolution, SD 2.x as a Linear: where the
 * ControlNet's storage differs from BASE's, it was made for the other family, however well
 * the matrices' shapes would fit. */
static gboolean
check_projection_style (GessoControlNet *cn, const GessoUnetConfig *base, GError **error)
{
  for (int l = 0; l < base->n_levels; l++)
    {
      g_autofree char *name = g_strdup_printf ("down_blocks.%d.attentions.0.proj_in.weight", l);
      int ndim;
      int64_t shape[8];

      if (!base->down_cross_attention[l]
          || !gesso_weights_shape (cn->weights, GESSO_COMPONENT_UNET, name, &ndim, shape))
        continue;
      if ((ndim == 2) != (base->use_linear_projection != FALSE))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       "its attention projections are stored as %s but the model's are %s: "
                       "it was made for another model family",
                       ndim == 2 ? "Linear layers (SD 2.x style)"
                                 : "1x1 convolutions (SD 1.x style)",
                       base->use_linear_projection ? "Linear layers (SD 2.x)"
                                                   : "1x1 convolutions (SD 1.x)");
          return FALSE;
        }
      return TRUE;
    }
  return TRUE;
}

/* The structure the ControlNet's encoder is built with: its own config.json checked against
 * BASE, whose residuals it must match, or BASE's own structure for a file without one. */
static gboolean
encoder_config (GessoControlNet *cn, const GessoUnet *base, GessoUnetConfig *out,
                GError **error)
{
  const GessoUnetConfig *b = gesso_unet_get_config (base);
  JsonObject *json = gesso_model_files_config (cn->files, "controlnet");
  int64_t conv_in[4];
  GessoUnetConfig c;

  *out = *b;
  if (!shape_of (cn, "conv_in.weight", 4, conv_in))
    {
      gesso_weights_set_missing_error (cn->weights, GESSO_COMPONENT_UNET, "conv_in.weight",
                                       error);
      return FALSE;
    }
  out->in_channels = (int) conv_in[1];
  if (!check_projection_style (cn, b, error))
    return FALSE;
  if (json == NULL)
    return TRUE;

  if (!encoder_config_from_json (json, &c, error))
    return FALSE;
  if (c.n_levels != b->n_levels
      || memcmp (c.block_out_channels, b->block_out_channels, sizeof c.block_out_channels) != 0
      || c.layers_per_block != b->layers_per_block
      || c.cross_attention_dim != b->cross_attention_dim)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "its encoder (%d levels of %d..%d channels, %d resnets each, text width %d) "
                   "differs from the model's UNet (%d levels of %d..%d, %d resnets, text width "
                   "%d): it was made for another model family", c.n_levels,
                   c.block_out_channels[0], c.block_out_channels[c.n_levels - 1],
                   c.layers_per_block, c.cross_attention_dim, b->n_levels,
                   b->block_out_channels[0], b->block_out_channels[b->n_levels - 1],
                   b->layers_per_block, b->cross_attention_dim);
      return FALSE;
    }
  /* the parts only the decoder has are the base UNet's; the encoder's are the ControlNet's */
  c.out_channels = b->out_channels;
  c.conv_out_kernel = b->conv_out_kernel;
  memcpy (c.up_cross_attention, b->up_cross_attention, sizeof c.up_cross_attention);
  memcpy (c.up_transformer_depth, b->up_transformer_depth, sizeof c.up_transformer_depth);
  c.in_channels = (int) conv_in[1];
  *out = c;
  return TRUE;
}

/* The conditioning embedding's convs, counted from the weights: conv_in, blocks.0.., conv_out
 * (whose output is the UNet's first width). */
static gboolean
load_hint (GessoControlNet *cn, const GessoUnetConfig *config, GError **error)
{
  int64_t shape[4], in;

  if (!shape_of (cn, "controlnet_cond_embedding.conv_in.weight", 4, shape))
    {
      gesso_weights_set_missing_error (cn->weights, GESSO_COMPONENT_UNET,
                                       "controlnet_cond_embedding.conv_in.weight", error);
      return FALSE;
    }
  cn->image_channels = (int) shape[1];
  cn->hint_in_channels = shape[0];
  if (!load_conv (cn, "controlnet_cond_embedding.conv_in", shape[0], shape[1], 3, &cn->hint_in,
                  error))
    return FALSE;
  in = shape[0];
  for (int i = 0; i < MAX_HINT_BLOCKS; i++)
    {
      g_autofree char *prefix = g_strdup_printf ("controlnet_cond_embedding.blocks.%d", i);
      g_autofree char *weight = g_strconcat (prefix, ".weight", NULL);

      if (!shape_of (cn, weight, 4, shape))
        break;
      if (!load_conv (cn, prefix, shape[0], in, 3, &cn->hint_blocks[i], error))
        return FALSE;
      cn->hint_block_channels[i] = in = shape[0];
      cn->n_hint_blocks = i + 1;
    }
  if (cn->n_hint_blocks % 2 != 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the ControlNet's conditioning embedding has %d blocks; it must have pairs "
                   "of (conv, stride-2 conv)", cn->n_hint_blocks);
      return FALSE;
    }
  return load_conv (cn, "controlnet_cond_embedding.conv_out", config->block_out_channels[0],
                    in, 3, &cn->hint_out, error);
}

/* One 1x1 zero convolution per skip connection of the encoder, in its order, and one for the
 * middle block. */
static gboolean
load_zero_convs (GessoControlNet *cn, const GessoUnetConfig *c, GError **error)
{
  const int64_t deepest = c->block_out_channels[c->n_levels - 1];

  cn->n_zero = 0;
  cn->zero_channels[cn->n_zero++] = c->block_out_channels[0];
  for (int l = 0; l < c->n_levels; l++)
    {
      for (int j = 0; j < c->layers_per_block; j++)
        cn->zero_channels[cn->n_zero++] = c->block_out_channels[l];
      if (l < c->n_levels - 1)
        cn->zero_channels[cn->n_zero++] = c->block_out_channels[l];
    }
  for (int k = 0; k < cn->n_zero; k++)
    {
      g_autofree char *prefix = g_strdup_printf ("controlnet_down_blocks.%d", k);
      if (!load_conv (cn, prefix, cn->zero_channels[k], cn->zero_channels[k], 1, &cn->zero[k],
                      error))
        return FALSE;
    }
  return load_conv (cn, "controlnet_mid_block", deepest, deepest, 1, &cn->zero_mid, error);
}

GessoControlNet *
gesso_controlnet_open (const char *path, const GessoUnet *base, GError **error)
{
  g_autoptr (GessoControlNet) cn = g_new0 (GessoControlNet, 1);
  g_autofree char *shown = NULL;
  GessoUnetConfig config;

  g_return_val_if_fail (path != NULL && base != NULL, NULL);
  cn->path = g_strdup (path);
  cn->files = gesso_model_files_open_controlnet (path, error);
  if (cn->files == NULL)
    return NULL;
  cn->weights = gesso_weights_new (cn->files, error);
  if (cn->weights == NULL)
    return NULL;
  shown = gesso_io_display (path);
  if (!encoder_config (cn, base, &config, error)
      || (cn->encoder = unet_build_encoder (cn->weights, &config, error)) == NULL
      || !load_hint (cn, &config, error) || !load_zero_convs (cn, &config, error))
    {
      g_prefix_error (error, "ControlNet '%s' does not fit this model: ", shown);
      return NULL;
    }
  return g_steal_pointer (&cn);
}

/* --- Forward ------------------------------------------------------------------------------ */

/* The conditioning embedding of IMAGE [B, channels, H, W] into HINT [B, c0, H/f, W/f]. */
static gboolean
run_hint (GessoControlNet *cn, UnetExec *x, const float *image, int64_t batch, int64_t height,
          int64_t width, float *hint, GError **error)
{
  const int64_t c0 = gesso_unet_get_config (cn->encoder)->block_out_channels[0];
  int64_t h = height, w = width, ch = cn->hint_in_channels, largest = ch;
  size_t mark = unet_exec_mark (x);
  float *a, *b;

  for (int i = 0; i < cn->n_hint_blocks; i++)
    largest = MAX (largest, cn->hint_block_channels[i]);
  a = unet_exec_alloc (x, (size_t) (batch * largest * h * w), error);
  b = a ? unet_exec_alloc (x, (size_t) (batch * largest * h * w), error) : NULL;
  if (b == NULL
      || !unet_conv (x, &cn->hint_in, image, a, batch, cn->image_channels, h, w, ch, 3, 1,
                     error))
    return FALSE;
  if (unet_exec_computing (x))
    gesso_silu (a, (size_t) (batch * ch * h * w));
  for (int i = 0; i < cn->n_hint_blocks; i++)
    {
      const int64_t stride = i % 2 == 1 ? 2 : 1, out_ch = cn->hint_block_channels[i];
      float *t;

      if (!unet_conv (x, &cn->hint_blocks[i], a, b, batch, ch, h, w, out_ch, 3, stride, error))
        return FALSE;
      h /= stride;
      w /= stride;
      ch = out_ch;
      if (unet_exec_computing (x))
        gesso_silu (b, (size_t) (batch * ch * h * w));
      t = a;
      a = b;
      b = t;
    }
  if (!unet_conv (x, &cn->hint_out, a, hint, batch, ch, h, w, c0, 3, 1, error))
    return FALSE;
  unet_exec_reset (x, mark);
  return TRUE;
}

/* RESIDUALS (+)= SCALE * zero_conv(SKIP) for one [B, C, h, w] feature map. */
static gboolean
run_zero_conv (UnetExec *x, const UnetLayer *conv, const float *skip, int64_t batch,
               int64_t channels, int64_t h, int64_t w, float scale, gboolean accumulate,
               float *residual, GError **error)
{
  const size_t n = (size_t) (batch * channels * h * w);
  size_t mark = unet_exec_mark (x);
  float *tmp = unet_exec_alloc (x, n, error);

  if (tmp == NULL || !unet_conv (x, conv, skip, tmp, batch, channels, h, w, channels, 1, 1,
                                 error))
    return FALSE;
  if (unet_exec_computing (x))
    for (size_t i = 0; i < n; i++)
      residual[i] = accumulate ? residual[i] + tmp[i] * scale : tmp[i] * scale;
  unet_exec_reset (x, mark);
  return TRUE;
}

/* One call's inputs: an evaluation (SAMPLE set), or only the control image's embedding
 * (SAMPLE NULL: IMAGE -> HINT_OUT). An evaluation takes IMAGE, or HINT when the embedding was
 * made before. */
typedef struct
{
  const float *sample, *timesteps, *context;
  const float *image;
  const float *hint;
  float *hint_out;
  float scale;
  int64_t batch, height, width, context_len;
  gboolean accumulate;
  float *residuals;
} Job;

static gboolean
run (GessoControlNet *cn, UnetExec *x, const Job *j, GError **error)
{
  const GessoUnetConfig *c = gesso_unet_get_config (cn->encoder);
  const int f = gesso_controlnet_get_image_factor (cn);
  const int64_t deepest = c->block_out_channels[c->n_levels - 1], batch = j->batch;
  UnetSkip skips[UNET_MAX_SKIPS];
  int n_skips = 0;
  int64_t h = j->height, w = j->width;
  float *temb, *hint = (float *) j->hint, *mid_tmp, *mid, *residuals = j->residuals;

  if (j->sample == NULL)
    return run_hint (cn, x, j->image, batch, h * f, w * f, j->hint_out, error);
  temb = unet_time_embedding (cn->encoder, x, j->timesteps, NULL, batch, error);
  if (temb == NULL)
    return FALSE;
  if (hint == NULL)
    {
      hint = unet_exec_alloc (x, (size_t) (batch * c->block_out_channels[0] * h * w), error);
      if (hint == NULL || !run_hint (cn, x, j->image, batch, h * f, w * f, hint, error))
        return FALSE;
    }
  if (!unet_run_down (cn->encoder, x, j->sample, hint, temb, j->context, batch, &h, &w,
                      j->context_len, skips, &n_skips, error))
    return FALSE;
  if (n_skips != cn->n_zero)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   "internal error: the ControlNet made %d skips for %d zero convolutions",
                   n_skips, cn->n_zero);
      return FALSE;
    }
  mid_tmp = unet_exec_alloc (x, (size_t) (batch * deepest * h * w), error);
  mid = mid_tmp ? unet_exec_alloc (x, (size_t) (batch * deepest * h * w), error) : NULL;
  if (mid == NULL
      || !unet_run_mid (cn->encoder, x, skips[n_skips - 1].data, mid_tmp, mid, batch, h, w,
                        temb, j->context, j->context_len, error))
    return FALSE;

  for (int k = 0; k < n_skips; k++)
    {
      const UnetSkip *s = &skips[k];
      if (!run_zero_conv (x, &cn->zero[k], s->data, batch, s->channels, s->height, s->width,
                          j->scale, j->accumulate, residuals, error))
        return FALSE;
      if (unet_exec_computing (x))
        residuals += batch * s->channels * s->height * s->width;
    }
  return run_zero_conv (x, &cn->zero_mid, mid, batch, deepest, h, w, j->scale, j->accumulate,
                        residuals, error);
}

/* Plans JOB's memory, then runs it in SCRATCH (or the ControlNet's own arena). */
static gboolean
execute (GessoControlNet *cn, const Job *job, GessoArena *scratch, GError **error)
{
  UnetExec plan = { .arena = NULL, .used = 0, .peak = 0 }, x = { 0 };
  size_t mark;
  gboolean ok;

  if (!isfinite (job->scale))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "ControlNet scale is %g; it must be a finite number", (double) job->scale);
      return FALSE;
    }
  if (!gesso_unet_check_size (cn->encoder, job->batch, job->height, job->width,
                              job->sample != NULL ? job->context_len : 1, error))
    return FALSE;
  /* planning touches no data and cannot fail */
  run (cn, &plan, job, NULL);
  if (scratch == NULL)
    {
      if (cn->own_arena == NULL || gesso_arena_capacity (cn->own_arena) < plan.peak)
        {
          gesso_arena_free (cn->own_arena);
          cn->own_arena = gesso_arena_new (plan.peak, error);
          if (cn->own_arena == NULL)
            return FALSE;
        }
      scratch = cn->own_arena;
    }
  if (gesso_arena_capacity (scratch) - gesso_arena_used (scratch) < plan.peak)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "the ControlNet needs %.1f MiB of working memory for this size but its "
                   "arena has %.1f MiB free", (double) plan.peak / 1048576.0,
                   (double) (gesso_arena_capacity (scratch) - gesso_arena_used (scratch))
                     / 1048576.0);
      return FALSE;
    }
  x.arena = scratch;
  mark = gesso_arena_mark (scratch);
  ok = run (cn, &x, job, error);
  gesso_arena_reset (scratch, mark);
  return ok;
}

gboolean
gesso_controlnet_forward (GessoControlNet *cn, const float *sample, const float *timesteps,
                          const float *context, const float *image, float scale,
                          int64_t batch, int64_t height, int64_t width, int64_t context_len,
                          gboolean accumulate, float *residuals, GessoArena *scratch,
                          GError **error)
{
  Job job = { .sample = sample, .timesteps = timesteps, .context = context, .image = image,
              .scale = scale, .batch = batch, .height = height, .width = width,
              .context_len = context_len, .accumulate = accumulate, .residuals = residuals };

  g_return_val_if_fail (cn != NULL && sample != NULL && timesteps != NULL, FALSE);
  g_return_val_if_fail (context != NULL && image != NULL && residuals != NULL, FALSE);
  return execute (cn, &job, scratch, error);
}

size_t
gesso_controlnet_embedding_floats (const GessoControlNet *cn, int64_t batch, int64_t height,
                                   int64_t width)
{
  g_return_val_if_fail (cn != NULL, 0);
  return (size_t) (batch * gesso_unet_get_config (cn->encoder)->block_out_channels[0] * height
                   * width);
}

gboolean
gesso_controlnet_embed (GessoControlNet *cn, const float *image, int64_t batch, int64_t height,
                        int64_t width, float *embedding, GessoArena *scratch, GError **error)
{
  Job job = { .image = image, .hint_out = embedding, .scale = 1.0f, .batch = batch,
              .height = height, .width = width };

  g_return_val_if_fail (cn != NULL && image != NULL && embedding != NULL, FALSE);
  return execute (cn, &job, scratch, error);
}

gboolean
gesso_controlnet_forward_embedded (GessoControlNet *cn, const float *sample,
                                   const float *timesteps, const float *context,
                                   const float *embedding, float scale, int64_t batch,
                                   int64_t height, int64_t width, int64_t context_len,
                                   gboolean accumulate, float *residuals, GessoArena *scratch,
                                   GError **error)
{
  Job job = { .sample = sample, .timesteps = timesteps, .context = context, .hint = embedding,
              .scale = scale, .batch = batch, .height = height, .width = width,
              .context_len = context_len, .accumulate = accumulate, .residuals = residuals };

  g_return_val_if_fail (cn != NULL && sample != NULL && timesteps != NULL, FALSE);
  g_return_val_if_fail (context != NULL && embedding != NULL && residuals != NULL, FALSE);
  return execute (cn, &job, scratch, error);
}

/* --- Describing -------------------------------------------------------------------------- */

static const char *
family_of_text_width (int width)
{
  switch (width)
    {
    case 768:
      return "Stable Diffusion 1.x";
    case 1024:
      return "Stable Diffusion 2.x";
    case 2048:
      return "Stable Diffusion XL";
    default:
      return NULL;
    }
}

gboolean
gesso_controlnet_probe (const char *path, GessoControlNetInfo *info, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  int64_t shape[8];
  int ndim;

  g_return_val_if_fail (path != NULL && info != NULL, FALSE);
  memset (info, 0, sizeof *info);
  files = gesso_model_files_open_controlnet (path, error);
  weights = files ? gesso_weights_new (files, error) : NULL;
  if (weights == NULL)
    return FALSE;
  if (!gesso_weights_shape (weights, GESSO_COMPONENT_UNET,
                            "controlnet_cond_embedding.conv_in.weight", &ndim, shape)
      || ndim != 4)
    {
      gesso_weights_set_missing_error (weights, GESSO_COMPONENT_UNET,
                                       "controlnet_cond_embedding.conv_in.weight", error);
      return FALSE;
    }
  info->image_channels = (int) shape[1];
  info->image_factor = 1;
  for (int i = 1; i < MAX_HINT_BLOCKS; i += 2)
    {
      g_autofree char *name = g_strdup_printf ("controlnet_cond_embedding.blocks.%d.weight", i);
      if (!gesso_weights_has (weights, GESSO_COMPONENT_UNET, name))
        break;
      info->image_factor *= 2;
    }
  for (int l = 0; l < GESSO_UNET_MAX_LEVELS; l++)
    {
      g_autofree char *resnet = g_strdup_printf ("down_blocks.%d.resnets.0.conv1.weight", l);
      g_autofree char *to_k = g_strdup_printf ("down_blocks.%d.attentions.0.transformer_blocks."
                                               "0.attn2.to_k.weight", l);

      if (!gesso_weights_has (weights, GESSO_COMPONENT_UNET, resnet))
        break;
      info->levels = l + 1;
      if (info->text_width == 0
          && gesso_weights_shape (weights, GESSO_COMPONENT_UNET, to_k, &ndim, shape) && ndim == 2)
        info->text_width = (int) shape[1];
    }
  info->family = family_of_text_width (info->text_width);
  for (guint i = 0; i < gesso_model_files_count (files); i++)
    {
      const GessoModelTensor *t = gesso_model_files_tensor (files, i);
      if (t->component == GESSO_COMPONENT_UNET)
        info->parameters += (guint64) t->entry->numel;
    }
  info->has_config = gesso_model_files_config (files, "controlnet") != NULL;
  return TRUE;
}
