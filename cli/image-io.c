/* PNG and JPEG files <-> GessoImage and GessoMask, through gdk-pixbuf (see image-io.h). */
#include <errno.h>
#include <fcntl.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/image-io.h"
#include "cli/output-file.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
/* What a decode holds per pixel at its peak: gdk-pixbuf's 8-bit RGBA, the upright copy an
 * EXIF rotation makes, and the float RGBA image or mask it becomes. */
#define DECODE_BYTES_PER_PIXEL (4 + 4 + 16)

/* Opens PATH for reading, refusing anything but a regular file: a FIFO would block the open
 * (O_NONBLOCK keeps it from waiting) and then the read forever, a device never ends. */
static int
open_regular (const char *path, GError **error)
{
  struct stat st;
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);

  if (fd < 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot read image '%s': %s", path,
                   g_strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO,
                   "cannot read image '%s': it is not a regular file", path);
      close (fd);
      return -1;
    }
  /* regular files never block; clear the flag so reads behave as usual */
  (void) fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

gboolean
gesso_cli_image_size (const char *path, int *width, int *height, GError **error)
{
  int fd = open_regular (path, error);

  if (fd < 0)
    return FALSE;
  close (fd);
  /* the format's header only: gdk-pixbuf stops at the size, before allocating pixels */
  if (gdk_pixbuf_get_file_info (path, width, height) == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO,
                   "cannot read image '%s': not an image file gdk-pixbuf knows, or damaged",
                   path);
      return FALSE;
    }
  return TRUE;
}

/* What the loader saw while decoding, for telling a complete image from a cut one. */
typedef struct
{
  const char *path;
  GError *refused;              /* set in size-prepared: too large to decode */
  int width, height;
  int rows_done;                /* rows from the top any area-updated reached */
  /* JPEG: the end-of-image marker must come after the last start-of-scan (a truncated file
   * has none; libjpeg fills the missing rows with grey and says nothing) */
  guint8 last_byte;
  gboolean jpeg, seen_sos, eoi_after_sos;
} LoadWatch;

static void
on_size_prepared (GdkPixbufLoader *loader, int width, int height, gpointer data)
{
  LoadWatch *watch = data;
  guint64 need = (guint64) width * (guint64) height * DECODE_BYTES_PER_PIXEL;
  guint64 available = gesso_memory_available ();

  watch->width = width;
  watch->height = height;
  if (need > available && watch->refused == NULL)
    {
      g_set_error (&watch->refused, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "image '%s' is %d x %d: decoding it needs about %.1f GiB of memory but "
                   "%.1f GiB is available; scale it down first", watch->path, width, height,
                   (double) need / GIB, (double) available / GIB);
      /* a zero size makes the format loaders stop before allocating the pixels */
      gdk_pixbuf_loader_set_size (loader, 0, 0);
    }
}

static void
on_area_updated (GdkPixbufLoader *loader, int x, int y, int width, int height, gpointer data)
{
  LoadWatch *watch = data;

  watch->rows_done = MAX (watch->rows_done, y + height);
}

static void
scan_jpeg_markers (LoadWatch *watch, const guint8 *data, size_t size, gboolean first)
{
  if (first)
    watch->jpeg = size >= 2 && data[0] == 0xff && data[1] == 0xd8;
  if (!watch->jpeg)
    return;
  /* inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so a
   * 0xFF 0xDA (SOS) or 0xFF 0xD9 (EOI) pair is a real marker */
  for (size_t i = 0; i < size; i++)
    {
      if (watch->last_byte == 0xff && data[i] == 0xda)
        {
          watch->seen_sos = TRUE;
          watch->eoi_after_sos = FALSE;
        }
      else if (watch->last_byte == 0xff && data[i] == 0xd9 && watch->seen_sos)
        watch->eoi_after_sos = TRUE;
      watch->last_byte = data[i];
    }
}

/* Decodes the file at FD, or fails saying why; a cut or damaged file is refused, never
 * handed on with grey or missing rows. */
static GdkPixbuf *
decode (int fd, const char *path, GError **error)
{
  g_autoptr (GdkPixbufLoader) loader = gdk_pixbuf_loader_new ();
  g_autoptr (GError) local = NULL;
  g_autofree guint8 *buffer = g_malloc (1 << 16);
  LoadWatch watch = { .path = path };
  g_autofree char *format_name = NULL;
  GdkPixbufFormat *format;
  gboolean ok = TRUE, first = TRUE, closed;
  GdkPixbuf *pixbuf;

  g_signal_connect (loader, "size-prepared", G_CALLBACK (on_size_prepared), &watch);
  g_signal_connect (loader, "area-updated", G_CALLBACK (on_area_updated), &watch);
  while (ok && watch.refused == NULL)
    {
      ssize_t n = read (fd, buffer, 1 << 16);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot read image '%s': %s", path,
                       g_strerror (errno));
          gdk_pixbuf_loader_close (loader, NULL);
          return NULL;
        }
      if (n == 0)
        break;
      scan_jpeg_markers (&watch, buffer, (size_t) n, first);
      first = FALSE;
      ok = gdk_pixbuf_loader_write (loader, buffer, (gsize) n, &local);
    }
  closed = gdk_pixbuf_loader_close (loader, ok ? &local : NULL);
  if (watch.refused != NULL)
    {
      g_propagate_error (error, watch.refused);
      return NULL;
    }
  /* said before the decoder's own complaint (libjpeg's "Improper call to JPEG library in
   * state 205" for a cut progressive file), which tells a user nothing */
  if (watch.jpeg && !watch.eoi_after_sos)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "image '%s' is incomplete: its JPEG data stops before the end of the "
                   "picture (the file is truncated or damaged)", path);
      return NULL;
    }
  if (!ok || !closed)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot read image '%s': %s", path,
                   local != NULL ? local->message : "the file is damaged or not an image");
      g_strdelimit (error != NULL && *error != NULL ? (*error)->message : NULL, "\r\n", ' ');
      return NULL;
    }
  pixbuf = gdk_pixbuf_loader_get_pixbuf (loader);
  format = gdk_pixbuf_loader_get_format (loader);
  if (pixbuf == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO,
                   first ? "cannot read image '%s': the file is empty"
                         : "cannot read image '%s': the file is damaged or not an image", path);
      return NULL;
    }
  /* PNG and JPEG report every decoded row; fewer rows than the picture has is a cut file */
  format_name = format != NULL ? gdk_pixbuf_format_get_name (format) : NULL;
  if (format_name != NULL
      && (strcmp (format_name, "png") == 0 || strcmp (format_name, "jpeg") == 0)
      && watch.rows_done < gdk_pixbuf_get_height (pixbuf))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "image '%s' is incomplete: only %d of its %d rows could be decoded (the "
                   "file is truncated or damaged)", path, watch.rows_done,
                   gdk_pixbuf_get_height (pixbuf));
      return NULL;
    }
  return g_object_ref (pixbuf);
}

/* Opens PATH upright (EXIF orientation applied), or fails with a GESSO_ERROR_IO message that
 * names the file. */
static GdkPixbuf *
load_pixbuf (const char *path, GError **error)
{
  g_autoptr (GdkPixbuf) raw = NULL;
  GdkPixbuf *upright;
  int fd = open_regular (path, error);

  if (fd < 0)
    return NULL;
  raw = decode (fd, path, error);
  close (fd);
  if (raw == NULL)
    return NULL;
  if (gdk_pixbuf_get_bits_per_sample (raw) != 8
      || gdk_pixbuf_get_colorspace (raw) != GDK_COLORSPACE_RGB
      || gdk_pixbuf_get_n_channels (raw) != (gdk_pixbuf_get_has_alpha (raw) ? 4 : 3))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "image '%s' has a pixel layout gdk-pixbuf does not normally give "
                   "(%d bits, %d channels): save it as an 8-bit RGB PNG", path,
                   gdk_pixbuf_get_bits_per_sample (raw), gdk_pixbuf_get_n_channels (raw));
      return NULL;
    }
  upright = gdk_pixbuf_apply_embedded_orientation (raw);
  if (upright == NULL)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                 "not enough memory to rotate image '%s' upright", path);
  return upright;
}

/* An opened file's 8-bit pixels; PIXBUF owns them. */
typedef struct
{
  GdkPixbuf *pixbuf;
  const guint8 *pixels;
  int width, height, stride, channels;
} Raster;

static gboolean
raster_open (const char *path, Raster *raster, GError **error)
{
  raster->pixbuf = load_pixbuf (path, error);
  if (raster->pixbuf == NULL)
    return FALSE;
  raster->width = gdk_pixbuf_get_width (raster->pixbuf);
  raster->height = gdk_pixbuf_get_height (raster->pixbuf);
  raster->stride = gdk_pixbuf_get_rowstride (raster->pixbuf);
  raster->channels = gdk_pixbuf_get_n_channels (raster->pixbuf);
  raster->pixels = gdk_pixbuf_read_pixels (raster->pixbuf);
  return TRUE;
}

gboolean
gesso_cli_image_load (const char *path, GessoImage *image, GError **error)
{
  Raster r;
  gboolean ok;

  g_return_val_if_fail (path != NULL && image != NULL, FALSE);
  image->pixels = NULL;
  image->width = image->height = 0;
  if (!raster_open (path, &r, error))
    return FALSE;
  ok = gesso_image_init (image, r.width, r.height, error);
  if (!ok)
    g_prefix_error (error, "image '%s': ", path);
  for (int y = 0; ok && y < r.height; y++)
    {
      const guint8 *src = r.pixels + (gsize) y * r.stride;
      float *dst = image->pixels + (gsize) y * r.width * 4;

      for (int x = 0; x < r.width; x++, src += r.channels, dst += 4)
        {
          dst[0] = src[0] / 255.0f;
          dst[1] = src[1] / 255.0f;
          dst[2] = src[2] / 255.0f;
          dst[3] = r.channels == 4 ? src[3] / 255.0f : 1.0f;
        }
    }
  g_object_unref (r.pixbuf);
  return ok;
}

gboolean
gesso_cli_mask_load (const char *path, GessoMask *mask, GError **error)
{
  Raster r;
  gboolean ok;

  g_return_val_if_fail (path != NULL && mask != NULL, FALSE);
  mask->values = NULL;
  mask->width = mask->height = 0;
  if (!raster_open (path, &r, error))
    return FALSE;
  ok = gesso_mask_init (mask, r.width, r.height, error);
  if (!ok)
    g_prefix_error (error, "mask '%s': ", path);
  for (int y = 0; ok && y < r.height; y++)
    {
      const guint8 *src = r.pixels + (gsize) y * r.stride;
      float *dst = mask->values + (gsize) y * r.width;

      for (int x = 0; x < r.width; x++, src += r.channels)
        {
          /* Grey pixels take their level directly: the weighted sum of three equal values
           * need not round back to exactly 1 for white. */
          float v = src[0] == src[1] && src[1] == src[2]
                    ? src[0] / 255.0f
                    : (0.2126f * src[0] + 0.7152f * src[1] + 0.0722f * src[2]) / 255.0f;

          v = CLAMP (v, 0.0f, 1.0f);
          dst[x] = r.channels == 4 ? v * (src[3] / 255.0f) : v;
        }
    }
  g_object_unref (r.pixbuf);
  return ok;
}

static guint8
to_byte (float v)
{
  /* NaN becomes 0 with the comparisons written this way round. */
  return (guint8) (v > 0.0f ? (v < 1.0f ? v * 255.0f + 0.5f : 255.0f) : 0.0f);
}

gboolean
gesso_cli_image_save (const GessoImage *image, const char *path, GError **error)
{
  return gesso_cli_image_save_with_parameters (image, path, NULL, error);
}

gboolean
gesso_cli_image_save_with_parameters (const GessoImage *image, const char *path,
                                      const char *parameters, GError **error)
{
  return gesso_cli_image_save_full (image, path, parameters, NULL, error);
}

gboolean
gesso_cli_image_save_full (const GessoImage *image, const char *path, const char *parameters,
                           const volatile sig_atomic_t *cancel, GError **error)
{
  GessoCliOutput *output;
  char *keys[2] = { NULL, NULL }, *values[2] = { NULL, NULL };
  g_autofree gchar *encoded = NULL;
  gsize encoded_size = 0;
  g_autoptr (GdkPixbuf) pixbuf = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *lower = NULL;
  const char *type;
  gboolean jpeg;
  guint8 *pixels;
  int stride, channels;

  g_return_val_if_fail (image != NULL && path != NULL, FALSE);
  if (image->pixels == NULL || image->width <= 0 || image->height <= 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "there is no image to write to '%s'", path);
      return FALSE;
    }
  lower = g_ascii_strdown (path, -1);
  if (g_str_has_suffix (lower, ".png"))
    type = "png";
  else if (g_str_has_suffix (lower, ".jpg") || g_str_has_suffix (lower, ".jpeg"))
    type = "jpeg";
  else
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "cannot tell which format to write '%s' in: name it .png or .jpg", path);
      return FALSE;
    }
  jpeg = strcmp (type, "jpeg") == 0;

  pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, !jpeg, 8, image->width, image->height);
  if (pixbuf == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "not enough memory to write a %d x %d image to '%s'", image->width,
                   image->height, path);
      return FALSE;
    }
  stride = gdk_pixbuf_get_rowstride (pixbuf);
  channels = gdk_pixbuf_get_n_channels (pixbuf);
  pixels = gdk_pixbuf_get_pixels (pixbuf);
  for (int y = 0; y < image->height; y++)
    {
      const float *src = image->pixels + (gsize) y * image->width * 4;
      guint8 *dst = pixels + (gsize) y * stride;

      for (int x = 0; x < image->width; x++, src += 4, dst += channels)
        for (int c = 0; c < channels; c++)
          dst[c] = to_byte (src[c]);
    }

  if (jpeg)
    {
      keys[0] = (char *) "quality";
      values[0] = (char *) "95";
    }
  else if (parameters != NULL)
    {
      /* a tEXt chunk, or iTXt (UTF-8) when the text is not Latin-1: gdk-pixbuf chooses */
      keys[0] = (char *) "tEXt::parameters";
      values[0] = (char *) parameters;
    }
  /* Encoded in memory first: gdk-pixbuf's PNG writer leaks its text chunks when its write
   * callback fails (libpng's error longjmp skips their free), so the file is written here,
   * where a full disk is one error of ours. */
  if (!gdk_pixbuf_save_to_bufferv (pixbuf, &encoded, &encoded_size, type, keys, values, &local))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, "cannot write image '%s': %s", path,
                   local != NULL ? local->message : "unknown error");
      return FALSE;
    }
  g_clear_object (&pixbuf);
  /* never in place: a full disk or a Ctrl-C must not cost the user the file at PATH, which
   * may be the input image itself (output-file.h) */
  output = gesso_cli_output_begin (path, error);
  if (output == NULL)
    return FALSE;
  if (!gesso_cli_output_write (output, encoded, encoded_size, error))
    {
      gesso_cli_output_abort (output);
      return FALSE;
    }
  return gesso_cli_output_commit (output, cancel, error);
}
