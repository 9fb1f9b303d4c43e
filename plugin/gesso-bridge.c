/* Gesso: GIMP image <-> engine images and masks. See gesso-bridge.h for the why. */
#include "gesso-config.h"

#include <string.h>

#include <libgimp/gimp.h>

#include "gesso-bridge.h"
#include "gesso-intl.h"

/* sRGB-encoded float RGBA with straight alpha: what the engine's GessoImage holds. Without a
 * space, babl means sRGB, so an image in another profile is converted to sRGB on the way in
 * and back into the image's profile on the way out. */
#define PIXEL_FORMAT "R'G'B'A float"
/* Selection coverage: GIMP keeps masks in linear "Y" formats, so this reads coverage as is. */
#define MASK_FORMAT "Y float"
/* Rows read at a time when only a layer's alpha is needed (bounds the memory it costs). */
#define ALPHA_STRIP_ROWS 64

void
gesso_bridge_input_clear (GessoBridgeInput *input)
{
  if (input == NULL)
    return;
  gesso_image_clear (&input->image);
  gesso_mask_clear (&input->mask);
  gesso_mask_clear (&input->shape);
  memset (input, 0, sizeof *input);
}

/* --- helpers ------------------------------------------------------------------------------ */

/* The engine's messages are in English and name the engine's view; say what failed here. */
static void
propagate_engine_error (GError **error, GError *engine_error)
{
  g_set_error (error, GIMP_PLUG_IN_ERROR, 0, _("Gesso could not read the image: %s"),
               engine_error->message);
  g_error_free (engine_error);
}

static gboolean
read_pixels (GimpDrawable *drawable, const GeglRectangle *rect, GessoImage *out,
             GError **error)
{
  GError *engine_error = NULL;
  GeglBuffer *buffer;

  if (!gesso_image_init (out, rect->width, rect->height, &engine_error))
    {
      propagate_engine_error (error, engine_error);
      return FALSE;
    }
  buffer = gimp_drawable_get_buffer (drawable);
  gegl_buffer_get (buffer, rect, 1.0, babl_format (PIXEL_FORMAT), out->pixels,
                   GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);
  return TRUE;
}

/* The selection's coverage over CANVAS_RECT (canvas coordinates; outside the canvas: 0). */
static gboolean
read_selection (GimpImage *image, const GeglRectangle *canvas_rect, GessoMask *out,
                GError **error)
{
  GError *engine_error = NULL;
  GimpSelection *selection = gimp_image_get_selection (image);
  GeglBuffer *buffer;

  if (!gesso_mask_init (out, canvas_rect->width, canvas_rect->height, &engine_error))
    {
      propagate_engine_error (error, engine_error);
      return FALSE;
    }
  buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (selection));
  gegl_buffer_get (buffer, canvas_rect, 1.0, babl_format (MASK_FORMAT), out->values,
                   GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);
  return TRUE;
}

static gboolean
mask_is_empty (const GessoMask *mask)
{
  gsize n = (gsize) mask->width * (gsize) mask->height;

  for (gsize i = 0; i < n; i++)
    if (mask->values[i] > 0.0f)
      return FALSE;
  return TRUE;
}

/* BOX grown by PAD on every side and clipped to LIMIT. FALSE when nothing is left. */
static gboolean
pad_and_clip (const GeglRectangle *box, gint pad, const GeglRectangle *limit,
              GeglRectangle *out)
{
  GeglRectangle grown = { box->x - pad, box->y - pad, box->width + 2 * pad,
                          box->height + 2 * pad };

  return gegl_rectangle_intersect (out, &grown, limit);
}

/* --- inpaint, restyle: one drawable ---------------------------------------------------------- */

gboolean
gesso_bridge_read_drawable (GimpImage *image, GimpDrawable *drawable, gint pad,
                            gboolean require_selection, GessoBridgeInput *input,
                            GError **error)
{
  GeglRectangle layer_rect, crop;
  gboolean has_selection = FALSE;
  gint off_x = 0, off_y = 0, x1, y1, x2, y2;

  memset (input, 0, sizeof *input);
  gimp_drawable_get_offsets (drawable, &off_x, &off_y);
  gegl_rectangle_set (&layer_rect, 0, 0, gimp_drawable_get_width (drawable),
                      gimp_drawable_get_height (drawable));
  gimp_selection_bounds (image, &has_selection, &x1, &y1, &x2, &y2);

  if (has_selection)
    {
      /* the selection's box in layer coordinates */
      GeglRectangle box = { x1 - off_x, y1 - off_y, x2 - x1, y2 - y1 };

      if (!pad_and_clip (&box, pad, &layer_rect, &crop)
          || !gegl_rectangle_intersect (NULL, &box, &layer_rect))
        {
          g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                       _("The selection does not overlap the layer “%s”: select an area on "
                         "this layer, or pick the layer under the selection"),
                       gimp_item_get_name (GIMP_ITEM (drawable)));
          return FALSE;
        }
    }
  else if (require_selection)
    {
      g_set_error_literal (error, GIMP_PLUG_IN_ERROR, 0,
                           _("Inpaint Selection needs a selection: select the area to "
                             "regenerate first"));
      return FALSE;
    }
  else
    crop = layer_rect;

  input->image_x = off_x + crop.x;
  input->image_y = off_y + crop.y;
  input->width = crop.width;
  input->height = crop.height;
  if (!read_pixels (drawable, &crop, &input->image, error))
    goto err_clear;
  if (has_selection)
    {
      GeglRectangle canvas_rect = { input->image_x, input->image_y, crop.width, crop.height };

      if (!read_selection (image, &canvas_rect, &input->mask, error))
        goto err_clear;
      if (mask_is_empty (&input->mask))
        {
          g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                       _("The selection does not overlap the layer “%s”: select an area on "
                         "this layer, or pick the layer under the selection"),
                       gimp_item_get_name (GIMP_ITEM (drawable)));
          goto err_clear;
        }
    }
  return TRUE;

err_clear:
  gesso_bridge_input_clear (input);
  return FALSE;
}

/* --- realize strokes: the visible composite ------------------------------------------------- */

/* The alpha of STROKES on the canvas, cropped to its non-zero box. Sets *EMPTY when no pixel
 * of it is visible on the canvas, *FULL when it covers the whole canvas opaquely; in both
 * cases OUT stays empty. Reads the layer in strips so only the mask is held whole. */
static gboolean
read_stroke_alpha (GimpImage *image, GimpDrawable *strokes, GessoMask *out,
                   GeglRectangle *out_box, gboolean *empty, gboolean *full, GError **error)
{
  GeglRectangle canvas = { 0, 0, gimp_image_get_width (image), gimp_image_get_height (image) };
  GeglRectangle on_canvas, box = { 0, 0, 0, 0 };
  GError *engine_error = NULL;
  GeglBuffer *buffer;
  gfloat *strip;
  gint off_x = 0, off_y = 0, min_x = G_MAXINT, min_y = G_MAXINT, max_x = -1, max_y = -1;
  gboolean all_opaque = TRUE;

  *empty = TRUE;
  *full = FALSE;
  gimp_drawable_get_offsets (strokes, &off_x, &off_y);
  on_canvas.x = off_x;
  on_canvas.y = off_y;
  on_canvas.width = gimp_drawable_get_width (strokes);
  on_canvas.height = gimp_drawable_get_height (strokes);
  if (!gegl_rectangle_intersect (&on_canvas, &on_canvas, &canvas))
    return TRUE;
  if (!gegl_rectangle_equal (&on_canvas, &canvas))
    all_opaque = FALSE;

  strip = g_try_new (gfloat, (gsize) on_canvas.width * ALPHA_STRIP_ROWS * 4);
  if (strip == NULL)
    {
      g_set_error_literal (error, GIMP_PLUG_IN_ERROR, 0,
                           _("Not enough memory to read the stroke layer"));
      return FALSE;
    }
  buffer = gimp_drawable_get_buffer (strokes);

  /* first pass: the box of visible stroke pixels */
  for (gint y0 = 0; y0 < on_canvas.height; y0 += ALPHA_STRIP_ROWS)
    {
      gint rows = MIN (ALPHA_STRIP_ROWS, on_canvas.height - y0);
      GeglRectangle r = { on_canvas.x - off_x, on_canvas.y - off_y + y0, on_canvas.width,
                          rows };

      gegl_buffer_get (buffer, &r, 1.0, babl_format (PIXEL_FORMAT), strip,
                       GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
      for (gint y = 0; y < rows; y++)
        for (gint x = 0; x < on_canvas.width; x++)
          {
            gfloat a = strip[4 * ((gsize) y * on_canvas.width + x) + 3];

            if (a < 1.0f)
              all_opaque = FALSE;
            if (a > 0.0f)
              {
                min_x = MIN (min_x, x);
                max_x = MAX (max_x, x);
                min_y = MIN (min_y, y0 + y);
                max_y = MAX (max_y, y0 + y);
              }
          }
    }
  if (max_x < 0 || all_opaque)
    {
      *full = all_opaque;
      goto out;
    }
  *empty = FALSE;

  /* second pass: the alpha inside that box */
  gegl_rectangle_set (&box, on_canvas.x + min_x, on_canvas.y + min_y, max_x - min_x + 1,
                      max_y - min_y + 1);
  if (!gesso_mask_init (out, box.width, box.height, &engine_error))
    {
      g_object_unref (buffer);
      g_free (strip);
      propagate_engine_error (error, engine_error);
      return FALSE;
    }
  for (gint y0 = 0; y0 < box.height; y0 += ALPHA_STRIP_ROWS)
    {
      gint rows = MIN (ALPHA_STRIP_ROWS, box.height - y0);
      GeglRectangle r = { box.x - off_x, box.y - off_y + y0, box.width, rows };

      gegl_buffer_get (buffer, &r, 1.0, babl_format (PIXEL_FORMAT), strip,
                       GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
      for (gint y = 0; y < rows; y++)
        for (gint x = 0; x < box.width; x++)
          out->values[(gsize) (y0 + y) * box.width + x] =
            strip[4 * ((gsize) y * box.width + x) + 3];
    }

out:
  *out_box = box;
  g_object_unref (buffer);
  g_free (strip);
  return TRUE;
}

gboolean
gesso_bridge_read_control (GimpDrawable *drawable, const GessoBridgeInput *input,
                           GessoImage *out, GError **error)
{
  gint off_x = 0, off_y = 0;
  GeglRectangle rect;

  gimp_drawable_get_offsets (drawable, &off_x, &off_y);
  gegl_rectangle_set (&rect, input->image_x - off_x, input->image_y - off_y,
                      (guint) input->width, (guint) input->height);
  return read_pixels (drawable, &rect, out, error);
}

/* DST (covering DST_RECT on the canvas, zero-filled) gets SRC (covering SRC_RECT) where they
 * overlap. */
static void
paste_mask (GessoMask *dst, const GeglRectangle *dst_rect, const GessoMask *src,
            const GeglRectangle *src_rect)
{
  GeglRectangle both;

  if (!gegl_rectangle_intersect (&both, dst_rect, src_rect))
    return;
  for (gint y = both.y; y < both.y + both.height; y++)
    memcpy (dst->values + (gsize) (y - dst_rect->y) * dst->width + (both.x - dst_rect->x),
            src->values + (gsize) (y - src_rect->y) * src->width + (both.x - src_rect->x),
            sizeof (gfloat) * both.width);
}

gboolean
gesso_bridge_read_visible (GimpImage *image, GimpDrawable *strokes, gint pad,
                           GessoBridgeInput *input, GError **error)
{
  GeglRectangle canvas = { 0, 0, gimp_image_get_width (image), gimp_image_get_height (image) };
  GeglRectangle box, crop;
  GessoMask stroke_mask = { 0 };
  GimpLayer *visible = NULL;
  gboolean has_selection = FALSE, no_strokes = TRUE, full = FALSE;
  gint x1, y1, x2, y2;

  memset (input, 0, sizeof *input);
  gimp_selection_bounds (image, &has_selection, &x1, &y1, &x2, &y2);
  if (has_selection)
    {
      gegl_rectangle_set (&box, x1, y1, x2 - x1, y2 - y1);
      if (!pad_and_clip (&box, pad, &canvas, &crop))
        crop = canvas;
    }
  else
    {
      if (!read_stroke_alpha (image, strokes, &stroke_mask, &box, &no_strokes, &full, error))
        return FALSE;
      if (no_strokes || full)
        crop = canvas;              /* no strokes, or a whole sketch: realise everything */
      else
        pad_and_clip (&box, pad, &canvas, &crop);
    }

  /* A layer made from the visible composite, never inserted into the image: reading it leaves
   * the image and its undo history as they were. */
  visible = gimp_layer_new_from_visible (image, image, "gesso-visible");
  if (visible == NULL)
    {
      g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                   _("Gesso could not read what is visible in the image: %s"),
                   gimp_pdb_get_last_error (gimp_get_pdb ()));
      goto err_clear;
    }
  input->image_x = crop.x;
  input->image_y = crop.y;
  input->width = crop.width;
  input->height = crop.height;
  if (!read_pixels (GIMP_DRAWABLE (visible), &crop, &input->image, error))
    goto err_clear;

  if (has_selection)
    {
      if (!read_selection (image, &crop, &input->mask, error))
        goto err_clear;
    }
  else if (!no_strokes && !full)
    {
      GError *engine_error = NULL;

      if (!gesso_mask_init (&input->mask, crop.width, crop.height, &engine_error))
        {
          propagate_engine_error (error, engine_error);
          goto err_clear;
        }
      memset (input->mask.values, 0, sizeof (gfloat) * crop.width * crop.height);
      paste_mask (&input->mask, &crop, &stroke_mask, &box);
      input->mask_from_strokes = TRUE;
    }
  gimp_item_delete (GIMP_ITEM (visible));
  gesso_mask_clear (&stroke_mask);
  return TRUE;

err_clear:
  if (visible != NULL)
    gimp_item_delete (GIMP_ITEM (visible));
  gesso_mask_clear (&stroke_mask);
  gesso_bridge_input_clear (input);
  return FALSE;
}

/* --- generate: the target box --------------------------------------------------------------- */

gboolean
gesso_bridge_read_target (GimpImage *image, GessoBridgeInput *input, GError **error)
{
  GeglRectangle canvas = { 0, 0, gimp_image_get_width (image), gimp_image_get_height (image) };
  GeglRectangle box = canvas;
  gboolean has_selection = FALSE;
  gint x1, y1, x2, y2;

  memset (input, 0, sizeof *input);
  gimp_selection_bounds (image, &has_selection, &x1, &y1, &x2, &y2);
  if (has_selection)
    {
      GeglRectangle sel = { x1, y1, x2 - x1, y2 - y1 };

      if (!gegl_rectangle_intersect (&box, &sel, &canvas))
        box = canvas;
    }
  input->image_x = box.x;
  input->image_y = box.y;
  input->width = box.width;
  input->height = box.height;
  if (has_selection && !read_selection (image, &box, &input->shape, error))
    {
      gesso_bridge_input_clear (input);
      return FALSE;
    }
  return TRUE;
}

/* --- writing the result ------------------------------------------------------------------- */

GimpLayer *
gesso_bridge_write_layer (GimpImage *image, GimpDrawable *above, const gchar *name,
                          const GessoBridgeInput *input, const GessoEditResult *result,
                          GError **error)
{
  const GessoImage *res = &result->image;
  const GessoMask *blend = &result->blend;
  const gboolean shaped = input->shape.values != NULL;
  GimpImageType type;
  GimpLayer *layer;
  GimpItem *parent;
  GeglBuffer *buffer;
  gfloat *alpha, *pixels;
  gint min_x = G_MAXINT, min_y = G_MAXINT, max_x = -1, max_y = -1, tw, th;
  gsize n = (gsize) res->width * (gsize) res->height;

  /* alpha = blend x source alpha (x the selection for generate) */
  alpha = g_try_new (gfloat, MAX (n, 1));
  if (alpha == NULL)
    goto err_memory;
  for (gint y = 0; y < res->height; y++)
    for (gint x = 0; x < res->width; x++)
      {
        gsize i = (gsize) y * res->width + x;
        gfloat a = res->pixels[4 * i + 3];

        if (blend->values != NULL && blend->width == res->width
            && blend->height == res->height)
          a *= blend->values[i];
        if (shaped)
          {
            gint sx = result->x + x, sy = result->y + y;

            a *= (sx >= 0 && sy >= 0 && sx < input->shape.width && sy < input->shape.height)
                 ? input->shape.values[(gsize) sy * input->shape.width + sx] : 0.0f;
          }
        a = CLAMP (a, 0.0f, 1.0f);
        alpha[i] = a;
        if (a > 0.0f)
          {
            min_x = MIN (min_x, x);
            max_x = MAX (max_x, x);
            min_y = MIN (min_y, y);
            max_y = MAX (max_y, y);
          }
      }
  if (max_x < 0)
    {
      /* nothing visible changed; keep the region so the run still leaves its layer */
      min_x = min_y = 0;
      max_x = res->width - 1;
      max_y = res->height - 1;
    }
  tw = max_x - min_x + 1;
  th = max_y - min_y + 1;

  /* the layer covers only the changed box */
  pixels = g_try_new (gfloat, (gsize) tw * th * 4);
  if (pixels == NULL)
    {
      g_free (alpha);
      goto err_memory;
    }
  for (gint y = 0; y < th; y++)
    for (gint x = 0; x < tw; x++)
      {
        gsize src = (gsize) (min_y + y) * res->width + (min_x + x);
        gsize dst = (gsize) y * tw + x;

        memcpy (pixels + 4 * dst, res->pixels + 4 * src, 3 * sizeof (gfloat));
        pixels[4 * dst + 3] = alpha[src];
      }
  g_free (alpha);

  type = gimp_image_get_base_type (image) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  layer = gimp_layer_new (image, name, tw, th, type, 100.0, GIMP_LAYER_MODE_NORMAL);
  if (layer == NULL)
    {
      g_free (pixels);
      g_set_error (error, GIMP_PLUG_IN_ERROR, 0, _("Gesso could not create the new layer: %s"),
                   gimp_pdb_get_last_error (gimp_get_pdb ()));
      return NULL;
    }
  parent = gimp_item_get_parent (GIMP_ITEM (above));
  if (!gimp_image_insert_layer (image, layer, parent ? GIMP_LAYER (parent) : NULL,
                                gimp_image_get_item_position (image, GIMP_ITEM (above))))
    {
      g_free (pixels);
      g_set_error (error, GIMP_PLUG_IN_ERROR, 0, _("Gesso could not add the new layer: %s"),
                   gimp_pdb_get_last_error (gimp_get_pdb ()));
      gimp_item_delete (GIMP_ITEM (layer));
      return NULL;
    }
  gimp_layer_set_offsets (layer, input->image_x + result->x + min_x,
                          input->image_y + result->y + min_y);
  /* the engine blends sRGB-encoded values; so does the layer, so soft edges look as planned */
  gimp_layer_set_composite_space (layer, GIMP_LAYER_COLOR_SPACE_RGB_PERCEPTUAL);

  buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (layer));
  gegl_buffer_set (buffer, GEGL_RECTANGLE (0, 0, tw, th), 0, babl_format (PIXEL_FORMAT), pixels,
                   GEGL_AUTO_ROWSTRIDE);
  g_object_unref (buffer);              /* flushes the tiles to GIMP */
  g_free (pixels);
  gimp_drawable_update (GIMP_DRAWABLE (layer), 0, 0, tw, th);
  return layer;

err_memory:
  g_set_error_literal (error, GIMP_PLUG_IN_ERROR, 0,
                       _("Not enough memory to write the result layer"));
  return NULL;
}
