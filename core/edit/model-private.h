/* The inside of a GessoModel: what the pipelines borrow from an opened model.
 *
 * A model owns its files, weights, tokenizer, text encoder (NULL while released), UNet and
 * VAE, the configs they were built from, the scheduler config found beside it and a cache of
 * prompt embeddings.
 * Like the weights it is used by one job at a time.
 */
#ifndef GESSO_MODEL_PRIVATE_H
#define GESSO_MODEL_PRIVATE_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "edit/prompt_cache.h"
#include "gesso.h"
#include "io/model_files.h"
#include "model/controlnet.h"
#include "model/text_encoder.h"
#include "model/tokenizer.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"
#include "sampling/sampler.h"

G_BEGIN_DECLS

struct GessoModel
{
  GessoModelFiles *files;
  GessoWeights *weights;
  GessoTokenizer *tokenizer;
  GessoTextEncoder *text_encoder;
  GessoTokenizer *tokenizer_2;  /* SDXL's second tokenizer and text encoder; NULL otherwise */
  GessoTextEncoder *text_encoder_2;
  gboolean sdxl;
  gboolean force_zeros_for_empty_prompt;        /* see GessoPipelineParams.negative_prompt */
  GessoUnet *unet;
  GessoVae *vae;
  GessoTaesd *taesd;            /* the --vae TAESD between planning and building; then vae's */
  char *vae_path;               /* that TAESD's path, for messages; NULL: none */
  GessoPromptCache *prompts;
  JsonObject *scheduler_json;   /* the model's scheduler_config.json; NULL when none */
  char *scheduler_json_name;    /* its path, for messages */
  char *config_dir;             /* where a single file's configs came from; NULL if none */
  char *tokenizer_dir;          /* where vocab.json and merges.txt were found; NULL: the
                                 * bundled CLIP table */
  GessoUnetConfig unet_config;  /* as checked against the weight shapes */
  GessoVaeConfig vae_config;
  int sample_size;              /* the UNet config's training resolution (cells); 0: none */
  GessoPrediction prediction;
  char *prediction_source;      /* the file that said it; NULL: the caller, or the default */
  char *architecture;
  int native_size;
  int n_threads;
  float *preview_map;           /* latent -> RGB for previews (preview.h); NULL until asked */
  GessoVae *preview_taesd;      /* a TAESD found beside the model, for previews (preview.h) */
  gboolean preview_taesd_sought;
  GHashTable *controlnets;      /* path -> GessoControlNet opened for this model; NULL: none */
  GHashTable *loras;            /* path -> GessoLora bound to WEIGHTS; NULL: none opened */
  GessoWeightDelta *lora_deltas; /* the deltas set on WEIGHTS now (one per LoRA module) */
  char *lora_set;               /* what they are ("path\tweight\n" each); NULL: none */
  gboolean lora_text;           /* some of them change a text encoder */
  gboolean lora_lcm;            /* one of them is an LCM-LoRA: "auto" samples with lcm */
  GArray *embedding_rows;       /* floats: the embeddings' rows past the vocabulary, in order */
  gboolean release_weights;     /* GessoModelParams.release_weights */
  gboolean unet_released;       /* its weights freed until gesso_model_prepare_job */
};

/* Takes the textual-inversion embeddings of PATHS (NULL-terminated; files, or folders whose
 * fitting embeddings are all taken) into the model's tokenizer and text encoder
 * (model_embeddings.c). A file that is no embedding or is one of another width fails. */
gboolean gesso_model_add_embeddings (GessoModel *m, const char *const *paths, GError **error);

/* The ControlNet at PATH for this model's UNet, opened on first use and kept with the model
 * (a dialog's re-runs do not read it again). Borrowed. */
GessoControlNet *gesso_model_controlnet (GessoModel *model, const char *path, GError **error);

/* The sampler configuration for KIND on this model: diffusers' defaults for the class, then
 * Stable Diffusion's training schedule (scaled_linear betas 0.00085..0.012 over 1000 steps,
 * steps_offset 1, set_alpha_to_one false, clip_sample false: what every SD 1.x/2.x scheduler
 * config says), then the model's own scheduler_config.json read the way diffusers'
 * from_config reads another class's config (keys of other classes ignored), then the
 * model's prediction type. */
gboolean gesso_model_sampler_config (const GessoModel *model, GessoSamplerKind kind,
                                     GessoSamplerConfig *config, GError **error);

/* OUT = the embedding of TEXT (POOLED, when not NULL, its pooled embedding: SDXL), from the
 * prompt cache or the text encoders, which are opened again first when
 * gesso_model_prompts_encoded released them. */
gboolean gesso_model_encode_prompt (GessoModel *model, const char *text, int clip_skip,
                                    float *out, float *pooled, GError **error);
/* A job has encoded every prompt it needs: with GessoModelParams.release_weights the
 * text encoders and their weights are freed now (the prompt cache keeps the embeddings). */
void gesso_model_prompts_encoded (GessoModel *model);

/* Makes USES (N of them; weight-0 ones left out) the LoRAs of the model's next jobs: their
 * deltas set on the weights (gesso_weights_set_delta), the files read once and kept. The same
 * set as now costs nothing; another replaces it, and the prompt cache is emptied when the text
 * encoders' weights change. On failure the model has no LoRA. (core/edit/model_loras.c) */
gboolean gesso_model_use_loras (GessoModel *model, const GessoLoraUse *uses, int n,
                                GError **error);
void gesso_model_free_loras (GessoModel *model);
/* An LCM-LoRA is among the LoRAs in use (gesso_lora_is_lcm). */
gboolean gesso_model_uses_lcm_lora (const GessoModel *model);

/* A job is about to sample: the UNet's weights are read again if a previous job released
 * them. */
gboolean gesso_model_prepare_job (GessoModel *model, GError **error);
/* A job's sampling is over (its UNet and ControlNets are not needed again before the next
 * job): frees what only they used, their weights with GessoModelParams.release_weights. */
void gesso_model_sampling_done (GessoModel *model);

/* Text embedding width and length (tokens) the UNet's cross-attention reads. */
int64_t gesso_model_context_tokens (const GessoModel *model);
int64_t gesso_model_context_width (const GessoModel *model);

/* Makes the model's thread count the one the kernels use (OpenMP and the GEMM provider). */
void gesso_model_apply_threads (const GessoModel *model);

G_END_DECLS

#endif /* GESSO_MODEL_PRIVATE_H */
