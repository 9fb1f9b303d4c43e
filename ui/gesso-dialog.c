/* Gesso: the procedure dialogs.
 *
 * One function builds the dialog of each of the four edits from the procedure's config:
 * GimpProcedureDialog generates the widgets of the numeric and choice arguments, and the
 * dialog adds what it cannot generate: multi-line prompt boxes, the model chooser, the
 * preview pane and the "use recipe" row. All state lives in a DialogState on the stack of
 * gesso_dialog_run() and in the config; nothing is global.
 */
#include "gesso-config.h"

#include <stdlib.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "gesso-dialog.h"
#include "gesso-ui-private.h"

/* A combo over a string property naming a file of one kind (a VAE, a ControlNet) found in
 * the model folders, its first entry "" (the property's "none"). */
typedef struct
{
  const gchar *property;
  GtkWidget *combo;
  GimpProcedureConfig *config;
  gulong notify_id;
} AssetChooser;

typedef struct
{
  GimpProcedureDialog *dialog;
  GimpProcedureConfig *config;
  GimpDrawable *drawable;
  GessoEditKind kind;

  GtkWidget *model_combo;
  GtkWidget *model_info;
  AssetChooser vae;             /* combo NULL when the procedure has no "vae" */
  AssetChooser controlnet;      /* combo NULL when it has no "control-model" */
  gboolean syncing_model;       /* guards the combo <-> config loop */
  gulong model_notify_id;

  gchar *recipe;
  gboolean recipe_kind_known;
  GessoEditKind recipe_kind;    /* the edit that made the layer, when known */
  GtkWidget *recipe_status;

  GtkWidget *prompt_view;       /* where the focus starts */
  GtkWidget *settings_scroll;   /* Settings, ControlNet and Advanced */
  GtkWidget *expanders[2];      /* ControlNet, Advanced; NULL when absent */

  GessoPreview *preview;
  guint autopreview_id;
  guint autoclose_id;
  guint unfold_id;
  guint fit_id;
  int height_limit;             /* the tallest the window may be; 0 until it is shown */
} DialogState;

/* Arguments the dialog places itself; any other argument goes under "Advanced". */
static const gchar *const known_properties[] = {
  "model", "vae", "prompt", "negative-prompt", "source-prompt", "steps", "guidance", "strength",
  "seed", "random-seed", "sampler", "eta", "jump-length", "resample-count", "mask-grow",
  "mask-feather", "context-margin", "clip-skip", "guidance-rescale", "full-inversion",
  "pixel-budget", "hide-strokes", "control-model", "follow-strokes", "control-drawable",
  "control-preprocess", "control-scale", "control-start", "control-end", NULL,
};

/* --- i18n -------------------------------------------------------------------------------- */

const gchar *
gesso_ui_get_locale_dir (void)
{
  return GESSO_LOCALEDIR;
}

void
gesso_ui_init_i18n (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      /* the plug-in's set_i18n may already have bound the domain (to the locale folder
       * beside the executable); only an unbound domain is pointed at the install */
      const gchar *bound = bindtextdomain (GETTEXT_PACKAGE, NULL);

      if (bound == NULL || strcmp (bound, "/usr/share/locale") == 0)
        bindtextdomain (GETTEXT_PACKAGE, GESSO_LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&done, 1);
    }
}

/* --- small helpers ----------------------------------------------------------------------- */

static const gchar *
dialog_title (GessoEditKind kind)
{
  switch (kind)
    {
    case GESSO_EDIT_GENERATE:
      return _("Generate from Prompt");
    case GESSO_EDIT_INPAINT:
      return _("Inpaint Selection");
    case GESSO_EDIT_SDEDIT:
      return _("Realize Strokes");
    case GESSO_EDIT_RESTYLE:
      return _("Restyle");
    default:
      return _("Gesso");
    }
}

/* A bold section title, as GIMP's own frames have. */
static GtkWidget *
section_frame (const gchar *title, GtkWidget *contents)
{
  GtkWidget *frame = gimp_frame_new (title);

  gtk_container_add (GTK_CONTAINER (frame), contents);
  gtk_widget_show (contents);
  gtk_widget_show (frame);
  return frame;
}

static GList *
existing (GimpProcedureConfig *config, const gchar *const *names)
{
  GList *list = NULL;

  for (; *names != NULL; names++)
    if (gesso_ui_config_has (config, *names))
      list = g_list_append (list, (gpointer) *names);
  return list;
}

/* A spin scale for PROPERTY whose slider covers LOWER..UPPER (the entry still takes the whole
 * range of the argument). */
static void
spin_scale (DialogState *s, const gchar *property, gdouble lower, gdouble upper)
{
  GtkWidget *widget;

  if (!gesso_ui_config_has (s->config, property))
    return;
  widget = gimp_procedure_dialog_get_spin_scale (s->dialog, property, 1.0);
  if (widget != NULL && GIMP_IS_SPIN_SCALE (widget) && lower < upper)
    {
      GtkAdjustment *adj = gtk_spin_button_get_adjustment (GTK_SPIN_BUTTON (widget));

      lower = MAX (lower, gtk_adjustment_get_lower (adj));
      upper = MIN (upper, gtk_adjustment_get_upper (adj));
      if (lower < upper)
        gimp_spin_scale_set_scale_limits (GIMP_SPIN_SCALE (widget), lower, upper);
    }
}

/* --- prompt boxes ------------------------------------------------------------------------ */

static GtkWidget *
prompt_box (DialogState *s, const gchar *property, const gchar *label_text, int lines)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (s->config), property);
  GtkTextBuffer *buffer;
  GtkWidget *view;
  GtkWidget *scrolled;
  GtkWidget *label;
  GtkWidget *box;
  PangoLayout *layout;
  int line_height = 17;

  if (pspec == NULL)
    return NULL;

  /* a text view of our own (GimpProcedureDialog's has no label, and it says so): the buffer
   * is bound to the property both ways by libgimpwidgets */
  buffer = gimp_prop_text_buffer_new (G_OBJECT (s->config), property, -1);
  view = gtk_text_view_new_with_buffer (buffer);
  g_object_unref (buffer);
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (view), GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_accepts_tab (GTK_TEXT_VIEW (view), FALSE);
  gtk_text_view_set_top_margin (GTK_TEXT_VIEW (view), 3);
  gtk_text_view_set_bottom_margin (GTK_TEXT_VIEW (view), 3);
  gtk_text_view_set_left_margin (GTK_TEXT_VIEW (view), 4);
  gtk_text_view_set_right_margin (GTK_TEXT_VIEW (view), 4);
  if (g_param_spec_get_blurb (pspec) != NULL)
    gtk_widget_set_tooltip_text (view, g_param_spec_get_blurb (pspec));

  scrolled = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scrolled), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scrolled), GTK_SHADOW_IN);
  layout = gtk_widget_create_pango_layout (view, "Xg");
  pango_layout_get_pixel_size (layout, NULL, &line_height);
  g_object_unref (layout);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scrolled),
                                              lines * line_height + 6);
  gtk_scrolled_window_set_min_content_width (GTK_SCROLLED_WINDOW (scrolled), 340);
  gtk_container_add (GTK_CONTAINER (scrolled), view);

  label = gtk_label_new_with_mnemonic (label_text);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), view);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);

  box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 3);
  gtk_box_pack_start (GTK_BOX (box), label, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (box), scrolled, TRUE, TRUE, 0);
  if (strcmp (property, "prompt") == 0)
    s->prompt_view = view;
  gtk_widget_show_all (box);
  return box;
}

static GtkWidget *
prompts_section (DialogState *s)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *child;

  if (s->kind == GESSO_EDIT_RESTYLE)
    {
      if ((child = prompt_box (s, "source-prompt", _("Source prompt (what the _image shows)"),
                               2)) != NULL)
        gtk_box_pack_start (GTK_BOX (box), child, TRUE, TRUE, 0);
      if ((child = prompt_box (s, "prompt", _("Target _prompt (what it should become)"), 2))
          != NULL)
        gtk_box_pack_start (GTK_BOX (box), child, TRUE, TRUE, 0);
    }
  else if ((child = prompt_box (s, "prompt", _("_Prompt"), 4)) != NULL)
    gtk_box_pack_start (GTK_BOX (box), child, TRUE, TRUE, 0);
  /* TRANSLATORS: no mnemonic in English because Inpaint's settings use up the letters (see
   * add_arguments in plugin/gesso-plugin.c); give it one if a letter is free in each dialog */
  if ((child = prompt_box (s, "negative-prompt", _("Negative prompt"), 2)) != NULL)
    gtk_box_pack_start (GTK_BOX (box), child, TRUE, TRUE, 0);
  gtk_widget_show (box);
  return box;
}

/* --- the model chooser ------------------------------------------------------------------- */

static void
update_model_info (DialogState *s)
{
  g_autofree gchar *model = gesso_ui_config_get_string (s->config, "model");
  g_autofree gchar *path = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (GError) error = NULL;

  path = gesso_ui_resolve_model (model, &error);
  if (path != NULL)
    text = gesso_ui_model_describe (path, &error);
  gtk_label_set_text (GTK_LABEL (s->model_info), text != NULL ? text : error->message);
  gtk_widget_set_tooltip_text (s->model_info, path != NULL ? path : NULL);
}

static gboolean
combo_has_id (GtkComboBox *combo, const gchar *id)
{
  GtkTreeModel *model = gtk_combo_box_get_model (combo);
  int column = gtk_combo_box_get_id_column (combo);
  GtkTreeIter iter;
  gboolean valid;

  for (valid = gtk_tree_model_get_iter_first (model, &iter); valid;
       valid = gtk_tree_model_iter_next (model, &iter))
    {
      g_autofree gchar *row_id = NULL;

      gtk_tree_model_get (model, &iter, column, &row_id, -1);
      if (g_strcmp0 (row_id, id) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Selects the config's model in the combo, adding it when it was picked with Browse. */
static void
sync_combo_from_config (DialogState *s)
{
  g_autofree gchar *model = gesso_ui_config_get_string (s->config, "model");
  GtkComboBox *combo = GTK_COMBO_BOX (s->model_combo);
  const gchar *id = model != NULL ? model : "";

  s->syncing_model = TRUE;
  if (!combo_has_id (combo, id))
    {
      g_autofree gchar *name = gesso_ui_model_display_name (id);

      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), id, name);
    }
  gtk_combo_box_set_active_id (combo, id);
  s->syncing_model = FALSE;
  update_model_info (s);
}

static void
model_notify (GObject *config, GParamSpec *pspec, DialogState *s)
{
  if (!s->syncing_model)
    sync_combo_from_config (s);
}

/* The combo's last line, which adds a folder instead of choosing a model. */
#define ADD_FOLDER_ID "\001add-folder"

static void fill_model_combo (DialogState *s);

/* "Add a models folder…": a folder of models kept anywhere (an A1111 or ComfyUI install
 * elsewhere, a shared disk), remembered for every later dialog and for `gesso models`. */
static void
add_folder (DialogState *s)
{
  GtkWidget *chooser;
  g_autofree gchar *dir = NULL;
  g_autoptr (GError) error = NULL;

  chooser = gtk_file_chooser_dialog_new (_("Add a Models Folder"), GTK_WINDOW (s->dialog),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                         _("_Cancel"), GTK_RESPONSE_CANCEL,
                                         _("_Add"), GTK_RESPONSE_ACCEPT, NULL);
  gimp_dialog_set_alternative_button_order (GTK_DIALOG (chooser), GTK_RESPONSE_ACCEPT,
                                            GTK_RESPONSE_CANCEL, -1);
  if (gtk_dialog_run (GTK_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    dir = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
  gtk_widget_destroy (chooser);
  if (dir != NULL && !gesso_ui_models_add_folder (dir, &error))
    gtk_label_set_text (GTK_LABEL (s->model_info), error->message);
  fill_model_combo (s);
}

static void
model_combo_changed (GtkComboBox *combo, DialogState *s)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);

  if (s->syncing_model || id == NULL)
    return;
  if (strcmp (id, ADD_FOLDER_ID) == 0)
    {
      add_folder (s);
      return;
    }
  s->syncing_model = TRUE;
  g_object_set (s->config, "model", id, NULL);
  s->syncing_model = FALSE;
  update_model_info (s);
}

static void
browse_clicked (GtkButton *button, DialogState *s)
{
  enum { RESPONSE_FOLDER = 1 };
  GtkWidget *chooser;
  GtkFileFilter *filter;
  g_autofree gchar *model = gesso_ui_config_get_string (s->config, "model");
  g_autofree gchar *user_dir = g_build_filename (gimp_directory (), "gesso", "models", NULL);
  g_autofree gchar *chosen = NULL;
  int response;

  chooser = gtk_file_chooser_dialog_new (_("Choose a Model"), GTK_WINDOW (s->dialog),
                                         GTK_FILE_CHOOSER_ACTION_OPEN,
                                         _("_Cancel"), GTK_RESPONSE_CANCEL,
                                         _("Use This _Folder"), RESPONSE_FOLDER,
                                         _("_Open"), GTK_RESPONSE_ACCEPT,
                                         NULL);
  gimp_dialog_set_alternative_button_order (GTK_DIALOG (chooser), GTK_RESPONSE_ACCEPT,
                                            RESPONSE_FOLDER, GTK_RESPONSE_CANCEL, -1);
  gtk_dialog_set_default_response (GTK_DIALOG (chooser), GTK_RESPONSE_ACCEPT);
  gtk_widget_set_tooltip_text (gtk_dialog_get_widget_for_response (GTK_DIALOG (chooser),
                                                                   RESPONSE_FOLDER),
                               _("Use the folder shown (or selected) as a diffusers model: "
                                 "a folder with model_index.json"));

  filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("Models (*.safetensors, model_index.json)"));
  gtk_file_filter_add_pattern (filter, "*.safetensors");
  gtk_file_filter_add_pattern (filter, "model_index.json");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("All files"));
  gtk_file_filter_add_pattern (filter, "*");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);

  if (model != NULL && model[0] != '\0' && g_file_test (model, G_FILE_TEST_EXISTS))
    gtk_file_chooser_set_filename (GTK_FILE_CHOOSER (chooser), model);
  else if (g_file_test (user_dir, G_FILE_TEST_IS_DIR))
    gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), user_dir);

  response = gtk_dialog_run (GTK_DIALOG (chooser));
  if (response == GTK_RESPONSE_ACCEPT || response == RESPONSE_FOLDER)
    {
      chosen = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      if (response == RESPONSE_FOLDER && (chosen == NULL
                                          || !g_file_test (chosen, G_FILE_TEST_IS_DIR)))
        {
          g_free (chosen);
          chosen = gtk_file_chooser_get_current_folder (GTK_FILE_CHOOSER (chooser));
        }
    }
  gtk_widget_destroy (chooser);
  if (chosen == NULL)
    return;

  /* model_index.json stands for its folder */
  if (g_strcmp0 (strrchr (chosen, G_DIR_SEPARATOR), G_DIR_SEPARATOR_S "model_index.json") == 0)
    {
      gchar *dir = g_path_get_dirname (chosen);

      g_free (chosen);
      chosen = dir;
    }
  if (!gesso_ui_is_model_path (chosen))
    {
      g_autofree gchar *shown = g_filename_display_name (chosen);
      g_autofree gchar *text = g_strdup_printf (_("“%s” is not a model: choose a .safetensors "
                                                  "file or a folder with model_index.json."),
                                                shown);

      gtk_label_set_text (GTK_LABEL (s->model_info), text);
      return;
    }
  g_object_set (s->config, "model", chosen, NULL);
}

/* The default, every checkpoint found, "Add a models folder…"; then the config's model
 * selected again. */
static void
fill_model_combo (DialogState *s)
{
  g_auto (GStrv) models = gesso_ui_models_find ();
  g_autofree gchar *fallback = gesso_ui_get_default_model (NULL);
  g_autofree gchar *default_label = NULL;
  GtkComboBoxText *combo = GTK_COMBO_BOX_TEXT (s->model_combo);

  if (fallback != NULL)
    {
      g_autofree gchar *name = gesso_ui_model_display_name (fallback);

      /* TRANSLATORS: the first entry of the model list; %s is the model used by default */
      default_label = g_strdup_printf (_("Default: %s"), name);
    }
  else
    default_label = g_strdup (_("Default: no model installed"));

  s->syncing_model = TRUE;
  gtk_combo_box_text_remove_all (combo);
  gtk_combo_box_text_append (combo, "", default_label);
  for (gchar **m = models; *m != NULL; m++)
    {
      g_autofree gchar *name = NULL;

      /* the first entry stands for it already */
      if (g_strcmp0 (*m, fallback) == 0)
        continue;
      name = gesso_ui_model_display_name (*m);
      gtk_combo_box_text_append (combo, *m, name);
    }
  /* TRANSLATORS: the last entry of the model list: opens a folder chooser */
  gtk_combo_box_text_append (combo, ADD_FOLDER_ID, _("Add a models folder…"));
  s->syncing_model = FALSE;
  sync_combo_from_config (s);
}

/* --- choosers of VAEs and ControlNets ------------------------------------------------------ */

static void
asset_combo_changed (GtkComboBox *combo, AssetChooser *c)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);
  g_autofree gchar *current = gesso_ui_config_get_string (c->config, c->property);

  if (id != NULL && g_strcmp0 (id, current) != 0)
    g_object_set (c->config, c->property, id, NULL);
}

/* A recipe or Reset changed the property: show it (a path not found in the folders is
 * added). */
static void
asset_notify (GObject *config, GParamSpec *pspec, AssetChooser *c)
{
  g_autofree gchar *current = gesso_ui_config_get_string (c->config, c->property);
  const gchar *id = current != NULL ? current : "";

  if (!combo_has_id (GTK_COMBO_BOX (c->combo), id))
    {
      g_autofree gchar *name = gesso_ui_model_display_name (id);
      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (c->combo), id, name);
    }
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (c->combo), id);
}

/* NONE_LABEL, then every file of KIND found (A1111's models/VAE or models/ControlNet,
 * ComfyUI's models/vae or models/controlnet, ...), as A1111's and ComfyUI's choosers list
 * them; LABEL in front. */
static GtkWidget *
asset_row (DialogState *s, AssetChooser *c, const gchar *property, GessoAssetKind kind,
           const gchar *label, const gchar *none_label)
{
  g_auto (GStrv) found = gesso_ui_assets_find (kind);
  g_autofree gchar *current = gesso_ui_config_get_string (s->config, property);
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (s->config), property);

  c->property = property;
  c->config = s->config;
  c->combo = gtk_combo_box_text_new ();
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (c->combo), "", none_label);
  for (gchar **v = found; *v != NULL; v++)
    {
      g_autofree gchar *name = gesso_ui_model_display_name (*v);

      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (c->combo), *v, name);
    }
  if (current != NULL && current[0] != '\0' && !combo_has_id (GTK_COMBO_BOX (c->combo), current))
    {
      g_autofree gchar *name = gesso_ui_model_display_name (current);

      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (c->combo), current, name);
    }
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (c->combo), current != NULL ? current : "");
  if (pspec != NULL && g_param_spec_get_blurb (pspec) != NULL)
    gtk_widget_set_tooltip_text (c->combo, g_param_spec_get_blurb (pspec));
  g_signal_connect (c->combo, "changed", G_CALLBACK (asset_combo_changed), c);
  {
    g_autofree gchar *signal = g_strconcat ("notify::", property, NULL);
    c->notify_id = g_signal_connect (s->config, signal, G_CALLBACK (asset_notify), c);
  }
  gtk_box_pack_start (GTK_BOX (row), gtk_label_new (label), FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (row), c->combo, TRUE, TRUE, 0);
  return row;
}

static void
asset_chooser_disconnect (AssetChooser *c)
{
  if (c->notify_id != 0)
    g_signal_handler_disconnect (c->config, c->notify_id);
  c->notify_id = 0;
}

/* "The model's own" and every VAE found: a separate VAE replaces the checkpoint's. */
static GtkWidget *
vae_row (DialogState *s)
{
  /* TRANSLATORS: "VAE" has no mnemonic in English, as for "Negative prompt"; "The model's
   * own" is the first entry of the VAE list: the checkpoint's own autoencoder */
  return asset_row (s, &s->vae, "vae", GESSO_ASSET_VAE, _("VAE"), _("The model's own"));
}

static GtkWidget *
model_section (DialogState *s)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *button;
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (s->config), "model");

  /* look again each time a dialog opens: models may have been added since */
  gesso_ui_models_refresh ();
  s->model_combo = gtk_combo_box_text_new ();
  gtk_widget_set_hexpand (s->model_combo, TRUE);
  if (pspec != NULL && g_param_spec_get_blurb (pspec) != NULL)
    gtk_widget_set_tooltip_text (s->model_combo, g_param_spec_get_blurb (pspec));
  gtk_box_pack_start (GTK_BOX (row), s->model_combo, TRUE, TRUE, 0);

  /* TRANSLATORS: no mnemonic in English, as for "Negative prompt" */
  button = gtk_button_new_with_mnemonic (_("Browse…"));
  gtk_widget_set_tooltip_text (button, _("Choose a .safetensors file or a diffusers folder"));
  gtk_box_pack_start (GTK_BOX (row), button, FALSE, FALSE, 0);
  g_signal_connect (button, "clicked", G_CALLBACK (browse_clicked), s);
  gtk_box_pack_start (GTK_BOX (box), row, FALSE, FALSE, 0);

  s->model_info = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (s->model_info), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (s->model_info), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (s->model_info), 50);
  gtk_style_context_add_class (gtk_widget_get_style_context (s->model_info), "dim-label");
  gimp_label_set_attributes (GTK_LABEL (s->model_info), PANGO_ATTR_SCALE, PANGO_SCALE_SMALL,
                             -1);
  gtk_box_pack_start (GTK_BOX (box), s->model_info, FALSE, FALSE, 0);

  if (gesso_ui_config_has (s->config, "vae"))
    gtk_box_pack_start (GTK_BOX (box), vae_row (s), FALSE, FALSE, 0);

  fill_model_combo (s);
  g_signal_connect (s->model_combo, "changed", G_CALLBACK (model_combo_changed), s);
  s->model_notify_id = g_signal_connect (s->config, "notify::model",
                                         G_CALLBACK (model_notify), s);
  gtk_widget_show_all (box);
  return section_frame (_("Model"), box);
}

/* --- settings ---------------------------------------------------------------------------- */

static GtkWidget *
settings_section (DialogState *s)
{
  static const gchar *const seed_names[] = { "seed", "random-seed", NULL };
  static const gchar *const main_names[] = {
    "steps", "guidance", "strength", "full-inversion", "jump-length", "resample-count",
    "hide-strokes", NULL,
  };
  g_autoptr (GList) seed = existing (s->config, seed_names);
  g_autoptr (GList) names = existing (s->config, main_names);
  GtkWidget *box;

  if (names == NULL && seed == NULL)
    return NULL;

  spin_scale (s, "steps", 1, 100);
  spin_scale (s, "guidance", 1, 20);
  spin_scale (s, "strength", 0, 1);
  spin_scale (s, "jump-length", 1, 20);
  spin_scale (s, "resample-count", 1, 10);
  if (gesso_ui_config_has (s->config, "strength")
      && gesso_ui_config_has (s->config, "full-inversion"))
    gimp_procedure_dialog_set_sensitive (s->dialog, "strength", TRUE, G_OBJECT (s->config),
                                         "full-inversion", TRUE);

  if (seed != NULL)
    {
      GtkWidget *seed_box;

      seed_box = gimp_procedure_dialog_fill_box_list (s->dialog, "gesso-seed-box", seed);
      gtk_orientable_set_orientation (GTK_ORIENTABLE (seed_box), GTK_ORIENTATION_HORIZONTAL);
      gtk_box_set_spacing (GTK_BOX (seed_box), 12);
      if (gesso_ui_config_has (s->config, "seed"))
        {
          GtkWidget *spin = gimp_procedure_dialog_get_widget (s->dialog, "seed", G_TYPE_NONE);

          gtk_widget_set_hexpand (spin, TRUE);
          gtk_box_set_child_packing (GTK_BOX (seed_box), spin, TRUE, TRUE, 0, GTK_PACK_START);
          if (g_list_length (seed) == 2)
            gimp_procedure_dialog_set_sensitive (s->dialog, "seed", TRUE, G_OBJECT (s->config),
                                                 "random-seed", TRUE);
        }
      names = g_list_append (names, (gpointer) "gesso-seed-box");
    }

  box = gimp_procedure_dialog_fill_box_list (s->dialog, "gesso-settings-box", names);
  gtk_box_set_spacing (GTK_BOX (box), 4);
  return section_frame (_("Settings"), box);
}

static gboolean
is_generated_type (GParamSpec *pspec)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);

  return type == G_TYPE_STRING || type == G_TYPE_BOOLEAN || type == G_TYPE_INT
         || type == G_TYPE_UINT || type == G_TYPE_DOUBLE;
}

/* BOX (shown) under an expander titled TITLE, folded. */
static GtkWidget *
folded_section (const gchar *title, GtkWidget *box)
{
  /* GIMP's frame for expanders indents the settings as far as the other sections' */
  GtkWidget *frame = gimp_frame_new ("<expander>");
  GtkWidget *expander = gtk_expander_new_with_mnemonic (title);

  gtk_container_add (GTK_CONTAINER (frame), box);
  gtk_widget_show (box);
  /* not resize_toplevel: it would add the whole section's height to the window, past the
   * scrolled area's cap; fit_window follows the fold instead */
  gtk_container_add (GTK_CONTAINER (expander), frame);
  gtk_widget_show (frame);
  gtk_widget_show (expander);
  return expander;
}

static GtkWidget *
advanced_section (DialogState *s, GimpProcedure *procedure)
{
  static const gchar *const advanced_names[] = {
    "mask-grow", "mask-feather", "context-margin", "eta", "guidance-rescale", "clip-skip",
    "pixel-budget", NULL,
  };
  static const gchar *const call_names[] = {
    "run-mode", "image", "drawable", "drawables", NULL,
  };
  g_autoptr (GList) names = existing (s->config, advanced_names);
  GParamSpec **arguments;
  gint n_arguments = 0;
  GtkWidget *box;

  /* arguments this dialog does not know, so that a new one is never unreachable */
  arguments = gimp_procedure_get_arguments (procedure, &n_arguments);
  for (gint i = 0; i < n_arguments; i++)
    {
      const gchar *name = arguments[i]->name;

      if (g_strv_contains (known_properties, name) || g_strv_contains (call_names, name)
          || !is_generated_type (arguments[i]) || !gesso_ui_config_has (s->config, name))
        continue;
      names = g_list_append (names, (gpointer) name);
    }
  /* "Automatic" suits nearly every run, so the list of ten lives here; Restyle's has one entry
   * (it inverts with DDIM and must sample back with it) and is not shown at all */
  if (gesso_ui_config_has (s->config, "sampler") && s->kind != GESSO_EDIT_RESTYLE)
    {
      gimp_procedure_dialog_get_widget (s->dialog, "sampler", GTK_TYPE_COMBO_BOX);
      names = g_list_prepend (names, (gpointer) "sampler");
    }
  if (names == NULL)
    return NULL;

  spin_scale (s, "mask-grow", 0, 64);
  spin_scale (s, "mask-feather", 0, 64);
  spin_scale (s, "context-margin", 0, 256);
  spin_scale (s, "eta", 0, 1);
  spin_scale (s, "guidance-rescale", 0, 1);
  /* sliders like the rest of the section; budgets past a megapixel are typed in */
  spin_scale (s, "clip-skip", 0, 11);
  spin_scale (s, "pixel-budget", 0, 1024 * 1024);

  box = gimp_procedure_dialog_fill_box_list (s->dialog, "gesso-advanced-box", names);
  gtk_box_set_spacing (GTK_BOX (box), 4);
  /* TRANSLATORS: no mnemonic in English, as for "Negative prompt" */
  return s->expanders[1] = folded_section (_("Advanced"), box);
}

/* --- ControlNet ------------------------------------------------------------------------- */

/* A row: the property's nick as a plain label (no mnemonic: see controlnet_section), then
 * WIDGET. */
static GtkWidget *
nick_row (DialogState *s, const gchar *property, GtkWidget *widget)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (s->config), property);
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);

  gtk_box_pack_start (GTK_BOX (row), gtk_label_new (g_param_spec_get_nick (pspec)), FALSE,
                      FALSE, 0);
  gtk_box_pack_start (GTK_BOX (row), widget, TRUE, TRUE, 0);
  if (g_param_spec_get_blurb (pspec) != NULL)
    gtk_widget_set_tooltip_text (widget, g_param_spec_get_blurb (pspec));
  return row;
}

/* Folded away like Advanced: a ControlNet is a choice few runs make. Its widgets are made here,
 * bound to the config, rather than generated: generated ones need mnemonics, and Inpaint's
 * dialog has two letters left (tests/gimp/check.py). */
static GtkWidget *
controlnet_section (DialogState *s)
{
  static const gchar *const scales[] = { "control-scale", "control-start", "control-end" };
  GObject *config = G_OBJECT (s->config);
  GtkWidget *box;

  if (!gesso_ui_config_has (s->config, "control-model"))
    return NULL;
  box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  /* TRANSLATORS: no mnemonic in English, as for "Negative prompt"; "None" is the first
   * entry of the ControlNet list */
  gtk_box_pack_start (GTK_BOX (box),
                      asset_row (s, &s->controlnet, "control-model", GESSO_ASSET_CONTROLNET,
                                 _("ControlNet"), _("None")),
                      FALSE, FALSE, 0);
  if (gesso_ui_config_has (s->config, "follow-strokes"))
    {
      GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (config),
                                                        "follow-strokes");
      gtk_box_pack_start (GTK_BOX (box),
                          gimp_prop_check_button_new (config, "follow-strokes",
                                                      g_param_spec_get_nick (pspec)),
                          FALSE, FALSE, 0);
    }
  if (gesso_ui_config_has (s->config, "control-drawable"))
    gtk_box_pack_start (GTK_BOX (box),
                        nick_row (s, "control-drawable",
                                  gimp_prop_drawable_chooser_new (config, "control-drawable",
                                                                  NULL)),
                        FALSE, FALSE, 0);
  if (gesso_ui_config_has (s->config, "control-preprocess"))
    gtk_box_pack_start (GTK_BOX (box),
                        nick_row (s, "control-preprocess",
                                  gimp_prop_choice_combo_box_new (config, "control-preprocess")),
                        FALSE, FALSE, 0);
  for (gsize i = 0; i < G_N_ELEMENTS (scales); i++)
    if (gesso_ui_config_has (s->config, scales[i]))
      gtk_box_pack_start (GTK_BOX (box),
                          gimp_prop_spin_scale_new (config, scales[i], 0.05, 0.25, 2), FALSE,
                          FALSE, 0);
  gtk_widget_show_all (box);
  return s->expanders[0] = folded_section (_("ControlNet"), box);
}

/* --- recipes ----------------------------------------------------------------------------- */

/* What a recipe of another edit may fill in: what the picture shows and how it was drawn,
 * not the knobs that mean something else (or nothing) in this edit. */
static const gchar *const shared_recipe_keys[] = {
  "prompt", "negative-prompt", "model", "vae", "seed", "random-seed", NULL,
};

static gboolean
recipe_is_other_edit (DialogState *s)
{
  return s->recipe_kind_known && s->recipe_kind != s->kind;
}

static void
recipe_clicked (GtkButton *button, DialogState *s)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *shared = NULL;
  g_autofree gchar *layer = gimp_item_get_name (GIMP_ITEM (s->drawable));
  g_autofree gchar *text = NULL;
  const gchar *recipe = s->recipe;

  if (recipe_is_other_edit (s))
    {
      shared = gesso_recipe_filter_new (s->recipe, shared_recipe_keys);
      recipe = shared != NULL ? shared : s->recipe;
    }
  if (!gesso_recipe_apply (s->config, recipe, &error))
    {
      gtk_label_set_text (GTK_LABEL (s->recipe_status), error->message);
      return;
    }
  /* OK runs on the layer the dialog was opened on, the result, not on its source: say so */
  if (recipe_is_other_edit (s))
    /* TRANSLATORS: %s are the edit that made the layer ("Realize Strokes") and the layer */
    text = g_strdup_printf (_("The prompts, model and seed of %s are filled in; this edit's "
                              "own settings are kept. OK runs on this layer, “%s”."),
                            dialog_title (s->recipe_kind), layer);
  else
    text = g_strdup_printf (_("The settings this layer was made with are filled in. OK runs "
                              "them on this layer, “%s”, not on the layer it was made from."),
                            layer);
  gtk_label_set_text (GTK_LABEL (s->recipe_status), text);
}

/* "This layer was made by Inpaint Selection." and, for another edit's layer, what its recipe
 * can fill in here. */
static gchar *
recipe_origin_text (DialogState *s)
{
  if (!s->recipe_kind_known)
    return g_strdup (_("This layer was made by Gesso."));
  if (recipe_is_other_edit (s))
    /* TRANSLATORS: %s is the edit that made the layer, e.g. "Realize Strokes" */
    return g_strdup_printf (_("This layer was made by %s: its recipe can fill in the prompts, "
                              "model and seed here, not that edit's own settings."),
                            dialog_title (s->recipe_kind));
  /* TRANSLATORS: %s is the edit that made the layer, e.g. "Inpaint Selection" */
  return g_strdup_printf (_("This layer was made by %s."), dialog_title (s->recipe_kind));
}

/* Under the preview, where the column has room: the row costs the settings no height. */
static GtkWidget *
recipe_section (DialogState *s)
{
  GtkWidget *box;
  GtkWidget *row;
  GtkWidget *icon;
  GtkWidget *button;
  g_autofree gchar *origin = NULL;

  if (s->recipe == NULL)
    return NULL;
  s->recipe_kind_known = gesso_recipe_get_kind (s->recipe, &s->recipe_kind);
  origin = recipe_origin_text (s);

  box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  icon = gtk_image_new_from_icon_name (GIMP_ICON_DIALOG_INFORMATION, GTK_ICON_SIZE_BUTTON);
  gtk_widget_set_valign (icon, GTK_ALIGN_START);
  gtk_box_pack_start (GTK_BOX (row), icon, FALSE, FALSE, 0);

  s->recipe_status = gtk_label_new (origin);
  gtk_label_set_xalign (GTK_LABEL (s->recipe_status), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (s->recipe_status), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (s->recipe_status), 20);
  gtk_box_pack_start (GTK_BOX (row), s->recipe_status, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (box), row, FALSE, FALSE, 0);

  button = gtk_button_new_with_mnemonic (_("Use recipe of this la_yer"));
  gtk_widget_set_tooltip_text (button, _("Fill in the prompts, model, seed and settings this "
                                         "layer was made with"));
  gtk_box_pack_start (GTK_BOX (box), button, FALSE, FALSE, 0);
  g_signal_connect (button, "clicked", G_CALLBACK (recipe_clicked), s);

  gtk_widget_show_all (box);
  return box;
}

/* For tools/screenshot-dialogs.sh and tests, which have no way to click: GESSO_UI_AUTOPREVIEW=1
 * starts a preview as the dialog opens (so the worker thread runs inside real GIMP), and
 * GESSO_UI_AUTOCLOSE=N cancels the dialog N seconds after that preview has ended ("start+N":
 * N seconds after it started, to close the dialog on a running preview). */
static gboolean
autoclose (gpointer data)
{
  DialogState *s = data;

  s->autoclose_id = 0;
  gtk_dialog_response (GTK_DIALOG (s->dialog), GTK_RESPONSE_CANCEL);
  return G_SOURCE_REMOVE;
}

static void
schedule_autoclose (DialogState *s, const gchar *seconds)
{
  if (s->autoclose_id == 0)
    s->autoclose_id = g_timeout_add_seconds (CLAMP (atoi (seconds), 0, 3600), autoclose, s);
}

/* tools/screenshot-dialogs.sh checks from this line that the window fits a 768-px screen. */
static void
log_window_size (DialogState *s)
{
  int width = 0, height = 0;

  gtk_window_get_size (GTK_WINDOW (s->dialog), &width, &height);
  g_debug ("dialog window %d x %d", width, height);
}

static void
preview_done (GessoPreview *preview, gpointer data)
{
  DialogState *s = data;
  const gchar *seconds = g_getenv ("GESSO_UI_AUTOCLOSE");

  gesso_preview_set_done_func (preview, NULL, NULL);
  log_window_size (s);
  if (seconds != NULL && !g_str_has_prefix (seconds, "start+"))
    schedule_autoclose (s, seconds);
}

static gboolean
autopreview (gpointer data)
{
  DialogState *s = data;

  const gchar *seconds = g_getenv ("GESSO_UI_AUTOCLOSE");

  s->autopreview_id = 0;
  gesso_preview_set_done_func (s->preview, preview_done, s);
  gesso_preview_start (s->preview);
  /* "start+N": close N seconds after the preview started, most likely while it runs */
  if (seconds != NULL && g_str_has_prefix (seconds, "start+"))
    schedule_autoclose (s, seconds + strlen ("start+"));
  return G_SOURCE_REMOVE;
}

/* --- the dialog -------------------------------------------------------------------------- */

/* What a window may take of the monitor's work area: a title bar above it, and room for a
 * panel that the work area of a bare X server (no window manager) does not leave out. */
#define WINDOW_FRAME_ALLOWANCE 72
/* The settings keep at least this much room on a very small screen. */
#define SETTINGS_MIN_HEIGHT 120

/* The settings scroll rather than push OK and Cancel off the screen: they may take what the
 * work area leaves after the rest of the dialog, as GIMP's own filter dialogs do. Measured
 * when the dialog is first shown (the heights of the buttons GimpProcedureDialog adds are
 * known only then); unfolding Advanced or ControlNet then grows the window up to that cap and
 * no further. */
static void
cap_settings_height (GtkWidget *dialog, DialogState *s)
{
  GtkScrolledWindow *scroll = GTK_SCROLLED_WINDOW (s->settings_scroll);
  GdkDisplay *display = gtk_widget_get_display (dialog);
  GdkMonitor *monitor = gdk_display_get_monitor_at_window (display,
                                                           gtk_widget_get_window (dialog));
  GdkRectangle area;
  int window_height = gtk_widget_get_allocated_height (dialog);
  int settings_height = gtk_widget_get_allocated_height (s->settings_scroll);
  int others, room;

  g_signal_handlers_disconnect_by_func (dialog, cap_settings_height, s);
  if (monitor == NULL)
    return;
  gdk_monitor_get_workarea (monitor, &area);
  others = window_height - settings_height;
  room = MAX (area.height - WINDOW_FRAME_ALLOWANCE - others, SETTINGS_MIN_HEIGHT);
  gtk_scrolled_window_set_max_content_height (scroll, room);
  s->height_limit = MAX (area.height - WINDOW_FRAME_ALLOWANCE, others + SETTINGS_MIN_HEIGHT);
  /* GTK grows a window to fit, but never shrinks one by itself */
  if (settings_height > room)
    gtk_window_resize (GTK_WINDOW (dialog), gtk_widget_get_allocated_width (dialog),
                       others + room);
  g_debug ("work area %d px high: settings capped at %d px (they need %d)", area.height, room,
           settings_height);
}

static GtkWidget *
settings_scroll_new (DialogState *s, GimpProcedure *procedure)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  GtkWidget *child;

  if ((child = settings_section (s)) != NULL)
    gtk_box_pack_start (GTK_BOX (box), child, FALSE, FALSE, 0);
  if ((child = controlnet_section (s)) != NULL)
    gtk_box_pack_start (GTK_BOX (box), child, FALSE, FALSE, 0);
  if ((child = advanced_section (s, procedure)) != NULL)
    gtk_box_pack_start (GTK_BOX (box), child, FALSE, FALSE, 0);

  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scroll), TRUE);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroll),
                                              SETTINGS_MIN_HEIGHT);
  gtk_scrolled_window_set_overlay_scrolling (GTK_SCROLLED_WINDOW (scroll), FALSE);
  gtk_container_add (GTK_CONTAINER (scroll), box);
  s->settings_scroll = scroll;
  return scroll;
}

/* After a section was folded or unfolded: the window takes its natural height again, which
 * the scrolled settings keep under the cap (GTK grows a window by itself, but never shrinks
 * one). */
static gboolean
fit_window (gpointer data)
{
  DialogState *s = data;
  int height = 0;

  s->fit_id = 0;
  gtk_widget_get_preferred_height (GTK_WIDGET (s->dialog), NULL, &height);
  /* the natural height of wrapped labels may come out a little taller than the one measured
   * when the cap was set: the settings then get a few pixels less */
  if (s->height_limit > 0)
    height = MIN (height, s->height_limit);
  gtk_window_resize (GTK_WINDOW (s->dialog),
                     gtk_widget_get_allocated_width (GTK_WIDGET (s->dialog)), height);
  return G_SOURCE_REMOVE;
}

static void
expander_toggled (GObject *expander, GParamSpec *pspec, DialogState *s)
{
  if (s->fit_id == 0)
    s->fit_id = g_idle_add (fit_window, s);
}

/* Ctrl+Enter runs from anywhere, the prompt boxes included (where Enter is a new line). */
static void
add_run_shortcut (DialogState *s)
{
  GtkWidget *ok = gtk_dialog_get_widget_for_response (GTK_DIALOG (s->dialog), GTK_RESPONSE_OK);
  GtkAccelGroup *accels;

  if (ok == NULL)
    return;
  accels = gtk_accel_group_new ();
  gtk_window_add_accel_group (GTK_WINDOW (s->dialog), accels);
  gtk_widget_add_accelerator (ok, "clicked", accels, GDK_KEY_Return, GDK_CONTROL_MASK, 0);
  gtk_widget_add_accelerator (ok, "clicked", accels, GDK_KEY_KP_Enter, GDK_CONTROL_MASK, 0);
  g_object_unref (accels);
}

/* For tools/screenshot-dialogs.sh: GESSO_UI_UNFOLD=1 opens ControlNet and Advanced, the
 * tallest state of a dialog, and scrolls the settings to their end. */
static void
scroll_to_end (GtkAdjustment *adj, gpointer data)
{
  gtk_adjustment_set_value (adj, gtk_adjustment_get_upper (adj)
                                 - gtk_adjustment_get_page_size (adj));
}

static gboolean
unfold_all (gpointer data)
{
  DialogState *s = data;
  GtkAdjustment *adj;

  s->unfold_id = 0;
  adj = gtk_scrolled_window_get_vadjustment (GTK_SCROLLED_WINDOW (s->settings_scroll));
  /* the range grows once the unfolded sections have been sized */
  g_signal_connect (adj, "changed", G_CALLBACK (scroll_to_end), NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (s->expanders); i++)
    if (s->expanders[i] != NULL)
      gtk_expander_set_expanded (GTK_EXPANDER (s->expanders[i]), TRUE);
  return G_SOURCE_REMOVE;
}

gboolean
gesso_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config, GimpImage *image,
                  GimpDrawable *drawable, GessoEditKind kind)
{
  DialogState s = { 0 };
  GtkWidget *dialog;
  GtkWidget *layout;
  GtkWidget *left;
  GtkWidget *right;
  GtkWidget *child;
  gboolean run;

  g_return_val_if_fail (GIMP_IS_PROCEDURE (procedure), FALSE);
  g_return_val_if_fail (GIMP_IS_PROCEDURE_CONFIG (config), FALSE);
  g_return_val_if_fail (GIMP_IS_IMAGE (image), FALSE);
  g_return_val_if_fail (drawable == NULL || GIMP_IS_DRAWABLE (drawable), FALSE);

  gesso_ui_init_i18n ();
  gimp_ui_init ("gesso");

  dialog = gimp_procedure_dialog_new (procedure, config, dialog_title (kind));
  s.dialog = GIMP_PROCEDURE_DIALOG (dialog);
  s.config = config;
  s.kind = kind;
  s.drawable = drawable;
  s.recipe = gesso_recipe_get_from_drawable (drawable);

  layout = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (dialog))), layout,
                      TRUE, TRUE, 0);

  /* left: the preview, as in GIMP's filter dialogs */
  s.preview = gesso_preview_new (config, image, drawable, kind);
  left = gesso_preview_get_widget (s.preview);
  gtk_widget_set_valign (left, GTK_ALIGN_START);
  gtk_box_pack_start (GTK_BOX (layout), left, FALSE, FALSE, 0);

  if ((child = recipe_section (&s)) != NULL)
    gtk_box_pack_start (GTK_BOX (left), child, FALSE, FALSE, 6);

  /* right: what to make, with what, and how; the settings scroll when the screen is short */
  right = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  gtk_box_pack_start (GTK_BOX (layout), right, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (right), prompts_section (&s), FALSE, FALSE, 0);
  if (gesso_ui_config_has (config, "model"))
    gtk_box_pack_start (GTK_BOX (right), model_section (&s), FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (right), settings_scroll_new (&s, procedure), TRUE, TRUE, 0);

  gtk_widget_show_all (layout);
  g_signal_connect (dialog, "map", G_CALLBACK (cap_settings_height), &s);
  for (gsize i = 0; i < G_N_ELEMENTS (s.expanders); i++)
    if (s.expanders[i] != NULL)
      g_signal_connect (s.expanders[i], "notify::expanded", G_CALLBACK (expander_toggled), &s);
  add_run_shortcut (&s);
  if (s.prompt_view != NULL)
    gtk_widget_grab_focus (s.prompt_view);
  if (g_strcmp0 (g_getenv ("GESSO_UI_UNFOLD"), "1") == 0)
    s.unfold_id = g_timeout_add (300, unfold_all, &s);
  if (g_strcmp0 (g_getenv ("GESSO_UI_AUTOPREVIEW"), "1") == 0)
    s.autopreview_id = g_timeout_add (500, autopreview, &s);
  run = gimp_procedure_dialog_run (GIMP_PROCEDURE_DIALOG (dialog));

  /* with a random seed, the run uses the seed the last preview showed, or a fresh one */
  if (run && gesso_ui_config_get_number (config, "random-seed", 0.0) != 0.0
      && !gesso_preview_drew_seed (s.preview))
    gesso_ui_config_set_number (config, "seed", g_random_int_range (0, G_MAXINT));

  if (s.autopreview_id != 0)
    g_source_remove (s.autopreview_id);
  if (s.autoclose_id != 0)
    g_source_remove (s.autoclose_id);
  if (s.unfold_id != 0)
    g_source_remove (s.unfold_id);
  if (s.fit_id != 0)
    g_source_remove (s.fit_id);
  /* a preview still running is cancelled and joined before any widget goes away */
  gesso_preview_free (s.preview);
  if (s.model_notify_id != 0)
    g_signal_handler_disconnect (config, s.model_notify_id);
  asset_chooser_disconnect (&s.vae);
  asset_chooser_disconnect (&s.controlnet);
  gtk_widget_destroy (dialog);
  g_free (s.recipe);
  return run;
}
