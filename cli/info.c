/* `gesso info PATH...`: what a model file or folder holds, without loading it for inference.
 *
 * Everything printed comes from gesso_model_summary_new(), which validates every tensor
 * entry; so `gesso info` doubles as a check that a download is complete and safe to load.
 */
#include "gesso-config.h"

#include <glib.h>
#include <glib/gi18n.h>

#include "cli/commands.h"
#include "gesso.h"

/* 123456789 -> "123.5M": what people call model sizes (decimal units, like "860M"). */
static char *
format_count (guint64 n)
{
  static const char *const units[] = { "K", "M", "B", "T" };
  double value = (double) n;
  int unit = -1;

  if (n < 1000)
    return g_strdup_printf ("%" G_GUINT64_FORMAT, n);
  /* switch unit when the rounded figure would read 1000.0 */
  while (unit + 1 < (int) G_N_ELEMENTS (units) && value >= 999.95)
    {
      value /= 1000.0;
      unit++;
    }
  return g_strdup_printf ("%.1f%s", value, units[unit]);
}

static void
print_field (const char *label, const char *value)
{
  g_autofree char *with_colon = g_strdup_printf ("%s:", label);

  g_print ("%-14s%s\n", with_colon, value);
}

static char *
format_component (const GessoComponentSummary *c)
{
  g_autofree char *human = format_count (c->n_params);
  /* the count as text: xgettext cannot read a msgid built with G_GUINT64_FORMAT */
  g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, c->n_params);
  GString *text = g_string_new (NULL);
  gboolean first = TRUE;

  g_string_append_printf (text,
                          g_dngettext (GETTEXT_PACKAGE, "%u tensor", "%u tensors", c->n_tensors),
                          c->n_tensors);
  g_string_append (text, ", ");
  g_string_append_printf (text,
                          g_dngettext (GETTEXT_PACKAGE, "%s parameter (%s)", "%s parameters (%s)",
                                       (gulong) MIN (c->n_params, G_MAXULONG)),
                          count, human);
  for (int d = 0; d < GESSO_DTYPE_COUNT; d++)
    {
      if (c->n_tensors_by_dtype[d] == 0)
        continue;
      g_string_append_printf (text, "%s %s %u", first ? ";" : ",", gesso_dtype_name (d),
                              c->n_tensors_by_dtype[d]);
      first = FALSE;
    }
  return g_string_free (text, FALSE);
}

static void
print_summary (const GessoModelSummary *s)
{
  g_autofree char *files = NULL;
  g_autofree char *tensors = g_strdup_printf ("%u", s->n_tensors);
  g_autofree char *human = format_count (s->n_params);
  g_autofree char *params = g_strdup_printf ("%" G_GUINT64_FORMAT " (%s)", s->n_params, human);

  files = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u safetensors file",
                                        "%u safetensors files", s->n_files), s->n_files);
  print_field (_("path"), s->path);
  print_field (_("layout"), s->layout == GESSO_MODEL_LAYOUT_DIFFUSERS ? _("diffusers folder")
                                                                      : _("single file"));
  print_field (_("files"), files);
  print_field (_("architecture"), s->architecture);
  print_field (_("tensors"), tensors);
  print_field (_("parameters"), params);
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    {
      g_autofree char *line = format_component (&s->components[c]);
      /* component names are identifiers (as in the diffusers folders), not translated */
      print_field (gesso_component_name (c), line);
    }
}

int
gesso_cli_info (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new (_("PATH…"));
  int status = GESSO_CLI_EXIT_OK;

  g_option_context_set_summary (context,
                                _("Describe models: a .safetensors file or a diffusers folder "
                                  "each. Every tensor entry is validated; pickle checkpoints "
                                  "(.ckpt, .pt, .pth, .bin) are refused."));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  if (!gesso_cli_parse (context, "info", &argc, &argv))
    return GESSO_CLI_EXIT_USAGE;
  if (argc < 2)
    {
      gesso_cli_error (_("info needs a model: a .safetensors file or a diffusers folder"));
      return GESSO_CLI_EXIT_USAGE;
    }

  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GessoModelSummary) summary = gesso_model_summary_new (argv[i], &error);

      if (summary == NULL)
        {
          gesso_cli_error ("%s", error->message);
          status = GESSO_CLI_EXIT_FAILURE;
          continue;
        }
      if (i > 1)
        g_print ("\n");
      print_summary (summary);
    }
  return status;
}
