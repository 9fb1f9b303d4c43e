/* gesso-conformance: runs every case under the conformance directory, then Gesso's own cases.
 *
 * The directory is $GESSO_CONFORMANCE_DIR when set, else ../shared/conformance beside the
 * source root. Without it the run is skipped (exit 77, meson's "skipped"), not failed.
 * Gesso's own cases (tests/conformance/cases, made by tools/reference/ with diffusers) are laid
 * out the same way and use the conformance directory's models, read in place.
 * Exit status: 0 when nothing failed, 1 otherwise. */
#include "gesso-config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "families.h"
#include "gesso.h"
#include "io/config.h"
#include "run.h"

#define EXIT_SKIPPED 77

typedef struct
{
  const char *family;
  ConformanceHandler handler;   /* NULL: the engine does not do this yet */
  const char *pending;          /* why it is skipped while HANDLER is NULL */
} Family;

static const Family families[] = {
  { "tokenizer", conformance_family_tokenizer, NULL },
  { "text_encoder", conformance_family_text_encoder, NULL },
  { "unet", conformance_family_unet, NULL },
  { "vae", conformance_family_vae, NULL },
  { "scheduler", conformance_family_scheduler, NULL },
  { "pipeline", conformance_family_pipeline, NULL },
  { "controlnet", conformance_family_controlnet, NULL },
  { "taesd", conformance_family_taesd, NULL },
};

static char *
conformance_dir (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_build_filename (source ? source : GESSO_SOURCE_DIR, "..", "shared", "conformance",
                           NULL);
}

static char *
own_cases_dir (void)
{
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  return g_build_filename (source ? source : GESSO_SOURCE_DIR, "tests", "conformance", "cases",
                           NULL);
}

static const Family *
find_family (const char *name)
{
  for (size_t i = 0; i < G_N_ELEMENTS (families); i++)
    if (strcmp (families[i].family, name) == 0)
      return &families[i];
  return NULL;
}

/* Whether the case gives the pipeline an image to encode, so that its VAE must be run whole. */
static gboolean
encodes_an_image (const ConformanceCase *c)
{
  JsonNode *inputs = json_object_get_member (c->manifest, "inputs");

  if (inputs == NULL || !JSON_NODE_HOLDS_ARRAY (inputs))
    return FALSE;
  for (guint i = 0; i < json_array_get_length (json_node_get_array (inputs)); i++)
    if (g_strcmp0 (json_array_get_string_element (json_node_get_array (inputs), i), "image_in")
        == 0)
      return TRUE;
  return FALSE;
}

/* The first model the case names (its base model, ControlNets) that the engine refuses as not
 * supported yet, with the engine's reason; NULL when it runs them all. A case is skipped for
 * that reason only, so a case of a model the engine runs always counts. A VAE borrowed from
 * another model counts when the case encodes an image with it; one that only decodes does not:
 * the pipeline handler then compares the case's latents. */
static const char *
unsupported_model (ConformanceRun *run, const ConformanceCase *c)
{
  static const char *const roles[] = { "model", "controlnet", "controlnets", "vae" };

  for (size_t r = 0; r < G_N_ELEMENTS (roles); r++)
    {
      JsonNode *node = json_object_get_member (c->manifest, roles[r]);

      if (strcmp (roles[r], "vae") == 0 && !encodes_an_image (c))
        continue;
      g_autoptr (GList) names = NULL;

      if (node == NULL)
        continue;
      if (JSON_NODE_HOLDS_ARRAY (node))
        names = json_array_get_elements (json_node_get_array (node));
      else
        names = g_list_prepend (NULL, node);
      for (GList *l = names; l != NULL; l = l->next)
        {
          const char *model = json_node_get_value_type (l->data) == G_TYPE_STRING
                                ? json_node_get_string (l->data) : NULL;
          const char *reason = model ? conformance_model_unsupported (run, c, model) : NULL;
          if (reason != NULL)
            return reason;
        }
    }
  return NULL;
}

/* Runs the case FILE of CASE_ROOT/FAMILY_DIR, whose models are in DIR/models. */
static void
run_case (ConformanceRun *run, const char *dir, const char *case_root, const char *family_dir,
          const char *file)
{
  g_autofree char *name = g_strndup (file, strlen (file) - strlen (".json"));
  g_autofree char *manifest_path = g_build_filename (case_root, family_dir, file, NULL);
  g_autofree char *tensors_path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) manifest = gesso_config_load (manifest_path, &error);
  g_autoptr (GessoSafetensors) tensors = NULL;
  ConformanceCase c = { .dir = dir, .family = family_dir, .name = name,
                        .manifest_path = manifest_path };
  const Family *family;
  const char *reason;

  run->reports_for_case = 0;
  if (manifest == NULL)
    {
      conformance_report (run, &c, CONFORMANCE_FAIL, NULL, NAN, 0, "%s", error->message);
      return;
    }
  c.manifest = manifest;
  if (json_object_has_member (manifest, "family"))
    c.family = json_object_get_string_member (manifest, "family");
  if ((reason = unsupported_model (run, &c)) != NULL)
    {
      conformance_report (run, &c, CONFORMANCE_SKIP, NULL, NAN, NAN, "%s", reason);
      return;
    }
  family = c.family ? find_family (c.family) : NULL;
  if (family == NULL)
    {
      /* a family added to the data before the engine does it */
      conformance_report (run, &c, CONFORMANCE_SKIP, NULL, NAN, NAN,
                          "the engine has no handler for case family '%s' yet",
                          c.family ? c.family : "(none)");
      return;
    }
  tensors_path = g_build_filename (case_root, family_dir, name, NULL);
  {
    g_autofree char *with_ext = g_strconcat (tensors_path, ".safetensors", NULL);
    if (g_file_test (with_ext, G_FILE_TEST_EXISTS))
      {
        tensors = gesso_safetensors_open (with_ext, &error);
        if (tensors == NULL)
          {
            conformance_report (run, &c, CONFORMANCE_FAIL, NULL, NAN, 0, "%s", error->message);
            return;
          }
      }
  }
  c.tensors = tensors;
  if (family->handler == NULL)
    {
      conformance_report (run, &c, CONFORMANCE_SKIP, NULL, NAN, NAN, "%s", family->pending);
      return;
    }
  family->handler (run, &c);
  if (run->reports_for_case == 0)
    conformance_report (run, &c, CONFORMANCE_FAIL, NULL, NAN, 0,
                        "the %s handler checked nothing", c.family);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static GPtrArray *
sorted_entries (const char *path, gboolean want_dirs)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *entry;

  while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *full = g_build_filename (path, entry, NULL);
      gboolean is_dir = g_file_test (full, G_FILE_TEST_IS_DIR);
      if (is_dir == want_dirs && (is_dir || g_str_has_suffix (entry, ".json")))
        g_ptr_array_add (names, g_strdup (entry));
    }
  g_ptr_array_sort (names, compare_strings);
  return names;
}

/* Every case under CASE_ROOT's family folders whose name contains ONLY (all when NULL). */
static void
run_cases (ConformanceRun *run, const char *dir, const char *case_root, const char *only)
{
  g_autoptr (GPtrArray) family_dirs = sorted_entries (case_root, TRUE);

  for (guint i = 0; i < family_dirs->len; i++)
    {
      const char *family_dir = family_dirs->pdata[i];
      if (strcmp (family_dir, "models") == 0)
        continue;
      g_autofree char *path = g_build_filename (case_root, family_dir, NULL);
      g_autoptr (GPtrArray) files = sorted_entries (path, FALSE);
      for (guint j = 0; j < files->len; j++)
        if (only == NULL || strstr (files->pdata[j], only) != NULL)
          run_case (run, dir, case_root, family_dir, files->pdata[j]);
    }
}

int
main (int argc, char **argv)
{
  g_autofree char *dir = conformance_dir ();
  g_autofree char *own_cases = own_cases_dir ();
  ConformanceRun run = { 0 };
  const char *only = argc > 1 ? argv[1] : NULL;   /* optional substring filter on case names */

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      printf ("conformance: 0 passed, 0 failed, 0 skipped (no conformance directory at %s)\n",
              dir);
      return EXIT_SKIPPED;
    }
  printf ("conformance directory: %s\n", dir);
  if (only == NULL || strstr ("models", only) != NULL)
    conformance_models (&run, dir);

  run_cases (&run, dir, dir, only);
  run_cases (&run, dir, own_cases, only);

  printf ("conformance: %u passed, %u failed, %u skipped\n", run.counts[CONFORMANCE_PASS],
          run.counts[CONFORMANCE_FAIL], run.counts[CONFORMANCE_SKIP]);
  g_clear_pointer (&run.unsupported, g_hash_table_unref);
  return run.counts[CONFORMANCE_FAIL] > 0 ? 1 : 0;
}
