/* Checkpoint key names -> diffusers names; see keymap.h for the contract.
 *
 * The LDM UNet numbers its blocks in one flat list per direction:
 *   input_blocks.0            conv_in
 *   input_blocks.k, k >= 1    level (k-1) / (lpb+1), slot (k-1) % (lpb+1): slots 0..lpb-1 are
 *                             [resnet, attention] pairs, slot lpb the downsampler ("0.op")
 *   middle_block.0/1/2        resnet, attention, resnet
 *   output_blocks.k           level k / (lpb+1), slot k % (lpb+1): a resnet ("0"), then an
 *                             attention ("1") and/or an upsampler ("1.conv" or "2.conv")
 * with lpb = layers_per_block (decoder levels have lpb+1 resnets). The LDM VAE decoder lists
 * its levels from the smallest resolution up, diffusers from the largest down, so decoder
 * "up.i" is "up_blocks.{levels-1-i}".
 */
#include "model/keymap.h"

#include <string.h>

typedef struct
{
  const char *from;
  const char *to;
} Rename;

/* Sub-modules of an LDM UNet ResBlock, in diffusers' ResnetBlock2D terms. The numbers are
 * positions in LDM's nn.Sequential: in_layers = [norm, SiLU, conv], out_layers = [norm, SiLU,
 * dropout, conv], emb_layers = [SiLU, linear]. */
static const Rename unet_resnet[] = {
  { "in_layers.0.", "norm1." },        { "in_layers.2.", "conv1." },
  { "emb_layers.1.", "time_emb_proj." }, { "out_layers.0.", "norm2." },
  { "out_layers.3.", "conv2." },       { "skip_connection.", "conv_shortcut." },
};

static const Rename vae_resnet[] = {
  { "norm1.", "norm1." }, { "conv1.", "conv1." },        { "norm2.", "norm2." },
  { "conv2.", "conv2." }, { "nin_shortcut.", "conv_shortcut." },
};

/* LDM's AttnBlock keeps q/k/v/proj_out as 1x1 convs; diffusers' Attention has linears (the
 * shapes are squeezed to [C, C] as diffusers' converter does). */
static const Rename vae_attention[] = {
  { "norm.", "group_norm." }, { "q.", "to_q." }, { "k.", "to_k." },
  { "v.", "to_v." },          { "proj_out.", "to_out.0." },
};

/* Names diffusers' VAE attention had before 0.14; its loader still renames them. */
static const Rename vae_attention_legacy[] = {
  { "query.", "to_q." }, { "key.", "to_k." }, { "value.", "to_v." }, { "proj_attn.", "to_out.0." },
};

static const Rename openclip_block[] = {
  { "ln_1.", "layer_norm1." },           { "ln_2.", "layer_norm2." },
  { "attn.out_proj.", "self_attn.out_proj." }, { "mlp.c_fc.", "mlp.fc1." },
  { "mlp.c_proj.", "mlp.fc2." },
};

#define UNET_PREFIX "model.diffusion_model."
#define VAE_PREFIX "first_stage_model."
/* Where a single file keeps its text encoders: SD 1.x under transformers names, SD 2.x under
 * OpenCLIP's; SDXL's conditioner holds CLIP ViT-L (transformers names) and OpenCLIP bigG, and
 * a refiner's holds bigG alone as embedder 0 (refused in weights.c, mapped all the same). */
typedef struct
{
  const char *prefix;
  GessoComponent component;
  gboolean openclip;
} TextPrefix;

static const TextPrefix text_prefixes[] = {
  { "cond_stage_model.transformer.", GESSO_COMPONENT_TEXT_ENCODER, FALSE },
  { "cond_stage_model.model.", GESSO_COMPONENT_TEXT_ENCODER, TRUE },
  { "conditioner.embedders.0.transformer.", GESSO_COMPONENT_TEXT_ENCODER, FALSE },
  { "conditioner.embedders.0.model.", GESSO_COMPONENT_TEXT_ENCODER, TRUE },
  { "conditioner.embedders.1.model.", GESSO_COMPONENT_TEXT_ENCODER_2, TRUE },
};
#define SDXL_PREFIX "conditioner.embedders."
/* lllyasviel's ControlNets: the UNet's encoder under CompVis names, plus their own layers */
#define CONTROL_PREFIX "control_model."

/* --- Parsing dotted keys ----------------------------------------------------------------- */

/* The text prefix KEY starts with, or NULL. */
static const TextPrefix *
text_prefix_of (const char *key)
{
  for (size_t i = 0; i < G_N_ELEMENTS (text_prefixes); i++)
    if (g_str_has_prefix (key, text_prefixes[i].prefix))
      return &text_prefixes[i];
  return NULL;
}

static gboolean
eat (const char **p, const char *prefix)
{
  size_t n = strlen (prefix);

  if (strncmp (*p, prefix, n) != 0)
    return FALSE;
  *p += n;
  return TRUE;
}

/* A block index followed by '.', as in "12." of "input_blocks.12.0.op.weight". */
static gboolean
eat_index (const char **p, int *out)
{
  const char *s = *p;
  int v = 0;

  if (!g_ascii_isdigit (*s))
    return FALSE;
  for (; g_ascii_isdigit (*s); s++)
    {
      if (v > 99999)            /* no real model has that many blocks; avoids overflow */
        return FALSE;
      v = v * 10 + (*s - '0');
    }
  if (*s != '.')
    return FALSE;
  *p = s + 1;
  *out = v;
  return TRUE;
}

/* PREFIX + the renamed REST, or NULL when REST starts with none of TABLE's names. */
static char *
rename_rest (const char *prefix, const char *rest, const Rename *table, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (g_str_has_prefix (rest, table[i].from))
      return g_strconcat (prefix, table[i].to, rest + strlen (table[i].from), NULL);
  return NULL;
}

static char *
rename_with_index (const char *format, int a, int b, const char *rest, const Rename *table,
                   size_t n)
{
  g_autofree char *prefix = g_strdup_printf (format, a, b);

  return table ? rename_rest (prefix, rest, table, n) : g_strconcat (prefix, rest, NULL);
}

/* --- Structure inference ----------------------------------------------------------------- */

typedef struct
{
  int max_input;                /* highest input_blocks index; -1 when none */
  int max_output;               /* highest output_blocks index; -1 when none */
  int first_down;               /* lowest input block index holding a downsampler ("0.op") */
  int first_up;                 /* lowest output block index holding an upsampler */
  GHashTable *downs;            /* input block indices holding a downsampler */
  GHashTable *ups;              /* output block indices holding an upsampler */
} UnetScan;

/* Notes K in *FIRST (the lowest yet) and SET. */
static void
note_resampler (int k, int *first, GHashTable *set)
{
  g_hash_table_add (set, GINT_TO_POINTER (k));
  if (*first < 0 || k < *first)
    *first = k;
}

static void
scan_unet_key (UnetScan *scan, const char *rest)
{
  const char *p = rest;
  int k;

  if (eat (&p, "input_blocks.") && eat_index (&p, &k))
    {
      scan->max_input = MAX (scan->max_input, k);
      if (k > 0 && g_str_has_prefix (p, "0.op."))
        note_resampler (k, &scan->first_down, scan->downs);
    }
  else if (eat (&p, "output_blocks.") && eat_index (&p, &k))
    {
      scan->max_output = MAX (scan->max_output, k);
      /* the upsampler follows the resnet ("1.conv.") or the resnet and attention ("2.conv.") */
      if (g_str_has_prefix (p, "1.conv.") || g_str_has_prefix (p, "2.conv."))
        note_resampler (k, &scan->first_up, scan->ups);
    }
}

/* LEVELS x LPB fits the scan: no block lies beyond that structure (fewer may be there: those
 * are missing), and every resampler present sits where it has one (level i's downsampler is
 * input block (i+1)(lpb+1), its upsampler output block i(lpb+1) + lpb counting from the
 * deepest level; the last level has none). */
static gboolean
structure_fits (const UnetScan *scan, int levels, int lpb)
{
  int blocks = levels * (lpb + 1);
  GHashTableIter iter;
  gpointer key;

  if (levels < 1 || lpb < 1 || scan->max_input > blocks - 1 || scan->max_output > blocks - 1)
    return FALSE;
  g_hash_table_iter_init (&iter, scan->downs);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (GPOINTER_TO_INT (key) % (lpb + 1) != 0 || GPOINTER_TO_INT (key) >= blocks)
      return FALSE;
  g_hash_table_iter_init (&iter, scan->ups);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (GPOINTER_TO_INT (key) % (lpb + 1) != lpb || GPOINTER_TO_INT (key) >= blocks - lpb - 1)
      return FALSE;
  return TRUE;
}

/* Levels and layers_per_block, read from the downsamplers and, separately, from the
 * upsamplers (without any, from the last block: one level). A block missing from the file
 * hides a level from one side only, and one present cannot be invented, so of the readings
 * that fit, the one with more levels wins; the UNet then names the missing weights. A layout
 * nothing fits leaves levels at 0, and every block key goes to OTHER. */
static void
finish_unet_scan (const UnetScan *scan, GessoKeymapLayout *layout)
{
  int down_lpb = scan->first_down < 0 ? scan->max_input : scan->first_down - 1;
  int down_levels = (int) g_hash_table_size (scan->downs) + 1;
  int up_lpb = scan->first_up < 0 ? scan->max_output : scan->first_up;
  int up_levels = (int) g_hash_table_size (scan->ups) + 1;
  gboolean down_fits, up_fits;

  if (scan->max_input < 1)
    return;
  down_fits = structure_fits (scan, down_levels, down_lpb);
  up_fits = structure_fits (scan, up_levels, up_lpb);
  if (up_fits && (!down_fits || up_levels > down_levels))
    {
      layout->unet_levels = up_levels;
      layout->unet_layers_per_block = up_lpb;
    }
  else if (down_fits)
    {
      layout->unet_levels = down_levels;
      layout->unet_layers_per_block = down_lpb;
    }
}

static void
note_index_after (const char *key, const char *prefix, int *max_plus_one)
{
  const char *p = key;
  int i;

  if (eat (&p, prefix) && eat_index (&p, &i))
    *max_plus_one = MAX (*max_plus_one, i + 1);
}

static void
scan_single_file (const GessoKeymapKey *keys, guint n_keys, GessoKeymapLayout *layout)
{
  UnetScan unet = { -1, -1, -1, -1, g_hash_table_new (NULL, NULL),
                    g_hash_table_new (NULL, NULL) };
  gboolean hf = FALSE, openclip = FALSE;

  for (guint i = 0; i < n_keys; i++)
    {
      const char *key = keys[i].key;
      const TextPrefix *text;

      if (g_str_has_prefix (key, UNET_PREFIX))
        scan_unet_key (&unet, key + strlen (UNET_PREFIX));
      if (g_str_has_prefix (key, CONTROL_PREFIX))
        scan_unet_key (&unet, key + strlen (CONTROL_PREFIX));
      note_index_after (key, CONTROL_PREFIX "input_hint_block.", &layout->control_hint_layers);
      /* both sides count levels: one missing from the decoder must not shift the others */
      note_index_after (key, VAE_PREFIX "decoder.up.", &layout->vae_levels);
      note_index_after (key, VAE_PREFIX "encoder.down.", &layout->vae_levels);
      if (g_str_has_prefix (key, SDXL_PREFIX))
        layout->sdxl = TRUE;
      text = text_prefix_of (key);
      if (text != NULL && text->component == GESSO_COMPONENT_TEXT_ENCODER)
        {
          const char *rest = key + strlen (text->prefix);

          hf = hf || !text->openclip;
          openclip = openclip || text->openclip;
          note_index_after (rest, "text_model.encoder.layers.", &layout->text_layers);
          note_index_after (rest, "encoder.layers.", &layout->text_layers);
          note_index_after (rest, "transformer.resblocks.", &layout->text_layers);
        }
    }
  finish_unet_scan (&unet, layout);
  g_hash_table_unref (unet.downs);
  g_hash_table_unref (unet.ups);
  /* Both at once would be a merged file; transformers names are the ones diffusers loads. */
  layout->text_keys = hf ? GESSO_TEXT_KEYS_HF : openclip ? GESSO_TEXT_KEYS_OPENCLIP
                                                          : GESSO_TEXT_KEYS_NONE;
}

static void
scan_diffusers (const GessoKeymapKey *keys, guint n_keys, GessoKeymapLayout *layout)
{
  int resnets = 0;

  for (guint i = 0; i < n_keys; i++)
    {
      const char *key = keys[i].key;

      switch (keys[i].component)
        {
        case GESSO_COMPONENT_TEXT_ENCODER_2:
          layout->sdxl = TRUE;
          break;
        case GESSO_COMPONENT_UNET:
          layout->sdxl = layout->sdxl || g_str_has_prefix (key, "add_embedding.");
          note_index_after (key, "down_blocks.", &layout->unet_levels);
          if (g_str_has_prefix (key, "down_blocks.0."))
            note_index_after (key + strlen ("down_blocks.0."), "resnets.", &resnets);
          break;
        case GESSO_COMPONENT_VAE:
          note_index_after (key, "decoder.up_blocks.", &layout->vae_levels);
          /* a CompVis VAE file in place of the folder's own */
          note_index_after (key, "decoder.up.", &layout->vae_levels);
          note_index_after (key, "encoder.down.", &layout->vae_levels);
          break;
        case GESSO_COMPONENT_TEXT_ENCODER:
          layout->text_keys = GESSO_TEXT_KEYS_HF;
          note_index_after (key, "text_model.encoder.layers.", &layout->text_layers);
          break;
        default:
          break;
        }
    }
  layout->unet_layers_per_block = resnets;
}

/* --- Mapping one key --------------------------------------------------------------------- */

static char *
map_unet (const char *rest, const GessoKeymapLayout *layout)
{
  const char *p = rest;
  int lpb = layout->unet_layers_per_block, levels = layout->unet_levels;
  int k, level, slot;

  if (eat (&p, "time_embed.0."))
    return g_strconcat ("time_embedding.linear_1.", p, NULL);
  if (eat (&p, "time_embed.2."))
    return g_strconcat ("time_embedding.linear_2.", p, NULL);
  /* SDXL's added (pooled text + size) embedding, or SD2 "unclip"/upscaler class embeddings;
   * the same [linear, SiLU, linear] in diffusers under other names. */
  if (eat (&p, "label_emb.0.0."))
    return g_strconcat (layout->sdxl ? "add_embedding" : "class_embedding", ".linear_1.", p,
                        NULL);
  if (eat (&p, "label_emb.0.2."))
    return g_strconcat (layout->sdxl ? "add_embedding" : "class_embedding", ".linear_2.", p,
                        NULL);
  if (eat (&p, "out.0."))
    return g_strconcat ("conv_norm_out.", p, NULL);
  if (eat (&p, "out.2."))
    return g_strconcat ("conv_out.", p, NULL);
  if (eat (&p, "middle_block."))
    {
      if (eat (&p, "0."))
        return rename_rest ("mid_block.resnets.0.", p, unet_resnet, G_N_ELEMENTS (unet_resnet));
      if (eat (&p, "1."))
        return g_strconcat ("mid_block.attentions.0.", p, NULL);
      if (eat (&p, "2."))
        return rename_rest ("mid_block.resnets.1.", p, unet_resnet, G_N_ELEMENTS (unet_resnet));
      return NULL;
    }
  if (eat (&p, "input_blocks."))
    {
      if (!eat_index (&p, &k))
        return NULL;
      if (k == 0)
        return eat (&p, "0.") ? g_strconcat ("conv_in.", p, NULL) : NULL;
      if (levels == 0)
        return NULL;
      level = (k - 1) / (lpb + 1);
      slot = (k - 1) % (lpb + 1);
      if (level >= levels)
        return NULL;
      if (slot == lpb)
        return eat (&p, "0.op.") ? rename_with_index ("down_blocks.%d.downsamplers.%d.conv.",
                                                      level, 0, p, NULL, 0)
                                 : NULL;
      if (eat (&p, "0."))
        return rename_with_index ("down_blocks.%d.resnets.%d.", level, slot, p, unet_resnet,
                                  G_N_ELEMENTS (unet_resnet));
      if (eat (&p, "1."))
        return rename_with_index ("down_blocks.%d.attentions.%d.", level, slot, p, NULL, 0);
      return NULL;
    }
  if (eat (&p, "output_blocks."))
    {
      if (levels == 0 || !eat_index (&p, &k))
        return NULL;
      level = k / (lpb + 1);
      slot = k % (lpb + 1);
      if (level >= levels)
        return NULL;
      if (eat (&p, "0."))
        return rename_with_index ("up_blocks.%d.resnets.%d.", level, slot, p, unet_resnet,
                                  G_N_ELEMENTS (unet_resnet));
      /* Slot 1 is the attention, or the upsampler in a level without attention. */
      if (eat (&p, "1."))
        return g_str_has_prefix (p, "conv.")
                 ? rename_with_index ("up_blocks.%d.upsamplers.%d.", level, 0, p, NULL, 0)
                 : rename_with_index ("up_blocks.%d.attentions.%d.", level, slot, p, NULL, 0);
      if (eat (&p, "2.") && g_str_has_prefix (p, "conv."))
        return rename_with_index ("up_blocks.%d.upsamplers.%d.", level, 0, p, NULL, 0);
      return NULL;
    }
  return NULL;
}

/* One side (encoder. or decoder.) of the LDM VAE. *SQUEEZE is set for the attention's 1x1
 * convs, which diffusers holds as [C, C] linears. */
static char *
map_vae_side (const char *side, const char *p, int levels, gboolean *squeeze)
{
  g_autofree char *prefix = NULL;
  int i, j;

  if (g_str_has_prefix (p, "conv_in.") || g_str_has_prefix (p, "conv_out."))
    return g_strconcat (side, p, NULL);
  if (eat (&p, "norm_out."))
    return g_strconcat (side, "conv_norm_out.", p, NULL);
  if (eat (&p, "mid.block_1."))
    prefix = g_strconcat (side, "mid_block.resnets.0.", NULL);
  else if (eat (&p, "mid.block_2."))
    prefix = g_strconcat (side, "mid_block.resnets.1.", NULL);
  else if (eat (&p, "mid.attn_1."))
    {
      prefix = g_strconcat (side, "mid_block.attentions.0.", NULL);
      *squeeze = TRUE;
      return rename_rest (prefix, p, vae_attention, G_N_ELEMENTS (vae_attention));
    }
  else if (strcmp (side, "encoder.") == 0 && eat (&p, "down.") && eat_index (&p, &i))
    {
      if (eat (&p, "downsample.conv."))
        return g_strdup_printf ("encoder.down_blocks.%d.downsamplers.0.conv.%s", i, p);
      if (!eat (&p, "block.") || !eat_index (&p, &j))
        return NULL;
      prefix = g_strdup_printf ("encoder.down_blocks.%d.resnets.%d.", i, j);
    }
  else if (strcmp (side, "decoder.") == 0 && eat (&p, "up.") && eat_index (&p, &i))
    {
      if (i >= levels)
        return NULL;
      if (eat (&p, "upsample.conv."))
        return g_strdup_printf ("decoder.up_blocks.%d.upsamplers.0.conv.%s", levels - 1 - i, p);
      if (!eat (&p, "block.") || !eat_index (&p, &j))
        return NULL;
      prefix = g_strdup_printf ("decoder.up_blocks.%d.resnets.%d.", levels - 1 - i, j);
    }
  else
    return NULL;
  return rename_rest (prefix, p, vae_resnet, G_N_ELEMENTS (vae_resnet));
}

/* A VAE key with diffusers names: a standalone VAE of diffusers' (SDXL's sdxl_vae.safetensors,
 * a vae/ folder) given in place of a single file's own keeps them. */
static gboolean
is_diffusers_vae_key (const char *key)
{
  return strstr (key, "down_blocks.") != NULL || strstr (key, "up_blocks.") != NULL
         || strstr (key, "mid_block.") != NULL || strstr (key, "conv_norm_out.") != NULL;
}

/* A VAE key with CompVis/LDM names, in a folder's VAE (a CompVis VAE file given in place of a
 * diffusers folder's own). */
static gboolean
is_ldm_vae_key (const char *key)
{
  return g_str_has_prefix (key, "encoder.down.") || g_str_has_prefix (key, "decoder.up.")
         || g_str_has_prefix (key, "encoder.mid.") || g_str_has_prefix (key, "decoder.mid.")
         || g_str_has_prefix (key, "encoder.norm_out.")
         || g_str_has_prefix (key, "decoder.norm_out.");
}

/* diffusers' VAE attention names, the pre-0.14 ones renamed as its loader does. */
static char *
map_diffusers_vae (const char *key)
{
  const char *p = key;

  if (eat (&p, "encoder.mid_block.attentions.0.") || eat (&p, "decoder.mid_block.attentions.0."))
    {
      g_autofree char *prefix = g_strndup (key, (gsize) (p - key));
      char *name = rename_rest (prefix, p, vae_attention_legacy,
                                G_N_ELEMENTS (vae_attention_legacy));
      if (name != NULL)
        return name;
    }
  return g_strdup (key);
}

static char *
map_vae (const char *rest, const GessoKeymapLayout *layout, gboolean *squeeze)
{
  const char *p = rest;

  if (g_str_has_prefix (p, "quant_conv.") || g_str_has_prefix (p, "post_quant_conv."))
    return g_strdup (p);
  if (is_diffusers_vae_key (p))
    return map_diffusers_vae (p);
  if (eat (&p, "encoder."))
    return map_vae_side ("encoder.", p, layout->vae_levels, squeeze);
  if (eat (&p, "decoder."))
    return map_vae_side ("decoder.", p, layout->vae_levels, squeeze);
  return NULL;
}

static char *
map_hf_text (const char *rest)
{
  const char *p = rest;

  /* Checkpoints saved with transformers < 4.x lack the "text_model." level. */
  eat (&p, "text_model.");
  return g_strconcat ("text_model.", p, NULL);
}

/* OpenCLIP text tower names, except the fused in_proj (map_key handles it). */
static char *
map_openclip (const char *rest, GessoComponent component)
{
  const char *p = rest;
  int n;

  if (strcmp (p, "token_embedding.weight") == 0)
    return g_strdup ("text_model.embeddings.token_embedding.weight");
  if (strcmp (p, "positional_embedding") == 0)
    return g_strdup ("text_model.embeddings.position_embedding.weight");
  if (eat (&p, "ln_final."))
    return g_strconcat ("text_model.final_layer_norm.", p, NULL);
  /* [hidden, projection], the transpose of transformers' text_projection.weight: kept under
   * its own name so that the encoder knows which way round it is; only SDXL pools */
  if (strcmp (p, "text_projection") == 0 && component == GESSO_COMPONENT_TEXT_ENCODER_2)
    return g_strdup ("text_projection");
  if (eat (&p, "transformer.resblocks.") && eat_index (&p, &n))
    return rename_with_index ("text_model.encoder.layers.%d.", n, 0, p, openclip_block,
                              G_N_ELEMENTS (openclip_block));
  return NULL;
}

/* --- Building the target list ------------------------------------------------------------ */

typedef struct
{
  GArray *targets;
  GHashTable *used[GESSO_COMPONENT_COUNT];
  const GessoKeymapKey *keys;
} Mapper;

static void
clear_target (gpointer data)
{
  GessoKeymapTarget *t = data;

  g_free (t->name);
}

/* Adds NAME (taken) for key SOURCE, rows [ROW0, ROW0 + N_ROWS) of its first dimension
 * (N_ROWS < 0: the whole tensor). A name already taken in COMPONENT sends the key to OTHER
 * under its stored name instead: the first one wins, and nothing fails. */
static void
add_target (Mapper *m, guint source, GessoComponent component, char *name, int64_t row0,
            int64_t n_rows, gboolean squeeze)
{
  const GessoKeymapKey *key = &m->keys[source];
  GessoKeymapTarget t = { 0 };
  int64_t row_numel = 1;

  if (component != GESSO_COMPONENT_OTHER && g_hash_table_contains (m->used[component], name))
    {
      g_free (name);
      component = GESSO_COMPONENT_OTHER;
      name = g_strdup (key->key);
    }
  t.source = source;
  t.component = component;
  t.name = name;
  t.ndim = key->ndim;
  for (int i = 0; i < key->ndim && i < GESSO_SAFETENSORS_MAX_DIMS; i++)
    t.shape[i] = key->shape[i];
  for (int i = 1; i < t.ndim; i++)
    row_numel *= t.shape[i];
  if (n_rows >= 0)
    {
      t.shape[0] = n_rows;
      t.offset = row0 * row_numel;
    }
  t.numel = t.ndim == 0 ? 1 : t.shape[0] * row_numel;
  if (squeeze && t.ndim == 4 && t.shape[2] == 1 && t.shape[3] == 1)
    t.ndim = 2;
  if (component != GESSO_COMPONENT_OTHER)
    g_hash_table_add (m->used[component], t.name);
  g_array_append_val (m->targets, t);
}

/* The fused OpenCLIP projection in_proj_weight [3C, C] (or its bias [3C]) as the three
 * row slices diffusers names q_proj, k_proj, v_proj. FALSE when it is not one. */
static gboolean
map_fused_qkv (Mapper *m, guint source, GessoComponent component, const char *rest)
{
  static const char *const parts[3] = { "q_proj", "k_proj", "v_proj" };
  const GessoKeymapKey *key = &m->keys[source];
  const char *p = rest, *kind;
  int n;

  if (!eat (&p, "transformer.resblocks.") || !eat_index (&p, &n))
    return FALSE;
  if (strcmp (p, "attn.in_proj_weight") == 0 && key->ndim == 2)
    kind = "weight";
  else if (strcmp (p, "attn.in_proj_bias") == 0 && key->ndim == 1)
    kind = "bias";
  else
    return FALSE;
  if (key->shape[0] <= 0 || key->shape[0] % 3 != 0)
    return FALSE;
  for (int i = 0; i < 3; i++)
    add_target (m, source, component,
                g_strdup_printf ("text_model.encoder.layers.%d.self_attn.%s.%s", n, parts[i],
                                 kind),
                i * (key->shape[0] / 3), key->shape[0] / 3, FALSE);
  return TRUE;
}

/* A ControlNet's own layers: zero_convs.K.0 = controlnet_down_blocks.K, middle_block_out.0 =
 * controlnet_mid_block, and input_hint_block, an nn.Sequential of convs with SiLUs between
 * them (odd indices), = controlnet_cond_embedding's conv_in, blocks.0.. and conv_out. Every
 * other key is a UNet encoder key. */
static char *
map_controlnet (const char *rest, const GessoKeymapLayout *layout)
{
  const char *p = rest;
  int k;

  if (eat (&p, "zero_convs.") && eat_index (&p, &k) && eat (&p, "0."))
    return g_strdup_printf ("controlnet_down_blocks.%d.%s", k, p);
  p = rest;
  if (eat (&p, "middle_block_out.0."))
    return g_strdup_printf ("controlnet_mid_block.%s", p);
  p = rest;
  if (eat (&p, "input_hint_block.") && eat_index (&p, &k))
    {
      if (k % 2 == 1)
        return NULL;
      if (k == 0)
        return g_strdup_printf ("controlnet_cond_embedding.conv_in.%s", p);
      if (k == layout->control_hint_layers - 1)
        return g_strdup_printf ("controlnet_cond_embedding.conv_out.%s", p);
      return g_strdup_printf ("controlnet_cond_embedding.blocks.%d.%s", k / 2 - 1, p);
    }
  return map_unet (rest, layout);
}

static void
map_single_file_key (Mapper *m, guint source, const GessoKeymapLayout *layout)
{
  const char *key = m->keys[source].key;
  const TextPrefix *text = text_prefix_of (key);
  GessoComponent component = GESSO_COMPONENT_OTHER;
  gboolean squeeze = FALSE;
  char *name = NULL;

  if (g_str_has_prefix (key, UNET_PREFIX))
    {
      name = map_unet (key + strlen (UNET_PREFIX), layout);
      component = GESSO_COMPONENT_UNET;
    }
  else if (g_str_has_prefix (key, CONTROL_PREFIX))
    {
      name = map_controlnet (key + strlen (CONTROL_PREFIX), layout);
      component = GESSO_COMPONENT_UNET;
    }
  else if (g_str_has_prefix (key, VAE_PREFIX))
    {
      name = map_vae (key + strlen (VAE_PREFIX), layout, &squeeze);
      component = GESSO_COMPONENT_VAE;
    }
  else if (text != NULL && !text->openclip)
    {
      name = map_hf_text (key + strlen (text->prefix));
      component = text->component;
    }
  else if (text != NULL)
    {
      if (map_fused_qkv (m, source, text->component, key + strlen (text->prefix)))
        return;
      name = map_openclip (key + strlen (text->prefix), text->component);
      component = text->component;
    }
  if (name == NULL)
    add_target (m, source, GESSO_COMPONENT_OTHER, g_strdup (key), 0, -1, FALSE);
  else
    add_target (m, source, component, name, 0, -1, squeeze);
}

static void
map_diffusers_key (Mapper *m, guint source, const GessoKeymapLayout *layout)
{
  const GessoKeymapKey *key = &m->keys[source];
  gboolean squeeze = FALSE;
  char *name = NULL;

  if (key->component == GESSO_COMPONENT_VAE && is_ldm_vae_key (key->key))
    name = map_vae (key->key, layout, &squeeze);
  else if (key->component == GESSO_COMPONENT_VAE)
    name = map_diffusers_vae (key->key);
  else
    name = g_strdup (key->key);
  if (name == NULL)
    add_target (m, source, GESSO_COMPONENT_OTHER, g_strdup (key->key), 0, -1, FALSE);
  else
    add_target (m, source, key->component, name, 0, -1, squeeze);
}

GArray *
gesso_keymap_map (GessoModelLayout layout, const GessoKeymapKey *keys, guint n_keys,
                  GessoKeymapLayout *layout_out)
{
  GessoKeymapLayout info = { 0 };
  Mapper m = { 0 };

  g_return_val_if_fail (keys != NULL || n_keys == 0, NULL);
  m.targets = g_array_sized_new (FALSE, TRUE, sizeof (GessoKeymapTarget), n_keys + 8);
  g_array_set_clear_func (m.targets, clear_target);
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    m.used[c] = g_hash_table_new (g_str_hash, g_str_equal);
  m.keys = keys;

  if (layout == GESSO_MODEL_LAYOUT_SINGLE_FILE)
    {
      scan_single_file (keys, n_keys, &info);
      for (guint i = 0; i < n_keys; i++)
        map_single_file_key (&m, i, &info);
    }
  else
    {
      scan_diffusers (keys, n_keys, &info);
      for (guint i = 0; i < n_keys; i++)
        map_diffusers_key (&m, i, &info);
    }

  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    g_hash_table_unref (m.used[c]);
  if (layout_out != NULL)
    *layout_out = info;
  return m.targets;
}
