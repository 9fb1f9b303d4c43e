/* A1111's "parameters" text (see parameters.h). */
#include "gesso-config.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

#include "cli/parameters.h"

const char *
gesso_cli_parameters_sampler_name (const char *engine_name)
{
  static const char *const names[][2] = {
    { "ddim", "DDIM" },
    { "euler", "Euler" },
    { "euler_a", "Euler a" },
    { "euler_karras", "Euler Karras" },
    { "euler_a_karras", "Euler a Karras" },
    { "dpmpp_2m", "DPM++ 2M" },
    { "dpmpp_2m_karras", "DPM++ 2M Karras" },
    { "lms", "LMS" },
    { "lms_karras", "LMS Karras" },
    { "ddpm", "DDPM" },
    { "lcm", "LCM" },
    { "repaint", "RePaint" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_strcmp0 (engine_name, names[i][0]) == 0)
      return names[i][1];
  return engine_name;
}

/* A1111 writes a value holding ',' ':' or '"' quoted, so that the line still splits. */
static void
append_value (GString *text, const char *key, const char *value)
{
  g_string_append_printf (text, "%s%s: ", text->len > 0 ? ", " : "", key);
  if (strpbrk (value, ",:\"\n") == NULL)
    {
      g_string_append (text, value);
      return;
    }
  g_string_append_c (text, '"');
  for (const char *c = value; *c != '\0'; c++)
    {
      if (*c == '"' || *c == '\\')
        g_string_append_c (text, '\\');
      g_string_append_c (text, *c == '\n' ? ' ' : *c);
    }
  g_string_append_c (text, '"');
}

/* "sd15" of ".../sd15.safetensors"; a folder's own name. */
static char *
model_stem (const char *path)
{
  g_autofree char *trimmed = g_strdup (path);
  g_autofree char *base = NULL;
  char *dot;

  while (strlen (trimmed) > 1 && g_str_has_suffix (trimmed, G_DIR_SEPARATOR_S))
    trimmed[strlen (trimmed) - 1] = '\0';
  base = g_path_get_basename (trimmed);
  dot = strrchr (base, '.');
  if (dot != NULL && dot != base && g_file_test (path, G_FILE_TEST_IS_REGULAR))
    *dot = '\0';
  return g_steal_pointer (&base);
}

char *
gesso_cli_parameters_format (const GessoEditParams *p, GessoModel *model, int width,
                             int height, const char *model_path, const char *autov2,
                             const char *vae_path, const char *vae_autov2)
{
  g_autoptr (GString) settings = g_string_new (NULL);
  g_autofree char *steps = g_strdup_printf ("%d", p->steps);
  g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, p->seed);
  g_autofree char *size = g_strdup_printf ("%dx%d", width, height);
  g_autofree char *stem = model_stem (model_path);
  g_autofree char *version = g_strdup_printf ("gesso %s", gesso_version ());
  char number[G_ASCII_DTOSTR_BUF_SIZE];
  GString *text = g_string_new (p->prompt != NULL ? p->prompt : "");

  if (p->negative_prompt != NULL && p->negative_prompt[0] != '\0')
    g_string_append_printf (text, "\nNegative prompt: %s", p->negative_prompt);

  append_value (settings, "Steps", steps);
  append_value (settings, "Sampler",
                gesso_cli_parameters_sampler_name (gesso_edit_sampler_name (model, p)));
  /* "%g" in the C locale: 7.5 and 7, as A1111 writes them */
  append_value (settings, "CFG scale", g_ascii_formatd (number, sizeof number, "%g",
                                                        p->guidance));
  append_value (settings, "Seed", seed);
  append_value (settings, "Size", size);
  if (autov2 != NULL)
    append_value (settings, "Model hash", autov2);
  append_value (settings, "Model", stem);
  if (vae_path != NULL)
    {
      g_autofree char *vae = g_path_get_basename (vae_path);

      if (vae_autov2 != NULL)
        append_value (settings, "VAE hash", vae_autov2);
      append_value (settings, "VAE", vae);
    }
  if (p->kind != GESSO_EDIT_GENERATE)
    append_value (settings, "Denoising strength",
                  g_ascii_formatd (number, sizeof number, "%g", p->strength));
  /* Gesso counts skipped layers (1 = penultimate); A1111 counts the layer used (2) */
  if (p->clip_skip > 0)
    {
      g_autofree char *skip = g_strdup_printf ("%d", p->clip_skip + 1);
      append_value (settings, "Clip skip", skip);
    }
  /* as sd-webui-controlnet writes its units: one quoted "Key: value, ..." list each */
  for (int j = 0; j < p->n_controls; j++)
    {
      const GessoControl *c = &p->controls[j];
      g_autofree char *key = g_strdup_printf ("ControlNet %d", j);
      g_autofree char *cn_stem = model_stem (c->model);
      g_autofree char *unit = NULL;
      char weight[G_ASCII_DTOSTR_BUF_SIZE], start[G_ASCII_DTOSTR_BUF_SIZE];
      char end[G_ASCII_DTOSTR_BUF_SIZE];

      unit = g_strdup_printf ("Module: %s, Model: %s, Weight: %s, Guidance Start: %s, "
                              "Guidance End: %s", gesso_control_preprocess_name (c->preprocess),
                              cn_stem, g_ascii_formatd (weight, sizeof weight, "%g", c->scale),
                              g_ascii_formatd (start, sizeof start, "%g", p->control_start),
                              g_ascii_formatd (end, sizeof end, "%g", p->control_end));
      append_value (settings, key, unit);
    }
  append_value (settings, "Version", version);
  g_string_append_printf (text, "\n%s", settings->str);
  return g_string_free (text, FALSE);
}

gboolean
gesso_cli_parameters_read (const char *path, char **text, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new_from_file (path, &local);
  const char *value;

  *text = NULL;
  if (pixbuf == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot read image '%s': %s", path,
                   local->message);
      return FALSE;
    }
  /* gdk-pixbuf hands PNG text chunks (tEXt, zTXt, iTXt) over as UTF-8 options */
  value = gdk_pixbuf_get_option (pixbuf, "tEXt::parameters");
  *text = g_strdup (value);
  return TRUE;
}
