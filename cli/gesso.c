/* gesso: the engine from a terminal.
 *
 * `gesso COMMAND [OPTIONS] [ARGS]`: global options come before the command, the command's
 * own after it. Output a script may read goes to stdout; errors are one line each on stderr,
 * "gesso: <message>", and the exit status is 0 only when everything asked for was done.
 */
#include "gesso-config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "gesso.h"

typedef struct
{
  const char *name;
  const char *summary;        /* N_() marked, translated when shown */
  GessoCliCommandFunc run;
} Command;

/* One line per subcommand. */
static const Command commands[] = {
  { "info", N_("Describe a model: its files, components, tensors and parameters"),
    gesso_cli_info },
  { "models", N_("List the models found where A1111, ComfyUI and Gesso keep them"),
    gesso_cli_models },
  { "generate", N_("Make an image from a prompt"), gesso_cli_generate },
  { "inpaint", N_("Regenerate the masked part of an image"), gesso_cli_inpaint },
  { "sdedit", N_("Turn strokes or a sketch into a finished image"), gesso_cli_sdedit },
  { "restyle", N_("Change an image's style, keeping its layout"), gesso_cli_restyle },
};

void
gesso_cli_error (const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  /* messages are one line by construction; keep it so even if one slips through */
  g_strdelimit (message, "\r\n", ' ');
  g_printerr ("gesso: %s\n", message);
}

gboolean
gesso_cli_parse (GOptionContext *context, const char *command, int *argc, char ***argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *prgname = g_strdup_printf ("gesso %s", command);

  /* GOptionContext's "Usage:" line names the program by its prgname */
  g_set_prgname (prgname);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      gesso_cli_error (_("%s; run 'gesso %s --help' for the options"), error->message, command);
      return FALSE;
    }
  return TRUE;
}

gboolean
gesso_cli_parse_prediction (const char *name, GessoPredictionType *prediction)
{
  if (name == NULL || strcmp (name, "auto") == 0)
    *prediction = GESSO_PREDICTION_TYPE_AUTO;
  else if (strcmp (name, "epsilon") == 0)
    *prediction = GESSO_PREDICTION_TYPE_EPSILON;
  else if (strcmp (name, "v") == 0 || strcmp (name, "v_prediction") == 0)
    *prediction = GESSO_PREDICTION_TYPE_V;
  else
    {
      gesso_cli_error (_("--prediction is auto, epsilon or v, not '%s'"), name);
      return FALSE;
    }
  return TRUE;
}

GessoModelCache *
gesso_cli_model_cache_new (void)
{
  g_autofree char *file = g_build_filename (g_get_user_cache_dir (), "gesso", "models.ini",
                                            NULL);

  return gesso_model_cache_new (file);
}

char *
gesso_cli_model_autov2 (const char *path, GessoModelCache *cache)
{
  g_autofree char *sha256 = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  sha256 = gesso_model_hash_sha256 (path, cache, NULL, NULL);
  return sha256 != NULL ? gesso_model_hash_autov2 (sha256) : NULL;
}

static const Command *
find_command (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static char *
commands_description (void)
{
  GString *text = g_string_new (_("Commands:"));

  g_string_append_c (text, '\n');
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (text, "  %-10s %s\n", commands[i].name, _(commands[i].summary));
  g_string_append_printf (text, "  %-10s %s\n\n", "help", _("Show this help, or a command's"));
  g_string_append (text, _("Run 'gesso COMMAND --help' for a command's options."));
  return g_string_free (text, FALSE);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *description = NULL;
  gboolean version = FALSE;
  const Command *command;
  const char *name;
  const GOptionEntry entries[] = {
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL,
  };

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, GESSO_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  context = g_option_context_new (_("COMMAND [ARGS…]"));
  g_option_context_set_summary (context, _("Diffusion-model image edits on the CPU."));
  description = commands_description ();
  g_option_context_set_description (context, description);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  /* stop at the command: what follows it is the command's to parse */
  g_option_context_set_strict_posix (context, TRUE);
  g_set_prgname ("gesso");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      gesso_cli_error (_("%s; run 'gesso --help' for the options"), error->message);
      return GESSO_CLI_EXIT_USAGE;
    }
  if (version)
    {
      g_print ("gesso %s\n", gesso_version ());
      return GESSO_CLI_EXIT_OK;
    }
  if (argc < 2)
    {
      gesso_cli_error (_("no command given; run 'gesso --help' for the list"));
      return GESSO_CLI_EXIT_USAGE;
    }

  /* `gesso help` (and `gesso help --help`) is --help; `gesso help CMD` is `gesso CMD --help` */
  if (strcmp (argv[1], "help") == 0
      && (argc == 2 || strcmp (argv[2], "--help") == 0 || strcmp (argv[2], "-h") == 0))
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      g_print ("%s", help);
      return GESSO_CLI_EXIT_OK;
    }
  name = strcmp (argv[1], "help") == 0 ? argv[2] : argv[1];
  command = find_command (name);
  if (command == NULL)
    {
      gesso_cli_error (_("unknown command '%s'; run 'gesso --help' for the list"), name);
      return GESSO_CLI_EXIT_USAGE;
    }
  if (name != argv[1])
    {
      char *help_argv[] = { argv[2], (char *) "--help", NULL };
      return command->run (2, help_argv);
    }
  return command->run (argc - 1, argv + 1);
}
