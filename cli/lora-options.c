/* --lora FILE[:WEIGHT] and --lora-dir DIR; see lora-options.h. */
#include "gesso-config.h"

#include "cli/lora-options.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

/* FILE:WEIGHT when what follows the last ':' is a number, else FILE alone with weight 1 (a
 * path may hold ':' itself). */
static gboolean
parse_spec (const char *spec, GessoCliLoras *loras, GError **error)
{
  const char *colon = strrchr (spec, ':');
  GessoLoraUse use = { .weight = 1.0f };
  char *end = NULL;
  char *path;

  if (colon != NULL)
    {
      double w = g_ascii_strtod (colon + 1, &end);

      if (end != colon + 1 && *end == '\0')
        {
          if (!isfinite (w))
            {
              g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                           _("--lora '%s': the weight must be a number such as 0.8"), spec);
              return FALSE;
            }
          use.weight = (float) w;
        }
      else
        colon = NULL;
    }
  path = colon != NULL ? g_strndup (spec, (gsize) (colon - spec)) : g_strdup (spec);
  if (*path == '\0')
    {
      g_free (path);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("--lora '%s': give FILE or FILE:WEIGHT"), spec);
      return FALSE;
    }
  g_ptr_array_add (loras->paths, path);
  use.path = path;
  g_array_append_val (loras->uses, use);
  return TRUE;
}

gboolean
gesso_cli_loras_collect (char **specs, char **dirs, const char *prompt, GessoCliLoras *loras,
                         GError **error)
{
  loras->uses = g_array_new (FALSE, FALSE, sizeof (GessoLoraUse));
  loras->paths = g_ptr_array_new_with_free_func (g_free);
  for (int i = 0; specs != NULL && specs[i] != NULL; i++)
    if (!parse_spec (specs[i], loras, error))
      return FALSE;
  loras->prompt = gesso_prompt_take_loras (prompt, (const char *const *) dirs, loras->uses,
                                           loras->paths, error);
  if (loras->prompt == NULL)
    return FALSE;
  if (loras->uses->len > GESSO_MAX_LORAS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("%u LoRAs given; at most %d can be used together"), loras->uses->len,
                   GESSO_MAX_LORAS);
      return FALSE;
    }
  return TRUE;
}

void
gesso_cli_loras_clear (GessoCliLoras *loras)
{
  g_clear_pointer (&loras->uses, g_array_unref);
  g_clear_pointer (&loras->paths, g_ptr_array_unref);
  g_clear_pointer (&loras->prompt, g_free);
}
