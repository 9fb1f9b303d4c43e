/* JSON configuration files (config.json, model_index.json, scheduler_config.json,
 * tokenizer_config.json, case manifests), parsed with json-glib and read through typed
 * getters that say which key of which file is wrong. These files are untrusted input. */
#ifndef GESSO_CONFIG_H
#define GESSO_CONFIG_H

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Parses PATH; the root must be an object. Returns a new reference (json_object_unref).
 * Python's NaN, Infinity and -Infinity (json.dump writes them; diffusers scheduler configs
 * hold "lambda_min_clipped": -Infinity) are read as null, +inf and -inf. */
JsonObject *gesso_config_load (const char *path, GError **error);
/* The same for bytes in memory; NAME is used in messages. */
JsonObject *gesso_config_load_from_data (const char *data, gssize length, const char *name,
                                         GError **error);

/* Getters: FALSE with a message naming NAME (the file) and KEY when the key is missing or
 * JSON null (GESSO_ERROR_MISSING; for optional keys check json_object_has_member() first),
 * has the wrong type (GESSO_ERROR_CORRUPT) or is out of [MIN, MAX] (GESSO_ERROR_UNSUPPORTED):
 * "unet/config.json: 'block_out_channels' must be an array of integers". Integers may be
 * written as integral floats ("64.0"); doubles accept integers. *OUT is untouched on
 * failure. */
gboolean gesso_config_get_int (JsonObject *config, const char *name, const char *key,
                               gint64 min, gint64 max, gint64 *out, GError **error);
gboolean gesso_config_get_double (JsonObject *config, const char *name, const char *key,
                                  double min, double max, double *out, GError **error);
gboolean gesso_config_get_bool (JsonObject *config, const char *name, const char *key,
                                gboolean *out, GError **error);
/* Borrowed string. */
gboolean gesso_config_get_string (JsonObject *config, const char *name, const char *key,
                                  const char **out, GError **error);
/* An array of integers; *OUT is newly allocated (g_free), *N_OUT its length. */
gboolean gesso_config_get_int_array (JsonObject *config, const char *name, const char *key,
                                     gint64 min, gint64 max, gint64 **out, guint *n_out,
                                     GError **error);

G_END_DECLS

#endif /* GESSO_CONFIG_H */
