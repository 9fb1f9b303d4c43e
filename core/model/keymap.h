/* Checkpoint key names -> diffusers names.
 *
 * Single-file checkpoints use the original CompVis/LDM names ("model.diffusion_model.
 * input_blocks.4.0.in_layers.2.weight"), transformers names under "cond_stage_model.
 * transformer." (SD1) or OpenCLIP names under "cond_stage_model.model." (SD2); SDXL's keep
 * CLIP ViT-L under "conditioner.embedders.0.transformer." and OpenCLIP bigG under
 * "conditioner.embedders.1.model." (GESSO_COMPONENT_TEXT_ENCODER_2), and its UNet's added
 * embedding as label_emb; diffusers folders use diffusers names. This module turns a whole list of keys into diffusers names in
 * one pass, because the block arithmetic (which input block is which down block) depends on
 * the structure of the UNet, inferred from the keys present: the number of levels is one more
 * than the number of downsamplers, layers_per_block is the index of the first downsampler
 * minus one. Nothing here is tied to SD1.5's four levels.
 *
 * Keys are mapped by name and shape. A fused OpenCLIP attention projection in_proj_weight
 * [3C, C] becomes three targets (q_proj, k_proj, v_proj), each a slice of rows of the one
 * stored tensor. Keys nobody uses (schedule buffers, EMA copies, unknown names, anything that
 * does not fit the inferred structure) are kept under GESSO_COMPONENT_OTHER with their stored
 * name; mapping never fails.
 */
#ifndef GESSO_KEYMAP_H
#define GESSO_KEYMAP_H

#include <glib.h>
#include <stdint.h>

#include "gesso.h"
#include "io/safetensors.h"
#include "model/weights.h"

G_BEGIN_DECLS

typedef struct
{
  GessoComponent component;     /* the folder it came from (diffusers); ignored for single files */
  const char *key;              /* as stored */
  int ndim;
  const int64_t *shape;
} GessoKeymapKey;

typedef struct
{
  guint source;                 /* index of the GessoKeymapKey this comes from */
  GessoComponent component;
  char *name;                   /* diffusers name; the stored key under OTHER */
  int ndim;                     /* shape as diffusers has it */
  int64_t shape[GESSO_SAFETENSORS_MAX_DIMS];
  int64_t offset;               /* first element of the slice in the stored tensor; 0 if whole */
  int64_t numel;
} GessoKeymapTarget;

/* What the mapping learnt about the model's structure; 0 where a part is absent. */
typedef struct
{
  GessoTextKeys text_keys;
  int text_layers;              /* transformer layers stored (OpenCLIP: resblocks) */
  int unet_levels;
  int unet_layers_per_block;
  int vae_levels;
  int control_hint_layers;      /* a ControlNet's input_hint_block: its last index + 1 */
  gboolean sdxl;                /* SDXL's conditioner, second text encoder or add_embedding */
} GessoKeymapLayout;

/* Maps N_KEYS keys of a model stored in LAYOUT. Returns an array of GessoKeymapTarget (one per
 * key, three for a fused q/k/v projection) whose names are freed with the array; LAYOUT_OUT
 * (may be NULL) receives the inferred structure. */
GArray *gesso_keymap_map (GessoModelLayout layout, const GessoKeymapKey *keys, guint n_keys,
                          GessoKeymapLayout *layout_out);

G_END_DECLS

#endif /* GESSO_KEYMAP_H */
