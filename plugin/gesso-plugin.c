/* Gesso: the GIMP 3 plug-in.
 *
 * One executable, four image procedures under Filters ▸ Generative:
 *
 *   plug-in-gesso-generate          Generate from Prompt…   text to image, into the selection
 *   plug-in-gesso-inpaint           Inpaint Selection…      RePaint inside the selection
 *   plug-in-gesso-realize-strokes   Realize Strokes…        SDEdit of the visible composite
 *   plug-in-gesso-restyle           Restyle…                DDIM inversion, then new prompt
 *
 * Each has a short help page (data/help/<lang>/, installed in <datadir>/gesso/help), reached
 * through the help domain "gesso" and the procedure's name as help ID.
 *
 * Every run, in every run mode, goes the same way: check the input, (interactive only) show
 * the dialog, read the image (gesso-bridge.c), run the engine with progress, and only then
 * write the result as a new layer above the drawable inside one undo group, with the recipe
 * that made it attached. GIMP cancels a plug-in by killing its process, so an image touched
 * only at the very end is left exactly as it was by a cancelled run. Non-interactive runs and
 * Filters ▸ Repeat never touch GTK. The dialog (ui/) and this file share the procedure's
 * config and the lookups that need no GTK: which model a "model" value names
 * (gesso_ui_resolve_model) and which engine sampler a choice nick names.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "gesso.h"
#include "gesso-bridge.h"
#include "gesso-dialog.h"
#include "gesso-fingerprint.h"
#include "gesso-intl.h"

#define MENU_PARENT "<Image>/Filters"
#define MENU_PATH MENU_PARENT "/Generative"
/* The submenu's label, with a mnemonic no other entry of GIMP's Filters menu uses. GIMP
 * translates it in the plug-in's domain and matches it to MENU_PATH without the underscore. */
#define MENU_BRANCH_LABEL N_("Genera_tive")
#define HELP_DOMAIN "gesso"
#define IMAGE_TYPES "RGB*, GRAY*"
/* Characters of the prompt kept in the new layer's name. */
#define NAME_PROMPT_CHARS 48

typedef struct
{
  GimpPlugIn parent_instance;
} GessoPlugIn;

typedef struct
{
  GimpPlugInClass parent_class;
} GessoPlugInClass;

#define GESSO_TYPE_PLUG_IN (gesso_plug_in_get_type ())

GType gesso_plug_in_get_type (void) G_GNUC_CONST;

static GList *gesso_query_procedures (GimpPlugIn *plug_in);
static GList *gesso_init_procedures (GimpPlugIn *plug_in);
static GimpProcedure *gesso_create_procedure (GimpPlugIn *plug_in, const gchar *name);
static gboolean gesso_set_i18n (GimpPlugIn *plug_in, const gchar *procedure_name,
                                gchar **gettext_domain, gchar **catalog_dir);
static GimpValueArray *gesso_run (GimpProcedure *procedure, GimpRunMode run_mode,
                                  GimpImage *image, GimpDrawable **drawables,
                                  GimpProcedureConfig *config, gpointer run_data);

G_DEFINE_TYPE (GessoPlugIn, gesso_plug_in, GIMP_TYPE_PLUG_IN)

GIMP_MAIN (GESSO_TYPE_PLUG_IN)

/* --- the procedures --------------------------------------------------------------------- */

typedef struct
{
  const gchar *name;
  GessoEditKind kind;
  const gchar *menu_label;
  const gchar *blurb;
  const gchar *help;
} ProcedureInfo;

static const ProcedureInfo procedure_infos[] = {
  { "plug-in-gesso-generate", GESSO_EDIT_GENERATE,
    N_("Generate from _Prompt…"),
    N_("Paint a new picture from a text prompt"),
    N_("Generates a picture from the prompt with a diffusion model, on a new layer. The "
       "selection's bounds give its size and place, and the selection's shape its edges; "
       "without a selection it covers the whole image.") },
  { "plug-in-gesso-inpaint", GESSO_EDIT_INPAINT,
    N_("_Inpaint Selection…"),
    N_("Repaint the selected area from a text prompt"),
    N_("Regenerates the selected area so that it matches the prompt and blends with its "
       "surroundings (RePaint). The result is a new layer that changes only the selection, "
       "soft edges included; the layer under it is not modified.") },
  { "plug-in-gesso-realize-strokes", GESSO_EDIT_SDEDIT,
    N_("_Realize Strokes…"),
    N_("Turn rough strokes into a finished picture"),
    N_("Run it on a layer with rough strokes painted over the image: what is visible is "
       "noised to the chosen strength and denoised back under the prompt (SDEdit), where the "
       "strokes are (or inside the selection). Without strokes or a selection the whole image "
       "is realised. The result is a new layer; the stroke layer can be hidden afterwards.") },
  { "plug-in-gesso-restyle", GESSO_EDIT_RESTYLE,
    N_("Re_style…"),
    N_("Change the style or content of the image from a text prompt"),
    N_("Inverts the layer (or the selection) into noise under a source prompt that describes "
       "it, then samples it back under the target prompt (DDIM inversion). The result is a "
       "new layer.") },
};

/* Not a menu item: what the model choosers offer, for scripts (and the end-to-end test). */
#define MODELS_PROCEDURE "plug-in-gesso-models"

static const ProcedureInfo *
find_info (const gchar *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (procedure_infos); i++)
    if (strcmp (procedure_infos[i].name, name) == 0)
      return &procedure_infos[i];
  return NULL;
}

static void
gesso_plug_in_class_init (GessoPlugInClass *klass)
{
  GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS (klass);

  plug_in_class->query_procedures = gesso_query_procedures;
  plug_in_class->init_procedures = gesso_init_procedures;
  plug_in_class->create_procedure = gesso_create_procedure;
  plug_in_class->set_i18n = gesso_set_i18n;
}

static void
gesso_plug_in_init (GessoPlugIn *plug_in)
{
}

/* The help pages installed with Gesso; GIMP looks up <lang>/gimp-help.xml under the folder
 * (English when the user's language has none) and opens the page it names for a help ID. */
static void
add_help_domain (GimpPlugIn *plug_in)
{
  g_autofree gchar *dir = g_build_filename (GESSO_DATADIR, "help", NULL);
  g_autoptr (GFile) root = g_file_new_for_path (dir);

  gimp_plug_in_set_help_domain (plug_in, HELP_DOMAIN, root);
}

static GList *
gesso_query_procedures (GimpPlugIn *plug_in)
{
  GList *list = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (procedure_infos); i++)
    list = g_list_append (list, g_strdup (procedure_infos[i].name));
  list = g_list_append (list, g_strdup (MODELS_PROCEDURE));
  add_help_domain (plug_in);
  return list;
}

/* GIMP 3.0 keeps the help domain in pluginrc but not menu branches: the submenu's label (its
 * mnemonic and translation) is registered at every start, which is what init is for. No
 * temporary procedures. */
static GList *
gesso_init_procedures (GimpPlugIn *plug_in)
{
  gimp_plug_in_add_menu_branch (plug_in, MENU_PARENT, MENU_BRANCH_LABEL);
  return NULL;
}

/* Catalogs beside the executable (plug-ins/gesso/locale/, GIMP's default) when they are
 * there; else the ones installed with the rest of Gesso, bound by the dialog library. */
static gboolean
gesso_set_i18n (GimpPlugIn *plug_in, const gchar *procedure_name, gchar **gettext_domain,
                gchar **catalog_dir)
{
  g_autofree gchar *dir = g_path_get_dirname (gimp_get_progname ());
  g_autofree gchar *locale = g_build_filename (dir, "locale", NULL);

  if (g_file_test (locale, G_FILE_TEST_IS_DIR))
    {
      *gettext_domain = g_strdup (GETTEXT_PACKAGE);
      *catalog_dir = g_strdup ("locale");
      return TRUE;
    }
  gesso_ui_init_i18n ();
  return FALSE;
}

/* The samplers a method offers. Nicks are the engine's sampler names with dashes for its
 * underscores (gesso_ui_sampler_engine_name() turns them back); "auto" lets the engine choose
 * (RePaint when inpainting with an ordinary model, DPM++ 2M otherwise). */
static GimpChoice *
sampler_choice_new (GessoEditKind kind)
{
  GimpChoice *choice;

  if (kind == GESSO_EDIT_RESTYLE)
    return gimp_choice_new_with_values ("ddim", 0, _("DDIM"),
                                        _("Restyle inverts with DDIM and samples back with "
                                          "DDIM, so it is the only sampler it can use"),
                                        NULL);

  choice = gimp_choice_new_with_values ("auto", 0, _("Automatic"),
                                        _("The method's best sampler for the model"), NULL);
  if (kind == GESSO_EDIT_INPAINT)
    gimp_choice_add (choice, "repaint", 1, _("RePaint"),
                     _("Resampling jumps harmonise the area with its surroundings "
                       "(ordinary models only)"));
  gimp_choice_add (choice, "ddim", 2, _("DDIM"), _("Deterministic, good at few steps"));
  gimp_choice_add (choice, "euler", 3, _("Euler"), _("Simple and fast"));
  gimp_choice_add (choice, "euler-a", 4, _("Euler ancestral"),
                   _("Adds fresh noise each step: livelier, never converges"));
  gimp_choice_add (choice, "dpmpp-2m", 5, _("DPM++ 2M"), _("Sharp results in 20 to 30 steps"));
  gimp_choice_add (choice, "dpmpp-2m-karras", 6, _("DPM++ 2M Karras"),
                   _("DPM++ 2M with Karras noise levels: good at few steps"));
  gimp_choice_add (choice, "lms", 7, _("LMS"), _("Linear multistep"));
  gimp_choice_add (choice, "ddpm", 8, _("DDPM"), _("The original sampler: needs many steps"));
  gimp_choice_add (choice, "lcm", 9, _("LCM"), _("For latent consistency models: 2 to 8 steps"));
  return choice;
}

/* What a control layer is read as: the engine's preprocessors. */
static GimpChoice *
control_preprocess_choice_new (void)
{
  GimpChoice *choice = gimp_choice_new_with_values (
    "none", GESSO_CONTROL_PREPROCESS_NONE, _("As it is"),
    _("The layer is already a control image (an edge map, a depth map, a pose)"), NULL);

  gimp_choice_add (choice, "scribble", GESSO_CONTROL_PREPROCESS_SCRIBBLE, _("Scribble"),
                   _("Strokes: a layer's painted pixels, or a drawing's dark lines"));
  gimp_choice_add (choice, "lineart", GESSO_CONTROL_PREPROCESS_LINEART, _("Line art"),
                   _("A line drawing: its dark lines"));
  gimp_choice_add (choice, "canny", GESSO_CONTROL_PREPROCESS_CANNY, _("Canny edges"),
                   _("The edges of a picture (for Canny ControlNets)"));
  gimp_choice_add (choice, "inpaint", GESSO_CONTROL_PREPROCESS_INPAINT, _("Inpainting"),
                   _("The picture with the selection left out (for the inpaint ControlNet)"));
  return choice;
}

/* A ControlNet makes the result follow a picture's structure. Realize Strokes follows its own
 * stroke layer (scribble); Generate and Inpaint follow a layer the user picks. The labels have
 * no mnemonics: Inpaint's dialog has used up the alphabet (see add_arguments). */
static void
add_control_arguments (GimpProcedure *procedure, GessoEditKind kind)
{
  GessoEditParams d;

  gesso_edit_params_init (&d, kind);
  gimp_procedure_add_string_argument (procedure, "control-model", _("ControlNet"),
                                      _("A ControlNet that makes the result keep a picture's "
                                        "structure: a .safetensors file or a diffusers folder; "
                                        "empty for none"),
                                      "", G_PARAM_READWRITE);
  if (kind == GESSO_EDIT_SDEDIT)
    gimp_procedure_add_boolean_argument (procedure, "follow-strokes",
                                         _("Follow the strokes' shape (ControlNet)"),
                                         _("The ControlNet (a scribble one) follows the strokes "
                                           "painted on this layer, so the picture keeps their "
                                           "exact layout"),
                                         FALSE, G_PARAM_READWRITE);
  else
    {
      gimp_procedure_add_drawable_argument (procedure, "control-drawable", _("Control layer"),
                                            _("The layer the ControlNet follows, over the area "
                                              "being edited"),
                                            TRUE, G_PARAM_READWRITE);
      gimp_procedure_add_choice_argument (procedure, "control-preprocess",
                                          _("Control layer is"),
                                          _("How the control layer is read"),
                                          control_preprocess_choice_new (), "none",
                                          G_PARAM_READWRITE);
    }
  gimp_procedure_add_double_argument (procedure, "control-scale", _("Control strength"),
                                      _("How strongly the ControlNet steers: 1 as trained, 0 not "
                                        "at all"),
                                      0.0, 2.0, 1.0, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "control-start", _("Control from"),
                                      _("Fraction of the steps after which the ControlNet "
                                        "starts steering"),
                                      0.0, 1.0, d.control_start, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "control-end", _("Control until"),
                                      _("Fraction of the steps after which it stops: stopping "
                                        "early leaves the details to the model"),
                                      0.0, 1.0, d.control_end, G_PARAM_READWRITE);
}

/* Mnemonics: GIMP wants each label of a dialog to have its own, distinct from the dialog's
 * buttons (_Help, _Reset, _Cancel, _OK, _Load Saved Settings, _Save Settings), and the dialog
 * adds _Prompt, Pre_view and "Use recipe of this la_yer". Inpaint's fifteen settings then use
 * up the alphabet, hence the letters chosen here and the dialog's labels that have none
 * (Negative prompt, Browse…, Advanced). The dialog shows the prompts and the model in widgets
 * of its own, so their labels here need none. tests/gimp/check.py checks every dialog in
 * every language. */
static void
add_arguments (GimpProcedure *procedure, GessoEditKind kind)
{
  GessoEditParams d;
  const gboolean masked = kind != GESSO_EDIT_GENERATE;

  gesso_edit_params_init (&d, kind);

  /* TRANSLATORS: no two labels of one dialog may share a mnemonic, nor one of GIMP's buttons
   * as GIMP translates them; tests/gimp/check.py lists the labels of each dialog. */
  gimp_procedure_add_string_argument (procedure, "prompt", _("_Prompt"),
                                      kind == GESSO_EDIT_RESTYLE
                                      ? _("What the image should become")
                                      : _("What to paint"),
                                      "", G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (procedure, "negative-prompt", _("Negative prompt"),
                                      _("What to keep out of the picture"), "",
                                      G_PARAM_READWRITE);
  if (kind == GESSO_EDIT_RESTYLE)
    gimp_procedure_add_string_argument (procedure, "source-prompt", _("Source prompt"),
                                        _("What the image shows now"), "", G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (procedure, "model", _("Model"),
                                      _("A .safetensors file or diffusers folder, or the name "
                                        "of one in Gesso's model folders; empty: the default "
                                        "model"),
                                      "", G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (procedure, "vae", _("VAE"),
                                      _("A separate VAE in place of the model's own: a "
                                        ".safetensors file or diffusers vae/ folder, or the name "
                                        "of one in the model folders; empty: the model's own"),
                                      "", G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "steps", _("S_teps"),
                                   _("Denoising steps: more is slower and finer"), 1, 500,
                                   d.steps, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "guidance", _("_Guidance"),
                                      _("How strictly the picture follows the prompt: higher "
                                        "sticks closer to the words but looks harsher and more "
                                        "saturated, lower is freer and softer (7 is usual; 1 "
                                        "turns the extra push off)"),
                                      0.0, 30.0, d.guidance, G_PARAM_READWRITE);
  if (masked)
    gimp_procedure_add_double_argument (procedure, "strength", _("Stre_ngth"),
                                        _("How much may change: 0 keeps the image, 1 "
                                          "repaints from pure noise"),
                                        0.0, 1.0, d.strength, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "seed", _("S_eed"),
                                   _("Starting noise; the same seed and settings give the same "
                                     "result"),
                                   0, G_MAXINT, 0, G_PARAM_READWRITE);
  gimp_procedure_add_boolean_argument (procedure, "random-seed", _("Randomi_ze seed"),
                                       _("Pick a new seed on every run (the seed used is kept "
                                         "in the layer's recipe)"),
                                       TRUE, G_PARAM_READWRITE);
  gimp_procedure_add_choice_argument (procedure, "sampler", _("Sa_mpler"),
                                      _("How the noise is stepped down"),
                                      sampler_choice_new (kind),
                                      kind == GESSO_EDIT_RESTYLE ? "ddim" : "auto",
                                      G_PARAM_READWRITE);
  if (kind == GESSO_EDIT_INPAINT)
    {
      gimp_procedure_add_int_argument (procedure, "jump-length", _("_Jump length"),
                                       _("RePaint: how many steps go by before the area is "
                                         "stirred up again to blend with its surroundings: "
                                         "longer jumps blend larger shapes, shorter ones finer "
                                         "edges"), 1, 100,
                                       d.jump_length, G_PARAM_READWRITE);
      gimp_procedure_add_int_argument (procedure, "resample-count", _("Resample co_unt"),
                                       _("RePaint: how often each jump is redone: more blends "
                                         "the seam better and takes that many times longer (1 = "
                                         "once)"),
                                       1, 20, d.resample_count, G_PARAM_READWRITE);
    }
  if (masked)
    {
      gimp_procedure_add_double_argument (procedure, "mask-grow", _("Mask gro_w"),
                                          _("Pixels the selection is grown by: the edit then "
                                            "changes that far outside it"), 0.0, 512.0,
                                          d.mask_grow, G_PARAM_READWRITE);
      gimp_procedure_add_double_argument (procedure, "mask-feather", _("Mask _feather"),
                                          _("Pixels of soft edge inside the selection, so the "
                                            "seam blends; nothing outside it changes"), 0.0,
                                          512.0, d.mask_feather, G_PARAM_READWRITE);
      gimp_procedure_add_int_argument (procedure, "context-margin", _("Conte_xt margin"),
                                       _("Pixels around the mask the model sees"), 0, 4096,
                                       d.context_margin, G_PARAM_READWRITE);
    }
  if (kind == GESSO_EDIT_SDEDIT)
    gimp_procedure_add_boolean_argument (procedure, "hide-strokes", _("H_ide strokes"),
                                         _("Hide the stroke layer once it is realised"), TRUE,
                                         G_PARAM_READWRITE);
  if (kind == GESSO_EDIT_RESTYLE)
    gimp_procedure_add_boolean_argument (procedure, "full-inversion", _("F_ull inversion"),
                                         _("Invert all the way to noise (ignores strength)"),
                                         FALSE, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "clip-skip", _("CLIP s_kip"),
                                   _("Text encoder layers to skip from the end (1 = "
                                     "penultimate layer)"),
                                   0, 11, d.clip_skip, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "eta", _("Et_a"),
                                      _("How much fresh randomness each step adds (DDIM and "
                                        "RePaint): 0 keeps the picture smooth and steady, higher "
                                        "values give livelier, grainier texture"),
                                      0.0, 1.0, d.eta, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "guidance-rescale", _("Gui_dance rescale"),
                                      _("Tames over-saturated colours at high guidance (0 = "
                                        "off)"),
                                      0.0, 1.0, d.guidance_rescale, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "pixel-budget", _("Pixel _budget"),
                                   _("Working size in pixels the model runs at (0 = the "
                                     "model's native size)"),
                                   0, 4096 * 4096, d.pixel_budget, G_PARAM_READWRITE);

  if (kind != GESSO_EDIT_RESTYLE)
    add_control_arguments (procedure, kind);

  gimp_procedure_add_layer_return_value (procedure, "layer", _("Layer"),
                                         _("The new layer holding the result"), FALSE,
                                         G_PARAM_READWRITE);
}

/* plug-in-gesso-models: the paths and names the dialogs' choosers list for a kind. */
static GimpValueArray *
models_run (GimpProcedure *procedure, GimpProcedureConfig *config, gpointer run_data)
{
  g_autofree gchar *kind_name = NULL;
  g_auto (GStrv) paths = NULL;
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  g_auto (GStrv) name_array = NULL;
  GimpValueArray *values;
  GessoAssetKind kind = GESSO_ASSET_KIND_COUNT;

  g_object_get (config, "kind", &kind_name, NULL);
  for (int k = 0; k < GESSO_ASSET_UNKNOWN; k++)
    if (g_ascii_strcasecmp (kind_name != NULL ? kind_name : "", gesso_asset_kind_name (k)) == 0)
      kind = (GessoAssetKind) k;
  if (kind == GESSO_ASSET_KIND_COUNT)
    {
      g_autoptr (GError) error = g_error_new (GIMP_PLUG_IN_ERROR, 0,
                                              _("Unknown kind “%s”: use checkpoint, LoRA, "
                                                "embedding, ControlNet, VAE or TAESD"),
                                              kind_name);
      return gimp_procedure_new_return_values (procedure, GIMP_PDB_CALLING_ERROR,
                                               g_steal_pointer (&error));
    }
  paths = gesso_ui_assets_find (kind);
  for (gchar **p = paths; *p != NULL; p++)
    {
      g_autofree gchar *name = gesso_ui_model_display_name (*p);
      g_strv_builder_add (names, name);
    }
  name_array = g_strv_builder_end (names);
  values = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_STRV (values, 1, paths);
  GIMP_VALUES_SET_STRV (values, 2, name_array);
  return values;
}

static GimpProcedure *
models_procedure_new (GimpPlugIn *plug_in)
{
  GimpProcedure *procedure = gimp_procedure_new (plug_in, MODELS_PROCEDURE,
                                                 GIMP_PDB_PROC_TYPE_PLUGIN, models_run, NULL,
                                                 NULL);

  gimp_procedure_set_documentation (procedure, _("The models Gesso's choosers offer"),
                                    _("Lists the models of one kind found in Gesso's model "
                                      "folders, the folders added in its dialogs and those "
                                      "A1111, Forge and ComfyUI keep models in, as the "
                                      "dialogs' choosers list them: paths, and the names a "
                                      "\"model\" or \"vae\" argument accepts."),
                                    MODELS_PROCEDURE);
  gimp_procedure_set_attribution (procedure, "Gesso contributors", "Gesso contributors",
                                  "2026");
  gimp_procedure_add_string_argument (procedure, "kind", _("Kind"),
                                      _("checkpoint, LoRA, embedding, ControlNet, VAE or "
                                        "TAESD"),
                                      "checkpoint", G_PARAM_READWRITE);
  gimp_procedure_add_string_array_return_value (procedure, "paths", _("Paths"),
                                                _("Each model's file or folder"),
                                                G_PARAM_READWRITE);
  gimp_procedure_add_string_array_return_value (procedure, "names", _("Names"),
                                                _("Each model's name as the chooser shows it"),
                                                G_PARAM_READWRITE);
  return procedure;
}

static GimpProcedure *
gesso_create_procedure (GimpPlugIn *plug_in, const gchar *name)
{
  const ProcedureInfo *info = find_info (name);
  GimpProcedure *procedure;

  if (strcmp (name, MODELS_PROCEDURE) == 0)
    return models_procedure_new (plug_in);
  if (info == NULL)
    return NULL;
  procedure = gimp_image_procedure_new (plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN, gesso_run,
                                        GINT_TO_POINTER (info->kind), NULL);
  gimp_procedure_set_image_types (procedure, IMAGE_TYPES);
  gimp_procedure_set_sensitivity_mask (procedure, GIMP_PROCEDURE_SENSITIVE_DRAWABLE);
  gimp_procedure_set_menu_label (procedure, _(info->menu_label));
  gimp_procedure_add_menu_path (procedure, MENU_PATH);
  gimp_procedure_set_documentation (procedure, _(info->blurb), _(info->help), name);
  gimp_procedure_set_attribution (procedure, "Gesso contributors", "Gesso contributors",
                                  "2026");
  add_arguments (procedure, info->kind);
  return procedure;
}

/* --- reading the arguments ---------------------------------------------------------------- */

/* The config's values for one run. Properties a procedure does not declare keep the method's
 * defaults from gesso_edit_params_init(). */
typedef struct
{
  gchar *prompt;
  gchar *negative_prompt;
  gchar *source_prompt;
  gchar *model;
  gchar *vae;
  gchar *sampler;
  gint steps, seed, jump_length, resample_count, context_margin, clip_skip, pixel_budget;
  gboolean random_seed, hide_strokes, full_inversion;
  gdouble guidance, strength, mask_grow, mask_feather, eta, guidance_rescale;
  gchar *control_model;         /* "": no ControlNet */
  gchar *control_preprocess;
  gboolean follow_strokes;
  GimpDrawable *control_drawable;
  gdouble control_scale, control_start, control_end;
} RunArgs;

static void
run_args_clear (RunArgs *args)
{
  g_free (args->prompt);
  g_free (args->negative_prompt);
  g_free (args->source_prompt);
  g_free (args->model);
  g_free (args->vae);
  g_free (args->sampler);
  g_free (args->control_model);
  g_free (args->control_preprocess);
  g_clear_object (&args->control_drawable);
  memset (args, 0, sizeof *args);
}

static gboolean
has_property (GimpProcedureConfig *config, const gchar *name)
{
  return g_object_class_find_property (G_OBJECT_GET_CLASS (config), name) != NULL;
}

static void
get_string (GimpProcedureConfig *config, const gchar *name, gchar **value)
{
  gchar *s = NULL;

  if (has_property (config, name))
    g_object_get (config, name, &s, NULL);
  *value = s != NULL ? s : g_strdup ("");
}

static void
get_int (GimpProcedureConfig *config, const gchar *name, gint *value)
{
  if (has_property (config, name))
    g_object_get (config, name, value, NULL);
}

static void
get_double (GimpProcedureConfig *config, const gchar *name, gdouble *value)
{
  if (has_property (config, name))
    g_object_get (config, name, value, NULL);
}

static void
get_boolean (GimpProcedureConfig *config, const gchar *name, gboolean *value)
{
  if (has_property (config, name))
    g_object_get (config, name, value, NULL);
}

static void
run_args_read (GimpProcedureConfig *config, GessoEditKind kind, RunArgs *args)
{
  GessoEditParams d;

  gesso_edit_params_init (&d, kind);
  memset (args, 0, sizeof *args);
  args->steps = d.steps;
  args->guidance = d.guidance;
  args->strength = d.strength;
  args->jump_length = d.jump_length;
  args->resample_count = d.resample_count;
  args->mask_grow = d.mask_grow;
  args->mask_feather = d.mask_feather;
  args->context_margin = d.context_margin;
  args->clip_skip = d.clip_skip;
  args->eta = d.eta;
  args->guidance_rescale = d.guidance_rescale;
  args->pixel_budget = d.pixel_budget;
  args->random_seed = FALSE;
  args->hide_strokes = FALSE;
  args->full_inversion = FALSE;

  get_string (config, "prompt", &args->prompt);
  get_string (config, "negative-prompt", &args->negative_prompt);
  get_string (config, "source-prompt", &args->source_prompt);
  get_string (config, "model", &args->model);
  get_string (config, "vae", &args->vae);
  get_string (config, "sampler", &args->sampler);
  get_int (config, "steps", &args->steps);
  get_int (config, "seed", &args->seed);
  get_int (config, "jump-length", &args->jump_length);
  get_int (config, "resample-count", &args->resample_count);
  get_int (config, "context-margin", &args->context_margin);
  get_int (config, "clip-skip", &args->clip_skip);
  get_int (config, "pixel-budget", &args->pixel_budget);
  get_boolean (config, "random-seed", &args->random_seed);
  get_boolean (config, "hide-strokes", &args->hide_strokes);
  get_boolean (config, "full-inversion", &args->full_inversion);
  get_double (config, "guidance", &args->guidance);
  get_double (config, "strength", &args->strength);
  get_double (config, "mask-grow", &args->mask_grow);
  get_double (config, "mask-feather", &args->mask_feather);
  get_double (config, "eta", &args->eta);
  get_double (config, "guidance-rescale", &args->guidance_rescale);
  args->control_scale = 1.0;
  args->control_start = d.control_start;
  args->control_end = d.control_end;
  get_string (config, "control-model", &args->control_model);
  get_string (config, "control-preprocess", &args->control_preprocess);
  get_boolean (config, "follow-strokes", &args->follow_strokes);
  get_double (config, "control-scale", &args->control_scale);
  get_double (config, "control-start", &args->control_start);
  get_double (config, "control-end", &args->control_end);
  if (has_property (config, "control-drawable"))
    g_object_get (config, "control-drawable", &args->control_drawable, NULL);
}

/* The run's ControlNet, if one is chosen: its control image read from the stroke layer
 * (Realize Strokes) or the control layer over the area INPUT covers. FALSE with ERROR when a
 * ControlNet is chosen with nothing to follow. */
static gboolean
control_read (const RunArgs *args, GessoEditKind kind, GimpDrawable *drawable,
              const GessoBridgeInput *input, GessoControl *control, GessoImage *image,
              GError **error)
{
  GimpDrawable *source = kind == GESSO_EDIT_SDEDIT ? (args->follow_strokes ? drawable : NULL)
                                                   : args->control_drawable;
  GessoControlPreprocess preprocess = GESSO_CONTROL_PREPROCESS_SCRIBBLE;

  if (args->control_model == NULL || args->control_model[0] == '\0')
    return TRUE;
  if (kind != GESSO_EDIT_SDEDIT)
    gesso_control_preprocess_from_name (args->control_preprocess, &preprocess);
  if (source == NULL && preprocess != GESSO_CONTROL_PREPROCESS_INPAINT)
    {
      g_set_error_literal (error, GIMP_PLUG_IN_ERROR, 0,
                           kind == GESSO_EDIT_SDEDIT
                             ? _("A ControlNet is chosen but “Follow the strokes' shape” is "
                                 "off: turn it on, or choose no ControlNet")
                             : _("A ControlNet is chosen but no control layer: choose the "
                                 "layer it should follow, or no ControlNet"));
      return FALSE;
    }
  if (source != NULL && !gesso_bridge_read_control (source, input, image, error))
    return FALSE;
  control->model = args->control_model;
  control->image = source != NULL ? image : NULL;
  control->scale = (float) args->control_scale;
  control->preprocess = preprocess;
  return TRUE;
}

/* --- the run ------------------------------------------------------------------------------ */

static const gchar *
progress_text (GessoEditKind kind)
{
  switch (kind)
    {
    case GESSO_EDIT_GENERATE:
      return _("Generating from the prompt");
    case GESSO_EDIT_INPAINT:
      return _("Inpainting the selection");
    case GESSO_EDIT_SDEDIT:
      return _("Realizing the strokes");
    case GESSO_EDIT_RESTYLE:
    default:
      return _("Restyling");
    }
}

/* GIMP's progress text names the stage: the engine reports each denoising step, the encoding
 * comes before the first and the decoding after the last, each taking seconds on a large area
 * while the bar stands still. */
static gboolean
progress_step (int step, int total, const GessoImage *preview, gpointer user_data)
{
  const GessoEditKind kind = (GessoEditKind) GPOINTER_TO_INT (user_data);

  if (total <= 0)
    return TRUE;
  if (step >= total)
    gimp_progress_set_text (_("Decoding the result"));
  else
    /* TRANSLATORS: e.g. "Inpainting the selection: step 3 of 20" */
    gimp_progress_set_text_printf (_("%s: step %d of %d"), progress_text (kind), step + 1,
                                   total);
  gimp_progress_update ((gdouble) step / (gdouble) total);
  return TRUE;
}

/* "Inpaint: a stone wall", the prompt's first line shortened to NAME_PROMPT_CHARS. */
static gchar *
layer_name_new (GessoEditKind kind, const gchar *prompt)
{
  g_autofree gchar *line = g_strstrip (g_strndup (prompt, strcspn (prompt, "\r\n")));
  g_autofree gchar *shown = NULL;

  if (g_utf8_strlen (line, -1) > NAME_PROMPT_CHARS)
    {
      g_autofree gchar *cut = g_utf8_substring (line, 0, NAME_PROMPT_CHARS);

      shown = g_strconcat (g_strchomp (cut), "…", NULL);
    }
  else
    shown = g_strdup (line);

  switch (kind)
    {
    case GESSO_EDIT_GENERATE:
      return shown[0] ? g_strdup_printf (_("Generate: %s"), shown) : g_strdup (_("Generate"));
    case GESSO_EDIT_INPAINT:
      return shown[0] ? g_strdup_printf (_("Inpaint: %s"), shown) : g_strdup (_("Inpaint"));
    case GESSO_EDIT_SDEDIT:
      return shown[0] ? g_strdup_printf (_("Realize: %s"), shown) : g_strdup (_("Realize"));
    case GESSO_EDIT_RESTYLE:
    default:
      return shown[0] ? g_strdup_printf (_("Restyle: %s"), shown) : g_strdup (_("Restyle"));
    }
}

/* The recipe the dialog library writes for CONFIG, plus what only the run knows: the model's
 * file name and fingerprint, and the Gesso version. The seed in CONFIG is the one used. */
/* A1111's "Model hash" of PATH (a file; NULL for a folder), read once per version of the
 * file and then kept in the model cache the CLI shares. */
static gchar *
autov2_hash (const gchar *path)
{
  g_autofree gchar *cache_file = gesso_ui_cache_file ();
  g_autoptr (GessoModelCache) cache = NULL;
  g_autofree gchar *sha256 = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  cache = gesso_model_cache_new (cache_file);
  sha256 = gesso_model_hash_sha256 (path, cache, NULL, NULL);
  return sha256 != NULL ? gesso_model_hash_autov2 (sha256) : NULL;
}

static gchar *
recipe_new (GimpProcedureConfig *config, GessoEditKind kind, const gchar *model_path,
            const gchar *vae_path)
{
  g_autofree gchar *autov2 = autov2_hash (model_path);
  g_autofree gchar *base = gesso_recipe_new_from_config (config, kind);
  g_autoptr (GKeyFile) keys = g_key_file_new ();
  g_autofree gchar *file = g_path_get_basename (model_path);
  g_autofree gchar *sha256 = NULL;
  g_autoptr (GError) error = NULL;
  guint64 size = 0;

  if (base == NULL
      || !g_key_file_load_from_data (keys, base, (gsize) -1, G_KEY_FILE_KEEP_COMMENTS, NULL))
    g_key_file_set_string (keys, "recipe", "method", "unknown");
  g_key_file_set_string (keys, "recipe", "model-file", file);
  sha256 = gesso_fingerprint_model (model_path, &size, &error);
  if (sha256 != NULL)
    {
      g_key_file_set_string (keys, "recipe", "model-hash-method", GESSO_FINGERPRINT_METHOD);
      g_key_file_set_string (keys, "recipe", "model-sha256", sha256);
      g_key_file_set_uint64 (keys, "recipe", "model-size", size);
    }
  /* what A1111 writes as "Model hash" and civitai looks models up by */
  if (autov2 != NULL)
    g_key_file_set_string (keys, "recipe", "model-hash-autov2", autov2);
  if (vae_path != NULL)
    {
      g_autofree gchar *vae_file = g_path_get_basename (vae_path);
      g_autofree gchar *vae_autov2 = autov2_hash (vae_path);

      g_key_file_set_string (keys, "recipe", "vae-file", vae_file);
      if (vae_autov2 != NULL)
        g_key_file_set_string (keys, "recipe", "vae-hash-autov2", vae_autov2);
    }
  g_key_file_set_string (keys, "recipe", "gesso-version", gesso_version ());
  return g_key_file_to_data (keys, NULL, NULL);
}

/* What the plug-in holds per pixel of the area it reads, at its peak: the input as float RGBA
 * (16), the selection as float coverage (4), the engine's result crop and blend mask at that
 * size (16 + 4) and the buffer the new layer is written from (16). */
#define PLUGIN_BYTES_PER_PIXEL (16 + 4 + 16 + 4 + 16)

/* Refuses, before a single pixel is read, an area that cannot fit in the memory available: a
 * whole 30000 x 30000 canvas would otherwise have the plug-in killed by the kernel's OOM
 * killer halfway through, with nothing said. The engine checks its whole job again, the
 * model loaded, in gesso_edit_run. */
static gboolean
check_area_memory (GimpImage *image, GimpDrawable *drawable, gint pad, GError **error)
{
  gint width = MAX (gimp_image_get_width (image), gimp_drawable_get_width (drawable));
  gint height = MAX (gimp_image_get_height (image), gimp_drawable_get_height (drawable));
  gboolean has_selection = FALSE;
  gint x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  guint64 need, available;

  /* is_empty first: GIMP knows a fresh selection is empty, while finding the bounds of one
   * scans the whole mask (seconds on a 60000 x 60000 canvas) */
  if (!gimp_selection_is_empty (image))
    gimp_selection_bounds (image, &has_selection, &x1, &y1, &x2, &y2);
  if (has_selection)
    {
      width = MIN (width, x2 - x1 + 2 * MAX (pad, 0));
      height = MIN (height, y2 - y1 + 2 * MAX (pad, 0));
    }
  need = (guint64) width * (guint64) height * PLUGIN_BYTES_PER_PIXEL;
  available = gesso_memory_available ();
  if (need <= available)
    return TRUE;
  g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
               _("Gesso needs about %.1f GiB of memory to edit an area of %d × %d pixels, but "
                 "%.1f GiB is available: select a smaller area or scale the image down."),
               (double) need / (1024.0 * 1024.0 * 1024.0), width, height,
               (double) available / (1024.0 * 1024.0 * 1024.0));
  return FALSE;
}

static GimpValueArray *
run_error (GimpProcedure *procedure, GimpPDBStatusType status, GError *error)
{
  return gimp_procedure_new_return_values (procedure, status, error);
}

static GimpValueArray *
gesso_run (GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
           GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data)
{
  const GessoEditKind kind = (GessoEditKind) GPOINTER_TO_INT (run_data);
  GimpPDBStatusType status = GIMP_PDB_EXECUTION_ERROR;
  GimpValueArray *return_values;
  GimpDrawable *drawable;
  GimpLayer *layer = NULL;
  GessoBridgeInput input = { 0 };
  GessoEditResult result = { 0 };
  GessoEditParams params;
  GessoModelParams model_params;
  GessoModel *model = NULL;
  GessoControl control = { 0 };
  GessoImage control_image = { 0 };
  RunArgs args = { 0 };
  GError *error = NULL, *engine_error = NULL;
  gchar *model_path = NULL, *vae_path = NULL, *model_name = NULL, *sampler = NULL;
  gchar *name = NULL, *recipe = NULL;
  gchar **embedding_dirs = NULL;
  gchar *prompt = NULL;
  GArray *lora_uses = NULL;
  GPtrArray *lora_paths = NULL;
  gint pad;

  gegl_init (NULL, NULL);

  if (gimp_core_object_array_get_length ((GObject **) drawables) != 1)
    {
      g_set_error (&error, GIMP_PLUG_IN_ERROR, 0,
                   _("Procedure '%s' works with one layer: select exactly one."),
                   gimp_procedure_get_name (procedure));
      return run_error (procedure, GIMP_PDB_CALLING_ERROR, error);
    }
  drawable = drawables[0];
  if (!gimp_item_is_layer (GIMP_ITEM (drawable)))
    {
      g_set_error (&error, GIMP_PLUG_IN_ERROR, 0,
                   _("Gesso works on layers: select a layer rather than a channel or a layer "
                     "mask."));
      return run_error (procedure, GIMP_PDB_CALLING_ERROR, error);
    }
  /* scripts may call us on any image; the menu offers only RGB and grayscale ones */
  if (gimp_image_get_base_type (image) == GIMP_INDEXED)
    {
      g_set_error_literal (&error, GIMP_PLUG_IN_ERROR, 0,
                           _("Gesso works on RGB and grayscale images: convert this one with "
                             "Image ▸ Mode ▸ RGB first."));
      return run_error (procedure, GIMP_PDB_CALLING_ERROR, error);
    }
  /* checked before the dialog, so nobody fills it in for nothing */
  if (kind == GESSO_EDIT_INPAINT && gimp_selection_is_empty (image))
    {
      g_set_error_literal (&error, GIMP_PLUG_IN_ERROR, 0,
                           _("Inpaint Selection needs a selection: select the area to "
                             "regenerate first"));
      return run_error (procedure, GIMP_PDB_EXECUTION_ERROR, error);
    }

  if (run_mode == GIMP_RUN_INTERACTIVE)
    {
      gimp_ui_init ("gesso");
      if (!gesso_dialog_run (procedure, config, image, drawable, kind))
        return gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);
    }
  else
    {
      gboolean random_seed = FALSE;

      /* the dialog draws the seed itself; here it is ours to draw, and the config keeps it so
       * the recipe (and Filters ▸ Repeat's stored values) hold the seed actually used */
      get_boolean (config, "random-seed", &random_seed);
      if (random_seed && has_property (config, "seed"))
        g_object_set (config, "seed", (gint) g_random_int_range (0, G_MAXINT), NULL);
    }

  run_args_read (config, kind, &args);
  model_path = gesso_ui_resolve_model (args.model, &error);
  if (model_path == NULL)
    goto out;
  vae_path = gesso_ui_resolve_vae (args.vae, &error);
  if (error != NULL)
    goto out;

  /* read everything first: the image is not touched until the engine is done */
  pad = args.context_margin + (gint) ceil (args.mask_grow) + (gint) ceil (args.mask_feather) + 2;
  if (!check_area_memory (image, drawable, pad, &error))
    goto out;
  switch (kind)
    {
    case GESSO_EDIT_GENERATE:
      if (!gesso_bridge_read_target (image, &input, &error))
        goto out;
      break;
    case GESSO_EDIT_INPAINT:
      if (!gesso_bridge_read_drawable (image, drawable, pad, TRUE, &input, &error))
        goto out;
      break;
    case GESSO_EDIT_SDEDIT:
      if (!gesso_bridge_read_visible (image, drawable, pad, &input, &error))
        goto out;
      break;
    case GESSO_EDIT_RESTYLE:
    default:
      if (!gesso_bridge_read_drawable (image, drawable, pad, FALSE, &input, &error))
        goto out;
      break;
    }
  if (!control_read (&args, kind, drawable, &input, &control, &control_image, &error))
    goto out;
  /* A1111's <lora:NAME:WEIGHT> tags: a name that is nowhere is said before the model loads */
  lora_uses = g_array_new (FALSE, FALSE, sizeof (GessoLoraUse));
  lora_paths = g_ptr_array_new_with_free_func (g_free);
  prompt = gesso_ui_prompt_take_loras (args.prompt, lora_uses, lora_paths, &engine_error);
  if (prompt == NULL)
    {
      g_set_error_literal (&error, GIMP_PLUG_IN_ERROR, 0, engine_error->message);
      goto out;
    }

  gimp_progress_init (progress_text (kind));
  model_name = g_path_get_basename (model_path);
  gimp_progress_set_text_printf (_("Loading the model “%s”"), model_name);
  gimp_progress_pulse ();
  gesso_model_params_init (&model_params);
  model_params.path = model_path;
  model_params.vae = vae_path;
  embedding_dirs = gesso_ui_asset_dirs_new (GESSO_ASSET_EMBEDDING);
  model_params.embeddings = (const char *const *) embedding_dirs;
  model = gesso_model_open (&model_params, &engine_error);
  if (model == NULL)
    {
      g_set_error (&error, GIMP_PLUG_IN_ERROR, 0, _("Gesso could not open the model “%s”: %s"),
                   model_path, engine_error->message);
      goto out;
    }

  gimp_progress_set_text (kind == GESSO_EDIT_GENERATE ? _("Encoding the prompt")
                                                     : _("Encoding the prompt and the picture"));
  sampler = gesso_ui_sampler_engine_name (args.sampler);
  gesso_edit_params_init (&params, kind);
  params.prompt = prompt;
  params.loras = (const GessoLoraUse *) (gpointer) lora_uses->data;
  params.n_loras = (int) lora_uses->len;
  params.negative_prompt = args.negative_prompt;
  params.source_prompt = kind == GESSO_EDIT_RESTYLE ? args.source_prompt : NULL;
  params.steps = args.steps;
  params.guidance = (float) args.guidance;
  params.guidance_rescale = (float) args.guidance_rescale;
  if (kind != GESSO_EDIT_GENERATE)
    params.strength = (float) args.strength;
  params.seed = (guint64) args.seed;
  params.sampler = sampler;
  params.eta = (float) args.eta;
  params.jump_length = args.jump_length;
  params.resample_count = args.resample_count;
  params.mask_grow = (float) args.mask_grow;
  params.mask_feather = (float) args.mask_feather;
  params.context_margin = args.context_margin;
  params.clip_skip = args.clip_skip;
  params.pixel_budget = args.pixel_budget;
  params.full_inversion = args.full_inversion;
  params.progress = progress_step;
  params.progress_data = GINT_TO_POINTER (kind);
  if (control.model != NULL)
    {
      params.controls = &control;
      params.n_controls = 1;
      params.control_start = (float) args.control_start;
      params.control_end = (float) args.control_end;
    }
  if (kind == GESSO_EDIT_GENERATE)
    {
      params.width = input.width;
      params.height = input.height;
    }

  if (!gesso_edit_run (model, &params, kind == GESSO_EDIT_GENERATE ? NULL : &input.image,
                       input.mask.values != NULL ? &input.mask : NULL, &result, &engine_error))
    {
      if (g_error_matches (engine_error, GESSO_ERROR, GESSO_ERROR_CANCELLED))
        {
          status = GIMP_PDB_CANCEL;
          goto out;
        }
      g_set_error (&error, GIMP_PLUG_IN_ERROR, 0, _("Gesso could not finish the edit: %s"),
                   engine_error->message);
      goto out;
    }
  gimp_progress_update (1.0);

  /* the only writes of the run, as one undo step */
  name = layer_name_new (kind, prompt);
  recipe = recipe_new (config, kind, model_path, vae_path);
  gimp_image_undo_group_start (image);
  layer = gesso_bridge_write_layer (image, drawable, name, &input, &result, &error);
  if (layer != NULL)
    {
      GError *recipe_error = NULL;

      if (!gesso_recipe_attach (GIMP_DRAWABLE (layer), recipe, &recipe_error))
        {
          /* the picture matters more than its label: keep the layer, say what is missing */
          gimp_message (recipe_error->message);
          g_clear_error (&recipe_error);
        }
      if (kind == GESSO_EDIT_SDEDIT && args.hide_strokes && input.mask_from_strokes)
        gimp_item_set_visible (GIMP_ITEM (drawable), FALSE);
    }
  gimp_image_undo_group_end (image);
  if (layer == NULL)
    goto out;
  if (run_mode != GIMP_RUN_NONINTERACTIVE)
    gimp_displays_flush ();
  status = GIMP_PDB_SUCCESS;

out:
  g_strfreev (embedding_dirs);
  g_free (prompt);
  g_clear_pointer (&lora_uses, g_array_unref);
  g_clear_pointer (&lora_paths, g_ptr_array_unref);
  g_free (recipe);
  g_free (name);
  g_free (sampler);
  g_free (model_name);
  g_free (model_path);
  g_free (vae_path);
  if (engine_error != NULL)
    g_error_free (engine_error);
  gesso_edit_result_clear (&result);
  gesso_image_clear (&control_image);
  gesso_bridge_input_clear (&input);
  if (model != NULL)
    gesso_model_free (model);
  run_args_clear (&args);
  if (status != GIMP_PDB_SUCCESS)
    return run_error (procedure, status, error);
  return_values = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  g_value_set_object (gimp_value_array_index (return_values, 1), layer);
  return return_values;
}
