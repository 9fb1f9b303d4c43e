/* The UNet's config: parsing config.json, inferring it from weight shapes, reporting a config
 * that does not fit the weights, and the builder and forward on synthetic models (random
 * weights of tiny UNets of several structures, written as diffusers folders to a temporary
 * directory). Numerical agreement with diffusers is the conformance suite's job; here the
 * forward is checked for what holds whatever the weights: sizes, memory plan, errors, and
 * that the samples of a batch do not mix. */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "io-fixtures.h"
#include "io/config.h"
#include "io/model_files.h"
#include "model/unet.h"
#include "model/weights.h"
#include "tensor/arena.h"

static const char tiny_sd1_json[] =
  "{\"_class_name\": \"UNet2DConditionModel\", \"act_fn\": \"silu\","
  " \"addition_embed_type\": null, \"attention_head_dim\": 8, \"attention_type\": \"default\","
  " \"block_out_channels\": [32, 64], \"center_input_sample\": false,"
  " \"class_embed_type\": null, \"conv_in_kernel\": 3, \"conv_out_kernel\": 3,"
  " \"cross_attention_dim\": 32, \"down_block_types\": [\"CrossAttnDownBlock2D\","
  " \"DownBlock2D\"], \"downsample_padding\": 1, \"dropout\": 0.0,"
  " \"dual_cross_attention\": false, \"flip_sin_to_cos\": true, \"freq_shift\": 0,"
  " \"in_channels\": 4, \"layers_per_block\": 2, \"mid_block_scale_factor\": 1,"
  " \"mid_block_type\": \"UNetMidBlock2DCrossAttn\", \"norm_eps\": 1e-05,"
  " \"norm_num_groups\": 32, \"num_attention_heads\": null, \"only_cross_attention\": false,"
  " \"out_channels\": 4, \"resnet_out_scale_factor\": 1.0, \"resnet_time_scale_shift\":"
  " \"default\", \"time_embedding_type\": \"positional\", \"transformer_layers_per_block\": 1,"
  " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"], \"upcast_attention\": false,"
  " \"use_linear_projection\": false}";

static const char sd2_json[] =
  "{\"_class_name\": \"UNet2DConditionModel\", \"attention_head_dim\": [5, 10, 20, 20],"
  " \"block_out_channels\": [320, 640, 1280, 1280], \"cross_attention_dim\": 1024,"
  " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\","
  " \"CrossAttnDownBlock2D\", \"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\","
  " \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"],"
  " \"use_linear_projection\": true, \"upcast_attention\": true, \"layers_per_block\": 2}";

static gboolean
parse (const char *text, GessoUnetConfig *config, GError **error)
{
  g_autoptr (JsonObject) json = gesso_config_load_from_data (text, -1, "test.json", error);

  return json != NULL && gesso_unet_config_from_json (json, "test.json", config, error);
}

static void
test_json_tiny_sd1 (void)
{
  g_autoptr (GError) error = NULL;
  GessoUnetConfig c;

  g_assert_true (parse (tiny_sd1_json, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.n_levels, ==, 2);
  g_assert_cmpint (c.block_out_channels[0], ==, 32);
  g_assert_cmpint (c.block_out_channels[1], ==, 64);
  g_assert_cmpint (c.in_channels, ==, 4);
  g_assert_cmpint (c.out_channels, ==, 4);
  g_assert_cmpint (c.layers_per_block, ==, 2);
  g_assert_true (c.down_cross_attention[0]);
  g_assert_false (c.down_cross_attention[1]);
  /* up_block_types lists the deepest level first: UpBlock2D serves level 1 */
  g_assert_true (c.up_cross_attention[0]);
  g_assert_false (c.up_cross_attention[1]);
  /* SD1: attention_head_dim is the number of heads */
  g_assert_cmpint (c.heads[0], ==, 8);
  g_assert_cmpint (c.heads[1], ==, 8);
  g_assert_cmpint (c.mid_heads, ==, 8);
  g_assert_cmpint (c.transformer_depth[0], ==, 1);
  g_assert_cmpint (c.mid_transformer_depth, ==, 1);
  g_assert_false (c.use_linear_projection);
  g_assert_cmpint (c.cross_attention_dim, ==, 32);
  g_assert_cmpint (c.norm_num_groups, ==, 32);
  g_assert_cmpfloat (c.norm_eps, ==, 1e-5f);
  g_assert_true (c.flip_sin_to_cos);
  g_assert_cmpfloat (c.freq_shift, ==, 0.0f);
  g_assert_cmpint (c.time_proj_dim, ==, 32);
  g_assert_cmpint (c.time_embed_dim, ==, 128);
  g_assert_true (c.heads_known);
}

static void
test_json_sd2 (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  GessoUnetConfig c;

  g_assert_true (parse (sd2_json, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.n_levels, ==, 4);
  /* heads per level: head dim 64 everywhere */
  for (int l = 0; l < 4; l++)
    g_assert_cmpint (c.block_out_channels[l] / c.heads[l], ==, 64);
  g_assert_cmpint (c.mid_heads, ==, 20);
  g_assert_true (c.use_linear_projection);
  g_assert_true (c.upcast_attention);
  g_assert_cmpint (c.cross_attention_dim, ==, 1024);
  g_assert_true (c.down_cross_attention[2]);
  g_assert_false (c.down_cross_attention[3]);
  g_assert_false (c.up_cross_attention[3]);
  g_assert_true (c.up_cross_attention[0]);
  text = gesso_unet_config_describe (&c);
  g_assert_nonnull (strstr (text, "(320, 640, 1280, 1280)"));
  g_assert_nonnull (strstr (text, "linear"));
}

static void
test_json_defaults (void)
{
  g_autoptr (GError) error = NULL;
  GessoUnetConfig c;

  /* an empty config means diffusers' defaults: SD1's layout with a 1280-wide context */
  g_assert_true (parse ("{}", &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.n_levels, ==, 4);
  g_assert_cmpint (c.block_out_channels[3], ==, 1280);
  g_assert_cmpint (c.heads[0], ==, 8);
  g_assert_cmpint (c.cross_attention_dim, ==, 1280);
  g_assert_true (c.down_cross_attention[0]);
  g_assert_false (c.down_cross_attention[3]);
  g_assert_false (c.up_cross_attention[3]);
  g_assert_cmpint (c.time_embed_dim, ==, 1280);
}

static void
test_json_num_attention_heads (void)
{
  g_autoptr (GError) error = NULL;
  GessoUnetConfig c;

  /* when set, num_attention_heads wins over attention_head_dim */
  g_assert_true (parse ("{\"block_out_channels\": [32, 64], \"attention_head_dim\": 8,"
                        " \"num_attention_heads\": [2, 4], \"transformer_layers_per_block\":"
                        " [1, 3], \"down_block_types\": [\"CrossAttnDownBlock2D\","
                        " \"CrossAttnDownBlock2D\"], \"up_block_types\": [\"CrossAttnUpBlock2D\","
                        " \"CrossAttnUpBlock2D\"], \"time_embedding_dim\": 96}", &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.heads[0], ==, 2);
  g_assert_cmpint (c.heads[1], ==, 4);
  g_assert_cmpint (c.mid_heads, ==, 4);
  g_assert_cmpint (c.transformer_depth[1], ==, 3);
  g_assert_cmpint (c.up_transformer_depth[1], ==, 3);
  g_assert_cmpint (c.mid_transformer_depth, ==, 3);
  g_assert_cmpint (c.time_embed_dim, ==, 96);
}

typedef struct
{
  const char *json;
  GessoErrorCode code;
  const char *needle;           /* must appear in the message */
} Refused;

static void
test_json_refused (void)
{
  static const Refused cases[] = {
    { "{\"addition_embed_type\": \"text_image\"}", GESSO_ERROR_UNSUPPORTED,
      "addition_embed_type" },
    /* SDXL's added embedding needs its widths */
    { "{\"addition_embed_type\": \"text_time\"}", GESSO_ERROR_MISSING,
      "addition_time_embed_dim" },
    { "{\"class_embed_type\": \"timestep\"}", GESSO_ERROR_UNSUPPORTED, "class_embed_type" },
    { "{\"act_fn\": \"gelu\"}", GESSO_ERROR_UNSUPPORTED, "act_fn" },
    { "{\"resnet_time_scale_shift\": \"scale_shift\"}", GESSO_ERROR_UNSUPPORTED,
      "resnet_time_scale_shift" },
    { "{\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"}", GESSO_ERROR_UNSUPPORTED,
      "mid_block_type" },
    { "{\"only_cross_attention\": [false, true, false, false]}", GESSO_ERROR_UNSUPPORTED,
      "only_cross_attention" },
    { "{\"_class_name\": \"UNet2DModel\"}", GESSO_ERROR_UNSUPPORTED, "UNet2DModel" },
    { "{\"layers_per_block\": \"two\"}", GESSO_ERROR_CORRUPT, "layers_per_block" },
    { "{\"block_out_channels\": [0, 64]}", GESSO_ERROR_UNSUPPORTED, "block_out_channels" },
    { "{\"block_out_channels\": [32, 64, 64, 64, 64, 64, 64]}", GESSO_ERROR_UNSUPPORTED,
      "levels" },
    { "{\"block_out_channels\": [32, 64]}", GESSO_ERROR_MISSING, "down_block_types" },
    { "{\"block_out_channels\": [32, 64], \"down_block_types\": [\"DownBlock2D\"],"
      " \"up_block_types\": [\"UpBlock2D\", \"UpBlock2D\"]}", GESSO_ERROR_CORRUPT,
      "down_block_types" },
    { "{\"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\","
      " \"SimpleCrossAttnDownBlock2D\", \"DownBlock2D\"]}", GESSO_ERROR_UNSUPPORTED,
      "SimpleCrossAttnDownBlock2D" },
    { "{\"attention_head_dim\": [5, 10, 20]}", GESSO_ERROR_CORRUPT, "attention_head_dim" },
    /* 320 channels do not split into 7 heads */
    { "{\"attention_head_dim\": 7}", GESSO_ERROR_UNSUPPORTED, "heads" },
    { "{\"norm_num_groups\": 48}", GESSO_ERROR_UNSUPPORTED, "groups" },
    { "{\"conv_in_kernel\": 4}", GESSO_ERROR_UNSUPPORTED, "odd" },
    { "{\"norm_eps\": -1}", GESSO_ERROR_UNSUPPORTED, "norm_eps" },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      GessoUnetConfig c;

      g_test_message ("%s", cases[i].json);
      g_assert_false (parse (cases[i].json, &c, &error));
      g_assert_error (error, GESSO_ERROR, (gint) cases[i].code);
      g_assert_nonnull (strstr (error->message, cases[i].needle));
      g_assert_nonnull (strstr (error->message, "test.json"));
    }
}

/* --- Synthetic models --------------------------------------------------------------------- */

/* What a synthetic UNet looks like; GROUPS 32 so that inference (which assumes SD's 32)
 * builds the same model. */
typedef struct
{
  int in_channels;
  int n_levels;
  int channels[4];
  int layers_per_block;
  gboolean cross[4];            /* per level, down and up alike */
  int heads[4];
  int depth;
  gboolean linear;
  int context_dim;
  const char *omit;             /* a tensor left out, or NULL */
} Synth;

typedef struct
{
  FixtureSt st;
  guint32 state;
  const char *omit;
} Writer;

static float
next_uniform (Writer *w)
{
  /* xorshift32: reproducible across platforms */
  w->state ^= w->state << 13;
  w->state ^= w->state >> 17;
  w->state ^= w->state << 5;
  return (float) ((double) w->state / 4294967296.0 * 2.0 - 1.0);
}

static void
add_tensor (Writer *w, const char *name, int ndim, const int64_t *shape, float offset,
            float scale)
{
  g_autoptr (GString) shape_json = g_string_new ("[");
  g_autofree float *values = NULL;
  int64_t n = 1;

  if (w->omit != NULL && strcmp (name, w->omit) == 0)
    return;
  for (int i = 0; i < ndim; i++)
    {
      g_string_append_printf (shape_json, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
      n *= shape[i];
    }
  g_string_append_c (shape_json, ']');
  values = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    values[i] = offset + scale * next_uniform (w);
  fixture_st_add (&w->st, name, "F32", shape_json->str, values);
}

static void
add_norm (Writer *w, const char *prefix, const char *name, int64_t c)
{
  g_autofree char *g = g_strdup_printf ("%s%s%s.weight", prefix, *prefix ? "." : "", name);
  g_autofree char *b = g_strdup_printf ("%s%s%s.bias", prefix, *prefix ? "." : "", name);

  add_tensor (w, g, 1, (int64_t[]) { c }, 1.0f, 0.1f);
  add_tensor (w, b, 1, (int64_t[]) { c }, 0.0f, 0.1f);
}

/* A weight [OUT, IN, K, K] (NDIM 4) or [OUT, IN] (NDIM 2), scaled like PyTorch's default
 * init so activations stay O(1); with a bias when BIAS. */
static void
add_layer (Writer *w, const char *prefix, const char *name, int ndim, int64_t out, int64_t in,
           int64_t k, gboolean bias)
{
  g_autofree char *wn = g_strdup_printf ("%s%s%s.weight", prefix, *prefix ? "." : "", name);
  g_autofree char *bn = g_strdup_printf ("%s%s%s.bias", prefix, *prefix ? "." : "", name);
  float scale = (float) (1.0 / sqrt ((double) (in * k * k)));

  add_tensor (w, wn, ndim, (int64_t[]) { out, in, k, k }, 0.0f, scale);
  if (bias)
    add_tensor (w, bn, 1, (int64_t[]) { out }, 0.0f, 0.1f);
}

static void
add_resnet (Writer *w, const char *prefix, int64_t in, int64_t out, int64_t temb)
{
  add_norm (w, prefix, "norm1", in);
  add_layer (w, prefix, "conv1", 4, out, in, 3, TRUE);
  add_layer (w, prefix, "time_emb_proj", 2, out, temb, 1, TRUE);
  add_norm (w, prefix, "norm2", out);
  add_layer (w, prefix, "conv2", 4, out, out, 3, TRUE);
  if (in != out)
    add_layer (w, prefix, "conv_shortcut", 4, out, in, 1, TRUE);
}

static void
add_transformer (Writer *w, const Synth *s, const char *prefix, int64_t c)
{
  add_norm (w, prefix, "norm", c);
  add_layer (w, prefix, "proj_in", s->linear ? 2 : 4, c, c, 1, TRUE);
  add_layer (w, prefix, "proj_out", s->linear ? 2 : 4, c, c, 1, TRUE);
  for (int d = 0; d < s->depth; d++)
    {
      g_autofree char *p = g_strdup_printf ("%s.transformer_blocks.%d", prefix, d);

      add_norm (w, p, "norm1", c);
      add_norm (w, p, "norm2", c);
      add_norm (w, p, "norm3", c);
      for (int a = 1; a <= 2; a++)
        {
          g_autofree char *q = g_strdup_printf ("attn%d.to_q", a);
          g_autofree char *k = g_strdup_printf ("attn%d.to_k", a);
          g_autofree char *v = g_strdup_printf ("attn%d.to_v", a);
          g_autofree char *o = g_strdup_printf ("attn%d.to_out.0", a);
          int64_t kv_in = a == 1 ? c : s->context_dim;

          add_layer (w, p, q, 2, c, c, 1, FALSE);
          add_layer (w, p, k, 2, c, kv_in, 1, FALSE);
          add_layer (w, p, v, 2, c, kv_in, 1, FALSE);
          add_layer (w, p, o, 2, c, c, 1, TRUE);
        }
      add_layer (w, p, "ff.net.0.proj", 2, 8 * c, c, 1, TRUE);
      add_layer (w, p, "ff.net.2", 2, c, 4 * c, 1, TRUE);
    }
}

/* The safetensors of a diffusers UNet with structure S, named as diffusers names them. */
static GBytes *
synth_weights (const Synth *s)
{
  Writer w = { .state = 0x9e3779b9u, .omit = s->omit };
  const int n = s->n_levels, lpb = s->layers_per_block;
  const int64_t c0 = s->channels[0], temb = 4 * c0, deep = s->channels[n - 1];

  fixture_st_init (&w.st);
  add_layer (&w, "", "conv_in", 4, c0, s->in_channels, 3, TRUE);
  add_layer (&w, "time_embedding", "linear_1", 2, temb, c0, 1, TRUE);
  add_layer (&w, "time_embedding", "linear_2", 2, temb, temb, 1, TRUE);
  for (int l = 0; l < n; l++)
    for (int j = 0; j < lpb; j++)
      {
        g_autofree char *r = g_strdup_printf ("down_blocks.%d.resnets.%d", l, j);
        g_autofree char *a = g_strdup_printf ("down_blocks.%d.attentions.%d", l, j);
        g_autofree char *d = g_strdup_printf ("down_blocks.%d.downsamplers.0", l);

        add_resnet (&w, r, j == 0 ? s->channels[MAX (l - 1, 0)] : s->channels[l],
                    s->channels[l], temb);
        if (s->cross[l])
          add_transformer (&w, s, a, s->channels[l]);
        if (j == lpb - 1 && l < n - 1)
          add_layer (&w, d, "conv", 4, s->channels[l], s->channels[l], 3, TRUE);
      }
  add_resnet (&w, "mid_block.resnets.0", deep, deep, temb);
  add_transformer (&w, s, "mid_block.attentions.0", deep);
  add_resnet (&w, "mid_block.resnets.1", deep, deep, temb);
  for (int u = 0; u < n; u++)
    {
      const int l = n - 1 - u;
      int64_t prev = u == 0 ? deep : s->channels[l + 1];

      for (int j = 0; j <= lpb; j++)
        {
          g_autofree char *r = g_strdup_printf ("up_blocks.%d.resnets.%d", u, j);
          g_autofree char *a = g_strdup_printf ("up_blocks.%d.attentions.%d", u, j);
          int64_t skip = j == lpb ? s->channels[MAX (l - 1, 0)] : s->channels[l];

          add_resnet (&w, r, prev + skip, s->channels[l], temb);
          if (s->cross[l])
            add_transformer (&w, s, a, s->channels[l]);
          prev = s->channels[l];
        }
      if (l > 0)
        {
          g_autofree char *p = g_strdup_printf ("up_blocks.%d.upsamplers.0", u);
          add_layer (&w, p, "conv", 4, s->channels[l], s->channels[l], 3, TRUE);
        }
    }
  add_norm (&w, "", "conv_norm_out", c0);
  add_layer (&w, "", "conv_out", 4, 4, c0, 3, TRUE);
  return fixture_st_finish (&w.st);
}

/* A config.json for S; CHANNELS_OVERRIDE (if not NULL) replaces block_out_channels, LINEAR
 * says use_linear_projection. */
static char *
synth_config_json (const Synth *s, const char *channels_override, gboolean linear)
{
  GString *j = g_string_new ("{\"_class_name\": \"UNet2DConditionModel\"");
  const int n = s->n_levels;

  g_string_append (j, ", \"block_out_channels\": ");
  if (channels_override != NULL)
    g_string_append (j, channels_override);
  else
    for (int l = 0; l < n; l++)
      g_string_append_printf (j, "%s%d", l ? ", " : "[", s->channels[l]);
  if (channels_override == NULL)
    g_string_append_c (j, ']');
  g_string_append (j, ", \"down_block_types\": [");
  for (int l = 0; l < n; l++)
    g_string_append_printf (j, "%s\"%s\"", l ? ", " : "",
                            s->cross[l] ? "CrossAttnDownBlock2D" : "DownBlock2D");
  g_string_append (j, "], \"up_block_types\": [");
  for (int u = 0; u < n; u++)
    g_string_append_printf (j, "%s\"%s\"", u ? ", " : "",
                            s->cross[n - 1 - u] ? "CrossAttnUpBlock2D" : "UpBlock2D");
  g_string_append (j, "], \"attention_head_dim\": [");
  for (int l = 0; l < n; l++)
    g_string_append_printf (j, "%s%d", l ? ", " : "", s->heads[l]);
  g_string_append_printf (j, "], \"in_channels\": %d, \"layers_per_block\": %d,"
                          " \"transformer_layers_per_block\": %d, \"cross_attention_dim\": %d,"
                          " \"use_linear_projection\": %s, \"norm_num_groups\": 32}",
                          s->in_channels, s->layers_per_block, s->depth, s->context_dim,
                          linear ? "true" : "false");
  return g_string_free (j, FALSE);
}

/* Writes S as a diffusers folder (with CONFIG_JSON as unet/config.json) and opens it. */
static GessoModelFiles *
synth_open (const Synth *s, const char *config_json, char **dir_out)
{
  g_autoptr (GBytes) bytes = synth_weights (s);
  g_autoptr (GError) error = NULL;
  g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL;
  char *dir = fixture_make_tmpdir ();
  GessoModelFiles *files;

  p1 = fixture_write_text (dir, "model_index.json",
                           "{\"_class_name\": \"StableDiffusionPipeline\","
                           " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"]}");
  p2 = fixture_write_text (dir, "unet/config.json", config_json);
  p3 = fixture_write (dir, "unet/diffusion_pytorch_model.safetensors", bytes);
  files = gesso_model_files_open (dir, &error);
  g_assert_no_error (error);
  *dir_out = dir;
  return files;
}

static const Synth sd1_like = {
  .in_channels = 4, .n_levels = 2, .channels = { 32, 64 }, .layers_per_block = 2,
  .cross = { TRUE, FALSE }, .heads = { 8, 8 }, .depth = 1, .linear = FALSE, .context_dim = 24,
};

/* Three levels, attention only in the middle one, one resnet per level, two transformer
 * blocks, linear projections, an inpainting input. */
static const Synth odd_shape = {
  .in_channels = 9, .n_levels = 3, .channels = { 32, 64, 64 }, .layers_per_block = 1,
  .cross = { FALSE, TRUE, FALSE }, .heads = { 2, 4, 1 }, .depth = 2, .linear = TRUE,
  .context_dim = 16,
};

static void
check_inferred (const Synth *s)
{
  g_autofree char *dir = NULL;
  g_autofree char *json = synth_config_json (s, NULL, s->linear);
  g_autoptr (GessoModelFiles) files = synth_open (s, json, &dir);
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) parsed = NULL;
  GessoUnetConfig c, declared;

  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  g_assert_true (gesso_unet_config_infer (weights, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.in_channels, ==, s->in_channels);
  g_assert_cmpint (c.out_channels, ==, 4);
  g_assert_cmpint (c.n_levels, ==, s->n_levels);
  g_assert_cmpint (c.layers_per_block, ==, s->layers_per_block);
  for (int l = 0; l < s->n_levels; l++)
    {
      g_assert_cmpint (c.block_out_channels[l], ==, s->channels[l]);
      g_assert_cmpint (c.down_cross_attention[l], ==, s->cross[l]);
      g_assert_cmpint (c.up_cross_attention[l], ==, s->cross[l]);
      if (s->cross[l])
        g_assert_cmpint (c.transformer_depth[l], ==, s->depth);
      /* heads are SD's defaults, not the truth */
      g_assert_cmpint (c.heads[l], ==, s->linear ? MAX (s->channels[l] / 64, 1) : 8);
    }
  g_assert_cmpint (c.mid_transformer_depth, ==, s->depth);
  g_assert_cmpint (c.use_linear_projection, ==, s->linear);
  g_assert_cmpint (c.cross_attention_dim, ==, s->context_dim);
  g_assert_cmpint (c.time_embed_dim, ==, 4 * s->channels[0]);
  g_assert_false (c.heads_known);

  /* the folder's own config agrees with the shapes */
  parsed = gesso_config_load_from_data (json, -1, "config.json", &error);
  g_assert_no_error (error);
  g_assert_true (gesso_unet_config_from_json (parsed, "config.json", &declared, &error));
  g_assert_no_error (error);
  g_assert_true (gesso_unet_config_check (&declared, &c, "config.json", &error));
  g_assert_no_error (error);
  fixture_remove_tree (dir);
}

static void
test_infer (void)
{
  check_inferred (&sd1_like);
  check_inferred (&odd_shape);
}

static void
test_check_mismatch (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *json = synth_config_json (&sd1_like, NULL, FALSE);
  g_autofree char *wrong = synth_config_json (&sd1_like, "[32, 96]", TRUE);
  g_autoptr (GessoModelFiles) files = synth_open (&sd1_like, json, &dir);
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (JsonObject) parsed = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  GessoUnetConfig inferred, declared;

  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  g_assert_true (gesso_unet_config_infer (weights, &inferred, &error));
  parsed = gesso_config_load_from_data (wrong, -1, "wrong.json", &error);
  g_assert_true (gesso_unet_config_from_json (parsed, "wrong.json", &declared, &error));
  g_assert_no_error (error);

  /* every difference is listed, with the file's name */
  g_assert_false (gesso_unet_config_check (&declared, &inferred, "wrong.json", &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "wrong.json"));
  g_assert_nonnull (strstr (error->message, "block_out_channels: (32, 96) in the config, "
                                            "(32, 64) in the weights"));
  g_assert_nonnull (strstr (error->message, "use_linear_projection"));
  g_clear_error (&error);

  /* the builder refuses it too, and so does the model loader with an override */
  unet = gesso_unet_new (weights, &declared, &error);
  g_assert_null (unet);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_clear_error (&error);
  unet = gesso_unet_new_for_model (files, weights, parsed, &error);
  g_assert_null (unet);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "block_out_channels"));
  g_clear_error (&error);

  /* heads are not a shape: 4 heads instead of 8 is accepted */
  declared = inferred;
  declared.heads[0] = 4;
  g_assert_true (gesso_unet_config_check (&declared, &inferred, "x", &error));
  g_assert_no_error (error);
  fixture_remove_tree (dir);
}

static void
test_folder_config_mismatch (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *wrong = synth_config_json (&sd1_like, "[32, 128]", FALSE);
  g_autoptr (GessoModelFiles) files = synth_open (&sd1_like, wrong, &dir);
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoUnet) unet = NULL;

  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  unet = gesso_unet_new_for_model (files, weights, NULL, &error);
  g_assert_null (unet);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_test_message ("%s", error->message);
  /* the message names the folder's config file */
  g_assert_nonnull (strstr (error->message, "config.json"));
  g_assert_nonnull (strstr (error->message, "(32, 128) in the config"));
  fixture_remove_tree (dir);
}

static void
test_missing_weight (void)
{
  Synth s = sd1_like;
  g_autofree char *dir = NULL;
  g_autofree char *json = synth_config_json (&s, NULL, FALSE);
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoUnet) unet = NULL;

  s.omit = "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_v.weight";
  files = synth_open (&s, json, &dir);
  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  unet = gesso_unet_new_for_model (files, weights, NULL, &error);
  g_assert_null (unet);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, s.omit));
  fixture_remove_tree (dir);
}

/* Deterministic inputs in [-1, 1]. */
static void
fill (float *x, size_t n, guint32 seed)
{
  for (size_t i = 0; i < n; i++)
    {
      seed = seed * 1664525u + 1013904223u;
      x[i] = (float) ((double) (seed >> 8) / 8388608.0 - 1.0);
    }
}

static gboolean
all_finite (const float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isfinite (x[i]))
      return FALSE;
  return TRUE;
}

/* One sample of a batch gives the same result as that sample alone, with its own timestep:
 * a batch is the guidance pair and must never mix its halves. */
static void
check_batch (GessoUnet *unet, const Synth *s, int64_t h, int64_t w)
{
  const int64_t cin = s->in_channels, ctx = 7, one = cin * h * w, out1 = 4 * h * w;
  g_autofree float *sample = g_new (float, 2 * one);
  g_autofree float *context = g_new (float, 2 * ctx * s->context_dim);
  g_autofree float *out2 = g_new (float, 2 * out1);
  g_autofree float *out = g_new (float, out1);
  g_autoptr (GessoArena) arena = NULL;
  g_autoptr (GError) error = NULL;
  const float t[2] = { 999.0f, 41.5f };
  size_t need;

  fill (sample, (size_t) (2 * one), 1);
  fill (context, (size_t) (2 * ctx * s->context_dim), 2);
  need = gesso_unet_scratch_bytes (unet, 2, h, w, ctx);
  g_assert_cmpuint (need, >, 0);
  arena = gesso_arena_new (need, &error);
  g_assert_no_error (error);
  g_assert_true (gesso_unet_forward (unet, sample, t, context, 2, h, w, ctx, out2, arena,
                                     &error));
  g_assert_no_error (error);
  g_assert_true (all_finite (out2, (size_t) (2 * out1)));
  /* the plan is what the forward takes, and it is all given back */
  g_assert_cmpuint (gesso_arena_peak (arena), <=, need);
  g_assert_cmpuint (gesso_arena_used (arena), ==, 0);

  for (int b = 0; b < 2; b++)
    {
      double worst = 0.0;

      g_assert_true (gesso_unet_forward (unet, sample + b * one, &t[b],
                                         context + b * ctx * s->context_dim, 1, h, w, ctx, out,
                                         NULL, &error));
      g_assert_no_error (error);
      for (int64_t i = 0; i < out1; i++)
        worst = MAX (worst, fabs ((double) out[i] - (double) out2[b * out1 + i]));
      g_assert_cmpfloat (worst, <, 1e-4);
    }
  /* and the halves differ: different latents, text and timesteps */
  g_assert_true (memcmp (out2, out2 + out1, (size_t) out1 * sizeof (float)) != 0);
}

static void
check_forward (const Synth *s)
{
  g_autofree char *dir = NULL;
  g_autofree char *json = synth_config_json (s, NULL, s->linear);
  g_autoptr (GessoModelFiles) files = synth_open (s, json, &dir);
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GError) error = NULL;
  const int64_t f = (int64_t) 1 << (s->n_levels - 1);

  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  unet = gesso_unet_new_for_model (files, weights, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (gesso_unet_get_config (unet)->heads_known);
  /* planning needs the config only */
  g_assert_cmpuint (gesso_unet_config_scratch_bytes (gesso_unet_get_config (unet), 2, 4 * f,
                                                     2 * f, 77), ==,
                    gesso_unet_scratch_bytes (unet, 2, 4 * f, 2 * f, 77));
  check_batch (unet, s, 2 * f, 2 * f);
  check_batch (unet, s, f, 3 * f);     /* non-square, the smallest height */
  fixture_remove_tree (dir);
}

static void
test_forward_structures (void)
{
  check_forward (&sd1_like);
  check_forward (&odd_shape);
}

static void
test_forward_refused (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *json = synth_config_json (&sd1_like, NULL, FALSE);
  g_autoptr (GessoModelFiles) files = synth_open (&sd1_like, json, &dir);
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GessoArena) small = NULL;
  g_autoptr (GError) error = NULL;
  float sample[2 * 4 * 8 * 8], context[2 * 3 * 24], out[2 * 4 * 8 * 8];
  float t[2] = { 1.0f, 2.0f };

  fill (sample, G_N_ELEMENTS (sample), 3);
  fill (context, G_N_ELEMENTS (context), 4);
  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  /* no config.json would do as well: inference gives the same structure */
  unet = gesso_unet_new (weights, NULL, &error);
  g_assert_no_error (error);

  /* two levels: sides must be even */
  g_assert_false (gesso_unet_check_size (unet, 2, 7, 8, 3, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "multiples of 2"));
  g_clear_error (&error);
  g_assert_false (gesso_unet_forward (unet, sample, t, context, 2, 8, 5, 3, out, NULL,
                                      &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_unet_check_size (unet, 0, 8, 8, 3, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_unet_check_size (unet, 2, 8, 8, 0, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpuint (gesso_unet_scratch_bytes (unet, 2, 8, 5, 3), ==, 0);

  /* memory grows with the latent and the batch */
  g_assert_cmpuint (gesso_unet_scratch_bytes (unet, 2, 8, 8, 3), >,
                    gesso_unet_scratch_bytes (unet, 1, 8, 8, 3));
  g_assert_cmpuint (gesso_unet_scratch_bytes (unet, 1, 16, 8, 3), >,
                    gesso_unet_scratch_bytes (unet, 1, 8, 8, 3));

  t[1] = NAN;
  g_assert_false (gesso_unet_forward (unet, sample, t, context, 2, 8, 8, 3, out, NULL,
                                      &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "timestep"));
  g_clear_error (&error);
  t[1] = 2.0f;

  small = gesso_arena_new (gesso_unet_scratch_bytes (unet, 2, 8, 8, 3) - 4096, &error);
  g_assert_no_error (error);
  g_assert_false (gesso_unet_forward (unet, sample, t, context, 2, 8, 8, 3, out, small,
                                      &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY);
  g_clear_error (&error);
  g_assert_true (gesso_unet_forward (unet, sample, t, context, 2, 8, 8, 3, out, NULL, &error));
  g_assert_no_error (error);
  fixture_remove_tree (dir);
}

/* What the real models take, for the record (and that planning scales to them). */
static void
test_plan_real_sizes (void)
{
  static const char *const names[] = { "SD1.5", "SD2.x" };
  static const int64_t sides[][3] = { { 64, 64, 2 }, { 96, 96, 2 }, { 128, 128, 2 } };
  const char *jsons[2] = { "{\"cross_attention_dim\": 768}", sd2_json };

  for (int m = 0; m < 2; m++)
    {
      g_autoptr (GError) error = NULL;
      GessoUnetConfig c;

      g_assert_true (parse (jsons[m], &c, &error));
      g_assert_no_error (error);
      for (size_t i = 0; i < G_N_ELEMENTS (sides); i++)
        {
          size_t bytes = gesso_unet_config_scratch_bytes (&c, sides[i][2], sides[i][0],
                                                          sides[i][1], 77);

          g_test_message ("%s, latent %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ", batch %"
                          G_GINT64_FORMAT ": %.1f MiB of UNet working memory", names[m],
                          sides[i][0], sides[i][1], sides[i][2], (double) bytes / 1048576.0);
          g_assert_cmpuint (bytes, >, 0);
          /* activations only, no weights: well under a GB at 512x512 */
          if (i == 0)
            g_assert_cmpuint (bytes, <, (size_t) 1 << 30);
        }
      g_assert_cmpuint (gesso_unet_config_scratch_bytes (&c, 2, 60, 64, 77), ==, 0);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/unet/config/json-tiny-sd1", test_json_tiny_sd1);
  g_test_add_func ("/model/unet/config/json-sd2", test_json_sd2);
  g_test_add_func ("/model/unet/config/json-defaults", test_json_defaults);
  g_test_add_func ("/model/unet/config/json-num-attention-heads",
                   test_json_num_attention_heads);
  g_test_add_func ("/model/unet/config/json-refused", test_json_refused);
  g_test_add_func ("/model/unet/config/infer", test_infer);
  g_test_add_func ("/model/unet/config/check-mismatch", test_check_mismatch);
  g_test_add_func ("/model/unet/config/folder-config-mismatch", test_folder_config_mismatch);
  g_test_add_func ("/model/unet/load/missing-weight", test_missing_weight);
  g_test_add_func ("/model/unet/forward/structures", test_forward_structures);
  g_test_add_func ("/model/unet/forward/refused", test_forward_refused);
  g_test_add_func ("/model/unet/plan/real-sizes", test_plan_real_sizes);
  return g_test_run ();
}
