/* The subcommands of `gesso` and what they share. A subcommand is a function that takes its
 * own argv (argv[0] is its name), parses it with a GOptionContext and returns the exit status;
 * register it with one line in the table in cli/gesso.c. */
#ifndef GESSO_CLI_COMMANDS_H
#define GESSO_CLI_COMMANDS_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

enum
{
  GESSO_CLI_EXIT_OK = 0,
  GESSO_CLI_EXIT_FAILURE = 1,   /* the command ran and something failed: a bad file, ... */
  GESSO_CLI_EXIT_USAGE = 2,     /* the command line itself is wrong */
};

typedef int (*GessoCliCommandFunc) (int argc, char **argv);

/* Prints "gesso: <message>" as one line on stderr. */
void gesso_cli_error (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* Parses ARGV with CONTEXT, naming the program "gesso COMMAND" in --help; on a bad option
 * prints the one-line error and returns FALSE. */
gboolean gesso_cli_parse (GOptionContext *context, const char *command, int *argc,
                          char ***argv);

/* NAME as --prediction spells it (NULL: auto); on a bad name prints the error, FALSE. */
gboolean gesso_cli_parse_prediction (const char *name, GessoPredictionType *prediction);

/* The cache of model hashes and kinds the CLI and the plug-in share:
 * $XDG_CACHE_HOME/gesso/models.ini. */
GessoModelCache *gesso_cli_model_cache_new (void);

/* A1111's model hash of PATH (a file; NULL for a folder or when it cannot be read), through
 * CACHE, owned. */
char *gesso_cli_model_autov2 (const char *path, GessoModelCache *cache);

/* Adds the model folders the CLI and the plug-in share to LIBRARY: A1111/ComfyUI installs
 * under the home folder, $GESSO_MODEL_PATH, the folders added in the plug-in, the plug-in's
 * models folder and the bundled models. */
void gesso_cli_add_model_folders (GessoModelLibrary *library);
/* The model an edit uses without --model, as the plug-in's default: the bundled demo model
 * (installed, or in the source tree of this build), else the first checkpoint in the model
 * folders. */
char *gesso_cli_default_model (GError **error);

int gesso_cli_info (int argc, char **argv);
int gesso_cli_models (int argc, char **argv);
int gesso_cli_generate (int argc, char **argv);
int gesso_cli_inpaint (int argc, char **argv);
int gesso_cli_sdedit (int argc, char **argv);
int gesso_cli_restyle (int argc, char **argv);

G_END_DECLS

#endif /* GESSO_CLI_COMMANDS_H */
