/* The tensors of a model as stored on disk, whatever the layout.
 *
 * A model is either one .safetensors checkpoint (CompVis/LDM key names, all components in
 * one file) or a diffusers folder (model_index.json; unet/, vae/, text_encoder/, tokenizer/,
 * scheduler/ sub-folders, each with config.json and one or more .safetensors files, sharded
 * ones through *.safetensors.index.json). This module maps the files, validates them and
 * lists every tensor with the component it belongs to; it does not interpret names beyond
 * that (core/model does). Pickle files (.ckpt, .pt, .pth, .bin) are refused.
 */
#ifndef GESSO_MODEL_FILES_H
#define GESSO_MODEL_FILES_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "gesso.h"
#include "io/safetensors.h"

G_BEGIN_DECLS

typedef struct
{
  GessoComponent component;
  /* As stored: the full key for a single file ("model.diffusion_model.out.2.weight"); the
   * key inside the component's own files for a diffusers folder ("conv_out.weight"). A
   * folder other than unet/, vae/ or text_encoder/ (text_encoder_2/, safety_checker/, ...)
   * prefixes its keys with its name ("text_encoder_2/text_model...") to keep them unique. */
  const char *key;
  const GessoSafetensorsEntry *entry;
} GessoModelTensor;

typedef struct GessoModelFiles GessoModelFiles;

/* PATH is a diffusers folder (model_index.json lists the components; unet/, vae/ and the
 * text encoders' folders must hold config.json and safetensors weights: the plain file, a shard
 * index, or a variant such as fp16) or a single .safetensors file, whose tensors go to
 * components by key prefix. Refused: pickle files by name or content (GESSO_ERROR_UNSAFE),
 * a folder without model_index.json (GESSO_ERROR_MISSING), a path that cannot be opened
 * (GESSO_ERROR_IO), and anything a file's validation or a shard index check rejects. */
GessoModelFiles *gesso_model_files_open (const char *path, GError **error);
void gesso_model_files_free (GessoModelFiles *files);

GessoModelLayout gesso_model_files_layout (const GessoModelFiles *files);
const char *gesso_model_files_path (const GessoModelFiles *files);
/* The folder that holds the model: the diffusers folder itself, or the single file's folder. */
const char *gesso_model_files_dir (const GessoModelFiles *files);
guint gesso_model_files_n_files (const GessoModelFiles *files);

guint gesso_model_files_count (const GessoModelFiles *files);
const GessoModelTensor *gesso_model_files_tensor (const GessoModelFiles *files, guint index);
/* By component and key as stored (see GessoModelTensor.key); NULL when absent. */
const GessoModelTensor *gesso_model_files_lookup (const GessoModelFiles *files,
                                                  GessoComponent component, const char *key);

/* A ControlNet: a diffusers ControlNetModel folder (config.json, kept as the "controlnet"
 * config, and its weights) or a single file in lllyasviel's layout ("control_model.*").
 * Its network's tensors go to GESSO_COMPONENT_UNET, since it is a UNet encoder with a few
 * layers of its own; core/model/controlnet.c reads them. */
GessoModelFiles *gesso_model_files_open_controlnet (const char *path, GError **error);

/* The parsed config.json of a diffusers sub-folder ("unet", "vae", "text_encoder",
 * "scheduler" reads scheduler_config.json, "tokenizer" tokenizer_config.json; "model_index"
 * is model_index.json itself), or NULL when there is none (single files carry no configs).
 * Borrowed; lives as long as FILES. */
JsonObject *gesso_model_files_config (const GessoModelFiles *files, const char *subfolder);

/* Replaces the model's VAE (tensors and config) by PATH's: a standalone VAE .safetensors in
 * the CompVis layout (encoder.*, decoder.*, quant_conv, post_quant_conv, as A1111's
 * vae-ft-mse-840000-ema-pruned.safetensors) or with diffusers names, or a diffusers vae/
 * folder (config.json + weights). Keys of anything else in the file are ignored; a file with
 * no autoencoder tensor is UNSUPPORTED, a pickle file UNSAFE. Whether the VAE fits the model
 * is for the caller to check. */
gboolean gesso_model_files_set_vae (GessoModelFiles *files, const char *path, GError **error);
/* The path given to gesso_model_files_set_vae, or NULL. */
const char *gesso_model_files_vae_path (const GessoModelFiles *files);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoModelFiles, gesso_model_files_free)

G_END_DECLS

#endif /* GESSO_MODEL_FILES_H */
