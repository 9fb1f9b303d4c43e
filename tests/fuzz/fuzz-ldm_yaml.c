/* libFuzzer target: any bytes as an LDM .yaml config, looked up at several key paths (the
 * real one, the root, a long one). Bad input must end in an error, never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "io/ldm_yaml.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *const real_path[] = { "model", "params", "parameterization", NULL };
static const char *const root_path[] = { "model", NULL };
static const char *const long_path[] = { "a", "b", "c", "d", "e", "f", "g", "h", NULL };
static const char *const empty_path[] = { NULL };

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *const *paths[] = { real_path, root_path, long_path, empty_path };

  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    {
      GError *error = NULL;
      char *value = NULL;
      gboolean ok = gesso_ldm_yaml_get_scalar_from_data ((const char *) data, size,
                                                         "fuzz.yaml", paths[i], &value,
                                                         &error);

      /* FALSE must come with a one-line error and no value, TRUE without an error */
      if (ok == (error != NULL) || (!ok && value != NULL)
          || (error != NULL && strchr (error->message, '\n') != NULL))
        abort ();
      g_clear_error (&error);
      g_free (value);
    }
  return 0;
}
