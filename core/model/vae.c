/* The AutoencoderKL forward passes (see vae.h for the architecture).
 *
 * Every layer is a short function over "activations": a [channels, height, width] block that
 * lives in one of three rotating buffers (slots) or in the caller's memory. A call runs the
 * forward twice through the same code: first planning (every layer records how large its
 * output slot must be and how much kernel scratch it takes, and computes nothing), then for
 * real, out of one arena of the planned size. So the plan is exact by construction and no
 * layer allocates.
 */
#include <math.h>
#include <string.h>

#include "model/vae.h"
#include "model/vae_private.h"
#include "ops/ops.h"

/* DiagonalGaussianDistribution clamps the log-variance to this range before taking exp. */
#define LOGVAR_MIN (-30.0f)
#define LOGVAR_MAX 20.0f
/* Beyond this an image is not something to push through the VAE in one piece (a 16384^2
 * decode at SD widths needs hundreds of GB); it also keeps every size far from overflow. */
#define MAX_SIDE 16384
#define N_SLOTS 3

/* --- Layers: shapes from the config, weights borrowed from GessoWeights ------------------ */

typedef struct
{
  GessoWeight weight;           /* [out, in, kernel, kernel], as stored */
  const float *bias;            /* [out] */
  int64_t in, out, kernel;
} Conv;

typedef struct
{
  const float *gamma, *beta;    /* [channels] */
  int64_t channels;
} Norm;

typedef struct
{
  Norm norm1, norm2;
  Conv conv1, conv2;
  gboolean has_shortcut;        /* a 1x1 conv when the channel count changes */
  Conv shortcut;
} Resnet;

typedef struct
{
  Norm norm;
  const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;   /* [C, C] and [C] */
  int64_t channels;
} Attention;

typedef struct
{
  int n_resnets;
  Resnet *resnets;
  gboolean has_resample;        /* encoder: downsample after; decoder: upsample after */
  Conv resample;
} Level;

typedef struct
{
  Conv conv_in;
  Level levels[GESSO_VAE_MAX_LEVELS];   /* encoder: down_blocks; decoder: up_blocks */
  Resnet mid_resnets[2];
  gboolean has_attention;
  Attention attention;
  Norm norm_out;
  Conv conv_out;
} Coder;

struct GessoVae
{
  GessoVaeConfig config;
  Coder encoder;
  Coder decoder;
  gboolean has_quant_conv, has_post_quant_conv;
  Conv quant_conv, post_quant_conv;
  GessoTaesd *taesd;            /* owned; when set, it does all the work (vae.h) */
};

static Conv
conv_shape (int64_t in, int64_t out, int64_t kernel)
{
  return (Conv) { .in = in, .out = out, .kernel = kernel };
}

static Resnet
resnet_shape (int64_t in, int64_t out)
{
  return (Resnet) {
    .norm1 = { .channels = in },
    .conv1 = conv_shape (in, out, 3),
    .norm2 = { .channels = out },
    .conv2 = conv_shape (out, out, 3),
    .has_shortcut = in != out,
    .shortcut = conv_shape (in, out, 1),
  };
}

static void
mid_shape (Coder *coder, const GessoVaeConfig *c, int64_t channels)
{
  coder->mid_resnets[0] = resnet_shape (channels, channels);
  coder->mid_resnets[1] = resnet_shape (channels, channels);
  coder->has_attention = c->mid_attention;
  coder->attention.channels = channels;
  coder->attention.norm.channels = channels;
}

/* The network of CONFIG with every shape set and no weights: what planning needs. */
static GessoVae *
vae_layout_new (const GessoVaeConfig *config)
{
  GessoVae *vae = g_new0 (GessoVae, 1);
  const GessoVaeConfig *c = &vae->config;
  const int n = config->n_levels;
  const int top = config->block_out_channels[n - 1];

  vae->config = *config;

  /* encoder: level i maps block_out_channels[i-1] (or [0]) to [i], then halves the size */
  Coder *enc = &vae->encoder;
  enc->conv_in = conv_shape (c->in_channels, c->block_out_channels[0], 3);
  for (int i = 0; i < n; i++)
    {
      Level *level = &enc->levels[i];
      int64_t in = c->block_out_channels[i > 0 ? i - 1 : 0];
      int64_t out = c->block_out_channels[i];

      level->n_resnets = c->layers_per_block;
      level->resnets = g_new0 (Resnet, level->n_resnets);
      for (int j = 0; j < level->n_resnets; j++)
        level->resnets[j] = resnet_shape (j == 0 ? in : out, out);
      level->has_resample = i < n - 1;
      level->resample = conv_shape (out, out, 3);
    }
  mid_shape (enc, c, top);
  enc->norm_out.channels = top;
  enc->conv_out = conv_shape (top, 2 * (int64_t) c->latent_channels, 3);

  /* decoder: up_blocks walk the levels backwards, one resnet more than the encoder's */
  Coder *dec = &vae->decoder;
  dec->conv_in = conv_shape (c->latent_channels, top, 3);
  mid_shape (dec, c, top);
  for (int i = 0; i < n; i++)
    {
      Level *level = &dec->levels[i];
      int64_t in = c->block_out_channels[n - (i > 0 ? i : 1)];
      int64_t out = c->block_out_channels[n - 1 - i];

      level->n_resnets = c->layers_per_block + 1;
      level->resnets = g_new0 (Resnet, level->n_resnets);
      for (int j = 0; j < level->n_resnets; j++)
        level->resnets[j] = resnet_shape (j == 0 ? in : out, out);
      level->has_resample = i < n - 1;
      level->resample = conv_shape (out, out, 3);
    }
  dec->norm_out.channels = c->block_out_channels[0];
  dec->conv_out = conv_shape (c->block_out_channels[0], c->out_channels, 3);

  vae->has_quant_conv = c->use_quant_conv;
  vae->quant_conv = conv_shape (2 * (int64_t) c->latent_channels,
                                2 * (int64_t) c->latent_channels, 1);
  vae->has_post_quant_conv = c->use_post_quant_conv;
  vae->post_quant_conv = conv_shape (c->latent_channels, c->latent_channels, 1);
  return vae;
}

void
gesso_vae_free (GessoVae *vae)
{
  if (vae == NULL)
    return;
  for (int i = 0; i < GESSO_VAE_MAX_LEVELS; i++)
    {
      g_free (vae->encoder.levels[i].resnets);
      g_free (vae->decoder.levels[i].resnets);
    }
  gesso_taesd_free (vae->taesd);
  g_free (vae);
}

/* --- Loading weights -------------------------------------------------------------------- */

static const float *
load (GessoWeights *weights, const char *prefix, const char *suffix, int ndim,
      const int64_t *shape, GError **error)
{
  g_autofree char *name = g_strconcat (prefix, suffix, NULL);

  return gesso_weights_get (weights, GESSO_COMPONENT_VAE, name, ndim, shape, error);
}

static gboolean
load_conv (GessoWeights *weights, const char *prefix, Conv *conv, GError **error)
{
  const int64_t wshape[4] = { conv->out, conv->in, conv->kernel, conv->kernel };

  g_autofree char *name = g_strconcat (prefix, ".weight", NULL);

  if (!gesso_weights_get_stored (weights, GESSO_COMPONENT_VAE, name, 4, wshape, &conv->weight,
                                 error))
    return FALSE;
  conv->bias = load (weights, prefix, ".bias", 1, &conv->out, error);
  return conv->bias != NULL;
}

static gboolean
load_norm (GessoWeights *weights, const char *prefix, Norm *norm, GError **error)
{
  norm->gamma = load (weights, prefix, ".weight", 1, &norm->channels, error);
  if (norm->gamma == NULL)
    return FALSE;
  norm->beta = load (weights, prefix, ".bias", 1, &norm->channels, error);
  return norm->beta != NULL;
}

static gboolean
load_linear (GessoWeights *weights, const char *prefix, int64_t channels, const float **w,
             const float **b, GError **error)
{
  const int64_t wshape[2] = { channels, channels };

  *w = load (weights, prefix, ".weight", 2, wshape, error);
  if (*w == NULL)
    return FALSE;
  *b = load (weights, prefix, ".bias", 1, &channels, error);
  return *b != NULL;
}

static gboolean
load_resnet (GessoWeights *weights, const char *prefix, Resnet *r, GError **error)
{
  g_autofree char *norm1 = g_strconcat (prefix, ".norm1", NULL);
  g_autofree char *conv1 = g_strconcat (prefix, ".conv1", NULL);
  g_autofree char *norm2 = g_strconcat (prefix, ".norm2", NULL);
  g_autofree char *conv2 = g_strconcat (prefix, ".conv2", NULL);
  g_autofree char *shortcut = g_strconcat (prefix, ".conv_shortcut", NULL);

  return load_norm (weights, norm1, &r->norm1, error)
         && load_conv (weights, conv1, &r->conv1, error)
         && load_norm (weights, norm2, &r->norm2, error)
         && load_conv (weights, conv2, &r->conv2, error)
         && (!r->has_shortcut || load_conv (weights, shortcut, &r->shortcut, error));
}

static gboolean
load_attention (GessoWeights *weights, const char *prefix, Attention *a, GError **error)
{
  /* diffusers folders saved before 0.14 name these query/key/value/proj_attn; diffusers
   * renames them on load, and so do we */
  g_autofree char *probe = g_strconcat (prefix, ".to_q.weight", NULL);
  g_autofree char *legacy_probe = g_strconcat (prefix, ".query.weight", NULL);
  gboolean legacy = !gesso_weights_has (weights, GESSO_COMPONENT_VAE, probe)
                    && gesso_weights_has (weights, GESSO_COMPONENT_VAE, legacy_probe);
  const char *names[4] = { ".to_q", ".to_k", ".to_v", ".to_out.0" };
  const char *legacy_names[4] = { ".query", ".key", ".value", ".proj_attn" };
  const char **n = legacy ? legacy_names : names;
  g_autofree char *norm = g_strconcat (prefix, ".group_norm", NULL);
  g_autofree char *q = g_strconcat (prefix, n[0], NULL);
  g_autofree char *k = g_strconcat (prefix, n[1], NULL);
  g_autofree char *v = g_strconcat (prefix, n[2], NULL);
  g_autofree char *o = g_strconcat (prefix, n[3], NULL);

  return load_norm (weights, norm, &a->norm, error)
         && load_linear (weights, q, a->channels, &a->wq, &a->bq, error)
         && load_linear (weights, k, a->channels, &a->wk, &a->bk, error)
         && load_linear (weights, v, a->channels, &a->wv, &a->bv, error)
         && load_linear (weights, o, a->channels, &a->wo, &a->bo, error);
}

static gboolean
load_coder (GessoWeights *weights, const char *part, const char *blocks, const char *resample,
            Coder *coder, GError **error)
{
  char prefix[160];

  g_snprintf (prefix, sizeof prefix, "%s.conv_in", part);
  if (!load_conv (weights, prefix, &coder->conv_in, error))
    return FALSE;
  for (int i = 0; i < GESSO_VAE_MAX_LEVELS; i++)
    {
      Level *level = &coder->levels[i];

      for (int j = 0; j < level->n_resnets; j++)
        {
          g_snprintf (prefix, sizeof prefix, "%s.%s.%d.resnets.%d", part, blocks, i, j);
          if (!load_resnet (weights, prefix, &level->resnets[j], error))
            return FALSE;
        }
      g_snprintf (prefix, sizeof prefix, "%s.%s.%d.%s.0.conv", part, blocks, i, resample);
      if (level->has_resample && !load_conv (weights, prefix, &level->resample, error))
        return FALSE;
    }
  for (int j = 0; j < 2; j++)
    {
      g_snprintf (prefix, sizeof prefix, "%s.mid_block.resnets.%d", part, j);
      if (!load_resnet (weights, prefix, &coder->mid_resnets[j], error))
        return FALSE;
    }
  g_snprintf (prefix, sizeof prefix, "%s.mid_block.attentions.0", part);
  if (coder->has_attention && !load_attention (weights, prefix, &coder->attention, error))
    return FALSE;
  g_snprintf (prefix, sizeof prefix, "%s.conv_norm_out", part);
  if (!load_norm (weights, prefix, &coder->norm_out, error))
    return FALSE;
  g_snprintf (prefix, sizeof prefix, "%s.conv_out", part);
  return load_conv (weights, prefix, &coder->conv_out, error);
}

GessoVae *
gesso_vae_new (GessoWeights *weights, const GessoVaeConfig *config, GError **error)
{
  g_return_val_if_fail (weights != NULL, NULL);
  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (GessoVae) vae = NULL;
  GessoVaeConfig held;

  if (!gesso_vae_config_validate (config, error))
    return NULL;
  vae = vae_layout_new (config);
  if (!load_coder (weights, "encoder", "down_blocks", "downsamplers", &vae->encoder, error)
      || !load_coder (weights, "decoder", "up_blocks", "upsamplers", &vae->decoder, error)
      || (vae->has_quant_conv && !load_conv (weights, "quant_conv", &vae->quant_conv, error))
      || (vae->has_post_quant_conv
          && !load_conv (weights, "post_quant_conv", &vae->post_quant_conv, error)))
    {
      g_prefix_error (error, "cannot build the VAE: ");
      return NULL;
    }

  /* Every weight the config asks for is there with the right shape; the weights must not
   * hold more either (an extra level, resnet or attention the config leaves out would be
   * silently skipped and give wrong images). */
  if (!vae_config_infer_shapes (&held, weights, error))
    return NULL;
  if (!gesso_vae_config_same_architecture (config, &held))
    {
      g_autofree char *want = gesso_vae_config_to_string (config);
      g_autofree char *have = gesso_vae_config_to_string (&held);

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the VAE weights do not match its config: the config describes %s, "
                   "the weights hold %s", want, have);
      return NULL;
    }
  return g_steal_pointer (&vae);
}

void
gesso_vae_config_for_taesd (const GessoTaesd *taesd, GessoVaeConfig *config)
{
  gesso_vae_config_init (config);
  config->latent_channels = gesso_taesd_latent_channels (taesd);
  config->n_levels = 1;
  while ((1 << (config->n_levels - 1)) < gesso_taesd_latent_factor (taesd))
    config->n_levels++;
  for (int i = 0; i < config->n_levels; i++)
    config->block_out_channels[i] = gesso_taesd_width (taesd);
  config->scaling_factor = 1.0;
  config->shift_factor = 0.0;
  config->mid_attention = FALSE;
  config->use_quant_conv = FALSE;
  config->use_post_quant_conv = FALSE;
}

GessoVae *
gesso_vae_new_taesd (GessoTaesd *taesd)
{
  GessoVae *vae = g_new0 (GessoVae, 1);

  g_return_val_if_fail (taesd != NULL, NULL);
  gesso_vae_config_for_taesd (taesd, &vae->config);
  vae->taesd = taesd;
  return vae;
}

gboolean
gesso_vae_is_taesd (const GessoVae *vae)
{
  return vae->taesd != NULL;
}

gboolean
gesso_vae_config_for_model (GessoModelFiles *files, const GessoWeights *weights,
                            const GessoVaeConfig *override, GessoVaeConfig *config,
                            GError **error)
{
  JsonObject *json;

  g_return_val_if_fail (files != NULL && weights != NULL && config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (override != NULL)
    {
      *config = *override;
      return TRUE;
    }
  if ((json = gesso_model_files_config (files, "vae")) != NULL)
    {
      g_autofree char *name = g_build_filename (gesso_model_files_dir (files), "vae",
                                                "config.json", NULL);

      gesso_vae_config_init (config);
      return gesso_vae_config_from_json (config, json, name, error);
    }
  return gesso_vae_config_infer (config, weights, error);
}

GessoVae *
gesso_vae_new_for_model (GessoModelFiles *files, GessoWeights *weights,
                         const GessoVaeConfig *override, GError **error)
{
  GessoVaeConfig config;

  if (!gesso_vae_config_for_model (files, weights, override, &config, error))
    return NULL;
  return gesso_vae_new (weights, &config, error);
}

const GessoVaeConfig *
gesso_vae_get_config (const GessoVae *vae)
{
  g_return_val_if_fail (vae != NULL, NULL);
  return &vae->config;
}

double
gesso_vae_scaling_factor (const GessoVae *vae)
{
  g_return_val_if_fail (vae != NULL, 0.0);
  return vae->config.scaling_factor;
}

int
gesso_vae_latent_factor (const GessoVae *vae)
{
  g_return_val_if_fail (vae != NULL, 0);
  return gesso_vae_config_latent_factor (&vae->config);
}

int
gesso_vae_latent_channels (const GessoVae *vae)
{
  g_return_val_if_fail (vae != NULL, 0);
  return vae->config.latent_channels;
}

/* --- Running: plan, then compute ---------------------------------------------------------- */

typedef struct
{
  gboolean planning;
  size_t slot_floats[N_SLOTS];  /* planning: the most each slot ever holds */
  size_t kernel_bytes;          /* planning: the most scratch one layer takes */
  float *slot[N_SLOTS];         /* computing: the buffers, from ARENA */
  GessoArena *arena;            /* computing: kernel scratch comes from what is left */
  int groups;
  float eps;
} Run;

/* [c, h, w] in slot SLOT, or in the caller's memory when SLOT < 0 */
typedef struct
{
  int slot;
  float *external;
  int64_t c, h, w;
} Act;

static Act
in_slot (int slot)
{
  return (Act) { .slot = slot };
}

static Act
external (const float *data, int64_t c, int64_t h, int64_t w)
{
  /* the caller's input is only ever read; the cast lets one type describe both ends */
  return (Act) { .slot = -1, .external = (float *) data, .c = c, .h = h, .w = w };
}

/* The slot K steps after the one X is in: with three slots a layer always has two free. */
static Act
next_slot (const Act *x, int k)
{
  return in_slot ((x->slot + k) % N_SLOTS);
}

static size_t
act_numel (const Act *a)
{
  return (size_t) a->c * (size_t) a->h * (size_t) a->w;
}

static float *
act_data (const Run *run, const Act *a)
{
  return a->slot < 0 ? a->external : run->slot[a->slot];
}

static void
plan_act (Run *run, const Act *a)
{
  if (run->planning && a->slot >= 0)
    run->slot_floats[a->slot] = MAX (run->slot_floats[a->slot], act_numel (a));
}

static void
plan_kernel (Run *run, size_t bytes)
{
  if (run->planning)
    run->kernel_bytes = MAX (run->kernel_bytes, bytes);
}

/* OUT (slot or caller memory chosen by the caller) = conv (IN); OUT gets its shape here. */
static gboolean
run_conv (Run *run, const Conv *cv, const Act *in, int64_t stride, int64_t padding, Act *out,
      GError **error)
{
  const GessoConv2dShape shape = {
    .batch = 1, .in_channels = in->c, .in_height = in->h, .in_width = in->w,
    .out_channels = cv->out, .kernel_h = cv->kernel, .kernel_w = cv->kernel,
    .stride = stride, .padding = padding,
  };

  g_assert (in->c == cv->in);
  out->c = cv->out;
  out->h = gesso_conv2d_out_height (&shape);
  out->w = gesso_conv2d_out_width (&shape);
  plan_act (run, out);
  plan_kernel (run, gesso_conv2d_scratch_bytes (&shape));
  if (run->planning)
    return TRUE;
  return gesso_conv2d_weight (&shape, act_data (run, in), &cv->weight, cv->bias,
                              act_data (run, out), run->arena, error);
}

/* OUT = GroupNorm (IN), optionally followed by SiLU; OUT may be IN. */
static void
group_norm (Run *run, const Norm *norm, const Act *in, Act *out, gboolean silu)
{
  out->c = in->c;
  out->h = in->h;
  out->w = in->w;
  plan_act (run, out);
  if (run->planning)
    return;
  gesso_group_norm (act_data (run, in), 1, in->c, in->h * in->w, run->groups, run->eps,
                    norm->gamma, norm->beta, act_data (run, out));
  if (silu)
    gesso_silu (act_data (run, out), act_numel (out));
}

static void
add_into (Run *run, Act *dst, const Act *src)
{
  if (!run->planning)
    gesso_add (act_data (run, dst), act_data (run, src), act_numel (dst));
}

/* ResnetBlock2D without a time embedding: x' = shortcut(x) + conv2(silu(gn2(conv1(silu(gn1(x))))))
 * The result replaces *X (possibly in another slot). */
static gboolean
resnet (Run *run, const Resnet *r, Act *x, GError **error)
{
  if (r->has_shortcut)
    {
      /* The shortcut reads x first, so x's own slot can take gn1(x) in place and then the
       * output: three buffers of which only one has the (usually larger) input width. */
      Act sc = next_slot (x, 1), h = next_slot (x, 2), out = in_slot (x->slot);

      if (!run_conv (run, &r->shortcut, x, 1, 0, &sc, error))
        return FALSE;
      group_norm (run, &r->norm1, x, x, TRUE);
      if (!run_conv (run, &r->conv1, x, 1, 1, &h, error))
        return FALSE;
      group_norm (run, &r->norm2, &h, &h, TRUE);
      if (!run_conv (run, &r->conv2, &h, 1, 1, &out, error))
        return FALSE;
      add_into (run, &out, &sc);
      *x = out;
    }
  else
    {
      Act h = next_slot (x, 1), h2 = next_slot (x, 2);

      group_norm (run, &r->norm1, x, &h, TRUE);
      if (!run_conv (run, &r->conv1, &h, 1, 1, &h2, error))
        return FALSE;
      group_norm (run, &r->norm2, &h2, &h2, TRUE);
      if (!run_conv (run, &r->conv2, &h2, 1, 1, &h, error))
        return FALSE;
      add_into (run, &h, x);
      *x = h;
    }
  return TRUE;
}

/* DST[N, C] = SRC^T W^T + bias, SRC being [C, N] (channels-first): the projection of every
 * pixel's feature vector, without transposing the activation first. */
static void
project_tokens (const float *src, int64_t c, int64_t n, const float *w, const float *bias,
                float *dst)
{
  for (int64_t i = 0; i < n; i++)
    memcpy (dst + i * c, bias, (size_t) c * sizeof (float));
  gesso_gemm (TRUE, TRUE, n, c, c, 1.0f, src, n, w, c, 1.0f, dst, c);
}

/* The mid-block attention: one head over all H*W pixels, features = channels, plus the
 * residual. x += to_out (softmax (q k^T / sqrt (C)) v), q/k/v = to_q/k/v (GroupNorm (x)). */
static gboolean
attention (Run *run, const Attention *a, Act *x, GError **error)
{
  const int64_t c = x->c, n = x->h * x->w;
  const GessoAttentionShape shape = {
    .batch = 1, .heads = 1, .head_dim = c, .q_len = n, .kv_len = n,
    .q_stride = c, .k_stride = c, .v_stride = c,
    .scale = (float) (1.0 / sqrt ((double) c)), .causal = FALSE,
  };
  const size_t tokens_bytes = (size_t) n * (size_t) c * sizeof (float);
  Act normed = next_slot (x, 1);
  float *q, *k, *v, *o;
  size_t mark;
  gboolean ok;

  group_norm (run, &a->norm, x, &normed, FALSE);
  plan_kernel (run, 3 * gesso_arena_block_size (tokens_bytes)
                      + gesso_attention_scratch_bytes (&shape));
  if (run->planning)
    return TRUE;

  mark = gesso_arena_mark (run->arena);
  q = gesso_arena_alloc (run->arena, tokens_bytes);
  k = gesso_arena_alloc (run->arena, tokens_bytes);
  v = gesso_arena_alloc (run->arena, tokens_bytes);
  /* the normed activation is dead once projected: its slot takes the attention output */
  o = act_data (run, &normed);
  g_assert (q != NULL && k != NULL && v != NULL);   /* planned above */

  project_tokens (act_data (run, &normed), c, n, a->wq, a->bq, q);
  project_tokens (act_data (run, &normed), c, n, a->wk, a->bk, k);
  project_tokens (act_data (run, &normed), c, n, a->wv, a->bv, v);
  ok = gesso_attention (&shape, q, k, v, o, run->arena, error);
  if (ok)
    {
      /* x[C, N] += Wo o^T + bo: to_out writes straight back into channels-first order, the
       * GEMM accumulating onto the residual */
      float *xd = act_data (run, x);

      gesso_gemm (FALSE, TRUE, c, n, c, 1.0f, a->wo, c, o, c, 1.0f, xd, n);
      gesso_add_channel_bias (xd, 1, c, n, a->bo);
    }
  gesso_arena_reset (run->arena, mark);
  return ok;
}

/* diffusers' Downsample2D(padding=0): zero-pad one column on the right and one row at the
 * bottom, then a stride-2 3x3 conv without padding (so output pixel i sees input 2i..2i+2,
 * not 2i-1..2i+1 as a symmetric pad would give). */
static gboolean
downsample (Run *run, const Conv *cv, Act *x, GError **error)
{
  Act padded = next_slot (x, 1), out = next_slot (x, 2);

  padded.c = x->c;
  padded.h = x->h + 1;
  padded.w = x->w + 1;
  plan_act (run, &padded);
  if (!run->planning)
    {
      const float *src = act_data (run, x);
      float *dst = act_data (run, &padded);

      for (int64_t ch = 0; ch < x->c; ch++)
        {
          for (int64_t y = 0; y < x->h; y++)
            {
              float *row = dst + (ch * padded.h + y) * padded.w;

              memcpy (row, src + (ch * x->h + y) * x->w, (size_t) x->w * sizeof (float));
              row[x->w] = 0.0f;
            }
          memset (dst + (ch * padded.h + x->h) * padded.w, 0,
                  (size_t) padded.w * sizeof (float));
        }
    }
  if (!run_conv (run, cv, &padded, 2, 0, &out, error))
    return FALSE;
  *x = out;
  return TRUE;
}

/* Upsample2D: nearest 2x, then a 3x3 conv. */
static gboolean
upsample (Run *run, const Conv *cv, Act *x, GError **error)
{
  Act up = next_slot (x, 1), out = next_slot (x, 2);

  up.c = x->c;
  up.h = 2 * x->h;
  up.w = 2 * x->w;
  plan_act (run, &up);
  if (!run->planning)
    gesso_upsample_nearest2x (act_data (run, x), x->c, x->h, x->w, act_data (run, &up));
  if (!run_conv (run, cv, &up, 1, 1, &out, error))
    return FALSE;
  *x = out;
  return TRUE;
}

static gboolean
mid_block (Run *run, const Coder *coder, Act *x, GError **error)
{
  return resnet (run, &coder->mid_resnets[0], x, error)
         && (!coder->has_attention || attention (run, &coder->attention, x, error))
         && resnet (run, &coder->mid_resnets[1], x, error);
}

/* image -> moments [2 * latent, h, w] (mean channels first, then logvar), split into the
 * caller's buffers. */
static gboolean
encode_run (Run *run, const GessoVae *vae, const float *image, int64_t height, int64_t width,
            float *mean, float *logvar, float *std, GError **error)
{
  const Coder *enc = &vae->encoder;
  Act x = in_slot (0);
  Act img = external (image, vae->config.in_channels, height, width);

  if (!run_conv (run, &enc->conv_in, &img, 1, 1, &x, error))
    return FALSE;
  for (int i = 0; i < vae->config.n_levels; i++)
    {
      const Level *level = &enc->levels[i];

      for (int j = 0; j < level->n_resnets; j++)
        if (!resnet (run, &level->resnets[j], &x, error))
          return FALSE;
      if (level->has_resample && !downsample (run, &level->resample, &x, error))
        return FALSE;
    }
  if (!mid_block (run, enc, &x, error))
    return FALSE;
  group_norm (run, &enc->norm_out, &x, &x, TRUE);

  Act moments = next_slot (&x, 1);
  if (!run_conv (run, &enc->conv_out, &x, 1, 1, &moments, error))
    return FALSE;
  if (vae->has_quant_conv)
    {
      Act quant = next_slot (&moments, 1);

      if (!run_conv (run, &vae->quant_conv, &moments, 1, 0, &quant, error))
        return FALSE;
      moments = quant;
    }
  if (run->planning)
    return TRUE;

  const size_t n = act_numel (&moments) / 2;
  const float *m = act_data (run, &moments);

  memcpy (mean, m, n * sizeof (float));
  for (size_t i = 0; i < n; i++)
    {
      float lv = CLAMP (m[n + i], LOGVAR_MIN, LOGVAR_MAX);

      if (logvar != NULL)
        logvar[i] = lv;
      if (std != NULL)
        std[i] = expf (0.5f * lv);
    }
  return TRUE;
}

static gboolean
decode_run (Run *run, const GessoVae *vae, const float *latent, int64_t latent_h,
            int64_t latent_w, float *image, GError **error)
{
  const Coder *dec = &vae->decoder;
  const int n_levels = vae->config.n_levels;
  const int factor = gesso_vae_config_latent_factor (&vae->config);
  Act z = external (latent, vae->config.latent_channels, latent_h, latent_w);
  Act x = in_slot (1);

  if (vae->has_post_quant_conv)
    {
      Act q = in_slot (0);

      if (!run_conv (run, &vae->post_quant_conv, &z, 1, 0, &q, error))
        return FALSE;
      z = q;
    }
  if (!run_conv (run, &dec->conv_in, &z, 1, 1, &x, error) || !mid_block (run, dec, &x, error))
    return FALSE;
  for (int i = 0; i < n_levels; i++)
    {
      const Level *level = &dec->levels[i];

      for (int j = 0; j < level->n_resnets; j++)
        if (!resnet (run, &level->resnets[j], &x, error))
          return FALSE;
      if (level->has_resample && !upsample (run, &level->resample, &x, error))
        return FALSE;
    }
  group_norm (run, &dec->norm_out, &x, &x, TRUE);

  /* the last conv writes straight into the caller's image */
  Act out = external (image, vae->config.out_channels, latent_h * factor, latent_w * factor);
  return run_conv (run, &dec->conv_out, &x, 1, 1, &out, error);
}

typedef gboolean (*Forward) (Run *run, const GessoVae *vae, const void *input, int64_t h,
                             int64_t w, float *out0, float *out1, float *out2, GError **error);

static gboolean
encode_forward (Run *run, const GessoVae *vae, const void *input, int64_t h, int64_t w,
                float *out0, float *out1, float *out2, GError **error)
{
  return encode_run (run, vae, input, h, w, out0, out1, out2, error);
}

static gboolean
decode_forward (Run *run, const GessoVae *vae, const void *input, int64_t h, int64_t w,
                float *out0, float *out1, float *out2, GError **error)
{
  return decode_run (run, vae, input, h, w, out0, error);
}

/* Image sides (H = latent side * factor) the VAE accepts. */
static gboolean
check_image_size (const GessoVaeConfig *config, int64_t height, int64_t width, GError **error)
{
  const int f = gesso_vae_config_latent_factor (config);

  if (height <= 0 || width <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the VAE cannot work on an empty image (%" G_GINT64_FORMAT "x%"
                   G_GINT64_FORMAT ")", width, height);
      return FALSE;
    }
  if (height > MAX_SIDE || width > MAX_SIDE)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the image is %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "; the VAE works on "
                   "at most %d pixels a side, scale it down first", width, height, MAX_SIDE);
      return FALSE;
    }
  if (height % f != 0 || width % f != 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the image is %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "; the VAE needs "
                   "sides that are multiples of %d (crop or pad it to %" G_GINT64_FORMAT "x%"
                   G_GINT64_FORMAT ")", width, height, f,
                   MAX ((width / f) * f, (int64_t) f), MAX ((height / f) * f, (int64_t) f));
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_latent_size (const GessoVaeConfig *config, int64_t latent_h, int64_t latent_w,
                   GError **error)
{
  const int f = gesso_vae_config_latent_factor (config);

  if (latent_h <= 0 || latent_w <= 0 || latent_h > MAX_SIDE / f || latent_w > MAX_SIDE / f)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "a %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " latent cannot be decoded; "
                   "its sides must be 1 to %d (%d pixels)", latent_w, latent_h, MAX_SIDE / f,
                   MAX_SIDE);
      return FALSE;
    }
  return TRUE;
}

/* Runs FORWARD in planning mode and returns the arena bytes it needs, slots first. */
static size_t
plan (const GessoVae *vae, Forward forward, int64_t h, int64_t w, Run *run)
{
  size_t total = 0;
  GError *never = NULL;

  memset (run, 0, sizeof *run);
  run->planning = TRUE;
  run->groups = vae->config.norm_num_groups;
  run->eps = vae->config.norm_eps;
  forward (run, vae, NULL, h, w, NULL, NULL, NULL, &never);
  g_assert (never == NULL);     /* planning computes nothing and cannot fail */
  for (int i = 0; i < N_SLOTS; i++)
    total += gesso_arena_block_size (run->slot_floats[i] * sizeof (float));
  return total + run->kernel_bytes;
}

static gboolean
execute (const GessoVae *vae, Forward forward, const void *input, int64_t h, int64_t w,
         float *out0, float *out1, float *out2, GessoArena *scratch, GError **error)
{
  g_autoptr (GessoArena) own = NULL;
  Run run;
  size_t need = plan (vae, forward, h, w, &run);
  size_t mark;
  gboolean ok;

  if (scratch == NULL)
    {
      own = gesso_arena_new (need, error);
      if (own == NULL)
        {
          g_prefix_error (error, "not enough memory for the VAE at %" G_GINT64_FORMAT "x%"
                          G_GINT64_FORMAT " (%.0f MiB of scratch): ", w, h,
                          (double) need / (1024.0 * 1024.0));
          return FALSE;
        }
      scratch = own;
    }
  else if (gesso_arena_capacity (scratch) - gesso_arena_used (scratch) < need)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "the VAE needs %zu bytes of scratch at %" G_GINT64_FORMAT "x%"
                   G_GINT64_FORMAT " but its arena has %zu free (size it with "
                   "gesso_vae_*_scratch_bytes)", need, w, h,
                   gesso_arena_capacity (scratch) - gesso_arena_used (scratch));
      return FALSE;
    }

  mark = gesso_arena_mark (scratch);
  run.planning = FALSE;
  run.arena = scratch;
  for (int i = 0; i < N_SLOTS; i++)
    {
      run.slot[i] = gesso_arena_alloc_floats (scratch, run.slot_floats[i]);
      g_assert (run.slot[i] != NULL || run.slot_floats[i] == 0);
    }
  ok = forward (&run, vae, input, h, w, out0, out1, out2, error);
  gesso_arena_reset (scratch, mark);
  return ok;
}

gboolean
gesso_vae_encode_scratch_bytes (const GessoVae *vae, int64_t height, int64_t width,
                                size_t *bytes, GError **error)
{
  g_return_val_if_fail (vae != NULL && bytes != NULL, FALSE);

  Run run;

  if (vae->taesd != NULL)
    return gesso_taesd_encode_scratch_bytes (vae->taesd, height, width, bytes, error);
  if (!check_image_size (&vae->config, height, width, error))
    return FALSE;
  *bytes = plan (vae, encode_forward, height, width, &run);
  return TRUE;
}

gboolean
gesso_vae_decode_scratch_bytes (const GessoVae *vae, int64_t latent_h, int64_t latent_w,
                                size_t *bytes, GError **error)
{
  g_return_val_if_fail (vae != NULL && bytes != NULL, FALSE);

  Run run;

  if (vae->taesd != NULL)
    return gesso_taesd_decode_scratch_bytes (vae->taesd, latent_h, latent_w, bytes, error);
  if (!check_latent_size (&vae->config, latent_h, latent_w, error))
    return FALSE;
  *bytes = plan (vae, decode_forward, latent_h, latent_w, &run);
  return TRUE;
}

gboolean
gesso_vae_config_encode_scratch_bytes (const GessoVaeConfig *config, int64_t height,
                                       int64_t width, size_t *bytes, GError **error)
{
  g_return_val_if_fail (config != NULL && bytes != NULL, FALSE);

  g_autoptr (GessoVae) layout = NULL;

  if (!gesso_vae_config_validate (config, error))
    return FALSE;
  layout = vae_layout_new (config);
  return gesso_vae_encode_scratch_bytes (layout, height, width, bytes, error);
}

gboolean
gesso_vae_config_decode_scratch_bytes (const GessoVaeConfig *config, int64_t latent_h,
                                       int64_t latent_w, size_t *bytes, GError **error)
{
  g_return_val_if_fail (config != NULL && bytes != NULL, FALSE);

  g_autoptr (GessoVae) layout = NULL;

  if (!gesso_vae_config_validate (config, error))
    return FALSE;
  layout = vae_layout_new (config);
  return gesso_vae_decode_scratch_bytes (layout, latent_h, latent_w, bytes, error);
}

/* TAESD's encoder is deterministic: its latent is the "mean" of a posterior with no spread,
 * so a caller that samples mean + std * noise gets the latent itself. */
static gboolean
taesd_encode (GessoVae *vae, const float *image, int64_t height, int64_t width, float *mean,
              float *logvar, float *std, GessoArena *scratch, GError **error)
{
  const int f = gesso_taesd_latent_factor (vae->taesd);
  size_t n;

  if (!gesso_taesd_encode (vae->taesd, image, height, width, mean, scratch, error))
    return FALSE;
  n = (size_t) vae->config.latent_channels * (size_t) (height / f) * (size_t) (width / f);
  for (size_t i = 0; i < n; i++)
    {
      if (logvar != NULL)
        logvar[i] = LOGVAR_MIN;
      if (std != NULL)
        std[i] = 0.0f;
    }
  return TRUE;
}

gboolean
gesso_vae_encode (GessoVae *vae, const float *image, int64_t height, int64_t width, float *mean,
                  float *logvar, float *std, GessoArena *scratch, GError **error)
{
  g_return_val_if_fail (vae != NULL, FALSE);
  g_return_val_if_fail (image != NULL && mean != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (vae->taesd != NULL)
    return taesd_encode (vae, image, height, width, mean, logvar, std, scratch, error);
  if (!check_image_size (&vae->config, height, width, error))
    return FALSE;
  return execute (vae, encode_forward, image, height, width, mean, logvar, std, scratch,
                  error);
}

gboolean
gesso_vae_decode (GessoVae *vae, const float *latent, int64_t latent_h, int64_t latent_w,
                  float *image, GessoArena *scratch, GError **error)
{
  g_return_val_if_fail (vae != NULL, FALSE);
  g_return_val_if_fail (latent != NULL && image != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (vae->taesd != NULL)
    return gesso_taesd_decode (vae->taesd, latent, latent_h, latent_w, image, scratch, error);
  if (!check_latent_size (&vae->config, latent_h, latent_w, error))
    return FALSE;
  return execute (vae, decode_forward, latent, latent_h, latent_w, image, NULL, NULL, scratch,
                  error);
}
