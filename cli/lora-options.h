/* The LoRA options of the edit commands: --lora FILE[:WEIGHT] (repeatable), and the prompt's
 * <lora:NAME[:WEIGHT]> tags resolved in the --lora-dir folders (repeatable). */
#ifndef GESSO_CLI_LORA_OPTIONS_H
#define GESSO_CLI_LORA_OPTIONS_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

typedef struct
{
  GArray *uses;                 /* of GessoLoraUse: the --lora files, then the prompt's tags */
  GPtrArray *paths;             /* owns the uses' paths */
  char *prompt;                 /* the prompt without its tags */
} GessoCliLoras;

/* SPECS (--lora values, NULL-terminated, may be NULL) and PROMPT's tags looked up in DIRS
 * into LORAS; FALSE with a message in ERROR (a malformed spec, a tag naming no file). */
gboolean gesso_cli_loras_collect (char **specs, char **dirs, const char *prompt,
                                  GessoCliLoras *loras, GError **error);
void gesso_cli_loras_clear (GessoCliLoras *loras);

G_END_DECLS

#endif /* GESSO_CLI_LORA_OPTIONS_H */
