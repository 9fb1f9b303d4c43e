/* Every model file in the conformance set loads, and the single files hold exactly the
 * numbers of their diffusers folder under CompVis/LDM names: the README promises identical
 * weights after widening to float32, so any difference is a key-mapping or dtype bug. */
#include <math.h>
#include <string.h>

#include "families.h"
#include "gesso.h"
#include "io/model_files.h"
#include "model/weights.h"
#include "model/taesd.h"

typedef struct
{
  guint compared;
  guint missing;
  guint mismatched;
  double max_abs;
  char *first_problem;
} Comparison;

static void
note_problem (Comparison *cmp, char *problem)
{
  if (cmp->first_problem == NULL)
    cmp->first_problem = problem;
  else
    g_free (problem);
}

static void
compare_tensor (GessoWeights *folder, GessoWeights *single, const GessoModelTensor *t,
                Comparison *cmp)
{
  g_autoptr (GError) error = NULL;
  int ndim;
  int64_t shape[8];
  const float *want, *got;

  if (!gesso_weights_shape (folder, t->component, t->key, &ndim, shape))
    return;
  want = gesso_weights_get (folder, t->component, t->key, ndim, shape, &error);
  if (want == NULL)
    {
      cmp->mismatched++;
      note_problem (cmp, g_strdup (error->message));
      return;
    }
  got = gesso_weights_get (single, t->component, t->key, ndim, shape, &error);
  if (got == NULL)
    {
      cmp->missing++;
      note_problem (cmp, g_strdup (error->message));
      return;
    }
  double d = conformance_max_abs_diff (want, got, (size_t) t->entry->numel);
  if (isnan (d) || d > 0)
    {
      cmp->mismatched++;
      note_problem (cmp, g_strdup_printf ("%s '%s' differs by %g",
                                          gesso_component_name (t->component), t->key, d));
    }
  cmp->max_abs = isnan (d) ? NAN : MAX (cmp->max_abs, d);
  cmp->compared++;
}

static gboolean
is_weight_component (GessoComponent c)
{
  return c == GESSO_COMPONENT_UNET || c == GESSO_COMPONENT_VAE
         || c == GESSO_COMPONENT_TEXT_ENCODER;
}

/* A checkpoint, or else a ControlNet (whose network the files hold as UNet weights). */
static GessoModelFiles *
open_files (const char *path, GError **error)
{
  GError *checkpoint_error = NULL;
  GessoModelFiles *files = gesso_model_files_open (path, &checkpoint_error);
  GessoWeights *weights = files ? gesso_weights_new (files, &checkpoint_error) : NULL;

  if (weights != NULL)
    {
      gesso_weights_free (weights);
      return files;
    }
  gesso_model_files_free (files);
  files = gesso_model_files_open_controlnet (path, NULL);
  if (files != NULL)
    {
      g_error_free (checkpoint_error);
      return files;
    }
  g_propagate_error (error, checkpoint_error);
  return NULL;
}

static void
check_variant (ConformanceRun *run, const ConformanceCase *c, const ConformanceVariant *v,
               GessoModelFiles *folder_files, GessoWeights *folder)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelFiles) files = open_files (v->path, &error);
  g_autoptr (GessoWeights) weights = NULL;
  Comparison cmp = { 0 };

  if (files != NULL)
    weights = gesso_weights_new (files, &error);
  if (weights == NULL)
    {
      conformance_report_error (run, c, v->label, 0, error);
      return;
    }
  if (folder == NULL || weights == folder)
    {
      conformance_report (run, c, CONFORMANCE_PASS, v->label, 0, 0, "%u tensors load",
                          gesso_model_files_count (files));
      return;
    }
  for (guint i = 0; i < gesso_model_files_count (folder_files); i++)
    {
      const GessoModelTensor *t = gesso_model_files_tensor (folder_files, i);
      if (is_weight_component (t->component))
        compare_tensor (folder, weights, t, &cmp);
    }
  if (cmp.missing == 0 && cmp.mismatched == 0 && cmp.compared > 0)
    conformance_report (run, c, CONFORMANCE_PASS, v->label, cmp.max_abs, 0,
                        "%u tensors equal the diffusers folder's", cmp.compared);
  else
    conformance_report (run, c, CONFORMANCE_FAIL, v->label, cmp.max_abs, 0,
                        "%u compared, %u missing, %u differ; first: %s", cmp.compared,
                        cmp.missing, cmp.mismatched,
                        cmp.first_problem ? cmp.first_problem : "nothing compared");
  g_free (cmp.first_problem);
}

/* A TAESD: every file opens (each single file with its partner) to both halves and the same
 * parameter count; its numbers are the taesd/ family's to check. */
static gboolean
check_taesd_model (ConformanceRun *run, const ConformanceCase *c, GPtrArray *variants)
{
  guint64 parameters = 0;

  if (!gesso_taesd_detect (((const ConformanceVariant *) variants->pdata[0])->path))
    return FALSE;
  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (GessoTaesd) taesd = gesso_taesd_open (v->path, &error);

      if (taesd == NULL)
        conformance_report_error (run, c, v->label, 0, error);
      else if (!gesso_taesd_has_encoder (taesd) || !gesso_taesd_has_decoder (taesd)
               || (parameters != 0 && gesso_taesd_parameters (taesd) != parameters))
        conformance_report (run, c, CONFORMANCE_FAIL, v->label, NAN, 0,
                            "encoder %s, decoder %s, %" G_GUINT64_FORMAT " parameters (the "
                            "first file had %" G_GUINT64_FORMAT ")",
                            gesso_taesd_has_encoder (taesd) ? "yes" : "no",
                            gesso_taesd_has_decoder (taesd) ? "yes" : "no",
                            gesso_taesd_parameters (taesd), parameters);
      else
        {
          parameters = gesso_taesd_parameters (taesd);
          conformance_report (run, c, CONFORMANCE_PASS, v->label, 0, 0,
                              "TAESD (%s), encoder and decoder, %" G_GUINT64_FORMAT
                              " parameters", gesso_taesd_layout_name (gesso_taesd_layout (taesd)),
                              parameters);
        }
    }
  return TRUE;
}

static void
check_model (ConformanceRun *run, const char *dir, const char *model)
{
  g_autofree char *name = g_strdup_printf ("model-%s", model);
  ConformanceCase c = { .dir = dir, .family = "models", .name = name };
  g_autoptr (GPtrArray) variants = conformance_model_variants (&c, model);
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelFiles) folder_files = NULL;
  g_autoptr (GessoWeights) folder = NULL;

  if (variants->len == 0)
    {
      conformance_report (run, &c, CONFORMANCE_FAIL, NULL, NAN, 0, "no model files found");
      return;
    }
  if (check_taesd_model (run, &c, variants))
    return;
  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      if (strcmp (v->label, "diffusers") != 0)
        continue;
      folder_files = open_files (v->path, &error);
      if (folder_files != NULL)
        folder = gesso_weights_new (folder_files, &error);
      if (folder == NULL)
        conformance_report_error (run, &c, v->label, 0, error);
      else
        conformance_report (run, &c, CONFORMANCE_PASS, v->label, 0, 0, "%u tensors load",
                            gesso_model_files_count (folder_files));
    }
  for (guint i = 0; i < variants->len; i++)
    {
      const ConformanceVariant *v = variants->pdata[i];
      if (strcmp (v->label, "diffusers") != 0)
        check_variant (run, &c, v, folder_files, folder);
    }
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

void
conformance_models (ConformanceRun *run, const char *dir)
{
  g_autofree char *models_dir = g_build_filename (dir, "models", NULL);
  g_autoptr (GDir) d = g_dir_open (models_dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *entry;

  while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (models_dir, entry, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (names, g_strdup (entry));
    }
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    check_model (run, dir, names->pdata[i]);
}
