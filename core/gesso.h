/* Gesso: a CPU engine for diffusion-model image edits.
 *
 * The one public header of the engine. Fallible functions return gboolean (or a pointer,
 * NULL on failure) and take GError **error last; errors are in the GESSO_ERROR domain with
 * messages a user can act on. Nothing here depends on GIMP or GTK.
 */
#ifndef GESSO_H
#define GESSO_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define GESSO_ERROR (gesso_error_quark ())

typedef enum
{
  GESSO_ERROR_FAILED,            /* anything that fits no better code */
  GESSO_ERROR_INVALID_ARGUMENT,  /* a parameter out of range, NaN, empty */
  GESSO_ERROR_IO,                /* a file could not be opened, read or mapped */
  GESSO_ERROR_CORRUPT,           /* a file is truncated or malformed */
  GESSO_ERROR_UNSUPPORTED,       /* valid, but not something Gesso handles (yet) */
  GESSO_ERROR_UNSAFE,            /* refused on purpose: pickle checkpoints can run code */
  GESSO_ERROR_MISSING,           /* a file or tensor that must be there is not */
  GESSO_ERROR_NO_MEMORY,         /* an allocation the job needs could not be made */
  GESSO_ERROR_CANCELLED,         /* the job was stopped by its caller */
} GessoErrorCode;

GQuark gesso_error_quark (void);
const char *gesso_version (void);

/* --- Model inspection (what `gesso info` prints) --------------------------------------- */

typedef enum
{
  GESSO_MODEL_LAYOUT_SINGLE_FILE,     /* one .safetensors checkpoint */
  GESSO_MODEL_LAYOUT_DIFFUSERS,       /* a diffusers folder with model_index.json */
} GessoModelLayout;

typedef enum
{
  GESSO_COMPONENT_UNET,
  GESSO_COMPONENT_VAE,
  GESSO_COMPONENT_TEXT_ENCODER,
  GESSO_COMPONENT_TEXT_ENCODER_2,     /* SDXL's second (OpenCLIP bigG) text encoder */
  GESSO_COMPONENT_OTHER,              /* schedule buffers, EMA counters, unknown keys */
  GESSO_COMPONENT_COUNT,
} GessoComponent;

/* Storage types a model file may use; only F32, F16 and BF16 hold weights Gesso computes with. */
typedef enum
{
  GESSO_DTYPE_F32,
  GESSO_DTYPE_F16,
  GESSO_DTYPE_BF16,
  GESSO_DTYPE_F64,
  GESSO_DTYPE_I64,
  GESSO_DTYPE_I32,
  GESSO_DTYPE_I16,
  GESSO_DTYPE_I8,
  GESSO_DTYPE_U64,
  GESSO_DTYPE_U32,
  GESSO_DTYPE_U16,
  GESSO_DTYPE_U8,
  GESSO_DTYPE_BOOL,
  GESSO_DTYPE_F8_E4M3,
  GESSO_DTYPE_F8_E5M2,
  GESSO_DTYPE_COUNT,
} GessoDType;

const char *gesso_dtype_name (GessoDType dtype);
const char *gesso_component_name (GessoComponent component);

/* Parameters are the elements of floating-point tensors (F32, F16, BF16, F64, F8), LDM
 * schedule buffers (betas, alphas_cumprod, ...) of single files included, in "other".
 * Integer and bool tensors (position_ids, model_ema.num_updates) count as tensors only. */
typedef struct
{
  guint n_tensors;
  guint64 n_params;
  guint n_tensors_by_dtype[GESSO_DTYPE_COUNT];
} GessoComponentSummary;

typedef struct
{
  char *path;
  GessoModelLayout layout;
  guint n_files;                      /* safetensors files read (shards count separately) */
  guint n_tensors;
  guint64 n_params;
  GessoComponentSummary components[GESSO_COMPONENT_COUNT];
  char *architecture;                 /* best-effort guess, e.g. "Stable Diffusion 1.x" */
} GessoModelSummary;

/* Opens PATH (a .safetensors file or a diffusers folder), validates every tensor entry and
 * counts what it holds. Pickle checkpoints (.ckpt, .pt, .pth, .bin) are refused. */
GessoModelSummary *gesso_model_summary_new (const char *path, GError **error);
void gesso_model_summary_free (GessoModelSummary *summary);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoModelSummary, gesso_model_summary_free)

/* --- Models ---------------------------------------------------------------------------- */

typedef struct GessoModel GessoModel;

typedef enum
{
  GESSO_PREDICTION_TYPE_AUTO,         /* the model's .yaml or scheduler config, else epsilon */
  GESSO_PREDICTION_TYPE_EPSILON,
  GESSO_PREDICTION_TYPE_V,
} GessoPredictionType;

typedef struct
{
  const char *path;                   /* .safetensors file or diffusers folder */
  /* A diffusers folder whose configs (unet/, vae/, text_encoder/, scheduler/, tokenizer/)
   * describe a single-file checkpoint; NULL: look beside the file, else infer from shapes. */
  const char *config_dir;
  GessoPredictionType prediction;
  int n_threads;                      /* 0: all cores */
  /* A separate VAE in place of the model's own, as A1111 and ComfyUI load one: a .safetensors
   * file (CompVis names as vae-ft-mse-840000-ema-pruned.safetensors has them, or diffusers
   * names) or a diffusers vae/ folder; NULL: the model's own. A VAE of another family
   * (another latent, SDXL's scaling factor) is refused. */
  const char *vae;
  /* Free each network's weights as soon as a job is done with them: the text encoder's once
   * the prompts are encoded, the UNet's before the result is decoded. For a caller that runs
   * one job, such as the gesso command: a 512x512 SD 1.5 generate from an F16 file then
   * peaks at the UNet's memory, not at the UNet's and the VAE's together. A later job reads
   * them again (a prompt already in the model's cache needs no text encoder). FALSE: keep
   * them for the next job, as the GIMP plug-in does. */
  gboolean release_weights;
  /* Textual-inversion embeddings, NULL-terminated (NULL: none): .safetensors files in A1111's
   * layout (emb_params or string_to_param; the trigger word is the file's stem) or diffusers'
   * learned_embeds ({token: vector}; the trigger is the token), and folders, whose every
   * embedding that fits the model is taken. A trigger word in a prompt, standing as a word
   * and in any case, stands for its vectors. A file that is no embedding (pickle .pt/.bin
   * included) or is made for another family fails the open. */
  const char *const *embeddings;
} GessoModelParams;

void gesso_model_params_init (GessoModelParams *params);
GessoModel *gesso_model_open (const GessoModelParams *params, GError **error);
void gesso_model_free (GessoModel *model);

/* "Stable Diffusion 1.x", "Stable Diffusion 2.x (v-prediction)", ... */
const char *gesso_model_get_architecture (const GessoModel *model);
/* The image size the model was trained at, in pixels (512 for SD 1.x). */
int gesso_model_get_native_size (const GessoModel *model);
/* Pixels per latent cell (8 for SD; derived from the VAE). */
int gesso_model_get_latent_factor (const GessoModel *model);
gboolean gesso_model_is_inpainting (const GessoModel *model);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoModel, gesso_model_free)

/* What opening a model would use, found from its configs, weight names and shapes without
 * reading any weight: cheap enough for `gesso info` and a model chooser. */
typedef struct
{
  char *architecture;                 /* as gesso_model_get_architecture would say */
  GessoPredictionType prediction;     /* EPSILON or V, never AUTO */
  char *prediction_source;            /* the .yaml or scheduler config it was read from;
                                       * NULL: the caller's setting, or epsilon for want of
                                       * either */
  int native_size;                    /* pixels */
  int latent_factor;                  /* pixels per latent cell */
  gboolean inpainting;                /* a 9-channel inpainting UNet */
  char *config_dir;                   /* single file: the diffusers folder its configs come
                                       * from; NULL: inferred from the weights (or a folder) */
  char **tokenizer_files;             /* the tokenizer files read, NULL-terminated; empty
                                       * when TOKENIZER_BUNDLED */
  gboolean tokenizer_bundled;         /* the model brings none: the CLIP table Gesso ships */
} GessoModelProbe;

/* Fails where gesso_model_open would, except for what only fetching every weight finds (a
 * tensor that no config depends on missing or misshapen). */
GessoModelProbe *gesso_model_probe (const GessoModelParams *params, GError **error);
void gesso_model_probe_free (GessoModelProbe *probe);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoModelProbe, gesso_model_probe_free)

/* --- Model files: a cache of what was learnt about them, and A1111's model hash ---------- */

/* What Gesso learnt about model files (their hash, their kind), kept between runs in FILE,
 * each entry valid while the file keeps its size and mtime. FILE NULL: in memory only. A
 * missing or damaged FILE is an empty cache. */
typedef struct GessoModelCache GessoModelCache;

GessoModelCache *gesso_model_cache_new (const char *file);
/* Writes what changed (atomically: temporary name, then rename). */
gboolean gesso_model_cache_save (GessoModelCache *cache, GError **error);
void gesso_model_cache_free (GessoModelCache *cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoModelCache, gesso_model_cache_free)

/* The SHA-256 of the whole file PATH, 64 lower-case hex digits: what A1111 and civitai hash
 * a model by. Taken from CACHE (may be NULL) when it knows this version of the file, else
 * computed (seconds for a checkpoint) and stored there, the cache saved at once. *FROM_CACHE
 * (may be NULL) says which. */
char *gesso_model_hash_sha256 (const char *path, GessoModelCache *cache, gboolean *from_cache,
                               GError **error);

/* The SHA-256 CACHE knows for this version of PATH, or NULL: never reads the file. */
char *gesso_model_hash_cached (const char *path, GessoModelCache *cache);

/* A1111's "Model hash" (civitai's "AutoV2"): the first 10 hex digits of that SHA-256. */
#define GESSO_AUTOV2_LENGTH 10
char *gesso_model_hash_autov2 (const char *sha256);

/* --- Model folders: what users keep where A1111 and ComfyUI put it --------------------- */

typedef enum
{
  GESSO_ASSET_CHECKPOINT,             /* a whole model: single file or diffusers folder */
  GESSO_ASSET_LORA,
  GESSO_ASSET_EMBEDDING,              /* textual inversion */
  GESSO_ASSET_CONTROLNET,
  GESSO_ASSET_VAE,
  GESSO_ASSET_TAESD,                  /* tiny autoencoder (A1111's VAE-approx) */
  GESSO_ASSET_UNKNOWN,                /* nothing Gesso recognises */
  GESSO_ASSET_KIND_COUNT,
} GessoAssetKind;

/* "checkpoint", "LoRA", "embedding", "ControlNet", "VAE", "TAESD", "unknown". */
const char *gesso_asset_kind_name (GessoAssetKind kind);

/* One model file or folder found, described from its headers (and configs) only. */
typedef struct
{
  char *path;
  GessoAssetKind kind;
  char *family;                       /* "SD 1.x", "SD 2.x", "SDXL", "SD 1.x inpainting", ...;
                                       * NULL when the file does not tell */
  guint64 size;                       /* bytes; a folder's files summed */
  char *folder;                       /* the models folder it was found under */
  char *source;                       /* who keeps that folder: "A1111", "ComfyUI", ... */
  char *problem;                      /* why it could not be read (then KIND is UNKNOWN);
                                       * NULL when it was */
} GessoAsset;

/* What PATH (a .safetensors file or a folder) is, read from its header or config only. A
 * file that is not valid safetensors is an error; one that is but holds nothing known is
 * GESSO_ASSET_UNKNOWN. CACHE (may be NULL) keeps the answer for the file's size and mtime. */
gboolean gesso_asset_identify (const char *path, GessoModelCache *cache, GessoAssetKind *kind,
                               char **family, GError **error);

typedef struct GessoModelLibrary GessoModelLibrary;

GessoModelLibrary *gesso_model_library_new (void);
void gesso_model_library_free (GessoModelLibrary *library);

/* Folders to look in. KIND is what the folder holds (A1111's models/Lora holds LoRAs), or
 * GESSO_ASSET_UNKNOWN for a folder of anything (each file's header tells); SOURCE names who
 * keeps it, for listings. A folder that does not exist is skipped when scanning; one added
 * twice is scanned once. */
void gesso_model_library_add_folder (GessoModelLibrary *library, const char *dir,
                                     GessoAssetKind kind, const char *source);
/* The folders A1111/Forge/SD.Next and ComfyUI keep models in, under HOME:
 * stable-diffusion-webui{,-forge}/, automatic/ (models/Stable-diffusion, Lora, LyCORIS,
 * ControlNet, VAE, VAE-approx; embeddings/) and ComfyUI/, comfyui/, Documents/ComfyUI/
 * (models/checkpoints, loras, controlnet, embeddings, vae, vae_approx, diffusers, and every
 * folder its extra_model_paths.yaml names). A broken extra_model_paths.yaml is skipped; its
 * error is kept for gesso_model_library_get_warnings. */
void gesso_model_library_add_known_folders (GessoModelLibrary *library, const char *home);

/* Looks in every folder (and sub-folders, three deep) for .safetensors files and diffusers
 * folders, and identifies each (through CACHE, may be NULL). A file that cannot be read is
 * listed as UNKNOWN with its PROBLEM, which is also kept as a warning. Result sorted by kind,
 * then path. */
void gesso_model_library_scan (GessoModelLibrary *library, GessoModelCache *cache);
guint gesso_model_library_count (const GessoModelLibrary *library);
const GessoAsset *gesso_model_library_get (const GessoModelLibrary *library, guint index);
/* The folders looked in that exist, in the order added; NULL-terminated, borrowed. */
const char *const *gesso_model_library_get_folders (GessoModelLibrary *library);
/* One line per problem met (a damaged file, a broken extra_model_paths.yaml); borrowed,
 * NULL-terminated. */
const char *const *gesso_model_library_get_warnings (GessoModelLibrary *library);

/* Folders the user added (the plug-in's "Add a models folder…"), one a line in
 * CONFIG_DIR/gesso/model-folders, shared by the plug-in and `gesso models`. */
void gesso_model_library_add_user_folders (GessoModelLibrary *library, const char *config_dir);
/* Adds DIR to that file (once). */
gboolean gesso_model_library_remember_folder (const char *config_dir, const char *dir,
                                              GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoModelLibrary, gesso_model_library_free)

/* What a ControlNet file or folder is, read from its header and weight shapes (no weight is
 * read): what `gesso info` and the choosers say about it. */
typedef struct
{
  const char *family;                 /* "Stable Diffusion 1.x", "2.x", "XL", or NULL: unknown */
  int text_width;                     /* the text embedding width its attention reads */
  int image_channels;                 /* of the control image (3: RGB) */
  int image_factor;                   /* control image pixels per latent cell (8) */
  int levels;                         /* of its UNet encoder */
  guint64 parameters;
  gboolean has_config;                /* a diffusers folder's config.json */
} GessoControlNetInfo;

/* FALSE (and ERROR) when PATH is no ControlNet Gesso can read. */
gboolean gesso_controlnet_probe (const char *path, GessoControlNetInfo *info, GError **error);

/* What a TAESD (tiny autoencoder) file, pair or folder is: what `gesso info` says about it. */
typedef struct
{
  const char *layout;                 /* "diffusers AutoencoderTiny", "madebyollin ..." */
  gboolean has_encoder, has_decoder;
  int latent_channels;
  int latent_factor;                  /* pixels per latent cell (8) */
  int width;                          /* of its widest layer (64 in the released ones) */
  guint64 parameters;
  const char *fits;                   /* the model families its latent fits */
} GessoTaesdInfo;

/* FALSE (and ERROR) when PATH is no TAESD Gesso can read; reads its weights (a few MB). */
gboolean gesso_taesd_probe (const char *path, GessoTaesdInfo *info, GError **error);

/* What a textual-inversion embedding file is. */
typedef struct
{
  char *trigger;                      /* the word that calls it up in a prompt */
  const char *layout;                 /* "A1111 (emb_params)", "diffusers (learned_embeds)" */
  int n_vectors;                      /* token positions it takes */
  int width;                          /* the text encoder width it was made for */
  const char *family;                 /* "SD 1.x" (768), "SD 2.x" (1024), or NULL */
} GessoEmbeddingInfo;

/* FALSE (and ERROR: pickle, not an embedding, SDXL, misshapen) when PATH is no embedding
 * Gesso can use. Free INFO's strings with gesso_embedding_info_clear. */
gboolean gesso_embedding_probe (const char *path, GessoEmbeddingInfo *info, GError **error);
void gesso_embedding_info_clear (GessoEmbeddingInfo *info);

/* What a LoRA file is: what `gesso info` says about it. */
typedef struct
{
  const char *layout;                 /* "kohya/A1111", "diffusers (PEFT)", ... */
  guint unet_layers;                  /* layers it changes in the UNet */
  guint text_layers;                  /* ... and in the text encoders */
  int64_t max_rank;
  const char *family;                 /* the family it seems made for; NULL: the file does not
                                       * tell */
} GessoLoraInfo;

/* FALSE (and ERROR: pickle, no LoRA, a LyCORIS kind Gesso refuses, a damaged pair) when PATH
 * is no LoRA Gesso can read; whether it fits a model shows only when applied to it. */
gboolean gesso_lora_probe (const char *path, GessoLoraInfo *info, GError **error);

/* --- Images and masks ------------------------------------------------------------------- */

/* RGBA, float, sRGB-encoded (not linear) in [0, 1], straight (not premultiplied) alpha,
 * rows top to bottom, no padding. Whoever made it frees it (gesso_image_clear). */
typedef struct
{
  int width;
  int height;
  float *pixels;                      /* width * height * 4 */
} GessoImage;

/* One float per pixel in [0, 1]: 1 = change this pixel, 0 = keep it; between = soft edge. */
typedef struct
{
  int width;
  int height;
  float *values;
} GessoMask;

gboolean gesso_image_init (GessoImage *image, int width, int height, GError **error);
void gesso_image_clear (GessoImage *image);
gboolean gesso_mask_init (GessoMask *mask, int width, int height, GError **error);
void gesso_mask_clear (GessoMask *mask);

/* --- Edits ------------------------------------------------------------------------------ */

typedef enum
{
  GESSO_EDIT_GENERATE,                /* text to image */
  GESSO_EDIT_INPAINT,                 /* RePaint inside the mask */
  GESSO_EDIT_SDEDIT,                  /* realize strokes: noise to strength, denoise back */
  GESSO_EDIT_RESTYLE,                 /* DDIM inversion under one prompt, sampling under another */
} GessoEditKind;

/* Called after every denoising step (STEP of TOTAL, 1-based). PREVIEW is NULL unless the
 * params ask for previews (preview_size); then it is the sampler's current estimate of the
 * clean image, decoded cheaply (a per-model linear map of the latent, no VAE decoder) and
 * shown as the result would be: generate's output, or the whole input with the estimate laid
 * into the edited region through the blend mask, at preview_size pixels on the longest side,
 * RGBA (alpha the input's, or 1). Valid during the call only. Return FALSE to stop the job:
 * it then fails with GESSO_ERROR_CANCELLED and leaves nothing behind. */
typedef gboolean (*GessoProgressFunc) (int step, int total, const GessoImage *preview,
                                       gpointer user_data);

/* How a control image is made from the picture given for it (what ControlNet kinds expect;
 * preprocessors that need networks of their own, depth or pose, are out: pass an image
 * prepared elsewhere with NONE). */
typedef enum
{
  GESSO_CONTROL_PREPROCESS_NONE,      /* the image as it is: RGB, transparency as black */
  GESSO_CONTROL_PREPROCESS_SCRIBBLE,  /* strokes white on black: a layer's opaque pixels, or an
                                       * opaque picture's dark lines */
  GESSO_CONTROL_PREPROCESS_LINEART,   /* the picture's darkness, lines white on black */
  GESSO_CONTROL_PREPROCESS_CANNY,     /* Canny edges (thresholds 100, 200 of 255) */
  GESSO_CONTROL_PREPROCESS_INPAINT,   /* the input with the region to change at -1, as
                                       * control_v11p_sd15_inpaint reads it */
} GessoControlPreprocess;

/* "none", "scribble", "lineart", "canny", "inpaint"; FALSE for anything else. */
gboolean gesso_control_preprocess_from_name (const char *name, GessoControlPreprocess *out);
const char *gesso_control_preprocess_name (GessoControlPreprocess preprocess);

/* The control image PREPROCESS makes of IMAGE, RGBA (alpha 1), the same size; INPAINT needs
 * MASK (the edit's, image size; 1 = change) and sets those pixels to -1, the only values
 * outside [0, 1] here. */
gboolean gesso_control_preprocess (const GessoImage *image, GessoControlPreprocess preprocess,
                                   const GessoMask *mask, GessoImage *out, GError **error);

/* One ControlNet steering an edit. */
typedef struct
{
  const char *model;                  /* ControlNet file or folder */
  const GessoImage *image;            /* what it follows, resized to the edit's picture if its
                                       * size differs; NULL with INPAINT: the input itself */
  float scale;                        /* conditioning scale: 1 as trained, 0 = no effect */
  GessoControlPreprocess preprocess;
} GessoControl;

#define GESSO_MAX_CONTROLS 8

/* One LoRA merged into the model for an edit: W + WEIGHT * scale * up * down on each layer it
 * names (kohya/A1111, diffusers/PEFT and the attention-processor layouts; see
 * core/model/lora.h). The model's own weights are never changed: the next edit with other
 * LoRAs, or none, reads nothing from disk again. WEIGHT may be negative; 0 leaves the model
 * exactly as it is. */
typedef struct
{
  const char *path;                   /* a .safetensors LoRA file */
  float weight;
} GessoLoraUse;

#define GESSO_MAX_LORAS 16

/* A1111's extra-network syntax: every <lora:NAME> or <lora:NAME:WEIGHT> tag in PROMPT names
 * the file NAME.safetensors in one of DIRS (NULL-terminated, searched in order; a stem is also
 * found in a sub-folder), weight 1 when not given. Returns the prompt without its tags and
 * appends one GessoLoraUse per tag to USES, whose paths PATHS (of char *, freed with it) owns.
 * A tag naming no file fails (GESSO_ERROR_MISSING) naming the folders searched. */
char *gesso_prompt_take_loras (const char *prompt, const char *const *dirs, GArray *uses,
                               GPtrArray *paths, GError **error);

typedef struct
{
  GessoEditKind kind;
  const char *prompt;
  const char *negative_prompt;        /* NULL or "": unconditional (SDXL: zeros, as diffusers
                                       * gives a model with force_zeros_for_empty_prompt) */
  const char *source_prompt;          /* restyle: what the image shows now */
  int steps;
  float guidance;                     /* classifier-free guidance scale w; 1 or less = none */
  float guidance_rescale;             /* 0 = off (Lin et al. 2023, eq. 16) */
  float strength;                     /* sdedit, restyle, inpaint: fraction of the schedule */
  guint64 seed;
  const char *sampler;                /* "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras",
                                       * "ddpm", "lms", "lcm"; NULL = the method's default */
  const char *timestep_spacing;       /* "leading", "trailing" (SDXL-Turbo, Lightning) or
                                       * "linspace"; NULL = the model's scheduler config's */
  float eta;                          /* DDIM / RePaint stochasticity */
  int width, height;                  /* generate: output size in pixels */
  int jump_length;                    /* RePaint j */
  int resample_count;                 /* RePaint r (1 = no resampling) */
  float mask_grow;                    /* pixels to dilate the mask by (0: the selection) */
  float mask_feather;                 /* pixels of soft edge inside the grown mask */
  int context_margin;                 /* pixels of surroundings kept around the mask's box */
  int clip_skip;                      /* 0: last layer; 1: penultimate (A1111 "clip skip 2") */
  int pixel_budget;                   /* working size cap in pixels; 0 = the model's native area */
  gboolean full_inversion;            /* restyle: invert all the way (strength 1) */
  GessoProgressFunc progress;
  gpointer progress_data;
  int preview_size;                   /* 0: no previews; else their longest side in pixels */
  const GessoControl *controls;       /* N_CONTROLS ControlNets (at most GESSO_MAX_CONTROLS) */
  int n_controls;
  float control_start, control_end;   /* the fraction of the denoising steps they act in */
  const GessoLoraUse *loras;          /* N_LORAS LoRAs (at most GESSO_MAX_LORAS) for this edit */
  int n_loras;
} GessoEditParams;

/* The method's friendly defaults (steps, guidance, strength, sampler, ...). */
void gesso_edit_params_init (GessoEditParams *params, GessoEditKind kind);

/* The sampler P runs with on MODEL: P->sampler, or when that is NULL or "" ("auto") the
 * method's choice: ddim for restyle (it must retrace DDIM's inversion), lcm when an LCM-LoRA
 * is in use (as of MODEL's last edit), repaint for inpainting with an ordinary model,
 * dpmpp_2m otherwise. */
const char *gesso_edit_sampler_name (const GessoModel *model, const GessoEditParams *p);

typedef struct
{
  GessoImage image;                   /* the result, at the size of the region it covers */
  GessoMask blend;                    /* how much of IMAGE to lay over the input, per pixel */
  int x, y;                           /* the region's offset in the input image */
} GessoEditResult;

/* Runs one edit. INPUT is NULL for generate; MASK may be NULL (whole image). On success the
 * caller owns RESULT (gesso_edit_result_clear). Outside the mask RESULT blends to exactly the
 * input pixels. */
gboolean gesso_edit_run (GessoModel *model, const GessoEditParams *params,
                         const GessoImage *input, const GessoMask *mask,
                         GessoEditResult *result, GError **error);
void gesso_edit_result_clear (GessoEditResult *result);
/* RESULT laid over the whole INPUT it was made from, into OUT (a new image, caller clears):
 * what a caller that writes a file wants. Outside the result's blend the pixels are INPUT's,
 * bit for bit. */
gboolean gesso_edit_result_compose (const GessoImage *input, const GessoEditResult *result,
                                    GessoImage *out, GError **error);

/* --- Memory ----------------------------------------------------------------------------- */

/* What the system can give this process now, in bytes: the kernel's MemAvailable, lowered by
 * a cgroup memory limit (a container's) and by an address-space limit (ulimit -v);
 * G_MAXUINT64 when nothing is known. */
guint64 gesso_memory_available (void);

/* An upper bound of the memory an edit of a WIDTH x HEIGHT image (generate: the output size;
 * 0 = native) needs beyond the model's weights: UNet and VAE activations at the working size
 * PARAMS's pixel budget gives, the sampling buffers and the result at image size. The working
 * size goes to WORK_WIDTH, WORK_HEIGHT (may be NULL). G_MAXUINT64 when it cannot be planned. */
guint64 gesso_edit_estimate_memory (GessoModel *model, const GessoEditParams *params,
                                    int width, int height, gboolean with_mask,
                                    int *work_width, int *work_height);

/* Refuses an edit whose estimate plus EXTRA (the caller's own buffers) is more than is
 * available: GESSO_ERROR_NO_MEMORY, one line with both numbers and what to change.
 * gesso_edit_run checks this itself (EXTRA 0) before it allocates anything; a caller checks
 * first to refuse before it reads a large image. */
gboolean gesso_edit_check_memory (GessoModel *model, const GessoEditParams *params, int width,
                                  int height, gboolean with_mask, guint64 extra,
                                  GError **error);

G_END_DECLS

#endif /* GESSO_H */
