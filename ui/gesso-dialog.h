/* Gesso: the procedure dialogs of the GIMP 3 plug-in.
 *
 * The plug-in calls gesso_dialog_run() from its run function in GIMP_RUN_INTERACTIVE mode,
 * after gimp_ui_init(). Everything the dialog shows lives in the procedure's config; on OK the
 * config holds the chosen values and the plug-in computes from the config alone, exactly as
 * in the other run modes. The dialog keeps no global state.
 *
 * Config properties the dialog knows (any that the procedure does not declare are skipped;
 * arguments it does not know are shown, generated, under "Advanced"):
 *
 *   "model"            string   path of a .safetensors file or diffusers folder;
 *                               "" = the bundled demo model (gesso_ui_get_default_model())
 *   "prompt"           string   multi-line box
 *   "negative-prompt"  string   multi-line box
 *   "source-prompt"    string   multi-line box (restyle: what the image shows now)
 *   "steps"            int
 *   "guidance"         double   classifier-free guidance scale
 *   "strength"         double   strokes, restyle (and inpaint if declared)
 *   "seed"             int      used when "random-seed" is FALSE
 *   "random-seed"      boolean  pick a new seed on every run
 *   "sampler"          choice   GimpChoice nicks: the engine's sampler names with '-' where
 *                               the engine has '_' ("ddim", "euler-a", "dpmpp-2m-karras",
 *                               ...); "auto" lets the engine choose. Turned back into the
 *                               engine's name by gesso_ui_sampler_engine_name()
 *   "eta"              double
 *   "jump-length"      int      inpaint (RePaint j)
 *   "resample-count"   int      inpaint (RePaint r)
 *   "mask-grow"        double   pixels
 *   "mask-feather"     double   pixels
 *   "context-margin"   int      pixels
 *   "clip-skip"        int
 *   "guidance-rescale" double
 *   "full-inversion"   boolean  restyle
 *   "hide-strokes"     boolean  strokes
 *   "pixel-budget"     int
 *
 * Recipes: a result layer carries its settings in the parasite GESSO_RECIPE_PARASITE, whose
 * data is the UTF-8 text made by gesso_recipe_new_from_config() (a GKeyFile: group "recipe",
 * one key per config property plus "method"). The dialog offers "Use recipe of this layer"
 * when the drawable it was opened on carries one.
 */
#ifndef GESSO_DIALOG_H
#define GESSO_DIALOG_H

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "gesso.h"

G_BEGIN_DECLS

#define GESSO_RECIPE_PARASITE "gesso-recipe"

/* Binds the "gesso" text domain to the installed locale directory unless it is bound already
 * (idempotent). The dialog calls it itself. The install puts a link <plug-in dir>/locale ->
 * <localedir> beside the executable, so the plug-in's set_i18n can return domain "gesso" with
 * catalog dir "locale" (GIMP accepts only folders inside the plug-in's own). */
void gesso_ui_init_i18n (void);

/* The installed locale directory (GESSO_LOCALEDIR), for set_i18n. */
const gchar *gesso_ui_get_locale_dir (void);

/* Shows the dialog for KIND, modal, and runs it. TRUE: the user pressed OK and CONFIG holds
 * the chosen values (with "random-seed" set, "seed" already holds the fresh seed the run must
 * use, so the recipe written afterwards reproduces the result). FALSE: cancelled; CONFIG may
 * hold edited values but the plug-in should return GIMP_PDB_CANCEL. DRAWABLE may be NULL. */
gboolean gesso_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config,
                           GimpImage *image, GimpDrawable *drawable, GessoEditKind kind);

/* The engine's name for a "sampler" choice nick ("dpmpp-2m-karras" -> "dpmpp_2m_karras"), or
 * NULL for "auto" and "" (the engine picks the method's own). Owned string. Touches no GTK. */
gchar *gesso_ui_sampler_engine_name (const gchar *nick);

/* --- Models ---------------------------------------------------------------------------- */

/* Folders searched for models, in order: the bundled models (<datadir>/gesso/models), the
 * user's (gimp_directory()/gesso/models), each folder in $GESSO_MODEL_PATH
 * (G_SEARCHPATH_SEPARATOR-separated), the folders added with "Add a models folder…" (kept in
 * $XDG_CONFIG_HOME/gesso/model-folders, which `gesso models` reads too), and the folders A1111,
 * Forge and ComfyUI keep models in under the home folder (ComfyUI's extra_model_paths.yaml
 * included). Folders that do not exist are left out. Owned strings; free with g_strfreev(). */
gchar **gesso_ui_model_dirs_new (void);

/* The checkpoints found in those folders (sub-folders three deep; a .safetensors file whose
 * header says checkpoint, or a diffusers folder), bundled first, then by path; files of
 * Gesso's and the user's folders that cannot be read are listed too, so the chooser says what
 * is wrong with them. Absolute paths; free with g_strfreev(). Never loads weights; kinds are
 * kept in the model cache (gesso_ui_cache_file). */
gchar **gesso_ui_models_find (void);
/* The folders holding the assets of KIND found in those folders, each once, by path: for
 * GESSO_ASSET_EMBEDDING (A1111's embeddings/, ComfyUI's models/embeddings, ...) what a model
 * takes (GessoModelParams.embeddings), so that an embedding's name in a prompt calls it up.
 * Free with g_strfreev(). */
gchar **gesso_ui_asset_dirs_new (GessoAssetKind kind);
/* PROMPT without its A1111 <lora:NAME:WEIGHT> tags, each resolved to NAME.safetensors in the
 * LoRA folders found in the model folders and appended to USES (GessoLoraUse; PATHS owns
 * their paths); NULL and ERROR for a tag naming no file, or too many. */
gchar *gesso_ui_prompt_take_loras (const gchar *prompt, GArray *uses, GPtrArray *paths,
                                   GError **error);
/* "sd15/diffusers" for a model found in a model folder, else the file or folder name; the
 * ".safetensors" suffix left out: what the choosers show. Owned string. */
gchar *gesso_ui_model_display_name (const gchar *path);
/* The same for another kind (GESSO_ASSET_VAE for the VAE chooser). */
gchar **gesso_ui_assets_find (GessoAssetKind kind);
/* Forgets what was found, so that the next call looks again. */
void gesso_ui_models_refresh (void);
/* Remembers DIR as a models folder (for `gesso models` too) and looks again. */
gboolean gesso_ui_models_add_folder (const gchar *dir, GError **error);
/* $XDG_CACHE_HOME/gesso/models.ini: kinds and hashes of model files, shared with `gesso`. */
gchar *gesso_ui_cache_file (void);

/* The model a run uses when "model" is empty: the first model found in the bundled folder,
 * else the first found anywhere, else NULL with ERROR set to a message a user can act on. */
gchar *gesso_ui_get_default_model (GError **error);

/* The path a "model" value stands for, for the plug-in's run and the dialog's preview and
 * model line alike: an existing path as it is; else the name of a model in the model folders
 * (its name in the chooser, e.g. "sd15/diffusers", or its file or folder name, with or without
 * ".safetensors"); "" or NULL the default model. NULL with ERROR set to a message a user can act
 * on when nothing matches. Touches no GTK, so non-interactive runs may call it. */
gchar *gesso_ui_resolve_model (const gchar *model, GError **error);

/* The path a "vae" value stands for: NULL without an error for "" (the model's own VAE); an
 * existing path as it is; else the name of a VAE found in the model folders. NULL with ERROR
 * set when nothing matches. Touches no GTK. */
gchar *gesso_ui_resolve_vae (const gchar *vae, GError **error);

/* A one-line description, e.g. "Stable Diffusion 2.x (v-prediction) · 768 px · 1.3 B
 * parameters · F16", from the file headers and configs without loading any weight
 * (gesso_model_summary_new, gesso_model_probe). NULL with ERROR set when the model cannot be
 * read or used: the message says why (no tokenizer beside a single file, SDXL, ...). */
gchar *gesso_ui_model_describe (const gchar *path, GError **error);

/* --- Recipes --------------------------------------------------------------------------- */

/* The recipe text of CONFIG's current values for KIND (see above). Owned string. */
gchar *gesso_recipe_new_from_config (GimpProcedureConfig *config, GessoEditKind kind);

/* Sets every property of CONFIG that RECIPE names and CONFIG has (values out of range are
 * clamped by GObject rules; unknown keys are ignored). On success "random-seed" is FALSE so
 * the recipe's seed is reused. FALSE with ERROR set when RECIPE cannot be parsed. */
gboolean gesso_recipe_apply (GimpProcedureConfig *config, const gchar *recipe,
                             GError **error);

/* The recipe text attached to DRAWABLE, or NULL if it carries none. Owned string. */
gchar *gesso_recipe_get_from_drawable (GimpDrawable *drawable);

/* Attaches RECIPE to DRAWABLE as a persistent, undoable parasite. */
gboolean gesso_recipe_attach (GimpDrawable *drawable, const gchar *recipe, GError **error);

G_END_DECLS

#endif /* GESSO_DIALOG_H */
