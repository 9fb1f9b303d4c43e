/* UNet2DConditionModel: loading by diffusers names and the forward pass.
 *
 *   temb = linear_2(SiLU(linear_1(sinusoids(t))))
 *          (SDXL: + add_linear_2(SiLU(add_linear_1([pooled text | sinusoids(each time id)]))))
 *   down:  conv_in; per level: layers_per_block x (resnet [+ transformer]), downsample (not on
 *          the last level); every output is kept as a skip connection
 *   mid:   resnet, transformer, resnet
 *   up:    per level, deepest first: layers_per_block + 1 x (concat the latest skip on the
 *          channels, resnet [+ transformer]), nearest 2x upsample + conv (not on level 0)
 *   out:   GroupNorm, SiLU, conv_out
 *
 * Memory: one arena holds everything; its layout is the skip connections (live from the down
 * path until the up path consumes them), two ping-pong activation buffers and a concatenation
 * buffer, then per-layer temporaries above a mark, released when the layer returns.
 */
#include "model/unet_private.h"

#include <math.h>
#include <string.h>

#define MAX_SKIPS UNET_MAX_SKIPS

struct GessoUnet
{
  GessoUnetConfig config;
  gboolean encoder_only;        /* a ControlNet's copy: time embedding, down path, middle */
  UnetGlobals globals;
  GessoWeights *weights;

  UnetLayer conv_in, conv_out, time_linear_1, time_linear_2;
  UnetLayer add_linear_1, add_linear_2;  /* SDXL's added embedding; NULL weights when none */
  UnetNorm norm_out;
  /* per level, in down order; the up arrays belong to up_blocks.(n_levels - 1 - level) */
  UnetResnet *down_resnets[GESSO_UNET_MAX_LEVELS];
  UnetTransformer *down_attentions[GESSO_UNET_MAX_LEVELS];   /* NULL: no cross-attention */
  UnetLayer downsample[GESSO_UNET_MAX_LEVELS];
  UnetResnet *up_resnets[GESSO_UNET_MAX_LEVELS];
  UnetTransformer *up_attentions[GESSO_UNET_MAX_LEVELS];
  UnetLayer upsample[GESSO_UNET_MAX_LEVELS];
  UnetResnet mid_resnets[2];
  UnetTransformer mid_attention;

  GessoArena *own_arena;        /* for forwards given no arena; grown, never shrunk */
};

/* --- Execution context -------------------------------------------------------------------- */

float *
unet_exec_alloc (UnetExec *x, size_t n, GError **error)
{
  static float plan_dummy[GESSO_ARENA_ALIGN / sizeof (float)];
  float *p;

  if (!unet_exec_computing (x))
    {
      x->used += gesso_arena_block_size (n * sizeof (float));
      x->peak = MAX (x->peak, x->used);
      return plan_dummy;
    }
  p = gesso_arena_alloc_floats (x->arena, n);
  if (p == NULL)
    /* the plan and the forward run the same allocations, so this is a planning bug */
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                 "UNet working memory exhausted (%zu of %zu bytes used, %zu more wanted)",
                 gesso_arena_used (x->arena), gesso_arena_capacity (x->arena),
                 n * sizeof (float));
  return p;
}

size_t
unet_exec_mark (const UnetExec *x)
{
  return unet_exec_computing (x) ? gesso_arena_mark (x->arena) : x->used;
}

void
unet_exec_reset (UnetExec *x, size_t mark)
{
  if (unet_exec_computing (x))
    gesso_arena_reset (x->arena, mark);
  else
    x->used = mark;
}

void
unet_exec_scratch (UnetExec *x, size_t bytes)
{
  if (!unet_exec_computing (x))
    x->peak = MAX (x->peak, x->used + gesso_arena_block_size (bytes));
}

gboolean
unet_conv (UnetExec *x, const UnetLayer *layer, const float *in, float *out, int64_t batch,
           int64_t in_channels, int64_t height, int64_t width, int64_t out_channels,
           int64_t kernel, int64_t stride, GError **error)
{
  GessoConv2dShape shape = {
    .batch = batch, .in_channels = in_channels, .in_height = height, .in_width = width,
    .out_channels = out_channels, .kernel_h = kernel, .kernel_w = kernel,
    .stride = stride, .padding = kernel / 2,
  };

  if (!unet_exec_computing (x))
    {
      unet_exec_scratch (x, gesso_conv2d_scratch_bytes (&shape));
      return TRUE;
    }
  return gesso_conv2d_weight (&shape, in, &layer->weight, layer->bias, out, x->arena, error);
}

/* --- Loading ------------------------------------------------------------------------------ */

typedef struct
{
  GessoWeights *weights;        /* NULL: a skeleton for planning memory, no data */
  GError *error;                /* the first failure; later fetches do nothing */
} Loader;

static const float *
fetch (Loader *ld, int ndim, const int64_t *shape, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static const float *
fetch (Loader *ld, int ndim, const int64_t *shape, const char *fmt, ...)
{
  g_autofree char *name = NULL;
  const float *data;
  va_list args;

  if (ld->error != NULL || ld->weights == NULL)
    return NULL;
  va_start (args, fmt);
  name = g_strdup_vprintf (fmt, args);
  va_end (args);
  data = gesso_weights_get (ld->weights, GESSO_COMPONENT_UNET, name, ndim, shape, &ld->error);
  return data;
}

/* A layer's weight matrix, as stored (gesso_weights_get_stored). */
static GessoWeight
fetch_stored (Loader *ld, int ndim, const int64_t *shape, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);

static GessoWeight
fetch_stored (Loader *ld, int ndim, const int64_t *shape, const char *fmt, ...)
{
  g_autofree char *name = NULL;
  GessoWeight weight = gesso_weight_f32 (NULL);
  va_list args;

  if (ld->error != NULL || ld->weights == NULL)
    return weight;
  va_start (args, fmt);
  name = g_strdup_vprintf (fmt, args);
  va_end (args);
  gesso_weights_get_stored (ld->weights, GESSO_COMPONENT_UNET, name, ndim, shape, &weight,
                            &ld->error);
  return weight;
}

#define SHAPE(...) ((const int64_t[]) { __VA_ARGS__ })

/* PREFIX "" names a top-level layer ("conv_norm_out") */
#define SEP(prefix) (*(prefix) ? "." : "")

static void
load_norm (Loader *ld, const char *prefix, const char *name, int64_t channels, UnetNorm *norm)
{
  norm->gamma = fetch (ld, 1, SHAPE (channels), "%s%s%s.weight", prefix, SEP (prefix), name);
  norm->beta = fetch (ld, 1, SHAPE (channels), "%s%s%s.bias", prefix, SEP (prefix), name);
}

static void
load_linear (Loader *ld, const char *prefix, const char *name, int64_t out, int64_t in,
             gboolean bias, UnetLayer *layer)
{
  layer->weight = fetch_stored (ld, 2, SHAPE (out, in), "%s%s%s.weight", prefix, SEP (prefix),
                                name);
  layer->bias = bias ? fetch (ld, 1, SHAPE (out), "%s%s%s.bias", prefix, SEP (prefix), name)
                     : NULL;
}

static void
load_conv (Loader *ld, const char *prefix, const char *name, int64_t out, int64_t in,
           int64_t k, UnetLayer *layer)
{
  layer->weight = fetch_stored (ld, 4, SHAPE (out, in, k, k), "%s%s%s.weight", prefix,
                                SEP (prefix), name);
  layer->bias = fetch (ld, 1, SHAPE (out), "%s%s%s.bias", prefix, SEP (prefix), name);
}

static void
load_resnet (Loader *ld, const GessoUnetConfig *config, const char *prefix, int64_t in,
             int64_t out, UnetResnet *r)
{
  r->in_channels = in;
  r->out_channels = out;
  load_norm (ld, prefix, "norm1", in, &r->norm1);
  load_conv (ld, prefix, "conv1", out, in, 3, &r->conv1);
  load_linear (ld, prefix, "time_emb_proj", out, config->time_embed_dim, TRUE,
               &r->time_emb_proj);
  load_norm (ld, prefix, "norm2", out, &r->norm2);
  load_conv (ld, prefix, "conv2", out, out, 3, &r->conv2);
  if (in != out)
    load_conv (ld, prefix, "conv_shortcut", out, in, 1, &r->conv_shortcut);
}

static void
load_transformer (Loader *ld, const GessoUnetConfig *config, const char *prefix,
                  int64_t channels, int heads, int depth, UnetTransformer *t)
{
  const int64_t c = channels, ctx = config->cross_attention_dim;

  t->channels = c;
  t->heads = heads;
  t->depth = depth;
  t->blocks = g_new0 (UnetTransformerBlock, depth);
  load_norm (ld, prefix, "norm", c, &t->norm);
  /* [C, C] whether stored as Linear (SD2) or as a 1x1 conv (SD1): same matrix */
  load_linear (ld, prefix, "proj_in", c, c, TRUE, &t->proj_in);
  load_linear (ld, prefix, "proj_out", c, c, TRUE, &t->proj_out);
  for (int d = 0; d < depth; d++)
    {
      g_autofree char *p = g_strdup_printf ("%s.transformer_blocks.%d", prefix, d);
      UnetTransformerBlock *blk = &t->blocks[d];

      load_norm (ld, p, "norm1", c, &blk->norm1);
      load_linear (ld, p, "attn1.to_q", c, c, FALSE, &blk->q1);
      load_linear (ld, p, "attn1.to_k", c, c, FALSE, &blk->k1);
      load_linear (ld, p, "attn1.to_v", c, c, FALSE, &blk->v1);
      load_linear (ld, p, "attn1.to_out.0", c, c, TRUE, &blk->out1);
      load_norm (ld, p, "norm2", c, &blk->norm2);
      load_linear (ld, p, "attn2.to_q", c, c, FALSE, &blk->q2);
      load_linear (ld, p, "attn2.to_k", c, ctx, FALSE, &blk->k2);
      load_linear (ld, p, "attn2.to_v", c, ctx, FALSE, &blk->v2);
      load_linear (ld, p, "attn2.to_out.0", c, c, TRUE, &blk->out2);
      load_norm (ld, p, "norm3", c, &blk->norm3);
      /* GEGLU: one Linear to [value | gate], 4C each */
      load_linear (ld, p, "ff.net.0.proj", 8 * c, c, TRUE, &blk->ff_in);
      load_linear (ld, p, "ff.net.2", c, 4 * c, TRUE, &blk->ff_out);
    }
}

static void
load_all (GessoUnet *u, Loader *ld)
{
  const GessoUnetConfig *c = &u->config;
  const int n = c->n_levels, lpb = c->layers_per_block;
  const int64_t c0 = c->block_out_channels[0], deepest = c->block_out_channels[n - 1];

  load_conv (ld, "", "conv_in", c0, c->in_channels, c->conv_in_kernel, &u->conv_in);
  load_linear (ld, "time_embedding", "linear_1", c->time_embed_dim, c->time_proj_dim, TRUE,
               &u->time_linear_1);
  load_linear (ld, "time_embedding", "linear_2", c->time_embed_dim, c->time_embed_dim, TRUE,
               &u->time_linear_2);
  if (c->addition_input_dim > 0)
    {
      load_linear (ld, "add_embedding", "linear_1", c->time_embed_dim, c->addition_input_dim,
                   TRUE, &u->add_linear_1);
      load_linear (ld, "add_embedding", "linear_2", c->time_embed_dim, c->time_embed_dim, TRUE,
                   &u->add_linear_2);
    }

  for (int l = 0; l < n; l++)
    {
      const int64_t ch = c->block_out_channels[l];
      int64_t in = l == 0 ? c0 : c->block_out_channels[l - 1];

      u->down_resnets[l] = g_new0 (UnetResnet, lpb);
      if (c->down_cross_attention[l])
        u->down_attentions[l] = g_new0 (UnetTransformer, lpb);
      for (int j = 0; j < lpb; j++)
        {
          g_autofree char *rp = g_strdup_printf ("down_blocks.%d.resnets.%d", l, j);
          g_autofree char *ap = g_strdup_printf ("down_blocks.%d.attentions.%d", l, j);

          load_resnet (ld, c, rp, in, ch, &u->down_resnets[l][j]);
          if (u->down_attentions[l] != NULL)
            load_transformer (ld, c, ap, ch, c->heads[l], c->transformer_depth[l],
                              &u->down_attentions[l][j]);
          in = ch;
        }
      if (l < n - 1)
        {
          g_autofree char *dp = g_strdup_printf ("down_blocks.%d.downsamplers.0", l);
          load_conv (ld, dp, "conv", ch, ch, 3, &u->downsample[l]);
        }
    }

  load_resnet (ld, c, "mid_block.resnets.0", deepest, deepest, &u->mid_resnets[0]);
  load_transformer (ld, c, "mid_block.attentions.0", deepest, c->mid_heads,
                    c->mid_transformer_depth, &u->mid_attention);
  load_resnet (ld, c, "mid_block.resnets.1", deepest, deepest, &u->mid_resnets[1]);
  if (u->encoder_only)
    return;

  for (int l = n - 1; l >= 0; l--)
    {
      const int up = n - 1 - l;
      const int64_t ch = c->block_out_channels[l];
      /* what arrives from the block below (or the middle) and what the skips carry: the
       * level's own resnets, then the skip made one level up (downsampler or conv_in) */
      int64_t prev = l == n - 1 ? deepest : c->block_out_channels[l + 1];

      u->up_resnets[l] = g_new0 (UnetResnet, lpb + 1);
      if (c->up_cross_attention[l])
        u->up_attentions[l] = g_new0 (UnetTransformer, lpb + 1);
      for (int j = 0; j <= lpb; j++)
        {
          g_autofree char *rp = g_strdup_printf ("up_blocks.%d.resnets.%d", up, j);
          g_autofree char *ap = g_strdup_printf ("up_blocks.%d.attentions.%d", up, j);
          int64_t skip = j == lpb ? c->block_out_channels[l > 0 ? l - 1 : 0] : ch;

          load_resnet (ld, c, rp, prev + skip, ch, &u->up_resnets[l][j]);
          if (u->up_attentions[l] != NULL)
            load_transformer (ld, c, ap, ch, c->heads[l], c->up_transformer_depth[l],
                              &u->up_attentions[l][j]);
          prev = ch;
        }
      if (l > 0)
        {
          g_autofree char *pp = g_strdup_printf ("up_blocks.%d.upsamplers.0", up);
          load_conv (ld, pp, "conv", ch, ch, 3, &u->upsample[l]);
        }
    }

  load_norm (ld, "", "conv_norm_out", c0, &u->norm_out);
  load_conv (ld, "", "conv_out", c->out_channels, c0, c->conv_out_kernel, &u->conv_out);
}

static void
free_transformers (UnetTransformer *t, int n)
{
  if (t == NULL)
    return;
  for (int i = 0; i < n; i++)
    g_free (t[i].blocks);
  g_free (t);
}

void
gesso_unet_free (GessoUnet *unet)
{
  if (unet == NULL)
    return;
  for (int l = 0; l < GESSO_UNET_MAX_LEVELS; l++)
    {
      g_free (unet->down_resnets[l]);
      g_free (unet->up_resnets[l]);
      free_transformers (unet->down_attentions[l], unet->config.layers_per_block);
      free_transformers (unet->up_attentions[l], unet->config.layers_per_block + 1);
    }
  g_free (unet->mid_attention.blocks);
  gesso_arena_free (unet->own_arena);
  g_free (unet);
}

static GessoUnet *
unet_alloc (const GessoUnetConfig *config, GessoWeights *weights)
{
  GessoUnet *u = g_new0 (GessoUnet, 1);

  u->config = *config;
  u->weights = weights;
  u->globals.groups = config->norm_num_groups;
  u->globals.resnet_eps = config->norm_eps;
  u->globals.time_embed_dim = config->time_embed_dim;
  u->globals.context_dim = config->cross_attention_dim;
  return u;
}

/* The config a UNet over WEIGHTS is built with: CONFIG checked against the weight shapes
 * (CONFIG_NAME says where it came from, for the message when it does not fit), or the one
 * inferred from them when CONFIG is NULL. Reads no weight data. */
static gboolean
resolve_config (const GessoWeights *weights, const GessoUnetConfig *config,
                const char *config_name, GessoUnetConfig *out, GError **error)
{
  GessoUnetConfig inferred;

  if (!gesso_unet_config_infer (weights, &inferred, error))
    return FALSE;
  if (config != NULL)
    {
      if (!gesso_unet_config_validate (config, error))
        {
          g_prefix_error (error, "%s: ", config_name ? config_name : "UNet config");
          return FALSE;
        }
      if (!gesso_unet_config_check (config, &inferred, config_name, error))
        return FALSE;
    }
  *out = config != NULL ? *config : inferred;
  return TRUE;
}

/* CONFIG has been resolved against WEIGHTS. */
static GessoUnet *
unet_build (GessoWeights *weights, const GessoUnetConfig *config, gboolean encoder_only,
            GError **error)
{
  GessoUnet *u = unet_alloc (config, weights);
  Loader ld = { .weights = weights, .error = NULL };

  u->encoder_only = encoder_only;
  load_all (u, &ld);
  if (ld.error != NULL)
    {
      g_propagate_prefixed_error (error, ld.error, "cannot build the UNet: ");
      gesso_unet_free (u);
      return NULL;
    }
  return u;
}

GessoUnet *
gesso_unet_new (GessoWeights *weights, const GessoUnetConfig *config, GError **error)
{
  GessoUnetConfig resolved;

  g_return_val_if_fail (weights != NULL, NULL);
  if (!resolve_config (weights, config, NULL, &resolved, error))
    return NULL;
  return unet_build (weights, &resolved, FALSE, error);
}

gboolean
gesso_unet_config_for_model (GessoModelFiles *files, const GessoWeights *weights,
                             JsonObject *override, GessoUnetConfig *config, GError **error)
{
  g_autofree char *name = NULL;
  GessoUnetConfig declared;
  JsonObject *json = override;

  g_return_val_if_fail (files != NULL && weights != NULL && config != NULL, FALSE);
  if (json != NULL)
    name = g_strdup ("the UNet config given for this model");
  else
    {
      json = gesso_model_files_config (files, "unet");
      name = g_build_filename (gesso_model_files_dir (files), "unet", "config.json", NULL);
    }
  if (json == NULL)
    return resolve_config (weights, NULL, NULL, config, error);
  if (!gesso_unet_config_from_json (json, name, &declared, error))
    return FALSE;
  return resolve_config (weights, &declared, name, config, error);
}

GessoUnet *
gesso_unet_new_for_model (GessoModelFiles *files, GessoWeights *weights, JsonObject *override,
                          GError **error)
{
  GessoUnetConfig config;

  g_return_val_if_fail (files != NULL && weights != NULL, NULL);
  if (!gesso_unet_config_for_model (files, weights, override, &config, error))
    return NULL;
  return unet_build (weights, &config, FALSE, error);
}

gboolean
gesso_unet_reload (GessoUnet *unet, GError **error)
{
  GessoUnet *fresh, old;

  g_return_val_if_fail (unet != NULL, FALSE);
  fresh = unet_build (unet->weights, &unet->config, unet->encoder_only, error);
  if (fresh == NULL)
    return FALSE;
  /* in place: ControlNets opened for this UNet keep pointing at it */
  old = *unet;
  *unet = *fresh;
  *fresh = old;
  gesso_unet_free (fresh);
  return TRUE;
}

GessoUnet *
unet_build_encoder (GessoWeights *weights, const GessoUnetConfig *config, GError **error)
{
  g_return_val_if_fail (weights != NULL && config != NULL, NULL);
  if (!gesso_unet_config_validate (config, error))
    return NULL;
  return unet_build (weights, config, TRUE, error);
}

const GessoUnetConfig *
gesso_unet_get_config (const GessoUnet *unet)
{
  g_return_val_if_fail (unet != NULL, NULL);
  return &unet->config;
}

/* --- Forward ------------------------------------------------------------------------------ */

/* Sanity bounds for a forward's size: far beyond any real use, low enough that every size
 * product below stays well inside int64 (64 x 8192 x 2^15 x 2^15 < 2^63). */
#define MAX_BATCH 64
#define MAX_LATENT_SIDE 32768
#define MAX_CONTEXT_LEN 65536

gboolean
gesso_unet_check_size (const GessoUnet *unet, int64_t batch, int64_t height, int64_t width,
                       int64_t context_len, GError **error)
{
  int64_t factor;

  g_return_val_if_fail (unet != NULL, FALSE);
  factor = (int64_t) 1 << (unet->config.n_levels - 1);
  if (batch < 1 || batch > MAX_BATCH)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "UNet batch of %" G_GINT64_FORMAT "; it must be between 1 and %d", batch,
                   MAX_BATCH);
      return FALSE;
    }
  if (context_len < 1 || context_len > MAX_CONTEXT_LEN)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "text context of %" G_GINT64_FORMAT " tokens; it must be between 1 and %d",
                   context_len, MAX_CONTEXT_LEN);
      return FALSE;
    }
  if (height < 1 || width < 1 || height > MAX_LATENT_SIDE || width > MAX_LATENT_SIDE
      || height % factor != 0 || width % factor != 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "a %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " latent does not fit this UNet: "
                   "its %d levels halve the size %d times, so both sides must be multiples of "
                   "%" G_GINT64_FORMAT " (pad or crop the image to a multiple of %"
                   G_GINT64_FORMAT " latent pixels)", width, height, unet->config.n_levels,
                   unet->config.n_levels - 1, factor, factor);
      return FALSE;
    }
  return TRUE;
}

/* diffusers get_timestep_embedding (max_period 10000, scale 1), in float32 step by step as
 * PyTorch computes it, because at t ~ 1000 the sinusoids' arguments amplify any rounding. */
static void
timestep_embedding (const GessoUnetConfig *c, int dim, const float *timesteps, int64_t batch,
                    float *out)
{
  const int half = dim / 2;
  const float minus_log_period = (float) -log (10000.0);
  const float denominator = (float) ((double) half - (double) c->freq_shift);

  for (int64_t b = 0; b < batch; b++)
    {
      float *row = out + b * dim;
      float *sines = row + (c->flip_sin_to_cos ? half : 0);
      float *cosines = row + (c->flip_sin_to_cos ? 0 : half);

      for (int i = 0; i < half; i++)
        {
          float exponent = (minus_log_period * (float) i) / denominator;
          float arg = timesteps[b] * expf (exponent);

          sines[i] = sinf (arg);
          cosines[i] = cosf (arg);
        }
      if (dim % 2 == 1)
        row[dim - 1] = 0.0f;
    }
}

/* A new skip connection [B, CHANNELS, H, W] on top of the stack; NULL on failure. */
static float *
push_skip (UnetExec *x, UnetSkip *skips, int *n_skips, int64_t batch, int64_t channels, int64_t h,
           int64_t w, GError **error)
{
  UnetSkip *s = &skips[(*n_skips)++];

  g_assert (*n_skips <= MAX_SKIPS);     /* bounded by the config's validated limits */
  s->channels = channels;
  s->height = h;
  s->width = w;
  s->data = unet_exec_alloc (x, (size_t) (batch * channels * h * w), error);
  return s->data;
}

/* The largest tensors the two activation buffers and the concatenation buffer must hold
 * (elements): middle-block outputs, up-path outputs and upsampled maps; the up resnets'
 * inputs. */
static void
buffer_sizes (const GessoUnet *u, int64_t batch, int64_t height, int64_t width,
              size_t *act, size_t *cat)
{
  const GessoUnetConfig *c = &u->config;
  const int n = c->n_levels;
  int64_t a = batch * c->block_out_channels[0] * height * width, k = 0;

  for (int l = 0; l < n; l++)
    {
      const int64_t hw = (height >> l) * (width >> l);

      a = MAX (a, batch * c->block_out_channels[l] * hw);
      if (l > 0)        /* upsampled to the level above */
        a = MAX (a, batch * c->block_out_channels[l] * 4 * hw);
      for (int j = 0; j <= c->layers_per_block; j++)
        k = MAX (k, batch * u->up_resnets[l][j].in_channels * hw);
    }
  *act = (size_t) a;
  *cat = (size_t) k;
}

/* SDXL's added embedding (diffusers' "text_time"), added to TEMB [B, time_embed_dim]:
 * add_embedding([text_embeds | sinusoids of each time id, in id order]). HIDDEN is
 * [B, time_embed_dim] of scratch. */
static gboolean
add_text_time (GessoUnet *u, UnetExec *x, const GessoUnetAdded *added, int64_t batch,
               float *hidden, float *temb, GError **error)
{
  const GessoUnetConfig *c = &u->config;
  const int64_t in = c->addition_input_dim, pooled = gesso_unet_config_pooled_dim (c);
  const int64_t ids = GESSO_UNET_TIME_IDS, d = c->addition_time_embed_dim;
  float *input, *id_sin;

  input = unet_exec_alloc (x, (size_t) (batch * in), error);
  id_sin = input ? unet_exec_alloc (x, (size_t) (batch * ids * d), error) : NULL;
  if (id_sin == NULL || !unet_exec_computing (x))
    return id_sin != NULL;
  timestep_embedding (c, (int) d, added->time_ids, batch * ids, id_sin);
  for (int64_t b = 0; b < batch; b++)
    {
      memcpy (input + b * in, added->text_embeds + b * pooled, (size_t) pooled * sizeof (float));
      memcpy (input + b * in + pooled, id_sin + b * ids * d, (size_t) (ids * d) * sizeof (float));
    }
  gesso_linear_weight (input, batch, in, &u->add_linear_1.weight, u->add_linear_1.bias,
                       c->time_embed_dim, hidden);
  gesso_silu (hidden, (size_t) (batch * c->time_embed_dim));
  gesso_linear_weight (hidden, batch, c->time_embed_dim, &u->add_linear_2.weight,
                       u->add_linear_2.bias, c->time_embed_dim, input);
  gesso_add (temb, input, (size_t) (batch * c->time_embed_dim));
  return TRUE;
}

float *
unet_time_embedding (GessoUnet *u, UnetExec *x, const float *timesteps,
                     const GessoUnetAdded *added, int64_t batch, GError **error)
{
  const GessoUnetConfig *c = &u->config;
  float *temb_sin, *temb_hidden, *temb;

  temb_sin = unet_exec_alloc (x, (size_t) (batch * c->time_proj_dim), error);
  temb_hidden = temb_sin ? unet_exec_alloc (x, (size_t) (batch * c->time_embed_dim), error)
                         : NULL;
  temb = temb_hidden ? unet_exec_alloc (x, (size_t) (batch * c->time_embed_dim), error) : NULL;
  if (temb == NULL)
    return NULL;
  if (unet_exec_computing (x))
    {
      timestep_embedding (c, c->time_proj_dim, timesteps, batch, temb_sin);
      gesso_linear_weight (temb_sin, batch, c->time_proj_dim, &u->time_linear_1.weight,
                           u->time_linear_1.bias, c->time_embed_dim, temb_hidden);
      gesso_silu (temb_hidden, (size_t) (batch * c->time_embed_dim));
      gesso_linear_weight (temb_hidden, batch, c->time_embed_dim, &u->time_linear_2.weight,
                           u->time_linear_2.bias, c->time_embed_dim, temb);
    }
  if (c->addition_input_dim > 0 && added != NULL
      && !add_text_time (u, x, added, batch, temb_hidden, temb, error))
    return NULL;
  if (!unet_exec_computing (x))
    return temb;
  /* every resnet applies SiLU to the embedding before its projection: do it once */
  gesso_silu (temb, (size_t) (batch * c->time_embed_dim));
  return temb;
}

gboolean
unet_run_down (GessoUnet *u, UnetExec *x, const float *sample, const float *hint,
               const float *temb, const float *context, int64_t batch, int64_t *height,
               int64_t *width, int64_t context_len, UnetSkip *skips, int *n_skips,
               GError **error)
{
  const GessoUnetConfig *c = &u->config;
  const UnetGlobals *g = &u->globals;
  const int n = c->n_levels, lpb = c->layers_per_block;
  const int64_t c0 = c->block_out_channels[0];
  int64_t h = *height, w = *width;

  /* every output becomes a skip, allocated where it is made, so the skips lie in the arena
   * in the order the up path releases them */
  *n_skips = 0;
  if (push_skip (x, skips, n_skips, batch, c0, h, w, error) == NULL
      || !unet_conv (x, &u->conv_in, sample, skips[0].data, batch, c->in_channels, h, w, c0,
                     c->conv_in_kernel, 1, error))
    return FALSE;
  if (hint != NULL && unet_exec_computing (x))
    gesso_add (skips[0].data, hint, (size_t) (batch * c0 * h * w));
  for (int l = 0; l < n; l++)
    {
      const int64_t ch = c->block_out_channels[l];

      for (int j = 0; j < lpb; j++)
        {
          const float *in = skips[*n_skips - 1].data;
          float *o = push_skip (x, skips, n_skips, batch, ch, h, w, error);

          if (o == NULL
              || !unet_resnet_forward (x, g, &u->down_resnets[l][j], in, o, batch, h, w, temb,
                                       error)
              || (u->down_attentions[l] != NULL
                  && !unet_transformer_forward (x, g, &u->down_attentions[l][j], o, batch,
                                                h * w, context, context_len, error)))
            return FALSE;
        }
      if (l < n - 1)
        {
          const float *in = skips[*n_skips - 1].data;
          float *o = push_skip (x, skips, n_skips, batch, ch, h / 2, w / 2, error);

          if (o == NULL
              || !unet_conv (x, &u->downsample[l], in, o, batch, ch, h, w, ch, 3, 2, error))
            return FALSE;
          h /= 2;
          w /= 2;
        }
    }
  *height = h;
  *width = w;
  return TRUE;
}

gboolean
unet_run_mid (GessoUnet *u, UnetExec *x, const float *in, float *tmp, float *out,
              int64_t batch, int64_t height, int64_t width, const float *temb,
              const float *context, int64_t context_len, GError **error)
{
  const UnetGlobals *g = &u->globals;

  return unet_resnet_forward (x, g, &u->mid_resnets[0], in, tmp, batch, height, width, temb,
                              error)
         && unet_transformer_forward (x, g, &u->mid_attention, tmp, batch, height * width,
                                      context, context_len, error)
         && unet_resnet_forward (x, g, &u->mid_resnets[1], tmp, out, batch, height, width,
                                 temb, error);
}

/* ControlNet residuals, packed as gesso_unet_residual_floats() describes, added to the skip
 * connections once the down path is done (the down path itself sees none of them). */
static void
add_skip_residuals (const UnetSkip *skips, int n_skips, int64_t batch, const float *residuals)
{
  for (int k = 0; k < n_skips; k++)
    {
      size_t n = (size_t) (batch * skips[k].channels * skips[k].height * skips[k].width);
      gesso_add (skips[k].data, residuals, n);
      residuals += n;
    }
}

/* The whole forward. With X planning (no arena) it touches no data and only accounts the
 * allocations, which is how gesso_unet_scratch_bytes() finds the peak. */
static gboolean
run (GessoUnet *u, UnetExec *x, const float *sample, const float *timesteps,
     const float *context, const GessoUnetAdded *added, int64_t batch, int64_t height,
     int64_t width, int64_t context_len, const float *residuals, float *out, GError **error)
{
  const GessoUnetConfig *c = &u->config;
  const UnetGlobals *g = &u->globals;
  const int n = c->n_levels, lpb = c->layers_per_block;
  const int64_t c0 = c->block_out_channels[0];
  UnetSkip skips[MAX_SKIPS];
  int n_skips = 0, cur;
  size_t act_size, cat_size;
  float *temb, *act[2], *cat;
  int64_t h = height, w = width;
  const float *prev;

  buffer_sizes (u, batch, height, width, &act_size, &cat_size);
  temb = unet_time_embedding (u, x, timesteps, added, batch, error);
  if (temb == NULL
      || !unet_run_down (u, x, sample, NULL, temb, context, batch, &h, &w, context_len, skips,
                         &n_skips, error))
    return FALSE;

  act[0] = unet_exec_alloc (x, act_size, error);
  act[1] = act[0] ? unet_exec_alloc (x, act_size, error) : NULL;
  cat = act[1] ? unet_exec_alloc (x, cat_size, error) : NULL;
  if (cat == NULL)
    return FALSE;
  if (!unet_run_mid (u, x, skips[n_skips - 1].data, act[0], act[1], batch, h, w, temb, context,
                     context_len, error))
    return FALSE;
  /* after the middle block, whose input is the last skip as the down path left it */
  if (residuals != NULL && unet_exec_computing (x))
    {
      const size_t mid = (size_t) (batch * c->block_out_channels[n - 1] * h * w);
      add_skip_residuals (skips, n_skips, batch, residuals);
      gesso_add (act[1], residuals + gesso_unet_residual_floats (u, batch, height, width) - mid,
                 mid);
    }
  cur = 1;

  for (int l = n - 1; l >= 0; l--)
    {
      const int64_t ch = c->block_out_channels[l], hw = h * w;

      for (int j = 0; j <= lpb; j++)
        {
          const UnetResnet *r = &u->up_resnets[l][j];
          const UnetSkip s = skips[--n_skips];
          const int64_t ch_prev = r->in_channels - s.channels;

          if (s.height != h || s.width != w || ch_prev < 1)
            {
              g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                           "internal error: UNet skip connection %d does not fit up level %d",
                           n_skips, l);
              return FALSE;
            }
          if (unet_exec_computing (x))
            /* torch.cat([hidden, skip], dim=1), per batch element */
            for (int64_t b = 0; b < batch; b++)
              {
                float *dst = cat + b * r->in_channels * hw;

                memcpy (dst, act[cur] + b * ch_prev * hw, (size_t) (ch_prev * hw)
                        * sizeof (float));
                memcpy (dst + ch_prev * hw, s.data + b * s.channels * hw,
                        (size_t) (s.channels * hw) * sizeof (float));
              }
          if (!unet_resnet_forward (x, g, r, cat, act[1 - cur], batch, h, w, temb, error)
              || (u->up_attentions[l] != NULL
                  && !unet_transformer_forward (x, g, &u->up_attentions[l][j], act[1 - cur],
                                                batch, hw, context, context_len, error)))
            return FALSE;
          cur = 1 - cur;
        }
      if (l > 0)
        {
          size_t mark = unet_exec_mark (x);
          float *up = unet_exec_alloc (x, (size_t) (batch * ch * 4 * hw), error);

          if (up == NULL)
            return FALSE;
          if (unet_exec_computing (x))
            gesso_upsample_nearest2x (act[cur], batch * ch, h, w, up);
          h *= 2;
          w *= 2;
          if (!unet_conv (x, &u->upsample[l], up, act[1 - cur], batch, ch, h, w, ch, 3, 1,
                          error))
            return FALSE;
          unet_exec_reset (x, mark);
          cur = 1 - cur;
        }
    }

  prev = act[cur];
  if (unet_exec_computing (x))
    {
      gesso_group_norm (prev, batch, c0, h * w, g->groups, g->resnet_eps, u->norm_out.gamma,
                        u->norm_out.beta, act[1 - cur]);
      gesso_silu (act[1 - cur], (size_t) (batch * c0 * h * w));
    }
  return unet_conv (x, &u->conv_out, act[1 - cur], out, batch, c0, h, w, c->out_channels,
                    c->conv_out_kernel, 1, error);
}

size_t
gesso_unet_scratch_bytes (const GessoUnet *unet, int64_t batch, int64_t height, int64_t width,
                          int64_t context_len)
{
  static const GessoUnetAdded planned_added = { NULL, NULL };
  UnetExec plan = { .arena = NULL, .used = 0, .peak = 0 };

  g_return_val_if_fail (unet != NULL, 0);
  if (!gesso_unet_check_size (unet, batch, height, width, context_len, NULL))
    return 0;
  /* planning touches no data and cannot fail; the added embedding's buffers are counted */
  if (!run ((GessoUnet *) unet, &plan, NULL, NULL, NULL, &planned_added, batch, height, width,
            context_len, NULL, NULL, NULL))
    return 0;
  return plan.peak;
}

size_t
gesso_unet_config_scratch_bytes (const GessoUnetConfig *config, int64_t batch, int64_t height,
                                 int64_t width, int64_t context_len)
{
  Loader skeleton_loader = { .weights = NULL, .error = NULL };
  GessoUnet *skeleton;
  size_t bytes;

  g_return_val_if_fail (config != NULL, 0);
  if (!gesso_unet_config_validate (config, NULL))
    return 0;
  /* the layers' shapes without their weights are all the plan looks at */
  skeleton = unet_alloc (config, NULL);
  load_all (skeleton, &skeleton_loader);
  bytes = gesso_unet_scratch_bytes (skeleton, batch, height, width, context_len);
  gesso_unet_free (skeleton);
  return bytes;
}

size_t
gesso_unet_residual_floats (const GessoUnet *unet, int64_t batch, int64_t height, int64_t width)
{
  const GessoUnetConfig *c;
  int64_t total = 0, h = height, w = width;

  g_return_val_if_fail (unet != NULL, 0);
  c = &unet->config;
  total += c->block_out_channels[0] * h * w;                    /* conv_in */
  for (int l = 0; l < c->n_levels; l++)
    {
      total += c->layers_per_block * c->block_out_channels[l] * h * w;
      if (l < c->n_levels - 1)
        {
          h /= 2;
          w /= 2;
          total += c->block_out_channels[l] * h * w;             /* downsampler */
        }
    }
  total += c->block_out_channels[c->n_levels - 1] * h * w;      /* middle */
  return (size_t) (batch * total);
}

gboolean
gesso_unet_forward (GessoUnet *unet, const float *sample, const float *timesteps,
                    const float *context, int64_t batch, int64_t height, int64_t width,
                    int64_t context_len, float *out, GessoArena *scratch, GError **error)
{
  return gesso_unet_forward_controlled (unet, sample, timesteps, context, batch, height, width,
                                        context_len, NULL, out, scratch, error);
}

gboolean
gesso_unet_forward_controlled (GessoUnet *unet, const float *sample, const float *timesteps,
                               const float *context, int64_t batch, int64_t height,
                               int64_t width, int64_t context_len, const float *residuals,
                               float *out, GessoArena *scratch, GError **error)
{
  return gesso_unet_forward_full (unet, sample, timesteps, context, NULL, batch, height, width,
                                  context_len, residuals, out, scratch, error);
}

gboolean
gesso_unet_forward_full (GessoUnet *unet, const float *sample, const float *timesteps,
                         const float *context, const GessoUnetAdded *added, int64_t batch,
                         int64_t height, int64_t width, int64_t context_len,
                         const float *residuals, float *out, GessoArena *scratch,
                         GError **error)
{
  UnetExec x = { 0 };
  size_t need, free_bytes, mark;
  gboolean ok;

  g_return_val_if_fail (unet != NULL, FALSE);
  g_return_val_if_fail (sample != NULL && timesteps != NULL && context != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  if (!gesso_unet_check_size (unet, batch, height, width, context_len, error))
    return FALSE;
  if (unet->config.addition_input_dim > 0
      && (added == NULL || added->text_embeds == NULL || added->time_ids == NULL))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "this SDXL UNet needs the pooled text embedding and the size ids "
                   "(added conditioning), and none were given");
      return FALSE;
    }
  if (unet->config.addition_input_dim == 0)
    added = NULL;
  for (int64_t b = 0; b < batch; b++)
    if (!isfinite (timesteps[b]))
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     "UNet timestep %" G_GINT64_FORMAT " is %g; it must be a finite number", b,
                     (double) timesteps[b]);
        return FALSE;
      }

  need = gesso_unet_scratch_bytes (unet, batch, height, width, context_len);
  if (scratch == NULL)
    {
      if (unet->own_arena == NULL || gesso_arena_capacity (unet->own_arena) < need)
        {
          gesso_arena_free (unet->own_arena);
          unet->own_arena = gesso_arena_new (need, error);
          if (unet->own_arena == NULL)
            {
              g_prefix_error (error, "UNet at %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                              " latent, batch %" G_GINT64_FORMAT ": ", width, height, batch);
              return FALSE;
            }
        }
      scratch = unet->own_arena;
    }
  free_bytes = gesso_arena_capacity (scratch) - gesso_arena_used (scratch);
  if (free_bytes < need)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "the UNet needs %.1f MiB of working memory for this size but its arena has "
                   "%.1f MiB free", (double) need / 1048576.0, (double) free_bytes / 1048576.0);
      return FALSE;
    }

  x.arena = scratch;
  mark = gesso_arena_mark (scratch);
  ok = run (unet, &x, sample, timesteps, context, added, batch, height, width, context_len,
            residuals, out, error);
  gesso_arena_reset (scratch, mark);
  return ok;
}
