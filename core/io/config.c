/* JSON configuration files through typed getters.
 *
 * Configs come from model folders users download, so every value is checked for type and
 * range before anyone uses it, and each message names the file and the key. A missing key
 * (or a JSON null, which diffusers writes for "unset") is GESSO_ERROR_MISSING, a wrong type
 * GESSO_ERROR_CORRUPT, a value out of range GESSO_ERROR_UNSUPPORTED.
 */
#include "io/config.h"

#include <math.h>
#include <string.h>

#include "gesso.h"
#include "io/io-private.h"
#include <glib/gi18n-lib.h>

/* Configs are a few KB; vocab.json, the biggest JSON a model folder holds, is about 1 MB.
 * Anything far beyond that is not a config and is not read into memory. */
#define CONFIG_MAX_SIZE (64u * 1024u * 1024u)

JsonObject *
gesso_config_load_from_data (const char *data, gssize length, const char *name,
                             GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autofree char *shown = gesso_io_display (name);
  g_autofree char *python = NULL;
  size_t size;
  JsonNode *root;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  size = length < 0 ? strlen (data) : (size_t) length;
  if (!gesso_io_json_depth_ok (data, size))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("%s: JSON nested more than %d levels deep; the file is corrupt"), shown,
                   GESSO_JSON_MAX_DEPTH);
      return NULL;
    }
  python = gesso_io_json_from_python (data, size, &size);
  if (python != NULL)
    data = python;
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, size ? data : "", (gssize) size, &local_error))
    {
      /* json-glib quotes the offending token, which may hold a newline */
      g_autofree char *reason = gesso_io_display (local_error->message);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, _("%s: not valid JSON: %s"), shown,
                   reason);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("%s: the file is empty; a JSON object { ... } was expected"), shown);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("%s: the top level must be a JSON object { ... }"), shown);
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

JsonObject *
gesso_config_load (const char *path, GError **error)
{
  g_autofree char *contents = NULL;
  size_t length;

  contents = gesso_io_read_file (path, CONFIG_MAX_SIZE, &length, error);
  if (contents == NULL)
    return NULL;
  return gesso_config_load_from_data (contents, (gssize) length, path, error);
}

/* Sets "<name>: '<key>'<message>". Both are shown printable: callers may pass keys they
 * read from the file itself. */
static void G_GNUC_PRINTF (5, 6)
set_key_error (GError **error, int code, const char *name, const char *key, const char *format,
               ...)
{
  g_autofree char *shown_name = gesso_io_display (name);
  g_autofree char *shown_key = gesso_io_display (key);
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, GESSO_ERROR, code, _("%s: '%s'%s"), shown_name, shown_key, message);
}

/* The member KEY, or NULL with GESSO_ERROR_MISSING when it is absent or null. */
static JsonNode *
lookup (JsonObject *config, const char *name, const char *key, GError **error)
{
  JsonNode *node = json_object_get_member (config, key);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      set_key_error (error, GESSO_ERROR_MISSING, name, key, _(" is %s"),
                     node == NULL ? "missing" : "null");
      return NULL;
    }
  return node;
}

static void
set_type_error (GError **error, const char *name, const char *key, const char *what)
{
  set_key_error (error, GESSO_ERROR_CORRUPT, name, key, _(" must be %s"), what);
}

/* An integer from NODE: JSON integers, and floats with an integral value ("2.0"), which
 * some writers emit for integer settings. */
static gboolean
node_int (JsonNode *node, gint64 *out)
{
  GType type;
  double d;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    {
      *out = json_node_get_int (node);
      return TRUE;
    }
  if (type != G_TYPE_DOUBLE)
    return FALSE;
  d = json_node_get_double (node);
  /* 2^63 is exactly representable; anything at or beyond it does not fit */
  if (!isfinite (d) || d != floor (d) || d < -0x1p63 || d >= 0x1p63)
    return FALSE;
  *out = (gint64) d;
  return TRUE;
}

gboolean
gesso_config_get_int (JsonObject *config, const char *name, const char *key, gint64 min,
                      gint64 max, gint64 *out, GError **error)
{
  JsonNode *node = lookup (config, name, key, error);
  gint64 value;

  if (node == NULL)
    return FALSE;
  if (!node_int (node, &value))
    {
      set_type_error (error, name, key, "an integer");
      return FALSE;
    }
  if (value < min || value > max)
    {
      set_key_error (error, GESSO_ERROR_UNSUPPORTED, name, key,
                     " is %" G_GINT64_FORMAT "; it must be between %" G_GINT64_FORMAT " and %"
                     G_GINT64_FORMAT, value, min, max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

gboolean
gesso_config_get_double (JsonObject *config, const char *name, const char *key, double min,
                         double max, double *out, GError **error)
{
  JsonNode *node = lookup (config, name, key, error);
  GType type;
  double value;

  if (node == NULL)
    return FALSE;
  type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (type != G_TYPE_DOUBLE && type != G_TYPE_INT64)
    {
      set_type_error (error, name, key, "a number");
      return FALSE;
    }
  value = json_node_get_double (node);   /* converts integers too */
  /* infinities pass when the range allows them (-Infinity means "no bound" in diffusers) */
  if (isnan (value) || value < min || value > max)
    {
      set_key_error (error, GESSO_ERROR_UNSUPPORTED, name, key,
                     _(" is %g; it must be between %g and %g"), value, min, max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

gboolean
gesso_config_get_bool (JsonObject *config, const char *name, const char *key, gboolean *out,
                       GError **error)
{
  JsonNode *node = lookup (config, name, key, error);

  if (node == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      set_type_error (error, name, key, "true or false");
      return FALSE;
    }
  *out = json_node_get_boolean (node);
  return TRUE;
}

gboolean
gesso_config_get_string (JsonObject *config, const char *name, const char *key,
                         const char **out, GError **error)
{
  JsonNode *node = lookup (config, name, key, error);

  if (node == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      set_type_error (error, name, key, "a string");
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

gboolean
gesso_config_get_int_array (JsonObject *config, const char *name, const char *key, gint64 min,
                            gint64 max, gint64 **out, guint *n_out, GError **error)
{
  JsonNode *node = lookup (config, name, key, error);
  g_autofree gint64 *values = NULL;
  JsonArray *array;
  guint n;

  if (node == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      set_type_error (error, name, key, "an array of integers");
      return FALSE;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  values = g_new (gint64, n > 0 ? n : 1);
  for (guint i = 0; i < n; i++)
    {
      if (!node_int (json_array_get_element (array, i), &values[i]))
        {
          set_type_error (error, name, key, "an array of integers");
          return FALSE;
        }
      if (values[i] < min || values[i] > max)
        {
          set_key_error (error, GESSO_ERROR_UNSUPPORTED, name, key,
                         "[%u] is %" G_GINT64_FORMAT "; it must be between %" G_GINT64_FORMAT
                         " and %" G_GINT64_FORMAT, i, values[i], min, max);
          return FALSE;
        }
    }
  *out = g_steal_pointer (&values);
  *n_out = n;
  return TRUE;
}
