/* Gesso: reading and writing config properties whose exact type the dialog does not fix.
 *
 * The plug-in declares the procedure arguments; the dialog only knows their names. These
 * helpers let it read "steps" whether it is an int or a uint, and skip properties a
 * procedure does not have.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include "gesso-dialog.h"
#include "gesso-ui-private.h"

static GParamSpec *
find (GimpProcedureConfig *config, const gchar *property)
{
  return g_object_class_find_property (G_OBJECT_GET_CLASS (config), property);
}

gboolean
gesso_ui_config_has (GimpProcedureConfig *config, const gchar *property)
{
  return find (config, property) != NULL;
}

gdouble
gesso_ui_config_get_number (GimpProcedureConfig *config, const gchar *property,
                            gdouble fallback)
{
  GParamSpec *pspec = find (config, property);
  g_auto (GValue) value = G_VALUE_INIT;
  g_auto (GValue) number = G_VALUE_INIT;

  if (pspec == NULL)
    return fallback;
  g_value_init (&value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  g_object_get_property (G_OBJECT (config), property, &value);
  if (G_VALUE_HOLDS_BOOLEAN (&value))
    return g_value_get_boolean (&value) ? 1.0 : 0.0;
  g_value_init (&number, G_TYPE_DOUBLE);
  if (!g_value_type_transformable (G_VALUE_TYPE (&value), G_TYPE_DOUBLE)
      || !g_value_transform (&value, &number))
    return fallback;
  return g_value_get_double (&number);
}

void
gesso_ui_config_set_number (GimpProcedureConfig *config, const gchar *property, gdouble v)
{
  GParamSpec *pspec = find (config, property);
  GType type;
  g_auto (GValue) value = G_VALUE_INIT;

  if (pspec == NULL || !isfinite (v))
    return;
  type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  g_value_init (&value, type);
  if (type == G_TYPE_INT)
    g_value_set_int (&value, (gint) CLAMP (round (v), G_MININT, G_MAXINT));
  else if (type == G_TYPE_UINT)
    g_value_set_uint (&value, (guint) CLAMP (round (v), 0, G_MAXUINT));
  else if (type == G_TYPE_INT64)
    g_value_set_int64 (&value, (gint64) round (v));
  else if (type == G_TYPE_UINT64)
    g_value_set_uint64 (&value, (guint64) MAX (round (v), 0));
  else if (type == G_TYPE_DOUBLE)
    g_value_set_double (&value, v);
  else if (type == G_TYPE_FLOAT)
    g_value_set_float (&value, (gfloat) v);
  else if (type == G_TYPE_BOOLEAN)
    g_value_set_boolean (&value, v != 0.0);
  else
    return;
  g_param_value_validate (pspec, &value);
  g_object_set_property (G_OBJECT (config), property, &value);
}

gchar *
gesso_ui_config_get_string (GimpProcedureConfig *config, const gchar *property)
{
  GParamSpec *pspec = find (config, property);
  gchar *s = NULL;

  if (pspec == NULL || G_PARAM_SPEC_VALUE_TYPE (pspec) != G_TYPE_STRING)
    return NULL;
  g_object_get (config, property, &s, NULL);
  return s != NULL ? s : g_strdup ("");
}

gchar *
gesso_ui_sampler_engine_name (const gchar *nick)
{
  /* the procedures spell the engine's '_' as '-', the way GIMP's own choice nicks (and all
   * argument names) are written */
  if (nick == NULL || nick[0] == '\0' || strcmp (nick, "auto") == 0)
    return NULL;
  return g_strdelimit (g_strdup (nick), "-", '_');
}
