/* ComfyUI's extra_model_paths.yaml: the model folders a ComfyUI install reads besides its own.
 *
 *   a111:
 *     base_path: /home/me/stable-diffusion-webui/
 *     checkpoints: models/Stable-diffusion
 *     loras: |
 *       models/Lora
 *       models/LyCORIS
 *     vae: models/VAE
 *
 * Each top-level entry is a set of paths: base_path (absolute, "~" for the home folder, or
 * relative to the .yaml's folder, as ComfyUI reads it), then one key per model type whose value
 * names one folder, or several one per line, relative to base_path. The file is the user's,
 * not trusted: it is read with libyaml events, only scalars two levels deep are used, and
 * anything else (lists, deeper nesting, is_default) is skipped.
 */
#ifndef GESSO_COMFY_PATHS_H
#define GESSO_COMFY_PATHS_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

/* Called once per folder named: TYPE is ComfyUI's key ("checkpoints", "loras", "vae", ...),
 * DIR the folder with base_path applied. */
typedef void (*GessoComfyPathFunc) (const char *type, const char *dir, gpointer user_data);

/* Reads PATH; a file that is not YAML of that form is a CORRUPT error naming it. HOME
 * replaces a leading "~". */
gboolean gesso_comfy_paths_read (const char *path, const char *home, GessoComfyPathFunc func,
                                 gpointer user_data, GError **error);

/* The same from DATA (LENGTH bytes) read from PATH (for messages and relative base_paths);
 * the fuzzer's way in. */
gboolean gesso_comfy_paths_read_from_data (const char *data, size_t length, const char *path,
                                           const char *home, GessoComfyPathFunc func,
                                           gpointer user_data, GError **error);

G_END_DECLS

#endif /* GESSO_COMFY_PATHS_H */
