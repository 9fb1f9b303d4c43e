/* Key mapping (core/model/keymap.c) on synthetic key lists shaped like SD1 and SD2 checkpoints
 * with different level counts, and the weights layer (core/model/weights.c) on small
 * safetensors files written here: slices of fused projections, dtype widening, alignment,
 * shape checks and their messages. */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gesso.h"
#include "io/model_files.h"
#include "model/keymap.h"
#include "model/weights.h"
#include "tensor/half.h"
#include "tensor/tensor.h"

/* --- Synthetic key lists ----------------------------------------------------------------- */

typedef struct
{
  GPtrArray *names;             /* char * */
  GArray *shapes;               /* int64_t[4] */
  GArray *ndims;                /* int */
  GessoComponent component;
} KeyList;

static KeyList *
key_list_new (void)
{
  KeyList *l = g_new0 (KeyList, 1);

  l->names = g_ptr_array_new_with_free_func (g_free);
  l->shapes = g_array_new (FALSE, TRUE, sizeof (int64_t[4]));
  l->ndims = g_array_new (FALSE, TRUE, sizeof (int));
  return l;
}

static void
key_list_free (KeyList *l)
{
  g_ptr_array_unref (l->names);
  g_array_unref (l->shapes);
  g_array_unref (l->ndims);
  g_free (l);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyList, key_list_free)

static void G_GNUC_PRINTF (6, 7)
add_key (KeyList *l, int ndim, int64_t d0, int64_t d1, int64_t d2, const char *format, ...)
{
  int64_t shape[4] = { d0, d1, d2, d2 };
  va_list args;

  va_start (args, format);
  g_ptr_array_add (l->names, g_strdup_vprintf (format, args));
  va_end (args);
  g_array_append_val (l->shapes, shape);
  g_array_append_val (l->ndims, ndim);
}

static GArray *
map_keys (const KeyList *l, GessoModelLayout layout, GessoKeymapLayout *info)
{
  g_autofree GessoKeymapKey *keys = g_new0 (GessoKeymapKey, l->names->len + 1);

  for (guint i = 0; i < l->names->len; i++)
    {
      keys[i].component = l->component;
      keys[i].key = l->names->pdata[i];
      keys[i].ndim = g_array_index (l->ndims, int, i);
      keys[i].shape = (const int64_t *) l->shapes->data + 4 * i;
    }
  return gesso_keymap_map (layout, keys, l->names->len, info);
}

static const GessoKeymapTarget *
find_target (GArray *targets, GessoComponent component, const char *name)
{
  for (guint i = 0; i < targets->len; i++)
    {
      const GessoKeymapTarget *t = &g_array_index (targets, GessoKeymapTarget, i);
      if (t->component == component && strcmp (t->name, name) == 0)
        return t;
    }
  return NULL;
}

/* Asserts that stored KEY maps to NAME of COMPONENT. */
static void
assert_maps (const KeyList *l, GArray *targets, const char *key, GessoComponent component,
             const char *name)
{
  const GessoKeymapTarget *t = find_target (targets, component, name);

  if (t == NULL)
    g_error ("nothing maps to %s '%s'", gesso_component_name (component), name);
  g_assert_cmpstr (l->names->pdata[t->source], ==, key);
}

static void
add_resblock (KeyList *l, const char *prefix, int cin, int cout)
{
  add_key (l, 1, cin, 0, 0, "%sin_layers.0.weight", prefix);
  add_key (l, 4, cout, cin, 3, "%sin_layers.2.weight", prefix);
  add_key (l, 2, cout, 128, 0, "%semb_layers.1.weight", prefix);
  add_key (l, 1, cout, 0, 0, "%sout_layers.0.bias", prefix);
  add_key (l, 4, cout, cout, 3, "%sout_layers.3.weight", prefix);
  if (cin != cout)
    add_key (l, 4, cout, cin, 1, "%sskip_connection.weight", prefix);
}

static void
add_transformer (KeyList *l, const char *prefix, int c)
{
  add_key (l, 1, c, 0, 0, "%snorm.weight", prefix);
  add_key (l, 4, c, c, 1, "%sproj_in.weight", prefix);
  add_key (l, 2, c, c, 0, "%stransformer_blocks.0.attn2.to_k.weight", prefix);
  add_key (l, 2, c * 8, c, 0, "%stransformer_blocks.0.ff.net.0.proj.weight", prefix);
  add_key (l, 1, c, 0, 0, "%stransformer_blocks.0.norm3.bias", prefix);
  add_key (l, 4, c, c, 1, "%sproj_out.weight", prefix);
}

/* An LDM UNet with LEVELS levels of LPB resnets, channels 32 * 2^level; ATTN_LEVELS levels
 * from the top have attention (SD1.5: 4 levels, 2 per block, attention on 3). */
static void
add_ldm_unet (KeyList *l, int levels, int lpb, int attn_levels)
{
  const char *p = "model.diffusion_model.";
  int k = 1, ch = 32;

  add_key (l, 4, 32, 4, 3, "%sinput_blocks.0.0.weight", p);
  add_key (l, 2, 128, 32, 0, "%stime_embed.0.weight", p);
  add_key (l, 1, 128, 0, 0, "%stime_embed.2.bias", p);
  for (int level = 0; level < levels; level++)
    {
      int out = 32 << level;
      for (int j = 0; j < lpb; j++, k++)
        {
          g_autofree char *res = g_strdup_printf ("%sinput_blocks.%d.0.", p, k);
          g_autofree char *att = g_strdup_printf ("%sinput_blocks.%d.1.", p, k);
          add_resblock (l, res, j == 0 ? ch : out, out);
          if (level < attn_levels)
            add_transformer (l, att, out);
        }
      ch = out;
      if (level < levels - 1)
        add_key (l, 4, ch, ch, 3, "%sinput_blocks.%d.0.op.weight", p, k++);
    }
  add_resblock (l, "model.diffusion_model.middle_block.0.", ch, ch);
  add_transformer (l, "model.diffusion_model.middle_block.1.", ch);
  add_resblock (l, "model.diffusion_model.middle_block.2.", ch, ch);
  k = 0;
  for (int level = levels - 1; level >= 0; level--)
    for (int j = 0; j <= lpb; j++, k++)
      {
        g_autofree char *res = g_strdup_printf ("%soutput_blocks.%d.0.", p, k);
        g_autofree char *att = g_strdup_printf ("%soutput_blocks.%d.1.", p, k);
        gboolean attention = level < attn_levels;
        add_resblock (l, res, 2 * (32 << level), 32 << level);
        if (attention)
          add_transformer (l, att, 32 << level);
        if (j == lpb && level > 0)
          add_key (l, 4, 32 << level, 32 << level, 3, "%soutput_blocks.%d.%d.conv.weight", p, k,
                   attention ? 2 : 1);
      }
  add_key (l, 1, 32, 0, 0, "%sout.0.weight", p);
  add_key (l, 4, 4, 32, 3, "%sout.2.bias", p);
}

static void
test_keymap_unet_sd15 (void)
{
  g_autoptr (KeyList) l = key_list_new ();
  g_autoptr (GArray) t = NULL;
  GessoKeymapLayout info;
  const GessoComponent U = GESSO_COMPONENT_UNET;
  const char *p = "model.diffusion_model.";

  add_ldm_unet (l, 4, 2, 3);
  t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);
  g_assert_cmpint (info.unet_levels, ==, 4);
  g_assert_cmpint (info.unet_layers_per_block, ==, 2);
  g_assert_cmpuint (t->len, ==, l->names->len);
  for (guint i = 0; i < t->len; i++)
    g_assert_cmpint (g_array_index (t, GessoKeymapTarget, i).component, ==, U);

#define MAPS(key, name) \
  do { \
    g_autofree char *k_ = g_strconcat (p, key, NULL); \
    assert_maps (l, t, k_, U, name); \
  } while (0)
  MAPS ("input_blocks.0.0.weight", "conv_in.weight");
  MAPS ("time_embed.0.weight", "time_embedding.linear_1.weight");
  MAPS ("time_embed.2.bias", "time_embedding.linear_2.bias");
  MAPS ("input_blocks.1.0.in_layers.0.weight", "down_blocks.0.resnets.0.norm1.weight");
  MAPS ("input_blocks.2.1.proj_in.weight", "down_blocks.0.attentions.1.proj_in.weight");
  MAPS ("input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight");
  MAPS ("input_blocks.4.0.in_layers.2.weight", "down_blocks.1.resnets.0.conv1.weight");
  MAPS ("input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight");
  MAPS ("input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight",
        "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight");
  MAPS ("input_blocks.9.0.op.weight", "down_blocks.2.downsamplers.0.conv.weight");
  MAPS ("input_blocks.11.0.emb_layers.1.weight", "down_blocks.3.resnets.1.time_emb_proj.weight");
  MAPS ("middle_block.0.out_layers.3.weight", "mid_block.resnets.0.conv2.weight");
  MAPS ("middle_block.1.transformer_blocks.0.ff.net.0.proj.weight",
        "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight");
  MAPS ("middle_block.2.out_layers.0.bias", "mid_block.resnets.1.norm2.bias");
  MAPS ("output_blocks.0.0.skip_connection.weight", "up_blocks.0.resnets.0.conv_shortcut.weight");
  MAPS ("output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight");
  MAPS ("output_blocks.3.1.norm.weight", "up_blocks.1.attentions.0.norm.weight");
  MAPS ("output_blocks.5.2.conv.weight", "up_blocks.1.upsamplers.0.conv.weight");
  MAPS ("output_blocks.8.2.conv.weight", "up_blocks.2.upsamplers.0.conv.weight");
  MAPS ("output_blocks.11.1.proj_out.weight", "up_blocks.3.attentions.2.proj_out.weight");
  MAPS ("output_blocks.11.0.out_layers.3.weight", "up_blocks.3.resnets.2.conv2.weight");
  MAPS ("out.0.weight", "conv_norm_out.weight");
  MAPS ("out.2.bias", "conv_out.bias");
#undef MAPS
  g_assert_null (find_target (t, U, "up_blocks.3.upsamplers.0.conv.weight"));

  /* A conv kept as a conv: UNet proj_in stays [C, C, 1, 1] (only the VAE's are squeezed). */
  const GessoKeymapTarget *pin = find_target (t, U, "down_blocks.0.attentions.0.proj_in.weight");
  g_assert_cmpint (pin->ndim, ==, 4);
}

/* Level count and layers_per_block come from the keys: 2 levels x 2 (the conformance tiny
 * UNet) and 3 levels x 1 map with the same code. */
static void
test_keymap_unet_levels (void)
{
  const GessoComponent U = GESSO_COMPONENT_UNET;
  const char *p = "model.diffusion_model.";

  {
    g_autoptr (KeyList) l = key_list_new ();
    g_autoptr (GArray) t = NULL;
    GessoKeymapLayout info;

    add_ldm_unet (l, 2, 2, 1);
    t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);
    g_assert_cmpint (info.unet_levels, ==, 2);
    g_assert_cmpint (info.unet_layers_per_block, ==, 2);
    g_autofree char *a = g_strconcat (p, "input_blocks.5.0.in_layers.0.weight", NULL);
    g_autofree char *b = g_strconcat (p, "output_blocks.2.1.conv.weight", NULL);
    g_autofree char *c = g_strconcat (p, "output_blocks.3.1.norm.weight", NULL);
    assert_maps (l, t, a, U, "down_blocks.1.resnets.1.norm1.weight");
    assert_maps (l, t, b, U, "up_blocks.0.upsamplers.0.conv.weight");
    assert_maps (l, t, c, U, "up_blocks.1.attentions.0.norm.weight");
  }
  {
    g_autoptr (KeyList) l = key_list_new ();
    g_autoptr (GArray) t = NULL;
    GessoKeymapLayout info;

    add_ldm_unet (l, 3, 1, 3);
    t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);
    g_assert_cmpint (info.unet_levels, ==, 3);
    g_assert_cmpint (info.unet_layers_per_block, ==, 1);
    g_autofree char *a = g_strconcat (p, "input_blocks.3.0.in_layers.0.weight", NULL);
    g_autofree char *b = g_strconcat (p, "input_blocks.4.0.op.weight", NULL);
    g_autofree char *c = g_strconcat (p, "input_blocks.5.1.norm.weight", NULL);
    g_autofree char *d = g_strconcat (p, "output_blocks.3.0.in_layers.0.weight", NULL);
    g_autofree char *e = g_strconcat (p, "output_blocks.3.2.conv.weight", NULL);
    g_autofree char *f = g_strconcat (p, "output_blocks.5.1.norm.weight", NULL);
    assert_maps (l, t, a, U, "down_blocks.1.resnets.0.norm1.weight");
    assert_maps (l, t, b, U, "down_blocks.1.downsamplers.0.conv.weight");
    assert_maps (l, t, c, U, "down_blocks.2.attentions.0.norm.weight");
    assert_maps (l, t, d, U, "up_blocks.1.resnets.1.norm1.weight");
    assert_maps (l, t, e, U, "up_blocks.1.upsamplers.0.conv.weight");
    assert_maps (l, t, f, U, "up_blocks.2.attentions.1.norm.weight");
  }
  {
    /* Downsamplers out of step with the block count: a structure we do not understand, so
     * every block key is kept under OTHER (and the UNet will report what it misses). */
    g_autoptr (KeyList) l = key_list_new ();
    g_autoptr (GArray) t = NULL;
    GessoKeymapLayout info;

    add_ldm_unet (l, 2, 2, 1);
    add_key (l, 4, 64, 64, 3, "%sinput_blocks.9.0.in_layers.2.weight", p);
    t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);
    g_assert_cmpint (info.unet_levels, ==, 0);
    g_assert_nonnull (find_target (t, U, "conv_in.weight"));
    g_assert_null (find_target (t, U, "down_blocks.0.resnets.0.norm1.weight"));
    g_autofree char *k = g_strconcat (p, "input_blocks.1.0.in_layers.0.weight", NULL);
    g_assert_nonnull (find_target (t, GESSO_COMPONENT_OTHER, k));
  }
}

static void
add_ldm_vae (KeyList *l, int levels)
{
  const char *p = "first_stage_model.";

  add_key (l, 4, 32, 3, 3, "%sencoder.conv_in.weight", p);
  for (int i = 0; i < levels; i++)
    {
      add_key (l, 4, 32, 32, 3, "%sencoder.down.%d.block.0.conv1.weight", p, i);
      add_key (l, 4, 32, 32, 1, "%sencoder.down.%d.block.1.nin_shortcut.weight", p, i);
      if (i < levels - 1)
        add_key (l, 4, 32, 32, 3, "%sencoder.down.%d.downsample.conv.weight", p, i);
      add_key (l, 1, 32, 0, 0, "%sdecoder.up.%d.block.2.norm2.bias", p, i);
      if (i > 0)
        add_key (l, 4, 32, 32, 3, "%sdecoder.up.%d.upsample.conv.weight", p, i);
    }
  for (int side = 0; side < 2; side++)
    {
      const char *s = side ? "decoder" : "encoder";
      add_key (l, 4, 64, 64, 3, "%s%s.mid.block_1.conv2.weight", p, s);
      add_key (l, 1, 64, 0, 0, "%s%s.mid.block_2.norm1.bias", p, s);
      add_key (l, 1, 64, 0, 0, "%s%s.mid.attn_1.norm.weight", p, s);
      add_key (l, 4, 64, 64, 1, "%s%s.mid.attn_1.q.weight", p, s);
      add_key (l, 1, 64, 0, 0, "%s%s.mid.attn_1.k.bias", p, s);
      add_key (l, 4, 64, 64, 1, "%s%s.mid.attn_1.v.weight", p, s);
      add_key (l, 4, 64, 64, 1, "%s%s.mid.attn_1.proj_out.weight", p, s);
      add_key (l, 1, 64, 0, 0, "%s%s.norm_out.weight", p, s);
      add_key (l, 4, 8, 64, 3, "%s%s.conv_out.weight", p, s);
    }
  add_key (l, 4, 8, 8, 1, "%squant_conv.weight", p);
  add_key (l, 1, 4, 0, 0, "%spost_quant_conv.bias", p);
}

static void
test_keymap_vae (void)
{
  const GessoComponent V = GESSO_COMPONENT_VAE;
  const char *p = "first_stage_model.";

  for (int levels = 2; levels <= 4; levels += 2)
    {
      g_autoptr (KeyList) l = key_list_new ();
      g_autoptr (GArray) t = NULL;
      GessoKeymapLayout info;

      add_ldm_vae (l, levels);
      t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);
      g_assert_cmpint (info.vae_levels, ==, levels);
#define MAPS(key, name) \
  do { \
    g_autofree char *k_ = g_strconcat (p, key, NULL); \
    assert_maps (l, t, k_, V, name); \
  } while (0)
      MAPS ("encoder.conv_in.weight", "encoder.conv_in.weight");
      MAPS ("encoder.down.1.block.0.conv1.weight", "encoder.down_blocks.1.resnets.0.conv1.weight");
      MAPS ("encoder.down.0.block.1.nin_shortcut.weight",
            "encoder.down_blocks.0.resnets.1.conv_shortcut.weight");
      MAPS ("encoder.down.0.downsample.conv.weight",
            "encoder.down_blocks.0.downsamplers.0.conv.weight");
      MAPS ("encoder.mid.block_1.conv2.weight", "encoder.mid_block.resnets.0.conv2.weight");
      MAPS ("decoder.mid.block_2.norm1.bias", "decoder.mid_block.resnets.1.norm1.bias");
      MAPS ("encoder.mid.attn_1.norm.weight", "encoder.mid_block.attentions.0.group_norm.weight");
      MAPS ("decoder.mid.attn_1.q.weight", "decoder.mid_block.attentions.0.to_q.weight");
      MAPS ("decoder.mid.attn_1.k.bias", "decoder.mid_block.attentions.0.to_k.bias");
      MAPS ("encoder.mid.attn_1.v.weight", "encoder.mid_block.attentions.0.to_v.weight");
      MAPS ("encoder.mid.attn_1.proj_out.weight", "encoder.mid_block.attentions.0.to_out.0.weight");
      MAPS ("encoder.norm_out.weight", "encoder.conv_norm_out.weight");
      MAPS ("decoder.norm_out.weight", "decoder.conv_norm_out.weight");
      MAPS ("quant_conv.weight", "quant_conv.weight");
      MAPS ("post_quant_conv.bias", "post_quant_conv.bias");
      /* The decoder's levels are stored smallest resolution first. */
      MAPS ("decoder.up.0.block.2.norm2.bias",
            levels == 2 ? "decoder.up_blocks.1.resnets.2.norm2.bias"
                        : "decoder.up_blocks.3.resnets.2.norm2.bias");
      MAPS ("decoder.up.1.upsample.conv.weight",
            levels == 2 ? "decoder.up_blocks.0.upsamplers.0.conv.weight"
                        : "decoder.up_blocks.2.upsamplers.0.conv.weight");
#undef MAPS
      /* 1x1 conv attention weights become the [C, C] linears diffusers has. */
      const GessoKeymapTarget *q = find_target (t, V, "decoder.mid_block.attentions.0.to_q.weight");
      g_assert_cmpint (q->ndim, ==, 2);
      g_assert_cmpint (q->shape[0], ==, 64);
      g_assert_cmpint (q->shape[1], ==, 64);
      const GessoKeymapTarget *sc = find_target (
        t, V, "encoder.down_blocks.0.resnets.1.conv_shortcut.weight");
      g_assert_cmpint (sc->ndim, ==, 4);
    }
}

static void
test_keymap_text_sd1 (void)
{
  g_autoptr (KeyList) l = key_list_new ();
  g_autoptr (GArray) t = NULL;
  GessoKeymapLayout info;
  const GessoComponent T = GESSO_COMPONENT_TEXT_ENCODER;
  const char *p = "cond_stage_model.transformer.text_model.";

  add_key (l, 2, 49408, 32, 0, "%sembeddings.token_embedding.weight", p);
  add_key (l, 2, 1, 77, 0, "%sembeddings.position_ids", p);
  for (int i = 0; i < 12; i++)
    {
      add_key (l, 2, 32, 32, 0, "%sencoder.layers.%d.self_attn.q_proj.weight", p, i);
      add_key (l, 1, 64, 0, 0, "%sencoder.layers.%d.mlp.fc1.bias", p, i);
    }
  add_key (l, 1, 32, 0, 0, "%sfinal_layer_norm.weight", p);
  add_key (l, 1, 1000, 0, 0, "alphas_cumprod");
  add_key (l, 0, 0, 0, 0, "model_ema.decay");
  t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);
  g_assert_cmpint (info.text_keys, ==, GESSO_TEXT_KEYS_HF);
  g_assert_cmpint (info.text_layers, ==, 12);
  g_assert_cmpint (info.unet_levels, ==, 0);
  assert_maps (l, t, "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc1.bias", T,
               "text_model.encoder.layers.11.mlp.fc1.bias");
  assert_maps (l, t, "cond_stage_model.transformer.text_model.final_layer_norm.weight", T,
               "text_model.final_layer_norm.weight");
  assert_maps (l, t, "alphas_cumprod", GESSO_COMPONENT_OTHER, "alphas_cumprod");
  assert_maps (l, t, "model_ema.decay", GESSO_COMPONENT_OTHER, "model_ema.decay");
  g_assert_cmpint (find_target (t, GESSO_COMPONENT_OTHER, "model_ema.decay")->numel, ==, 1);
}

/* SDXL's single file: CLIP ViT-L under conditioner.embedders.0 (transformers names) is the
 * first text encoder, OpenCLIP bigG under conditioner.embedders.1 the second, fused q/k/v
 * sliced there too and its text_projection kept (as stored, [hidden, projection]); the UNet's
 * label_emb is SDXL's add_embedding, not SD2's class embedding. */
static void
test_keymap_sdxl (void)
{
  g_autoptr (KeyList) l = key_list_new ();
  g_autoptr (GArray) t = NULL;
  GessoKeymapLayout info;
  const GessoComponent T = GESSO_COMPONENT_TEXT_ENCODER, T2 = GESSO_COMPONENT_TEXT_ENCODER_2;
  const char *p1 = "conditioner.embedders.0.transformer.text_model.";
  const char *p2 = "conditioner.embedders.1.model.";
  const int C = 48;

  add_key (l, 2, 49408, 32, 0, "%sembeddings.token_embedding.weight", p1);
  add_key (l, 1, 32, 0, 0, "%sencoder.layers.1.layer_norm1.weight", p1);
  add_key (l, 2, 49408, C, 0, "%stoken_embedding.weight", p2);
  add_key (l, 2, C, C + 8, 0, "%stext_projection", p2);
  add_key (l, 2, 3 * C, C, 0, "%stransformer.resblocks.2.attn.in_proj_weight", p2);
  add_key (l, 1, C, 0, 0, "%sln_final.weight", p2);
  add_key (l, 2, 128, 96, 0, "model.diffusion_model.label_emb.0.0.weight");
  add_key (l, 1, 128, 0, 0, "model.diffusion_model.label_emb.0.2.bias");
  t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);

  g_assert_true (info.sdxl);
  g_assert_cmpint (info.text_keys, ==, GESSO_TEXT_KEYS_HF);
  g_assert_cmpint (info.text_layers, ==, 2);
  assert_maps (l, t, "conditioner.embedders.0.transformer.text_model.encoder.layers.1."
               "layer_norm1.weight", T, "text_model.encoder.layers.1.layer_norm1.weight");
  assert_maps (l, t, "conditioner.embedders.1.model.token_embedding.weight", T2,
               "text_model.embeddings.token_embedding.weight");
  assert_maps (l, t, "conditioner.embedders.1.model.ln_final.weight", T2,
               "text_model.final_layer_norm.weight");
  assert_maps (l, t, "conditioner.embedders.1.model.text_projection", T2, "text_projection");
  g_assert_cmpint (find_target (t, T2, "text_projection")->shape[1], ==, C + 8);
  g_assert_cmpint (find_target (t, T2, "text_model.encoder.layers.2.self_attn.v_proj.weight")
                     ->offset, ==, 2 * C * C);
  assert_maps (l, t, "model.diffusion_model.label_emb.0.0.weight", GESSO_COMPONENT_UNET,
               "add_embedding.linear_1.weight");
  assert_maps (l, t, "model.diffusion_model.label_emb.0.2.bias", GESSO_COMPONENT_UNET,
               "add_embedding.linear_2.bias");
}

static void
test_keymap_text_openclip (void)
{
  g_autoptr (KeyList) l = key_list_new ();
  g_autoptr (GArray) t = NULL;
  GessoKeymapLayout info;
  const GessoComponent T = GESSO_COMPONENT_TEXT_ENCODER;
  const char *p = "cond_stage_model.model.";
  const int C = 32;

  add_key (l, 2, 49408, C, 0, "%stoken_embedding.weight", p);
  add_key (l, 2, 77, C, 0, "%spositional_embedding", p);
  add_key (l, 2, C, C, 0, "%stext_projection", p);
  add_key (l, 0, 0, 0, 0, "%slogit_scale", p);
  for (int i = 0; i < 3; i++)
    {
      add_key (l, 2, 3 * C, C, 0, "%stransformer.resblocks.%d.attn.in_proj_weight", p, i);
      add_key (l, 1, 3 * C, 0, 0, "%stransformer.resblocks.%d.attn.in_proj_bias", p, i);
      add_key (l, 2, C, C, 0, "%stransformer.resblocks.%d.attn.out_proj.weight", p, i);
      add_key (l, 1, C, 0, 0, "%stransformer.resblocks.%d.ln_1.weight", p, i);
      add_key (l, 1, C, 0, 0, "%stransformer.resblocks.%d.ln_2.bias", p, i);
      add_key (l, 2, 2 * C, C, 0, "%stransformer.resblocks.%d.mlp.c_fc.weight", p, i);
      add_key (l, 1, C, 0, 0, "%stransformer.resblocks.%d.mlp.c_proj.bias", p, i);
    }
  add_key (l, 1, C, 0, 0, "%sln_final.bias", p);
  /* Not fused q/k/v (rows not a multiple of 3): not sliced, kept under OTHER. */
  add_key (l, 2, 31, C, 0, "%stransformer.resblocks.9.attn.in_proj_weight", p);
  t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);

  g_assert_cmpint (info.text_keys, ==, GESSO_TEXT_KEYS_OPENCLIP);
  assert_maps (l, t, "cond_stage_model.model.token_embedding.weight", T,
               "text_model.embeddings.token_embedding.weight");
  assert_maps (l, t, "cond_stage_model.model.positional_embedding", T,
               "text_model.embeddings.position_embedding.weight");
  assert_maps (l, t, "cond_stage_model.model.ln_final.bias", T,
               "text_model.final_layer_norm.bias");
  assert_maps (l, t, "cond_stage_model.model.transformer.resblocks.2.ln_1.weight", T,
               "text_model.encoder.layers.2.layer_norm1.weight");
  assert_maps (l, t, "cond_stage_model.model.transformer.resblocks.0.ln_2.bias", T,
               "text_model.encoder.layers.0.layer_norm2.bias");
  assert_maps (l, t, "cond_stage_model.model.transformer.resblocks.1.attn.out_proj.weight", T,
               "text_model.encoder.layers.1.self_attn.out_proj.weight");
  assert_maps (l, t, "cond_stage_model.model.transformer.resblocks.1.mlp.c_fc.weight", T,
               "text_model.encoder.layers.1.mlp.fc1.weight");
  assert_maps (l, t, "cond_stage_model.model.transformer.resblocks.1.mlp.c_proj.bias", T,
               "text_model.encoder.layers.1.mlp.fc2.bias");
  assert_maps (l, t, "cond_stage_model.model.text_projection", GESSO_COMPONENT_OTHER,
               "cond_stage_model.model.text_projection");
  assert_maps (l, t, "cond_stage_model.model.logit_scale", GESSO_COMPONENT_OTHER,
               "cond_stage_model.model.logit_scale");
  assert_maps (l, t, "cond_stage_model.model.transformer.resblocks.9.attn.in_proj_weight",
               GESSO_COMPONENT_OTHER,
               "cond_stage_model.model.transformer.resblocks.9.attn.in_proj_weight");

  /* The fused projection as three row slices of one stored tensor. */
  static const char *const parts[] = { "q_proj", "k_proj", "v_proj" };
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *w = g_strdup_printf ("text_model.encoder.layers.2.self_attn.%s.weight",
                                            parts[i]);
      g_autofree char *b = g_strdup_printf ("text_model.encoder.layers.2.self_attn.%s.bias",
                                            parts[i]);
      const GessoKeymapTarget *tw = find_target (t, T, w), *tb = find_target (t, T, b);
      g_assert_nonnull (tw);
      g_assert_nonnull (tb);
      g_assert_cmpstr (l->names->pdata[tw->source], ==,
                       "cond_stage_model.model.transformer.resblocks.2.attn.in_proj_weight");
      g_assert_cmpint (tw->ndim, ==, 2);
      g_assert_cmpint (tw->shape[0], ==, C);
      g_assert_cmpint (tw->shape[1], ==, C);
      g_assert_cmpint (tw->offset, ==, i * C * C);
      g_assert_cmpint (tw->numel, ==, C * C);
      g_assert_cmpint (tb->shape[0], ==, C);
      g_assert_cmpint (tb->offset, ==, i * C);
      g_assert_cmpint (tb->numel, ==, C);
    }
}

/* Diffusers folders keep their names (UNet 1x1 convs unsqueezed); old VAE attention names
 * are brought up to date; a key that appears twice keeps the first under its name. */
static void
test_keymap_diffusers (void)
{
  g_autoptr (KeyList) u = key_list_new (), v = key_list_new ();
  g_autoptr (GArray) tu = NULL, tv = NULL;
  GessoKeymapLayout info;

  u->component = GESSO_COMPONENT_UNET;
  add_key (u, 4, 32, 32, 1, "down_blocks.0.attentions.0.proj_in.weight");
  add_key (u, 4, 32, 32, 3, "down_blocks.0.resnets.1.conv1.weight");
  add_key (u, 4, 32, 32, 3, "down_blocks.1.resnets.0.conv1.weight");
  add_key (u, 4, 32, 32, 3, "down_blocks.1.resnets.0.conv1.weight");
  tu = map_keys (u, GESSO_MODEL_LAYOUT_DIFFUSERS, &info);
  g_assert_cmpint (info.unet_levels, ==, 2);
  g_assert_cmpint (info.unet_layers_per_block, ==, 2);
  const GessoKeymapTarget *pin = find_target (tu, GESSO_COMPONENT_UNET,
                                              "down_blocks.0.attentions.0.proj_in.weight");
  g_assert_cmpint (pin->ndim, ==, 4);
  g_assert_cmpuint (find_target (tu, GESSO_COMPONENT_UNET,
                                 "down_blocks.1.resnets.0.conv1.weight")->source, ==, 2);
  g_assert_cmpuint (find_target (tu, GESSO_COMPONENT_OTHER,
                                 "down_blocks.1.resnets.0.conv1.weight")->source, ==, 3);

  v->component = GESSO_COMPONENT_VAE;
  add_key (v, 2, 64, 64, 0, "decoder.mid_block.attentions.0.query.weight");
  add_key (v, 1, 64, 0, 0, "encoder.mid_block.attentions.0.proj_attn.bias");
  add_key (v, 2, 64, 64, 0, "encoder.mid_block.attentions.0.to_k.weight");
  tv = map_keys (v, GESSO_MODEL_LAYOUT_DIFFUSERS, NULL);
  assert_maps (v, tv, "decoder.mid_block.attentions.0.query.weight", GESSO_COMPONENT_VAE,
               "decoder.mid_block.attentions.0.to_q.weight");
  assert_maps (v, tv, "encoder.mid_block.attentions.0.proj_attn.bias", GESSO_COMPONENT_VAE,
               "encoder.mid_block.attentions.0.to_out.0.bias");
  assert_maps (v, tv, "encoder.mid_block.attentions.0.to_k.weight", GESSO_COMPONENT_VAE,
               "encoder.mid_block.attentions.0.to_k.weight");
}

/* Nothing a key list holds makes mapping fail: junk, odd indices, empty names. */
static void
test_keymap_junk (void)
{
  g_autoptr (KeyList) l = key_list_new ();
  g_autoptr (GArray) t = NULL;
  GessoKeymapLayout info;

  add_key (l, 1, 4, 0, 0, "%s", "");
  add_key (l, 1, 4, 0, 0, "model.diffusion_model.");
  add_key (l, 1, 4, 0, 0, "model.diffusion_model.input_blocks.99999999999.0.weight");
  add_key (l, 1, 4, 0, 0, "model.diffusion_model.input_blocks.x.0.weight");
  add_key (l, 1, 4, 0, 0, "model.diffusion_model.output_blocks.7.1.conv.weight");
  add_key (l, 1, 4, 0, 0, "first_stage_model.decoder.up.x.block.0.conv1.weight");
  add_key (l, 1, 4, 0, 0, "first_stage_model.encoder.down.0.block.0.unknown.weight");
  add_key (l, 1, 0, 0, 0, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias");
  add_key (l, 1, 4, 0, 0, "cond_stage_model.model.transformer.resblocks.0.attn.weird");
  t = map_keys (l, GESSO_MODEL_LAYOUT_SINGLE_FILE, &info);
  g_assert_cmpuint (t->len, ==, l->names->len);
  for (guint i = 0; i < t->len; i++)
    {
      const GessoKeymapTarget *x = &g_array_index (t, GessoKeymapTarget, i);
      g_assert_cmpint (x->component, ==, GESSO_COMPONENT_OTHER);
      g_assert_cmpstr (x->name, ==, l->names->pdata[x->source]);
    }
}

/* --- Weights over real (small) files ----------------------------------------------------- */

typedef struct
{
  const char *name;
  const char *dtype;
  int ndim;
  int64_t shape[4];
  const void *data;
  size_t nbytes;
} FileTensor;

/* Writes a safetensors file; PAD_TO_ODD makes the header length odd so that the data
 * section (and every F32 tensor in it) is not 4-byte aligned. */
static char *
write_safetensors (const char *dir, const char *name, const FileTensor *tensors, size_t n,
                   gboolean pad_to_odd)
{
  g_autoptr (GString) header = g_string_new ("{");
  g_autoptr (GByteArray) file = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);
  uint64_t offset = 0, length;
  guint8 len_bytes[8];

  for (size_t i = 0; i < n; i++)
    {
      g_string_append_printf (header, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                              tensors[i].name, tensors[i].dtype);
      for (int d = 0; d < tensors[i].ndim; d++)
        g_string_append_printf (header, "%s%" G_GINT64_FORMAT, d ? "," : "",
                                tensors[i].shape[d]);
      g_string_append_printf (header, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%"
                              G_GUINT64_FORMAT "]}", offset, offset + tensors[i].nbytes);
      offset += tensors[i].nbytes;
    }
  g_string_append_c (header, '}');
  while (header->len % 8 != (pad_to_odd ? 1 : 0))
    g_string_append_c (header, ' ');
  length = header->len;
  for (int i = 0; i < 8; i++)
    len_bytes[i] = (guint8) (length >> (8 * i));
  g_byte_array_append (file, len_bytes, 8);
  g_byte_array_append (file, (const guint8 *) header->str, header->len);
  for (size_t i = 0; i < n; i++)
    g_byte_array_append (file, tensors[i].data, (guint) tensors[i].nbytes);
  g_assert_true (g_file_set_contents (path, (const char *) file->data, file->len, &error));
  g_assert_no_error (error);
  return path;
}

/* A tiny SD2-style text encoder fragment: fused in_proj in F16 (weight) and F32 (bias), a
 * 1x1 conv kernel, a BF16 embedding table and an integer buffer. */
static void
check_small_file (gboolean misaligned)
{
  enum { C = 2 };
  uint16_t in_proj[3 * C * C];
  float in_bias[3 * C], conv[4] = { 1, 2, 3, 4 };
  uint16_t table[5 * C];
  int64_t ids[3] = { 0, 1, 2 };
  const FileTensor tensors[] = {
    { "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", "F16", 2,
      { 3 * C, C }, in_proj, sizeof in_proj },
    { "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias", "F32", 1, { 3 * C },
      in_bias, sizeof in_bias },
    { "first_stage_model.decoder.mid.attn_1.q.weight", "F32", 4, { C, C, 1, 1 }, conv,
      sizeof conv },
    { "cond_stage_model.model.token_embedding.weight", "BF16", 2, { 5, C }, table,
      sizeof table },
    { "cond_stage_model.model.ids", "I64", 1, { 3 }, ids, sizeof ids },
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gesso-weights-XXXXXX", &error);
  g_autofree char *path = NULL;
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  const GessoComponent T = GESSO_COMPONENT_TEXT_ENCODER, V = GESSO_COMPONENT_VAE;
  static const char *const parts[] = { "q_proj", "k_proj", "v_proj" };
  const float *p;

  for (int i = 0; i < 3 * C * C; i++)
    in_proj[i] = gesso_f32_to_f16 ((float) i + 0.5f);
  for (int i = 0; i < 3 * C; i++)
    in_bias[i] = -(float) i;
  for (int i = 0; i < 5 * C; i++)
    table[i] = gesso_f32_to_bf16 ((float) (10 * i));

  g_assert_no_error (error);
  path = write_safetensors (dir, "small.safetensors", tensors, G_N_ELEMENTS (tensors),
                            misaligned);
  files = gesso_model_files_open (path, &error);
  g_assert_no_error (error);
  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_weights_text_keys (weights), ==, GESSO_TEXT_KEYS_OPENCLIP);
  g_assert_cmpint (gesso_weights_layout (weights), ==, GESSO_MODEL_LAYOUT_SINGLE_FILE);
  g_assert_cmpuint (gesso_weights_count (weights, T), ==, 7);

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *w = g_strdup_printf ("text_model.encoder.layers.0.self_attn.%s.weight",
                                            parts[i]);
      g_autofree char *b = g_strdup_printf ("text_model.encoder.layers.0.self_attn.%s.bias",
                                            parts[i]);
      const int64_t wshape[2] = { C, C }, bshape[1] = { C };
      int ndim;
      int64_t shape[8];

      g_assert_true (gesso_weights_shape (weights, T, w, &ndim, shape));
      g_assert_cmpint (ndim, ==, 2);
      g_assert_cmpint (shape[0], ==, C);
      p = gesso_weights_get (weights, T, w, 2, wshape, &error);
      g_assert_no_error (error);
      for (int j = 0; j < C * C; j++)
        g_assert_cmpfloat (p[j], ==, (float) (i * C * C + j) + 0.5f);
      p = gesso_weights_get (weights, T, b, 1, bshape, &error);
      g_assert_no_error (error);
      for (int j = 0; j < C; j++)
        g_assert_cmpfloat (p[j], ==, -(float) (i * C + j));
      /* every weight is a copy Gesso owns, aligned like arena blocks, never a pointer into
       * the user's file (whose pages would fault if the file shrank) */
      g_assert_true ((uintptr_t) p % 64 == 0);
    }

  /* A [C, C, 1, 1] kernel served as the [C, C] linear diffusers has, and as the conv. */
  {
    const int64_t lin[2] = { C, C }, conv4[4] = { C, C, 1, 1 }, bad[2] = { C, C + 1 };
    const char *q = "decoder.mid_block.attentions.0.to_q.weight";
    p = gesso_weights_get (weights, V, q, 2, lin, &error);
    g_assert_no_error (error);
    g_assert_cmpfloat (p[3], ==, 4.0f);
    g_assert_true (p == gesso_weights_get (weights, V, q, 4, conv4, &error));
    g_assert_null (gesso_weights_get (weights, V, q, 2, bad, &error));
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
    g_autofree char *shape_msg = g_strdup_printf (
      "vae weight 'decoder.mid_block.attentions.0.to_q.weight' has shape [2, 2], expected "
      "[2, 3]; '%s' is damaged or does not belong to this model: download or convert it again",
      path);
    g_assert_cmpstr (error->message, ==, shape_msg);
    g_clear_error (&error);
    g_assert_null (gesso_weights_get (weights, V, "decoder.conv_in.weight", 2, lin, &error));
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
    g_autofree char *msg = g_strdup_printf (
      "vae weight 'decoder.conv_in.weight' is missing from '%s'; the model is incomplete or "
      "not Stable Diffusion 1.x, 2.x or XL: download or convert it again", path);
    g_assert_cmpstr (error->message, ==, msg);
    g_clear_error (&error);
  }

  /* An integer tensor is no weight. */
  {
    const int64_t shape[1] = { 3 };
    g_assert_null (gesso_weights_get (weights, GESSO_COMPONENT_OTHER,
                                      "cond_stage_model.model.ids", 1, shape, &error));
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED);
    g_assert_nonnull (strstr (error->message, "I64"));
    g_clear_error (&error);
  }

  /* Rows of the BF16 table without widening all of it; then again from the cache. */
  for (int round = 0; round < 2; round++)
    {
      const int64_t shape[2] = { 5, C }, rows[3] = { 4, 0, 4 }, bad_rows[1] = { 5 };
      float out[3 * C];
      g_assert_true (gesso_weights_gather_rows (weights, T,
                                                "text_model.embeddings.token_embedding.weight",
                                                shape, rows, 3, out, &error));
      g_assert_no_error (error);
      g_assert_cmpfloat (out[0], ==, 80.0f);
      g_assert_cmpfloat (out[1], ==, 90.0f);
      g_assert_cmpfloat (out[2], ==, 0.0f);
      g_assert_cmpfloat (out[5], ==, 90.0f);
      g_assert_false (gesso_weights_gather_rows (weights, T,
                                                 "text_model.embeddings.token_embedding.weight",
                                                 shape, bad_rows, 1, out, &error));
      g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      g_assert_true (gesso_weights_preload (weights, GESSO_COMPONENT_COUNT, &error));
      g_assert_no_error (error);
    }

  gesso_weights_free (g_steal_pointer (&weights));
  gesso_model_files_free (g_steal_pointer (&files));
  g_remove (path);
  g_rmdir (dir);
}

static void
test_weights_small_file (void)
{
  check_small_file (FALSE);
  check_small_file (TRUE);
}

/* --- Widening cost, measured on the conformance models ----------------------------------- */

static char *
conformance_dir (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return source ? g_build_filename (source, "..", "shared", "conformance", NULL) : NULL;
}

/* Seconds to widen the weights of PATH at load (PRELOAD) or as the models would on first
 * use; *N_FLOATS gets the number of floats that made. */
static double
seconds_to_widen (const char *path, gboolean preload, guint64 *n_floats)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelFiles) files = gesso_model_files_open (path, &error);
  g_autoptr (GessoWeights) weights = NULL;
  gint64 start;

  g_assert_no_error (error);
  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);
  *n_floats = 0;
  start = g_get_monotonic_time ();
  if (preload)
    for (int c = 0; c < GESSO_COMPONENT_OTHER; c++)
      {
        g_assert_true (gesso_weights_preload (weights, (GessoComponent) c, &error));
        for (guint i = 0; i < gesso_weights_count (weights, (GessoComponent) c); i++)
          {
            const char *name = gesso_weights_name (weights, (GessoComponent) c, i);
            int ndim;
            int64_t shape[8];
            g_assert_true (gesso_weights_shape (weights, (GessoComponent) c, name, &ndim, shape));
            if (!g_str_has_suffix (name, "position_ids"))
              *n_floats += (guint64) gesso_shape_numel (ndim, shape);
          }
      }
  else
    /* On first use, as the models ask: every weight once, embedding tables by rows. */
    for (int c = 0; c < GESSO_COMPONENT_OTHER; c++)
      for (guint i = 0; i < gesso_weights_count (weights, (GessoComponent) c); i++)
        {
          const char *name = gesso_weights_name (weights, (GessoComponent) c, i);
          int ndim;
          int64_t shape[8], rows[77] = { 0 };
          g_assert_true (gesso_weights_shape (weights, (GessoComponent) c, name, &ndim, shape));
          if (g_str_has_suffix (name, "token_embedding.weight"))
            {
              *n_floats += 77 * (guint64) shape[1];
              g_autofree float *dst = g_new (float, 77 * shape[1]);
              g_assert_true (gesso_weights_gather_rows (weights, (GessoComponent) c, name, shape,
                                                        rows, 77, dst, &error));
            }
          else if (g_str_has_suffix (name, "position_ids"))
            continue;
          else
            {
              g_assert_nonnull (gesso_weights_get (weights, (GessoComponent) c, name, ndim,
                                                   shape, &error));
              *n_floats += (guint64) gesso_shape_numel (ndim, shape);
            }
          g_assert_no_error (error);
        }
  return (double) (g_get_monotonic_time () - start) * 1e-6;
}

static void
test_weights_widen_cost (void)
{
  g_autofree char *dir = conformance_dir ();
  static const char *const models[][2] = {
    { "tiny-sd1", "tiny-sd1.safetensors" },
    { "tiny-sd1", "tiny-sd1-fp16.safetensors" },
    { "tiny-sd2", "tiny-sd2-fp16.safetensors" },
    { "tiny-sd1-inpaint", "tiny-sd1-inpaint-bf16.safetensors" },
  };

  if (dir == NULL || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no conformance data");
      return;
    }
  for (size_t m = 0; m < G_N_ELEMENTS (models); m++)
    {
      g_autofree char *path = g_build_filename (dir, "models", models[m][0], models[m][1], NULL);
      double best[2] = { INFINITY, INFINITY };
      guint64 n[2];

      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        continue;
      for (int run = 0; run < 5; run++)
        for (int preload = 0; preload < 2; preload++)
          best[preload] = MIN (best[preload], seconds_to_widen (path, preload, &n[preload]));
      g_test_message ("%s: widen all at load %.2f ms (%.2f M floats), on first use %.2f ms "
                      "(%.2f M floats; embedding by rows), best of 5", models[m][1],
                      best[1] * 1e3, (double) n[1] * 1e-6, best[0] * 1e3,
                      (double) n[0] * 1e-6);
    }
}

/* A weight holding NaN or infinity (a failed fp16 conversion) is refused by name when it is
 * read, slice by slice for fused projections and row by row for gathered embeddings; the
 * finite parts of the same tensors still read. */
static void
test_weights_nonfinite (void)
{
  enum { C = 2 };
  uint16_t in_proj[3 * C * C];
  float conv[4] = { 1, 2, INFINITY, 4 };
  uint16_t table[5 * C];
  const FileTensor tensors[] = {
    { "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", "F16", 2,
      { 3 * C, C }, in_proj, sizeof in_proj },
    { "first_stage_model.decoder.mid.attn_1.q.weight", "F32", 4, { C, C, 1, 1 }, conv,
      sizeof conv },
    { "cond_stage_model.model.token_embedding.weight", "BF16", 2, { 5, C }, table,
      sizeof table },
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gesso-weights-XXXXXX", &error);
  g_autofree char *path = NULL;
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  const GessoComponent T = GESSO_COMPONENT_TEXT_ENCODER, V = GESSO_COMPONENT_VAE;
  const int64_t wshape[2] = { C, C }, tshape[2] = { 5, C }, conv_shape[4] = { C, C, 1, 1 };
  const int64_t good_rows[2] = { 0, 4 }, bad_row[1] = { 3 };
  float rows[2 * C];

  for (int i = 0; i < 3 * C * C; i++)
    in_proj[i] = gesso_f32_to_f16 ((float) i);
  in_proj[C * C + 1] = 0x7e00;          /* NaN: element 1 of the k slice */
  for (int i = 0; i < 5 * C; i++)
    table[i] = gesso_f32_to_bf16 ((float) i);
  table[3 * C + 1] = 0x7fc0;            /* NaN in row 3 */
  g_assert_no_error (error);
  path = write_safetensors (dir, "nan.safetensors", tensors, G_N_ELEMENTS (tensors), FALSE);
  files = gesso_model_files_open (path, &error);
  g_assert_no_error (error);
  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);

  g_assert_nonnull (gesso_weights_get (weights, T, "text_model.encoder.layers.0.self_attn."
                                       "q_proj.weight", 2, wshape, &error));
  g_assert_no_error (error);
  g_assert_null (gesso_weights_get (weights, T, "text_model.encoder.layers.0.self_attn."
                                    "k_proj.weight", 2, wshape, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "text_encoder weight 'text_model.encoder.layers.0."
                                            "self_attn.k_proj.weight'"));
  g_assert_nonnull (strstr (error->message, "holds NaN (element 1)"));
  g_assert_null (strchr (error->message, '\n'));
  g_clear_error (&error);

  g_assert_null (gesso_weights_get (weights, V, "decoder.mid_block.attentions.0.to_q.weight", 4,
                                    conv_shape, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "holds an infinite value (element 2)"));
  g_clear_error (&error);

  g_assert_true (gesso_weights_gather_rows (weights, T, "text_model.embeddings.token_embedding."
                                            "weight", tshape, good_rows, 2, rows, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (rows[2], ==, 8.0f);
  g_assert_false (gesso_weights_gather_rows (weights, T, "text_model.embeddings."
                                             "token_embedding.weight", tshape, bad_row, 1, rows,
                                             &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "holds NaN (element 7)"));
  g_clear_error (&error);
  g_unlink (path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/keymap/unet-sd15", test_keymap_unet_sd15);
  g_test_add_func ("/model/keymap/unet-levels", test_keymap_unet_levels);
  g_test_add_func ("/model/keymap/vae", test_keymap_vae);
  g_test_add_func ("/model/keymap/text-sd1", test_keymap_text_sd1);
  g_test_add_func ("/model/keymap/text-openclip", test_keymap_text_openclip);
  g_test_add_func ("/model/keymap/sdxl", test_keymap_sdxl);
  g_test_add_func ("/model/keymap/diffusers", test_keymap_diffusers);
  g_test_add_func ("/model/keymap/junk", test_keymap_junk);
  g_test_add_func ("/model/weights/small-file", test_weights_small_file);
  g_test_add_func ("/model/weights/nonfinite", test_weights_nonfinite);
  g_test_add_func ("/model/weights/widen-cost", test_weights_widen_cost);
  return g_test_run ();
}
