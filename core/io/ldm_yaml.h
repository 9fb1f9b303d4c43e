/* The original (CompVis/LDM) way to describe a checkpoint: a .yaml config such as
 * v2-inference-v.yaml, which A1111 and ComfyUI users keep beside a single file under the same
 * name (model.safetensors + model.yaml). Gesso reads only what the weights cannot tell:
 * model.params.parameterization, "v" for SD 2.x 768-v models, "eps" (the default) otherwise.
 * These files are untrusted input, parsed with libyaml. */
#ifndef GESSO_LDM_YAML_H
#define GESSO_LDM_YAML_H

#include <glib.h>

G_BEGIN_DECLS

/* Files larger than this are not LDM configs (the real ones are a few KiB). */
#define GESSO_LDM_YAML_MAX_BYTES (1 << 20)

/* The scalar at KEY_PATH (NULL-terminated mapping keys from the document root, e.g.
 * { "model", "params", "parameterization", NULL }) of the YAML file PATH. *OUT is a new
 * string, or NULL when the file has no scalar there (not an error). FALSE with a message
 * naming the file and line when the file cannot be read or is not valid YAML. */
gboolean gesso_ldm_yaml_get_scalar (const char *path, const char *const *key_path, char **out,
                                    GError **error);

/* The same for YAML text in memory; NAME is used in messages. */
gboolean gesso_ldm_yaml_get_scalar_from_data (const char *data, gsize length, const char *name,
                                              const char *const *key_path, char **out,
                                              GError **error);

G_END_DECLS

#endif /* GESSO_LDM_YAML_H */
