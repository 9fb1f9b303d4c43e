/* Gesso: declarations shared by the files of ui/ and not meant for the plug-in. */
#ifndef GESSO_UI_PRIVATE_H
#define GESSO_UI_PRIVATE_H

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "gesso.h"

G_BEGIN_DECLS

/* The side of the preview image, in pixels, and the working area of a preview run. */
#define GESSO_PREVIEW_SIZE 160
#define GESSO_PREVIEW_BUDGET (128 * 128)
#define GESSO_PREVIEW_STEPS 4

/* --- gesso-models.c -------------------------------------------------------------------- */

const gchar *gesso_ui_get_bundled_model_dir (void);
gboolean gesso_ui_is_model_path (const gchar *path);

/* --- gesso-recipe.c --------------------------------------------------------------------- */

/* gesso_recipe_new_from_config() and gesso_recipe_apply() on any GObject with the same
 * property names (the unit test has no GIMP to make a GimpProcedureConfig). */
gchar *gesso_recipe_new_from_object (GObject *config, GessoEditKind kind);
gboolean gesso_recipe_apply_to_object (GObject *config, const gchar *recipe, GError **error);
/* The edit RECIPE was made by (its "method"); FALSE when it names none this version knows. */
gboolean gesso_recipe_get_kind (const gchar *recipe, GessoEditKind *kind);
/* RECIPE with only its "method" and the keys in KEEP (NULL-terminated), as recipe text; NULL
 * when RECIPE is not a key file. For a recipe of another edit: what the two share. */
gchar *gesso_recipe_filter_new (const gchar *recipe, const gchar *const *keep);

/* --- gesso-config-utils.c -------------------------------------------------------------- */

gboolean gesso_ui_config_has (GimpProcedureConfig *config, const gchar *property);
/* Any numeric or boolean property as a double; FALLBACK when CONFIG has no such property. */
gdouble gesso_ui_config_get_number (GimpProcedureConfig *config, const gchar *property,
                                    gdouble fallback);
/* Sets a numeric property from a double, rounded for integer types and clamped to the
 * property's range. Does nothing when CONFIG has no such property. */
void gesso_ui_config_set_number (GimpProcedureConfig *config, const gchar *property,
                                 gdouble value);
/* A string property (choices included), owned; NULL when CONFIG has no such property. */
gchar *gesso_ui_config_get_string (GimpProcedureConfig *config, const gchar *property);

/* --- gesso-preview.c ------------------------------------------------------------------- */

/* The preview pane of a dialog: image, progress bar, Preview and Stop buttons. It reads the
 * image on the main thread, runs a few low-resolution steps on a worker thread and shows the
 * result; every GTK call happens on the main thread. */
typedef struct _GessoPreview GessoPreview;
typedef void (*GessoPreviewDoneFunc) (GessoPreview *preview, gpointer data);

GessoPreview *gesso_preview_new (GimpProcedureConfig *config, GimpImage *image,
                                 GimpDrawable *drawable, GessoEditKind kind);
GtkWidget *gesso_preview_get_widget (GessoPreview *preview);
/* What the Preview button does; nothing while a preview runs. */
void gesso_preview_start (GessoPreview *preview);
/* FUNC runs on the main thread after each preview ends (done, failed or cancelled). */
void gesso_preview_set_done_func (GessoPreview *preview, GessoPreviewDoneFunc func,
                                  gpointer data);
/* TRUE once a preview has drawn a fresh seed into the config (random-seed on), so OK keeps
 * the seed the user saw. */
gboolean gesso_preview_drew_seed (GessoPreview *preview);
/* Cancels a running preview, waits for its thread (at most one denoising step), frees all. */
void gesso_preview_free (GessoPreview *preview);

G_END_DECLS

#endif /* GESSO_UI_PRIVATE_H */
