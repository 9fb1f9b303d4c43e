/* libFuzzer target: any bytes as a safetensors header for the quick pass that tells a model
 * file's kind (core/io/header_scan.c). Bad input must end in a one-line error, never a crash,
 * a leak or a read past the end; every shape reported has at most 8 dims, none negative. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "io/header_scan.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
on_tensor (const char *name, int ndim, const int64_t *shape, gpointer user_data)
{
  if (name == NULL || ndim < 0 || ndim > 8)
    abort ();
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      abort ();
}

static void
on_metadata (const char *key, const char *value, gpointer user_data)
{
  if (key == NULL || value == NULL)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  /* a copy of exactly SIZE bytes, so that reading one past the end is caught */
  char *copy = g_memdup2 (data, size);
  gboolean ok = gesso_header_scan_data (copy, size, "fuzz.safetensors", on_tensor, on_metadata,
                                        NULL, &error);

  if (ok == (error != NULL) || (error != NULL && strchr (error->message, '\n') != NULL))
    abort ();
  g_clear_error (&error);
  g_free (copy);
  return 0;
}
