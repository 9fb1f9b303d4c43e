/* libFuzzer target: any bytes as a JSON config, then every getter on every key (and on the
 * keys of nested objects). Bad input must end in an error, never a crash or a critical. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "io/config.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_error (gboolean ok, GError **error)
{
  if (ok == (*error != NULL))
    abort ();           /* FALSE must come with an error, TRUE without */
  if (*error != NULL && strchr ((*error)->message, '\n') != NULL)
    abort ();
  g_clear_error (error);
}

static void
exercise (JsonObject *config, int depth)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *node;

  json_object_iter_init (&iter, config);
  while (json_object_iter_next (&iter, &key, &node))
    {
      GError *error = NULL;
      gint64 i, *array = NULL;
      double d;
      gboolean b;
      const char *s;
      guint n;

      check_error (gesso_config_get_int (config, "fuzz.json", key, -1000, 1000, &i, &error),
                   &error);
      check_error (gesso_config_get_double (config, "fuzz.json", key, -1.0, 1.0, &d, &error),
                   &error);
      check_error (gesso_config_get_bool (config, "fuzz.json", key, &b, &error), &error);
      check_error (gesso_config_get_string (config, "fuzz.json", key, &s, &error), &error);
      check_error (gesso_config_get_int_array (config, "fuzz.json", key, 0, 4096, &array, &n,
                                               &error), &error);
      g_free (array);
      if (depth < 4 && JSON_NODE_HOLDS_OBJECT (node))
        exercise (json_node_get_object (node), depth + 1);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) config = NULL;

  config = gesso_config_load_from_data ((const char *) data, (gssize) size, "fuzz.json",
                                        &error);
  if (config == NULL)
    {
      if (error == NULL || strchr (error->message, '\n') != NULL)
        abort ();
      return 0;
    }
  exercise (config, 0);
  return 0;
}
