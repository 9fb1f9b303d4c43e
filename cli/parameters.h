/* The "parameters" text A1111 writes into every PNG it makes, for Gesso's results.
 *
 *   a red apple on a table
 *   Negative prompt: blurry
 *   Steps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash:
 *   abcdef1234, Model: sd15, Version: gesso 0.1.0        (one line in the file)
 *
 * The first line(s) are the prompt, then "Negative prompt: ..." when there is one, then one
 * line of "Key: value" pairs in A1111's names and order: civitai, A1111's "PNG Info" and the
 * tools that read those show a Gesso picture's settings the way they show A1111's. Gesso's
 * own knobs that A1111 lacks are not written. "Model hash" is A1111's (the first 10 hex digits
 * of the model file's SHA-256); a diffusers folder has none, and the key is left out.
 */
#ifndef GESSO_CLI_PARAMETERS_H
#define GESSO_CLI_PARAMETERS_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

/* P as it ran on MODEL (the sampler a NULL name stood for is named), for a WIDTH x HEIGHT
 * result, from MODEL_PATH whose AUTOV2 hash may be NULL, with the separate VAE VAE_PATH (NULL:
 * none; its hash VAE_AUTOV2 may be NULL), written "VAE hash: ..., VAE: file" as A1111 does.
 * Owned. */
char *gesso_cli_parameters_format (const GessoEditParams *p, GessoModel *model, int width,
                                   int height, const char *model_path, const char *autov2,
                                   const char *vae_path, const char *vae_autov2);

/* A1111's display name of an engine sampler name ("dpmpp_2m_karras" -> "DPM++ 2M Karras"). */
const char *gesso_cli_parameters_sampler_name (const char *engine_name);

/* The "parameters" text of the PNG file PATH: TRUE with *TEXT NULL when it has none. */
gboolean gesso_cli_parameters_read (const char *path, char **text, GError **error);

G_END_DECLS

#endif /* GESSO_CLI_PARAMETERS_H */
