/* The --control options of the edit commands: MODEL:IMAGE[:SCALE], repeatable, with one
 * --control-preprocess for all of them. */
#ifndef GESSO_CLI_CONTROL_OPTIONS_H
#define GESSO_CLI_CONTROL_OPTIONS_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

typedef struct
{
  GessoControl controls[GESSO_MAX_CONTROLS];
  GessoImage images[GESSO_MAX_CONTROLS];
  char *models[GESSO_MAX_CONTROLS];
  char *image_paths[GESSO_MAX_CONTROLS];
  int n;
} GessoCliControls;

/* Parses SPECS (the --control values, NULL-terminated, may be NULL) and PREPROCESS (a
 * preprocessor's name or NULL for none) into CONTROLS without reading any file; FALSE with a
 * usage message in ERROR. MODEL alone (no image) is allowed with the inpaint preprocessor,
 * which makes its image from the input. */
gboolean gesso_cli_controls_parse (char **specs, const char *preprocess,
                                   GessoCliControls *controls, GError **error);
/* Loads the control images; says on stderr when one's size differs from WIDTH x HEIGHT, the
 * picture it steers (it is then stretched to it). */
gboolean gesso_cli_controls_load (GessoCliControls *controls, int width, int height,
                                  GError **error);
void gesso_cli_controls_clear (GessoCliControls *controls);

G_END_DECLS

#endif /* GESSO_CLI_CONTROL_OPTIONS_H */
