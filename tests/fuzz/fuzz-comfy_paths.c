/* libFuzzer target: any bytes as ComfyUI's extra_model_paths.yaml. Bad input must end in a
 * one-line error, never a crash or a leak; every folder reported must be a non-empty path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "io/comfy_paths.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
on_path (const char *type, const char *dir, gpointer user_data)
{
  if (type == NULL || dir == NULL || dir[0] == '\0')
    abort ();
  (*(size_t *) user_data)++;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  size_t n = 0;
  gboolean ok = gesso_comfy_paths_read_from_data ((const char *) data, size,
                                                  "/fuzz/extra_model_paths.yaml", "/home/fuzz",
                                                  on_path, &n, &error);

  if (ok == (error != NULL) || (error != NULL && strchr (error->message, '\n') != NULL))
    abort ();
  g_clear_error (&error);
  return 0;
}
