/* A1111's <lora:NAME:WEIGHT> prompt tags (see gesso.h).
 *
 * The tags are taken out before the prompt is tokenised: left in, they would be read as
 * words. NAME is a file stem in the user's LoRA folders, as AUTOMATIC1111 and Forge resolve it
 * (a relative path "style/ink" works too, and a stem is also found in a sub-folder).
 */
#include <glib/gi18n-lib.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* DIR/NAME.safetensors, or the first file under DIR (sorted, depth first) whose stem is NAME;
 * NULL when there is none. DEPTH bounds the walk: a folder of links to itself must end. */
static char *
find_in_dir (const char *dir, const char *name, int depth)
{
  g_autofree char *direct = g_strconcat (dir, G_DIR_SEPARATOR_S, name, ".safetensors", NULL);
  g_autoptr (GDir) d = NULL;
  g_autoptr (GPtrArray) entries = NULL;
  const char *entry;

  if (g_file_test (direct, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&direct);
  if (depth == 0 || strchr (name, '/') != NULL || (d = g_dir_open (dir, 0, NULL)) == NULL)
    return NULL;
  entries = g_ptr_array_new_with_free_func (g_free);
  while ((entry = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (entries, g_strdup (entry));
  g_ptr_array_sort (entries, compare_names);
  for (guint i = 0; i < entries->len; i++)
    {
      g_autofree char *sub = g_build_filename (dir, entries->pdata[i], NULL);
      char *found;

      if (g_file_test (sub, G_FILE_TEST_IS_DIR) && (found = find_in_dir (sub, name, depth - 1)))
        return found;
    }
  return NULL;
}

static char *
find_lora (const char *const *dirs, const char *name, GError **error)
{
  g_autoptr (GString) searched = g_string_new (NULL);

  for (int i = 0; dirs != NULL && dirs[i] != NULL; i++)
    {
      char *found = find_in_dir (dirs[i], name, 8);
      if (found != NULL)
        return found;
      g_string_append_printf (searched, "%s'%s'", i ? ", " : "", dirs[i]);
    }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               searched->len ? _("the prompt asks for <lora:%s>, but no %s.safetensors is in %s")
                             : _("the prompt asks for <lora:%s>, but there is no LoRA folder to "
                                 "look for %s.safetensors in (--lora-dir, or a Lora/ or loras/ "
                                 "folder among the model folders)"),
               name, name, searched->str);
  return NULL;
}

/* "NAME" or "NAME:WEIGHT" (A1111 also allows NAME:TE:UNET; one weight for both here). */
static gboolean
parse_tag (const char *body, char **name, float *weight, GError **error)
{
  const char *colon = strchr (body, ':');
  char *end = NULL;
  double w = 1.0;

  *name = g_strstrip (g_strndup (body, colon ? (gsize) (colon - body) : strlen (body)));
  if (colon != NULL)
    {
      w = g_ascii_strtod (colon + 1, &end);
      while (end != NULL && g_ascii_isspace (*end))
        end++;
      if (end == colon + 1 || end == NULL || *end != '\0' || !(w > -100.0 && w < 100.0))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       _("the prompt's tag <lora:%s> has no weight Gesso can read after the "
                         "name: write <lora:NAME> or <lora:NAME:0.8>"), body);
          g_clear_pointer (name, g_free);
          return FALSE;
        }
    }
  if (**name == '\0')
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the prompt's tag <lora:%s> names no LoRA"), body);
      g_clear_pointer (name, g_free);
      return FALSE;
    }
  *weight = (float) w;
  return TRUE;
}

char *
gesso_prompt_take_loras (const char *prompt, const char *const *dirs, GArray *uses,
                         GPtrArray *paths, GError **error)
{
  g_autoptr (GString) clean = g_string_new (NULL);
  const char *p = prompt != NULL ? prompt : "";
  guint taken = 0;

  g_return_val_if_fail (uses != NULL && paths != NULL, NULL);
  for (;;)
    {
      const char *tag = strstr (p, "<lora:");
      const char *close = tag ? strchr (tag, '>') : NULL;
      g_autofree char *body = NULL, *name = NULL;
      GessoLoraUse use;
      char *path;

      if (tag == NULL || close == NULL)
        break;
      g_string_append_len (clean, p, tag - p);
      body = g_strndup (tag + strlen ("<lora:"), close - tag - strlen ("<lora:"));
      if (!parse_tag (body, &name, &use.weight, error)
          || (path = find_lora (dirs, name, error)) == NULL)
        return NULL;
      g_ptr_array_add (paths, path);
      use.path = path;
      g_array_append_val (uses, use);
      taken++;
      p = close + 1;
    }
  g_string_append (clean, p);
  if (taken == 0)
    return g_string_free (g_steal_pointer (&clean), FALSE);
  /* "a cat, <lora:x:1> in ink" -> "a cat, in ink": no doubled spaces where a tag was (CLIP's
   * tokenizer reads any run of whitespace as one space anyway) */
  {
    g_auto (GStrv) words = g_strsplit_set (clean->str, " \t\n", -1);
    g_autoptr (GString) joined = g_string_new (NULL);

    for (int i = 0; words[i] != NULL; i++)
      if (*words[i] != '\0')
        g_string_append_printf (joined, "%s%s", joined->len ? " " : "", words[i]);
    return g_string_free (g_steal_pointer (&joined), FALSE);
  }
}
