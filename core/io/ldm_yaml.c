/* LDM .yaml configs; see ldm_yaml.h.
 *
 * libyaml's event stream is walked with a stack of the mappings and sequences open at each
 * moment; a scalar is the one wanted when every open collection is a mapping and their keys,
 * from the root, spell the key path. Anchors and aliases need no resolving: an alias stands
 * where a value would, and the parameterization is never one in practice.
 */
#include "gesso-config.h"

#include "io/ldm_yaml.h"

#include <string.h>
#include <yaml.h>

#include "gesso.h"
#include "io/io-private.h"
#include <glib/gi18n-lib.h>

/* Deeper than any config; deeper documents are refused rather than recursed into. */
#define MAX_DEPTH 64

typedef struct
{
  gboolean mapping;
  gboolean want_key;            /* mapping: the next scalar or collection is a key */
  char *key;                    /* mapping: the key whose value comes next, or NULL */
  gboolean is_key;              /* this collection is its parent mapping's key, not a value */
} Level;

typedef struct
{
  Level levels[MAX_DEPTH];
  int depth;
  const char *const *key_path;
  guint path_length;
  char *found;
} Walk;

/* Whether a value arriving now sits at the key path. */
static gboolean
at_key_path (const Walk *w)
{
  if ((guint) w->depth != w->path_length)
    return FALSE;
  for (int i = 0; i < w->depth; i++)
    if (!w->levels[i].mapping || w->levels[i].key == NULL
        || strcmp (w->levels[i].key, w->key_path[i]) != 0)
      return FALSE;
  return TRUE;
}

/* A value (scalar, alias or a whole collection) has ended in the innermost collection. */
static void
value_done (Walk *w)
{
  Level *top;

  if (w->depth == 0)
    return;
  top = &w->levels[w->depth - 1];
  if (top->mapping)
    {
      top->want_key = TRUE;
      g_clear_pointer (&top->key, g_free);
    }
}

static void
on_scalar (Walk *w, const char *value)
{
  Level *top = w->depth > 0 ? &w->levels[w->depth - 1] : NULL;

  if (top != NULL && top->mapping && top->want_key)
    {
      top->key = g_strdup (value);
      top->want_key = FALSE;
      return;
    }
  if (w->found == NULL && at_key_path (w))
    w->found = g_strdup (value);
  value_done (w);
}

static gboolean
push (Walk *w, gboolean mapping)
{
  Level *top = w->depth > 0 ? &w->levels[w->depth - 1] : NULL;
  gboolean is_key = top != NULL && top->mapping && top->want_key;

  if (w->depth == MAX_DEPTH)
    return FALSE;
  /* a collection used as a mapping key (YAML allows it) is never part of a key path */
  if (is_key)
    {
      top->key = g_strdup ("");
      top->want_key = FALSE;
    }
  w->levels[w->depth++] = (Level) { .mapping = mapping, .want_key = mapping, .is_key = is_key };
  return TRUE;
}

static void
pop (Walk *w)
{
  Level *closed;

  if (w->depth == 0)
    return;
  closed = &w->levels[--w->depth];
  g_clear_pointer (&closed->key, g_free);
  /* after a key, its parent mapping waits for the value */
  if (!closed->is_key)
    value_done (w);
}

static void
walk_clear (Walk *w)
{
  while (w->depth > 0)
    g_clear_pointer (&w->levels[--w->depth].key, g_free);
}

gboolean
gesso_ldm_yaml_get_scalar_from_data (const char *data, gsize length, const char *name,
                                     const char *const *key_path, char **out, GError **error)
{
  g_autofree char *shown = NULL;
  yaml_parser_t parser;
  yaml_event_t event;
  Walk w = { .key_path = key_path, .path_length = g_strv_length ((char **) key_path) };
  gboolean done = FALSE, ok = TRUE;

  g_return_val_if_fail (data != NULL && name != NULL && key_path != NULL && out != NULL, FALSE);
  *out = NULL;
  shown = gesso_io_display (name);
  if (!yaml_parser_initialize (&parser))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY, _("cannot start a YAML parser"));
      return FALSE;
    }
  yaml_parser_set_input_string (&parser, (const unsigned char *) data, length);
  while (!done && ok)
    {
      if (!yaml_parser_parse (&parser, &event))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       _("%s is not valid YAML: %s at line %zu; fix or remove the file"), shown,
                       parser.problem ? parser.problem : "unreadable",
                       parser.problem_mark.line + 1);
          ok = FALSE;
          break;
        }
      switch (event.type)
        {
        case YAML_SCALAR_EVENT:
          on_scalar (&w, (const char *) event.data.scalar.value);
          break;
        case YAML_ALIAS_EVENT:
          on_scalar (&w, "");
          break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
          if (!push (&w, event.type == YAML_MAPPING_START_EVENT))
            {
              g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                           _("%s nests deeper than %d levels; it is not an LDM model config"),
                           shown, MAX_DEPTH);
              ok = FALSE;
            }
          break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
          pop (&w);
          break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
          /* a config is one document; later ones are not read */
          done = TRUE;
          break;
        default:
          break;
        }
      yaml_event_delete (&event);
    }
  yaml_parser_delete (&parser);
  walk_clear (&w);
  if (!ok)
    {
      g_free (w.found);
      return FALSE;
    }
  *out = w.found;
  return TRUE;
}

gboolean
gesso_ldm_yaml_get_scalar (const char *path, const char *const *key_path, char **out,
                           GError **error)
{
  g_autofree char *data = NULL;
  size_t length = 0;

  g_return_val_if_fail (path != NULL && out != NULL, FALSE);
  *out = NULL;
  data = gesso_io_read_file (path, GESSO_LDM_YAML_MAX_BYTES, &length, error);
  if (data == NULL)
    return FALSE;
  return gesso_ldm_yaml_get_scalar_from_data (data, length, path, key_path, out, error);
}
