/* libFuzzer target: any bytes as an input image and as a mask, through the CLI's loaders
 * (cli/image-io.c): gdk-pixbuf's decoders behind the checks Gesso adds (regular file, size
 * from the header against memory, rows decoded, JPEG end marker). Bad input must end in one
 * line of error, never a crash, a leak or a loaded image of the wrong size.
 *
 * The bytes go to a file, as the loaders read files. Like `gesso`, the target asks for the
 * header's size first and does not decode what a caller would refuse: a few bytes claiming
 * 30000 x 30000 pixels are the memory check's business (tests/reliability), not the
 * fuzzer's RSS limit's. */
#include <glib/gstdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/image-io.h"
#include "gesso.h"

#define MAX_FUZZ_PIXELS (4 * 1024 * 1024)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (gboolean ok, GError *error, int width, int height, int want_w, int want_h)
{
  if (ok == (error != NULL))
    abort ();           /* FALSE must come with an error, TRUE without */
  if (error != NULL && (strchr (error->message, '\n') != NULL || error->message[0] == '\0'))
    abort ();
  if (ok && (width < 1 || height < 1))
    abort ();
  /* the header's size, or swapped by an EXIF rotation */
  if (ok && !((width == want_w && height == want_h) || (width == want_h && height == want_w)))
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static char *path;
  GError *error = NULL;
  GessoImage image = { 0 };
  GessoMask mask = { 0 };
  int w = 0, h = 0;
  gboolean ok;

  if (path == NULL)
    {
      int fd = g_file_open_tmp ("gesso-fuzz-image-XXXXXX", &path, NULL);

      if (fd < 0)
        abort ();
      close (fd);
    }
  if (!g_file_set_contents (path, (const char *) data, (gssize) size, NULL))
    abort ();
  if (!gesso_cli_image_size (path, &w, &h, &error))
    {
      check (FALSE, error, 0, 0, 0, 0);
      g_clear_error (&error);
      return 0;
    }
  if (w < 1 || h < 1 || (gint64) w * h > MAX_FUZZ_PIXELS)
    return 0;
  ok = gesso_cli_image_load (path, &image, &error);
  check (ok, error, image.width, image.height, w, h);
  g_clear_error (&error);
  gesso_image_clear (&image);
  ok = gesso_cli_mask_load (path, &mask, &error);
  check (ok, error, mask.width, mask.height, w, h);
  if (ok)
    for (size_t i = 0; i < (size_t) mask.width * (size_t) mask.height; i++)
      if (!(mask.values[i] >= 0.0f && mask.values[i] <= 1.0f))
        abort ();
  g_clear_error (&error);
  gesso_mask_clear (&mask);
  return 0;
}
