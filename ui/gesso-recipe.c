/* Gesso: recipes, the settings a result layer was made with.
 *
 * A recipe is a GKeyFile with one group, "recipe": the method, the Gesso version, then one
 * key per config property of a plain type (strings, numbers, booleans, choices). GKeyFile
 * escapes newlines in prompts and writes numbers locale-independently, so a recipe made in
 * one language reads back in another. Reading is more forgiving: plain "key=value" lines and
 * JSON objects are understood too, with '_' or '-' in key names.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

#include "gesso-dialog.h"
#include "gesso-ui-private.h"

#define GROUP "recipe"

static const gchar *const method_keys[] = {
  [GESSO_EDIT_GENERATE] = "generate",
  [GESSO_EDIT_INPAINT] = "inpaint",
  [GESSO_EDIT_SDEDIT] = "strokes",
  [GESSO_EDIT_RESTYLE] = "restyle",
};

/* Properties that describe the call, not the settings. */
static gboolean
is_skipped (const gchar *name)
{
  static const gchar *const skipped[] = { "run-mode", "image", "drawable", "drawables", NULL };

  return g_strv_contains (skipped, name);
}

static gboolean
is_plain (GParamSpec *pspec)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);

  if ((pspec->flags & G_PARAM_READWRITE) != G_PARAM_READWRITE
      || (pspec->flags & G_PARAM_CONSTRUCT_ONLY) != 0)
    return FALSE;
  return type == G_TYPE_STRING || type == G_TYPE_BOOLEAN || type == G_TYPE_INT
         || type == G_TYPE_UINT || type == G_TYPE_INT64 || type == G_TYPE_UINT64
         || type == G_TYPE_DOUBLE || type == G_TYPE_FLOAT;
}

gchar *
gesso_recipe_new_from_config (GimpProcedureConfig *config, GessoEditKind kind)
{
  g_return_val_if_fail (GIMP_IS_PROCEDURE_CONFIG (config), NULL);
  return gesso_recipe_new_from_object (G_OBJECT (config), kind);
}

gchar *
gesso_recipe_new_from_object (GObject *config, GessoEditKind kind)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autofree GParamSpec **pspecs = NULL;
  guint n_pspecs = 0;

  if ((guint) kind < G_N_ELEMENTS (method_keys))
    g_key_file_set_string (file, GROUP, "method", method_keys[kind]);
  g_key_file_set_string (file, GROUP, "gesso-version", GESSO_VERSION);

  pspecs = g_object_class_list_properties (G_OBJECT_GET_CLASS (config), &n_pspecs);
  for (guint i = 0; i < n_pspecs; i++)
    {
      GParamSpec *pspec = pspecs[i];
      const gchar *key = pspec->name;
      GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
      g_auto (GValue) value = G_VALUE_INIT;

      if (is_skipped (key) || !is_plain (pspec))
        continue;
      g_value_init (&value, type);
      g_object_get_property (config, key, &value);

      if (type == G_TYPE_STRING)
        g_key_file_set_string (file, GROUP, key,
                               g_value_get_string (&value) ? g_value_get_string (&value) : "");
      else if (type == G_TYPE_BOOLEAN)
        g_key_file_set_boolean (file, GROUP, key, g_value_get_boolean (&value));
      else if (type == G_TYPE_INT)
        g_key_file_set_integer (file, GROUP, key, g_value_get_int (&value));
      else if (type == G_TYPE_UINT)
        g_key_file_set_uint64 (file, GROUP, key, g_value_get_uint (&value));
      else if (type == G_TYPE_INT64)
        g_key_file_set_int64 (file, GROUP, key, g_value_get_int64 (&value));
      else if (type == G_TYPE_UINT64)
        g_key_file_set_uint64 (file, GROUP, key, g_value_get_uint64 (&value));
      else if (type == G_TYPE_DOUBLE)
        g_key_file_set_double (file, GROUP, key, g_value_get_double (&value));
      else if (type == G_TYPE_FLOAT)
        g_key_file_set_double (file, GROUP, key, g_value_get_float (&value));
    }
  return g_key_file_to_data (file, NULL, NULL);
}

/* Sets PSPEC's property from its text form TEXT (as a recipe writes it). FALSE: the text
 * does not parse as the property's type, or names a choice this version does not know. */
static gboolean
set_from_text (GObject *config, GParamSpec *pspec, const gchar *text)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  g_auto (GValue) value = G_VALUE_INIT;
  gchar *end = NULL;

  g_value_init (&value, type);
  if (type == G_TYPE_STRING)
    g_value_set_string (&value, text);
  else if (type == G_TYPE_BOOLEAN)
    {
      if (g_ascii_strcasecmp (text, "true") == 0 || g_strcmp0 (text, "1") == 0)
        g_value_set_boolean (&value, TRUE);
      else if (g_ascii_strcasecmp (text, "false") == 0 || g_strcmp0 (text, "0") == 0)
        g_value_set_boolean (&value, FALSE);
      else
        return FALSE;
    }
  else
    {
      gdouble number = g_ascii_strtod (text, &end);

      if (end == text || *end != '\0' || !isfinite (number))
        return FALSE;
      if (type == G_TYPE_UINT64 || type == G_TYPE_INT64)
        {
          /* seeds: parse exactly, a double would round above 2^53 */
          if (type == G_TYPE_UINT64)
            g_value_set_uint64 (&value, g_ascii_strtoull (text, NULL, 10));
          else
            g_value_set_int64 (&value, g_ascii_strtoll (text, NULL, 10));
        }
      else if (type == G_TYPE_INT)
        g_value_set_int (&value, (gint) CLAMP (round (number), G_MININT, G_MAXINT));
      else if (type == G_TYPE_UINT)
        g_value_set_uint (&value, (guint) CLAMP (round (number), 0, G_MAXUINT));
      else if (type == G_TYPE_DOUBLE)
        g_value_set_double (&value, number);
      else if (type == G_TYPE_FLOAT)
        g_value_set_float (&value, (gfloat) number);
      else
        return FALSE;
    }
  /* numbers out of range are clamped; a string the property refuses (a sampler name this
   * version does not know) is left as it was */
  if (g_param_value_validate (pspec, &value) && G_VALUE_HOLDS_STRING (&value))
    return FALSE;
  g_object_set_property (config, pspec->name, &value);
  return TRUE;
}

/* Applies one recipe entry; keys may be spelt with '_' or '-'. */
static void
apply_entry (GObject *config, const gchar *key, const gchar *text)
{
  g_autofree gchar *name = g_strdelimit (g_strdup (key), "_", '-');
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (config), name);

  if (pspec == NULL || text == NULL || is_skipped (name) || !is_plain (pspec))
    return;
  set_from_text (config, pspec, text);
}

/* JSON recipes: every scalar member, nested objects flattened (their members by name). */
static void
apply_json_object (GObject *config, JsonObject *object)
{
  g_autoptr (GList) members = json_object_get_members (object);

  for (GList *m = members; m != NULL; m = m->next)
    {
      JsonNode *node = json_object_get_member (object, m->data);
      gchar text[G_ASCII_DTOSTR_BUF_SIZE];
      GType type;

      if (JSON_NODE_HOLDS_OBJECT (node))
        {
          apply_json_object (config, json_node_get_object (node));
          continue;
        }
      if (!JSON_NODE_HOLDS_VALUE (node))
        continue;
      type = json_node_get_value_type (node);
      if (type == G_TYPE_STRING)
        apply_entry (config, m->data, json_node_get_string (node));
      else if (type == G_TYPE_BOOLEAN)
        apply_entry (config, m->data, json_node_get_boolean (node) ? "true" : "false");
      else if (type == G_TYPE_INT64)
        {
          g_snprintf (text, sizeof text, "%" G_GINT64_FORMAT, json_node_get_int (node));
          apply_entry (config, m->data, text);
        }
      else if (type == G_TYPE_DOUBLE)
        apply_entry (config, m->data,
                     g_ascii_dtostr (text, sizeof text, json_node_get_double (node)));
    }
}

static gboolean
apply_json (GObject *config, const gchar *recipe, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local_error = NULL;
  JsonNode *root;

  if (!json_parser_load_from_data (parser, recipe, -1, &local_error)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("This layer's recipe cannot be read: %s"),
                   local_error ? local_error->message : _("it is not a JSON object"));
      return FALSE;
    }
  apply_json_object (config, json_node_get_object (root));
  return TRUE;
}

/* Key files, with or without the [recipe] group line (plain key=value lines). */
static gboolean
apply_key_file (GObject *config, const gchar *recipe, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GError) local_error = NULL;
  g_autofree gchar *text = NULL;
  g_auto (GStrv) keys = NULL;
  const gchar *p = recipe;

  while (g_ascii_isspace (*p))
    p++;
  text = *p == '[' ? g_strdup (recipe) : g_strconcat ("[" GROUP "]\n", recipe, NULL);
  if (!g_key_file_load_from_data (file, text, strlen (text), G_KEY_FILE_NONE, &local_error)
      || !g_key_file_has_group (file, GROUP))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("This layer's recipe cannot be read: %s"),
                   local_error ? local_error->message : _("it has no [recipe] group"));
      return FALSE;
    }
  keys = g_key_file_get_keys (file, GROUP, NULL, NULL);
  for (gchar **k = keys; k != NULL && *k != NULL; k++)
    {
      g_autofree gchar *value = g_key_file_get_string (file, GROUP, *k, NULL);

      apply_entry (config, *k, value);
    }
  return TRUE;
}

gboolean
gesso_recipe_apply (GimpProcedureConfig *config, const gchar *recipe, GError **error)
{
  g_return_val_if_fail (GIMP_IS_PROCEDURE_CONFIG (config), FALSE);
  return gesso_recipe_apply_to_object (G_OBJECT (config), recipe, error);
}

gboolean
gesso_recipe_apply_to_object (GObject *config, const gchar *recipe, GError **error)
{
  const gchar *p = recipe;
  gboolean ok;

  g_return_val_if_fail (G_IS_OBJECT (config), FALSE);
  g_return_val_if_fail (recipe != NULL, FALSE);

  while (g_ascii_isspace (*p))
    p++;
  g_object_freeze_notify (config);
  ok = *p == '{' ? apply_json (config, recipe, error) : apply_key_file (config, recipe, error);
  if (ok && g_object_class_find_property (G_OBJECT_GET_CLASS (config), "random-seed") != NULL)
    g_object_set (config, "random-seed", FALSE, NULL);
  g_object_thaw_notify (config);
  return ok;
}

gboolean
gesso_recipe_get_kind (const gchar *recipe, GessoEditKind *kind)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autofree gchar *method = NULL;

  g_return_val_if_fail (kind != NULL, FALSE);
  if (recipe == NULL
      || !g_key_file_load_from_data (file, recipe, (gsize) -1, G_KEY_FILE_NONE, NULL)
      || (method = g_key_file_get_string (file, GROUP, "method", NULL)) == NULL)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (method_keys); i++)
    if (g_strcmp0 (method, method_keys[i]) == 0)
      {
        *kind = (GessoEditKind) i;
        return TRUE;
      }
  return FALSE;
}

gchar *
gesso_recipe_filter_new (const gchar *recipe, const gchar *const *keep)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_auto (GStrv) keys = NULL;

  g_return_val_if_fail (keep != NULL, NULL);
  if (recipe == NULL
      || !g_key_file_load_from_data (file, recipe, (gsize) -1, G_KEY_FILE_NONE, NULL)
      || (keys = g_key_file_get_keys (file, GROUP, NULL, NULL)) == NULL)
    return NULL;
  for (gchar **k = keys; *k != NULL; k++)
    if (strcmp (*k, "method") != 0 && !g_strv_contains (keep, *k))
      g_key_file_remove_key (file, GROUP, *k, NULL);
  return g_key_file_to_data (file, NULL, NULL);
}

gchar *
gesso_recipe_get_from_drawable (GimpDrawable *drawable)
{
  GimpParasite *parasite;
  const gchar *data;
  guint32 size = 0;
  gchar *text = NULL;

  if (drawable == NULL)
    return NULL;
  g_return_val_if_fail (GIMP_IS_DRAWABLE (drawable), NULL);

  parasite = gimp_item_get_parasite (GIMP_ITEM (drawable), GESSO_RECIPE_PARASITE);
  if (parasite == NULL)
    return NULL;
  data = gimp_parasite_get_data (parasite, &size);
  if (data != NULL && size > 0)
    {
      /* the text may or may not carry its terminating NUL */
      text = g_strndup (data, size);
      if (!g_utf8_validate (text, -1, NULL))
        g_clear_pointer (&text, g_free);
    }
  gimp_parasite_free (parasite);
  return text;
}

gboolean
gesso_recipe_attach (GimpDrawable *drawable, const gchar *recipe, GError **error)
{
  GimpParasite *parasite;
  gboolean ok;

  g_return_val_if_fail (GIMP_IS_DRAWABLE (drawable), FALSE);
  g_return_val_if_fail (recipe != NULL, FALSE);

  parasite = gimp_parasite_new (GESSO_RECIPE_PARASITE,
                                GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE,
                                (guint32) strlen (recipe) + 1, recipe);
  ok = gimp_item_attach_parasite (GIMP_ITEM (drawable), parasite);
  gimp_parasite_free (parasite);
  if (!ok)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                 _("The recipe could not be attached to the layer: %s"),
                 gimp_pdb_get_last_error (gimp_get_pdb ()));
  return ok;
}
