/* --control MODEL:IMAGE[:SCALE]; see control-options.h. */
#include "gesso-config.h"

#include "cli/control-options.h"

#include <glib/gi18n.h>
#include <string.h>

#include "cli/image-io.h"

/* SCALE when TEXT is a plain decimal number, the whole of it. */
static gboolean
parse_scale (const char *text, float *scale)
{
  char *end = NULL;
  double v;

  if (*text == '\0')
    return FALSE;
  v = g_ascii_strtod (text, &end);
  if (end == NULL || *end != '\0')
    return FALSE;
  *scale = (float) v;
  return TRUE;
}

static gboolean
parse_spec (const char *spec, GessoCliControls *c, GessoControlPreprocess preprocess,
            GError **error)
{
  const int j = c->n;
  g_autofree char *copy = g_strdup (spec);
  char *last = strrchr (copy, ':'), *image;
  float scale = 1.0f;

  if (j >= GESSO_MAX_CONTROLS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("at most %d --control options"), GESSO_MAX_CONTROLS);
      return FALSE;
    }
  /* MODEL:IMAGE:SCALE, MODEL:IMAGE or (inpaint) MODEL[:SCALE] */
  if (last != NULL && parse_scale (last + 1, &scale))
    *last = '\0';
  image = strchr (copy, ':');
  if (image != NULL)
    *image++ = '\0';
  if (*copy == '\0' || (image != NULL && *image == '\0')
      || (image == NULL && preprocess != GESSO_CONTROL_PREPROCESS_INPAINT))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("--control '%s': give MODEL:IMAGE[:SCALE], e.g. "
                     "control_v11p_sd15_scribble.safetensors:sketch.png:0.8"), spec);
      return FALSE;
    }
  c->models[j] = g_strdup (copy);
  c->image_paths[j] = g_strdup (image);
  c->controls[j].model = c->models[j];
  c->controls[j].scale = scale;
  c->controls[j].preprocess = preprocess;
  c->n = j + 1;
  return TRUE;
}

gboolean
gesso_cli_controls_parse (char **specs, const char *preprocess, GessoCliControls *c,
                          GError **error)
{
  GessoControlPreprocess how = GESSO_CONTROL_PREPROCESS_NONE;

  memset (c, 0, sizeof *c);
  if (preprocess != NULL && !gesso_control_preprocess_from_name (preprocess, &how))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("--control-preprocess '%s': give none, scribble, lineart, canny or "
                     "inpaint"), preprocess);
      return FALSE;
    }
  for (int i = 0; specs != NULL && specs[i] != NULL; i++)
    if (!parse_spec (specs[i], c, how, error))
      return FALSE;
  return TRUE;
}

gboolean
gesso_cli_controls_load (GessoCliControls *c, int width, int height, GError **error)
{
  for (int j = 0; j < c->n; j++)
    {
      GessoImage *image = &c->images[j];

      if (c->image_paths[j] == NULL)
        continue;
      if (!gesso_cli_image_load (c->image_paths[j], image, error))
        return FALSE;
      c->controls[j].image = image;
      if (width > 0 && height > 0 && (image->width != width || image->height != height))
        g_printerr (_("gesso: control image '%s' is %d x %d; it is stretched to the picture's "
                      "%d x %d\n"), c->image_paths[j], image->width, image->height, width,
                    height);
    }
  return TRUE;
}

void
gesso_cli_controls_clear (GessoCliControls *c)
{
  for (int j = 0; j < GESSO_MAX_CONTROLS; j++)
    {
      gesso_image_clear (&c->images[j]);
      g_free (c->models[j]);
      g_free (c->image_paths[j]);
    }
  memset (c, 0, sizeof *c);
}
