/* libFuzzer target: any bytes as a safetensors file. The reader must refuse bad input with
 * an error, never crash or read outside the buffer; what it accepts must be self-consistent
 * and readable in full (ASan checks every byte the conversions touch). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Entries up to this many elements are converted on every input. */
#define MAX_CONVERT 4096

static float f32_buffer[MAX_CONVERT];
static int64_t i64_buffer[MAX_CONVERT];

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSafetensors) st = NULL;
  uint64_t previous_offset = 0;

  st = gesso_safetensors_new_from_bytes (data, size, "fuzz.safetensors", &error);
  if (st == NULL)
    {
      /* every refusal carries a one-line message */
      if (error == NULL || error->domain != GESSO_ERROR || strchr (error->message, '\n'))
        abort ();
      return 0;
    }
  if (gesso_safetensors_file_size (st) != size)
    abort ();
  for (guint i = 0; i < gesso_safetensors_count (st); i++)
    {
      const GessoSafetensorsEntry *e = gesso_safetensors_entry (st, i);

      if (gesso_safetensors_lookup (st, e->name) != e || e->offset < previous_offset
          || e->offset > size || e->nbytes > size - e->offset
          || (const uint8_t *) e->data != data + e->offset
          || e->numel * (int64_t) gesso_dtype_size (e->dtype) != (int64_t) e->nbytes)
        abort ();
      previous_offset = e->offset;
      if (e->numel <= MAX_CONVERT)
        {
          g_autoptr (GError) f32_error = NULL;
          g_autoptr (GError) i64_error = NULL;
          gboolean f32_ok = gesso_safetensors_entry_to_f32 (e, f32_buffer, &f32_error);
          gboolean i64_ok = gesso_safetensors_entry_to_i64 (e, i64_buffer, &i64_error);
          /* each dtype has exactly one reader, or none */
          if (f32_ok && i64_ok)
            abort ();
        }
    }
  (void) gesso_safetensors_metadata (st, "format");
  return 0;
}
