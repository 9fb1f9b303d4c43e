/* ComfyUI's extra_model_paths.yaml (see comfy_paths.h). */
#include "io/comfy_paths.h"

#include <string.h>

#include <yaml.h>

#include "io/io-private.h"
#include <glib/gi18n-lib.h>

/* ComfyUI's own example files are a few KB; a bigger one is not such a file. */
#define MAX_BYTES (1024 * 1024)

typedef struct
{
  char *base_path;
  GPtrArray *pairs;             /* key, value, key, value, ... (owned) */
} Section;

static void
section_clear (Section *s)
{
  g_clear_pointer (&s->base_path, g_free);
  if (s->pairs != NULL)
    g_ptr_array_set_size (s->pairs, 0);
}

/* ComfyUI: os.path.expandvars (os.path.expanduser (base_path)), relative ones joined to the
 * .yaml's folder. Variables are not expanded here: a path is a path. */
static char *
resolve_base (const char *base, const char *yaml_dir, const char *home)
{
  if (base == NULL || base[0] == '\0')
    return g_strdup (yaml_dir);
  if (base[0] == '~' && (base[1] == '/' || base[1] == '\0'))
    return g_build_filename (home, base + 1, NULL);
  if (g_path_is_absolute (base))
    return g_strdup (base);
  return g_build_filename (yaml_dir, base, NULL);
}

static void
section_emit (Section *s, const char *yaml_dir, const char *home, GessoComfyPathFunc func,
              gpointer user_data)
{
  g_autofree char *base = resolve_base (s->base_path, yaml_dir, home);

  for (guint i = 0; i + 1 < s->pairs->len; i += 2)
    {
      g_auto (GStrv) lines = g_strsplit (s->pairs->pdata[i + 1], "\n", -1);

      /* a value names one folder a line ("loras: |" blocks) */
      for (char **line = lines; *line != NULL; line++)
        {
          g_autofree char *dir = g_strstrip (g_strdup (*line));
          g_autofree char *full = NULL;

          if (dir[0] == '\0')
            continue;
          if (dir[0] == '~' && (dir[1] == '/' || dir[1] == '\0'))
            full = g_build_filename (home, dir + 1, NULL);
          else
            full = g_path_is_absolute (dir) ? g_strdup (dir) : g_build_filename (base, dir, NULL);
          func (s->pairs->pdata[i], full, user_data);
        }
    }
}

gboolean
gesso_comfy_paths_read (const char *path, const char *home, GessoComfyPathFunc func,
                        gpointer user_data, GError **error)
{
  g_autofree char *data = NULL;
  size_t length = 0;

  g_return_val_if_fail (path != NULL && home != NULL && func != NULL, FALSE);
  data = gesso_io_read_file (path, MAX_BYTES, &length, error);
  if (data == NULL)
    return FALSE;
  return gesso_comfy_paths_read_from_data (data, length, path, home, func, user_data, error);
}

gboolean
gesso_comfy_paths_read_from_data (const char *data, size_t length, const char *path,
                                  const char *home, GessoComfyPathFunc func, gpointer user_data,
                                  GError **error)
{
  g_autofree char *shown = NULL;
  g_autofree char *yaml_dir = NULL;
  g_autofree char *key = NULL;
  Section section = { NULL, NULL };
  yaml_parser_t parser;
  yaml_event_t event;
  int depth = 0;                /* mappings open: 1 the file's, 2 a section's */
  int skipped = 0;              /* nodes open below what is read */
  gboolean ok = TRUE, done = FALSE;

  g_return_val_if_fail (data != NULL && path != NULL && home != NULL && func != NULL, FALSE);
  section.pairs = g_ptr_array_new_with_free_func (g_free);
  shown = gesso_io_display (path);
  yaml_dir = g_path_get_dirname (path);
  if (!yaml_parser_initialize (&parser))
    {
      g_ptr_array_unref (section.pairs);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY, _("cannot start a YAML parser"));
      return FALSE;
    }
  yaml_parser_set_input_string (&parser, (const unsigned char *) data, length);
  while (ok && !done)
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
      if (skipped > 0)
        {
          if (event.type == YAML_MAPPING_START_EVENT || event.type == YAML_SEQUENCE_START_EVENT)
            skipped++;
          else if (event.type == YAML_MAPPING_END_EVENT
                   || event.type == YAML_SEQUENCE_END_EVENT)
            skipped--;
          yaml_event_delete (&event);
          continue;
        }
      switch (event.type)
        {
        case YAML_MAPPING_START_EVENT:
          if (depth == 0 || (depth == 1 && key != NULL))
            {
              depth++;
              g_clear_pointer (&key, g_free);
            }
          else
            {
              /* a mapping where a folder name should be: not ours to read */
              skipped = 1;
              g_clear_pointer (&key, g_free);
            }
          break;
        case YAML_SEQUENCE_START_EVENT:
          skipped = 1;
          g_clear_pointer (&key, g_free);
          break;
        case YAML_MAPPING_END_EVENT:
          if (depth == 2)
            {
              section_emit (&section, yaml_dir, home, func, user_data);
              section_clear (&section);
            }
          depth--;
          break;
        case YAML_SCALAR_EVENT:
          {
            const char *text = (const char *) event.data.scalar.value;

            if (key == NULL)
              key = g_strdup (text);
            else
              {
                if (depth == 2 && strcmp (key, "base_path") == 0)
                  {
                    g_free (section.base_path);
                    section.base_path = g_strdup (text);
                  }
                else if (depth == 2)
                  {
                    g_ptr_array_add (section.pairs, g_steal_pointer (&key));
                    g_ptr_array_add (section.pairs, g_strdup (text));
                  }
                g_clear_pointer (&key, g_free);
              }
          }
          break;
        case YAML_ALIAS_EVENT:
          g_clear_pointer (&key, g_free);
          break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
          done = TRUE;
          break;
        default:
          break;
        }
      yaml_event_delete (&event);
    }
  yaml_parser_delete (&parser);
  section_clear (&section);
  g_ptr_array_unref (section.pairs);
  return ok;
}
