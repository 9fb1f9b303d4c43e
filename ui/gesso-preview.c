/* Gesso: the dialog's preview pane.
 *
 * A preview is a real edit at toy size: GESSO_PREVIEW_STEPS steps on about
 * GESSO_PREVIEW_BUDGET pixels. Everything that talks to GIMP or GTK (reading the image and
 * the selection, drawing the result) happens on the main thread; only gesso_model_open() and
 * gesso_edit_run() run on the worker thread, on data the job owns.
 *
 * Threads and lifetimes. A PreviewJob is reference counted: the pane holds one reference
 * while the job is its current one, the worker another until its "finished" idle has run,
 * and each queued progress idle one more. Cancel is an atomic flag that the progress
 * callback returns as FALSE, so the engine stops within one step. The worker never touches
 * the pane: results travel back through g_idle_add(), and an idle whose job is no longer
 * the pane's current one (the dialog was closed) does nothing. Closing the dialog sets the
 * flag and joins the thread before anything the worker could read is freed, except while the
 * worker is still loading the model, which cannot be interrupted and may take many seconds:
 * then the thread is left to finish on its own data (the job holds everything it reads), so
 * that Cancel closes the dialog at once.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "gesso-dialog.h"
#include "gesso-ui-private.h"

typedef struct _PreviewJob PreviewJob;

struct _GessoPreview
{
  GimpProcedureConfig *config;
  GimpImage *image;
  GimpDrawable *drawable;
  GessoEditKind kind;

  GtkWidget *box;
  GtkWidget *picture;
  GtkWidget *progress;
  GtkWidget *preview_button;
  GtkWidget *stop_button;
  GtkWidget *status;

  GdkPixbuf *base;              /* the image as it looks now, at preview size */
  gdouble scale;                /* preview pixels per image pixel */

  GessoModel *model;            /* the model the last preview opened, kept for the next */
  gchar *model_path;
  gchar *vae_path;              /* its separate VAE; NULL: its own */

  PreviewJob *job;              /* the running job, or NULL */
  GThread *thread;
  guint pulse_id;
  guint prepare_id;             /* a Preview click waiting for its busy state to be drawn */
  gboolean drew_seed;

  GessoPreviewDoneFunc done_func;
  gpointer done_data;
};

struct _PreviewJob
{
  gatomicrefcount ref_count;
  gint cancel;                  /* atomic; 1: stop at the next step */
  gint loading;                 /* atomic; 1 while the worker opens the model */
  GessoPreview *owner;          /* main thread only; NULL once the pane let go of the job */

  gchar *model_path;
  gchar *vae_path;              /* a separate VAE, or NULL */
  GessoModel *model;            /* borrowed from the pane, or the one opened by the worker */
  GessoModel *opened;           /* opened by the worker; the pane adopts it when done */

  GessoEditParams params;
  gchar *prompt;
  gchar *negative_prompt;
  gchar *source_prompt;
  gchar *sampler;
  GArray *lora_uses;            /* GessoLoraUse: the prompt's <lora:...> tags */
  GPtrArray *lora_paths;        /* their paths */
  GessoImage input;             /* empty for generate */
  GessoMask mask;
  gboolean has_mask;
  int out_x, out_y;             /* where INPUT (generate: the new layer) lies, preview pixels */

  gboolean ok;
  GessoEditResult result;
  GError *error;
};

typedef struct
{
  PreviewJob *job;
  int step;
  int total;
  GdkPixbuf *estimate;          /* the engine's per-step preview, or NULL */
} ProgressUpdate;

/* --- jobs ------------------------------------------------------------------------------- */

static PreviewJob *
job_new (void)
{
  PreviewJob *job = g_new0 (PreviewJob, 1);

  g_atomic_ref_count_init (&job->ref_count);
  return job;
}

static PreviewJob *
job_ref (PreviewJob *job)
{
  g_atomic_ref_count_inc (&job->ref_count);
  return job;
}

static void
job_unref (gpointer data)
{
  PreviewJob *job = data;

  if (!g_atomic_ref_count_dec (&job->ref_count))
    return;
  g_clear_pointer (&job->opened, gesso_model_free);
  gesso_edit_result_clear (&job->result);
  gesso_image_clear (&job->input);
  gesso_mask_clear (&job->mask);
  g_clear_error (&job->error);
  g_free (job->model_path);
  g_free (job->vae_path);
  g_free (job->prompt);
  g_free (job->negative_prompt);
  g_free (job->source_prompt);
  g_free (job->sampler);
  g_clear_pointer (&job->lora_uses, g_array_unref);
  g_clear_pointer (&job->lora_paths, g_ptr_array_unref);
  g_free (job);
}

static void
progress_update_free (gpointer data)
{
  ProgressUpdate *update = data;

  g_clear_object (&update->estimate);
  job_unref (update->job);
  g_free (update);
}

/* --- pixels ----------------------------------------------------------------------------- */

static inline guchar
to_u8 (float v)
{
  return (guchar) lrintf (CLAMP (v, 0.0f, 1.0f) * 255.0f);
}

/* An RGBA pixbuf of IMAGE; alpha times BLEND when given (same size). Any thread. */
static GdkPixbuf *
pixbuf_from_image (const GessoImage *image, const GessoMask *blend)
{
  GdkPixbuf *pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, TRUE, 8, image->width, image->height);
  guchar *pixels;
  int stride;

  if (pixbuf == NULL)
    return NULL;
  pixels = gdk_pixbuf_get_pixels (pixbuf);
  stride = gdk_pixbuf_get_rowstride (pixbuf);
  for (int y = 0; y < image->height; y++)
    for (int x = 0; x < image->width; x++)
      {
        size_t i = (size_t) y * (size_t) image->width + (size_t) x;
        const float *src = image->pixels + 4 * i;
        guchar *dst = pixels + (size_t) y * (size_t) stride + 4 * (size_t) x;
        float alpha = src[3];

        if (blend != NULL && blend->values != NULL)
          alpha *= blend->values[i];
        dst[0] = to_u8 (src[0]);
        dst[1] = to_u8 (src[1]);
        dst[2] = to_u8 (src[2]);
        dst[3] = to_u8 (alpha);
      }
  return pixbuf;
}

static gboolean
image_from_pixbuf (GdkPixbuf *pixbuf, GessoImage *image, GError **error)
{
  int w = gdk_pixbuf_get_width (pixbuf);
  int h = gdk_pixbuf_get_height (pixbuf);
  int n = gdk_pixbuf_get_n_channels (pixbuf);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);
  const guchar *pixels = gdk_pixbuf_read_pixels (pixbuf);

  if (!gesso_image_init (image, w, h, error))
    return FALSE;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        const guchar *src = pixels + (size_t) y * (size_t) stride + (size_t) (n * x);
        float *dst = image->pixels + 4 * ((size_t) y * (size_t) w + (size_t) x);

        dst[0] = src[0] / 255.0f;
        dst[1] = src[1] / 255.0f;
        dst[2] = src[2] / 255.0f;
        dst[3] = n == 4 ? src[3] / 255.0f : 1.0f;
      }
  return TRUE;
}

/* --- reading the image (main thread) ----------------------------------------------------- */

static GdkPixbuf *
read_base (GimpImage *image, gdouble *scale)
{
  int iw = gimp_image_get_width (image);
  int ih = gimp_image_get_height (image);
  int side = GESSO_PREVIEW_SIZE;
  int w = iw >= ih ? side : MAX (1, (int) lround ((double) side * iw / ih));
  int h = ih >= iw ? side : MAX (1, (int) lround ((double) side * ih / iw));
  GdkPixbuf *thumb = gimp_image_get_thumbnail (image, w, h, GIMP_PIXBUF_KEEP_ALPHA);
  GdkPixbuf *rgba;

  if (thumb == NULL)
    return NULL;
  rgba = gdk_pixbuf_add_alpha (thumb, FALSE, 0, 0, 0);
  g_object_unref (thumb);
  *scale = (gdouble) gdk_pixbuf_get_width (rgba) / iw;
  return rgba;
}

/* The selection over the preview-pixel box X, Y, W x H at SCALE, soft edges kept. */
static gboolean
read_selection (GimpImage *image, int x, int y, int w, int h, gdouble scale, GessoMask *mask,
                GError **error)
{
  GimpSelection *selection = gimp_image_get_selection (image);
  GeglBuffer *buffer;

  if (!gesso_mask_init (mask, w, h, error))
    return FALSE;
  buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (selection));
  gegl_buffer_get (buffer, GEGL_RECTANGLE (x, y, w, h), scale, babl_format ("Y float"),
                   mask->values, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);
  return TRUE;
}

/* DRAWABLE's own pixels at SCALE, as the plug-in reads them for inpaint and restyle; *X, *Y
 * get its place on the preview canvas. */
static gboolean
read_drawable (GimpDrawable *drawable, gdouble scale, int *x, int *y, GessoImage *image,
               GError **error)
{
  GeglBuffer *buffer;
  int ox = 0, oy = 0;
  int w = MAX (1, (int) lround (gimp_drawable_get_width (drawable) * scale));
  int h = MAX (1, (int) lround (gimp_drawable_get_height (drawable) * scale));

  if (!gesso_image_init (image, w, h, error))
    return FALSE;
  gimp_drawable_get_offsets (drawable, &ox, &oy);
  *x = (int) lround (ox * scale);
  *y = (int) lround (oy * scale);
  buffer = gimp_drawable_get_buffer (drawable);
  gegl_buffer_get (buffer, GEGL_RECTANGLE (0, 0, w, h), scale, babl_format ("R'G'B'A float"),
                   image->pixels, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);
  return TRUE;
}

/* The alpha of a strokes layer placed in the image, W x H at SCALE. FALSE with no error when
 * the layer is not a strokes layer (no alpha, the only layer) or is empty. */
static gboolean
read_strokes (GimpImage *image, GimpDrawable *drawable, int w, int h, gdouble scale,
              GessoMask *mask, GError **error)
{
  g_autofree GimpLayer **layers = NULL;
  g_autofree float *ya = NULL;
  GeglBuffer *buffer;
  int ox = 0, oy = 0, dw, dh, sx, sy;
  gboolean any = FALSE;

  if (drawable == NULL || !GIMP_IS_LAYER (drawable) || !gimp_drawable_has_alpha (drawable))
    return FALSE;
  layers = gimp_image_get_layers (image);
  if (gimp_core_object_array_get_length ((GObject **) layers) < 2)
    return FALSE;

  gimp_drawable_get_offsets (drawable, &ox, &oy);
  dw = MAX (1, (int) ceil (gimp_drawable_get_width (drawable) * scale));
  dh = MAX (1, (int) ceil (gimp_drawable_get_height (drawable) * scale));
  sx = (int) floor (ox * scale);
  sy = (int) floor (oy * scale);
  ya = g_try_new (float, 2 * (size_t) dw * (size_t) dh);
  if (ya == NULL || !gesso_mask_init (mask, w, h, error))
    return FALSE;

  buffer = gimp_drawable_get_buffer (drawable);
  gegl_buffer_get (buffer, GEGL_RECTANGLE (0, 0, dw, dh), scale, babl_format ("YA float"), ya,
                   GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);

  memset (mask->values, 0, sizeof (float) * (size_t) w * (size_t) h);
  for (int y = 0; y < dh; y++)
    for (int x = 0; x < dw; x++)
      {
        int mx = sx + x, my = sy + y;
        float a = ya[2 * ((size_t) y * (size_t) dw + (size_t) x) + 1];

        if (mx < 0 || my < 0 || mx >= w || my >= h)
          continue;
        mask->values[(size_t) my * (size_t) w + (size_t) mx] = a;
        any = any || a > 0.0f;
      }
  if (!any)
    gesso_mask_clear (mask);
  return any;
}

/* --- preparing a job (main thread) ------------------------------------------------------- */

static gboolean
job_prepare (GessoPreview *p, PreviewJob *job, GError **error)
{
  GimpProcedureConfig *config = p->config;
  GessoEditParams *params = &job->params;
  g_autofree gchar *model = gesso_ui_config_get_string (config, "model");
  g_autofree gchar *vae = gesso_ui_config_get_string (config, "vae");
  g_autoptr (GError) vae_error = NULL;
  g_autofree gchar *nick = NULL;
  gdouble s = p->scale;
  int steps;

  if ((job->model_path = gesso_ui_resolve_model (model, error)) == NULL)
    return FALSE;
  job->vae_path = gesso_ui_resolve_vae (vae, &vae_error);
  if (vae_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&vae_error));
      return FALSE;
    }
  if (p->model != NULL && g_strcmp0 (p->model_path, job->model_path) == 0
      && g_strcmp0 (p->vae_path, job->vae_path) == 0)
    job->model = p->model;

  if (gesso_ui_config_get_number (config, "random-seed", 0.0) != 0.0
      && gesso_ui_config_has (config, "seed"))
    {
      gesso_ui_config_set_number (config, "seed", g_random_int_range (0, G_MAXINT));
      p->drew_seed = TRUE;
    }

  gesso_edit_params_init (params, p->kind);
  {
    g_autofree gchar *prompt = gesso_ui_config_get_string (config, "prompt");

    job->lora_uses = g_array_new (FALSE, FALSE, sizeof (GessoLoraUse));
    job->lora_paths = g_ptr_array_new_with_free_func (g_free);
    job->prompt = gesso_ui_prompt_take_loras (prompt, job->lora_uses, job->lora_paths, error);
    if (job->prompt == NULL)
      return FALSE;
    params->loras = (const GessoLoraUse *) (gpointer) job->lora_uses->data;
    params->n_loras = (int) job->lora_uses->len;
  }
  job->negative_prompt = gesso_ui_config_get_string (config, "negative-prompt");
  job->source_prompt = gesso_ui_config_get_string (config, "source-prompt");
  nick = gesso_ui_config_get_string (config, "sampler");
  job->sampler = gesso_ui_sampler_engine_name (nick);
  params->prompt = job->prompt;
  params->negative_prompt = job->negative_prompt;
  params->source_prompt = job->source_prompt != NULL ? job->source_prompt : "";
  params->sampler = job->sampler;

  steps = (int) gesso_ui_config_get_number (config, "steps", params->steps);
  params->steps = CLAMP (steps, 1, GESSO_PREVIEW_STEPS);
  params->guidance = gesso_ui_config_get_number (config, "guidance", params->guidance);
  params->guidance_rescale = gesso_ui_config_get_number (config, "guidance-rescale",
                                                         params->guidance_rescale);
  params->strength = gesso_ui_config_get_number (config, "strength", params->strength);
  params->seed = (guint64) gesso_ui_config_get_number (config, "seed", 0.0);
  params->eta = gesso_ui_config_get_number (config, "eta", params->eta);
  params->jump_length = (int) gesso_ui_config_get_number (config, "jump-length",
                                                          params->jump_length);
  params->jump_length = CLAMP (params->jump_length, 1, params->steps);
  params->resample_count = (int) gesso_ui_config_get_number (config, "resample-count",
                                                             params->resample_count);
  params->clip_skip = (int) gesso_ui_config_get_number (config, "clip-skip", params->clip_skip);
  params->full_inversion = gesso_ui_config_get_number (config, "full-inversion",
                                                       params->full_inversion) != 0.0;
  /* distances are in image pixels; the preview works on a smaller copy */
  params->mask_grow = gesso_ui_config_get_number (config, "mask-grow", params->mask_grow) * s;
  params->mask_feather = gesso_ui_config_get_number (config, "mask-feather",
                                                     params->mask_feather) * s;
  params->context_margin = (int) lround (gesso_ui_config_get_number (config, "context-margin",
                                                                     params->context_margin) * s);
  params->pixel_budget = GESSO_PREVIEW_BUDGET;
  params->preview_size = GESSO_PREVIEW_SIZE;

  if (p->kind == GESSO_EDIT_GENERATE)
    {
      gboolean non_empty = FALSE;
      int x1 = 0, y1 = 0, x2 = gimp_image_get_width (p->image),
          y2 = gimp_image_get_height (p->image);

      if (!gimp_selection_bounds (p->image, &non_empty, &x1, &y1, &x2, &y2) || !non_empty)
        {
          x1 = y1 = 0;
          x2 = gimp_image_get_width (p->image);
          y2 = gimp_image_get_height (p->image);
        }
      job->out_x = (int) floor (x1 * s);
      job->out_y = (int) floor (y1 * s);
      params->width = MAX (8, (int) lround ((x2 - x1) * s));
      params->height = MAX (8, (int) lround ((y2 - y1) * s));
      return TRUE;
    }

  if (p->kind != GESSO_EDIT_SDEDIT && p->drawable != NULL)
    {
      /* inpaint and restyle work on the layer itself */
      if (!read_drawable (p->drawable, s, &job->out_x, &job->out_y, &job->input, error))
        return FALSE;
    }
  else if (p->base != NULL)
    {
      /* realize strokes works on what the user sees, strokes included */
      if (!image_from_pixbuf (p->base, &job->input, error))
        return FALSE;
    }
  else
    {
      g_set_error_literal (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                           _("The image could not be read for the preview."));
      return FALSE;
    }

  if (!gimp_selection_is_empty (p->image))
    {
      if (!read_selection (p->image, job->out_x, job->out_y, job->input.width,
                           job->input.height, s, &job->mask, error))
        return FALSE;
      job->has_mask = TRUE;
    }
  else if (p->kind == GESSO_EDIT_INPAINT)
    {
      g_set_error_literal (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                           _("Select the area to inpaint first."));
      return FALSE;
    }
  else if (p->kind == GESSO_EDIT_SDEDIT)
    {
      g_autoptr (GError) local = NULL;

      job->has_mask = read_strokes (p->image, p->drawable, job->input.width, job->input.height,
                                    s, &job->mask, &local);
      if (local != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
  return TRUE;
}

/* --- the worker thread ------------------------------------------------------------------- */

static gboolean progress_idle (gpointer data);
static gboolean finished_idle (gpointer data);

static gboolean
job_progress (int step, int total, const GessoImage *estimate, gpointer data)
{
  PreviewJob *job = data;
  ProgressUpdate *update;

  if (g_atomic_int_get (&job->cancel))
    return FALSE;
  update = g_new0 (ProgressUpdate, 1);
  update->job = job_ref (job);
  update->step = step;
  update->total = total;
  if (estimate != NULL && estimate->pixels != NULL)
    update->estimate = pixbuf_from_image (estimate, NULL);
  g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, progress_idle, update, progress_update_free);
  return !g_atomic_int_get (&job->cancel);
}

static gpointer
job_thread (gpointer data)
{
  PreviewJob *job = data;

  if (job->model == NULL && !g_atomic_int_get (&job->cancel))
    {
      GessoModelParams model_params;
      g_auto (GStrv) embedding_dirs = gesso_ui_asset_dirs_new (GESSO_ASSET_EMBEDDING);

      gesso_model_params_init (&model_params);
      model_params.path = job->model_path;
      model_params.vae = job->vae_path;
      model_params.embeddings = (const char *const *) embedding_dirs;
      g_atomic_int_set (&job->loading, 1);
      job->opened = gesso_model_open (&model_params, &job->error);
      job->model = job->opened;
      g_atomic_int_set (&job->loading, 0);
    }
  if (g_atomic_int_get (&job->cancel))
    g_set_error_literal (&job->error, GESSO_ERROR, GESSO_ERROR_CANCELLED, "cancelled");
  if (job->model != NULL && job->error == NULL)
    {
      job->params.progress = job_progress;
      job->params.progress_data = job;
      job->ok = gesso_edit_run (job->model, &job->params,
                                job->params.kind == GESSO_EDIT_GENERATE ? NULL : &job->input,
                                job->has_mask ? &job->mask : NULL, &job->result, &job->error);
    }
  /* hands this thread's reference to the idle */
  g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, finished_idle, job, job_unref);
  return NULL;
}

/* --- the pane (main thread) -------------------------------------------------------------- */

static void
set_running (GessoPreview *p, gboolean running)
{
  GdkWindow *window = gtk_widget_get_window (p->box);

  gtk_widget_set_sensitive (p->preview_button, !running);
  gtk_widget_set_sensitive (p->stop_button, running);
  if (window != NULL)
    {
      g_autoptr (GdkCursor) cursor = running ? gdk_cursor_new_from_name (
                                                 gdk_window_get_display (window), "progress")
                                             : NULL;

      gdk_window_set_cursor (gtk_widget_get_window (gtk_widget_get_toplevel (p->box)), cursor);
    }
}

static void
stop_pulse (GessoPreview *p)
{
  if (p->pulse_id != 0)
    {
      g_source_remove (p->pulse_id);
      p->pulse_id = 0;
    }
}

static gboolean
pulse (gpointer data)
{
  GessoPreview *p = data;

  gtk_progress_bar_pulse (GTK_PROGRESS_BAR (p->progress));
  return G_SOURCE_CONTINUE;
}

static void
set_status (GessoPreview *p, const gchar *text)
{
  gtk_label_set_text (GTK_LABEL (p->status), text != NULL ? text : "");
  gtk_widget_set_visible (p->status, text != NULL && text[0] != '\0');
}

/* Shows OVERLAY (any size) scaled into W x H at X, Y over the image. */
static void
show_overlay (GessoPreview *p, GdkPixbuf *overlay, int x, int y, int w, int h)
{
  g_autoptr (GdkPixbuf) canvas = NULL;
  int cw, ch, x0, y0, x1, y1;

  if (p->base != NULL)
    canvas = gdk_pixbuf_copy (p->base);
  else
    {
      canvas = gdk_pixbuf_new (GDK_COLORSPACE_RGB, TRUE, 8, w, h);
      gdk_pixbuf_fill (canvas, 0);
      x = y = 0;
    }
  if (overlay != NULL && w > 0 && h > 0)
    {
      cw = gdk_pixbuf_get_width (canvas);
      ch = gdk_pixbuf_get_height (canvas);
      x0 = MAX (x, 0);
      y0 = MAX (y, 0);
      x1 = MIN (x + w, cw);
      y1 = MIN (y + h, ch);
      if (x1 > x0 && y1 > y0)
        gdk_pixbuf_composite (overlay, canvas, x0, y0, x1 - x0, y1 - y0, x, y,
                              (double) w / gdk_pixbuf_get_width (overlay),
                              (double) h / gdk_pixbuf_get_height (overlay),
                              GDK_INTERP_BILINEAR, 255);
    }
  gtk_image_set_from_pixbuf (GTK_IMAGE (p->picture), canvas);
}

static gboolean
progress_idle (gpointer data)
{
  ProgressUpdate *update = data;
  PreviewJob *job = update->job;
  GessoPreview *p = job->owner;
  g_autofree gchar *text = NULL;

  if (p == NULL || p->job != job)
    return G_SOURCE_REMOVE;
  stop_pulse (p);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (p->progress),
                                 update->total > 0 ? (double) update->step / update->total : 0);
  /* TRANSLATORS: progress of a preview, e.g. "Step 2 of 4" */
  text = g_strdup_printf (_("Step %d of %d"), update->step, update->total);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress), text);
  /* the engine's preview covers generate's output, or the whole input with the edit in it */
  if (update->estimate != NULL && job->params.kind == GESSO_EDIT_GENERATE)
    show_overlay (p, update->estimate, job->out_x, job->out_y, job->params.width,
                  job->params.height);
  else if (update->estimate != NULL)
    show_overlay (p, update->estimate, job->out_x, job->out_y, job->input.width,
                  job->input.height);
  return G_SOURCE_REMOVE;
}

/* Hands the worker's model to the pane's cache; the thread must have been joined. */
static void
adopt_model (GessoPreview *p, PreviewJob *job)
{
  if (job->opened == NULL)
    return;
  g_clear_pointer (&p->model, gesso_model_free);
  g_free (p->model_path);
  g_free (p->vae_path);
  p->model = g_steal_pointer (&job->opened);
  p->model_path = g_strdup (job->model_path);
  p->vae_path = g_strdup (job->vae_path);
}

static gboolean
finished_idle (gpointer data)
{
  PreviewJob *job = data;
  GessoPreview *p = job->owner;

  if (p == NULL || p->job != job)
    return G_SOURCE_REMOVE;

  g_thread_join (p->thread);
  p->thread = NULL;
  adopt_model (p, job);
  stop_pulse (p);
  set_running (p, FALSE);

  if (job->ok)
    {
      const GessoEditResult *r = &job->result;
      g_autoptr (GdkPixbuf) overlay = pixbuf_from_image (&r->image, &r->blend);

      if (job->params.kind == GESSO_EDIT_GENERATE)
        show_overlay (p, overlay, job->out_x + r->x, job->out_y + r->y, job->params.width,
                      job->params.height);
      else
        show_overlay (p, overlay, job->out_x + r->x, job->out_y + r->y, r->image.width,
                      r->image.height);
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (p->progress), 1.0);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress), _("Preview ready"));
      set_status (p, NULL);
    }
  else
    {
      gboolean cancelled = g_error_matches (job->error, GESSO_ERROR, GESSO_ERROR_CANCELLED);

      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (p->progress), 0.0);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress),
                                 cancelled ? _("Preview cancelled") : _("Preview failed"));
      set_status (p, cancelled || job->error == NULL ? NULL : job->error->message);
    }

  g_debug ("preview finished: %s", job->ok ? "ok" : job->error ? job->error->message : "?");

  /* the pane's reference; the idle's goes with its destroy notify */
  p->job = NULL;
  job->owner = NULL;
  job_unref (job);
  if (p->done_func != NULL)
    p->done_func (p, p->done_data);
  return G_SOURCE_REMOVE;
}

static void
start_pulse (GessoPreview *p)
{
  stop_pulse (p);
  p->pulse_id = g_timeout_add (120, pulse, p);
}

/* Reads the image and starts the worker: the second half of gesso_preview_start. */
static gboolean
prepare_and_run (gpointer data)
{
  GessoPreview *p = data;
  g_autoptr (GError) error = NULL;
  PreviewJob *job = job_new ();

  p->prepare_id = 0;
  if (!job_prepare (p, job, &error))
    {
      job_unref (job);
      stop_pulse (p);
      set_running (p, FALSE);
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (p->progress), 0.0);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress), _("No preview"));
      set_status (p, error->message);
      g_debug ("preview finished: %s", error->message);
      if (p->done_func != NULL)
        p->done_func (p, p->done_data);
      return G_SOURCE_REMOVE;
    }

  p->thread = g_thread_try_new ("gesso-preview", job_thread, job_ref (job), &error);
  if (p->thread == NULL)
    {
      job_unref (job);
      job_unref (job);
      stop_pulse (p);
      set_running (p, FALSE);
      set_status (p, error->message);
      return G_SOURCE_REMOVE;
    }
  job->owner = p;
  p->job = job;
  g_debug ("preview started: %s", job->model_path);
  /* TRANSLATORS: the preview's progress text while the prompt (and picture) are encoded,
   * before the first step */
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress),
                             job->model != NULL ? _("Encoding the prompt…")
                                                : _("Loading model…"));
  return G_SOURCE_REMOVE;
}

void
gesso_preview_start (GessoPreview *p)
{
  if (p->job != NULL || p->prepare_id != 0)
    return;

  /* busy at once: reading a large image takes a moment before the worker can start */
  set_running (p, TRUE);
  set_status (p, NULL);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (p->progress), 0.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress), _("Reading the image…"));
  start_pulse (p);
  /* a timeout rather than an idle, so that the busy state is drawn first */
  p->prepare_id = g_timeout_add (40, prepare_and_run, p);
}

static void
preview_clicked (GtkButton *button, GessoPreview *p)
{
  gesso_preview_start (p);
}

static void
stop_clicked (GtkButton *button, GessoPreview *p)
{
  if (p->prepare_id != 0)
    {
      g_source_remove (p->prepare_id);
      p->prepare_id = 0;
      stop_pulse (p);
      set_running (p, FALSE);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress), _("Preview cancelled"));
      return;
    }
  if (p->job == NULL)
    return;
  g_atomic_int_set (&p->job->cancel, 1);
  gtk_widget_set_sensitive (p->stop_button, FALSE);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress), _("Cancelling…"));
}

GessoPreview *
gesso_preview_new (GimpProcedureConfig *config, GimpImage *image, GimpDrawable *drawable,
                   GessoEditKind kind)
{
  GessoPreview *p = g_new0 (GessoPreview, 1);
  GtkWidget *frame;
  GtkWidget *buttons;
  g_autofree gchar *tip = NULL;

  p->config = g_object_ref (config);
  p->image = image;
  p->drawable = drawable;
  p->kind = kind;
  p->scale = 1.0;
  p->base = read_base (image, &p->scale);

  p->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  g_object_ref_sink (p->box);

  frame = gtk_frame_new (NULL);
  gtk_frame_set_shadow_type (GTK_FRAME (frame), GTK_SHADOW_IN);
  gtk_widget_set_halign (frame, GTK_ALIGN_CENTER);
  gtk_box_pack_start (GTK_BOX (p->box), frame, FALSE, FALSE, 0);

  p->picture = gtk_image_new ();
  gtk_widget_set_size_request (p->picture, GESSO_PREVIEW_SIZE, GESSO_PREVIEW_SIZE);
  gtk_container_add (GTK_CONTAINER (frame), p->picture);
  if (p->base != NULL)
    gtk_image_set_from_pixbuf (GTK_IMAGE (p->picture), p->base);

  p->progress = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (p->progress), TRUE);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->progress), _("No preview yet"));
  gtk_progress_bar_set_pulse_step (GTK_PROGRESS_BAR (p->progress), 0.1);
  gtk_box_pack_start (GTK_BOX (p->box), p->progress, FALSE, FALSE, 0);

  buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_set_homogeneous (GTK_BOX (buttons), TRUE);
  gtk_box_pack_start (GTK_BOX (p->box), buttons, FALSE, FALSE, 0);

  p->preview_button = gtk_button_new_with_mnemonic (_("Pre_view"));
  tip = g_strdup_printf (_("Render a quick, low-resolution preview in %d steps. The result "
                           "differs from the full run in detail, not in its idea."),
                         GESSO_PREVIEW_STEPS);
  gtk_widget_set_tooltip_text (p->preview_button, tip);
  gtk_box_pack_start (GTK_BOX (buttons), p->preview_button, TRUE, TRUE, 0);
  g_signal_connect (p->preview_button, "clicked", G_CALLBACK (preview_clicked), p);

  p->stop_button = gtk_button_new_with_label (_("Stop"));
  gtk_widget_set_tooltip_text (p->stop_button, _("Cancel the preview"));
  gtk_box_pack_start (GTK_BOX (buttons), p->stop_button, TRUE, TRUE, 0);
  g_signal_connect (p->stop_button, "clicked", G_CALLBACK (stop_clicked), p);
  set_running (p, FALSE);

  p->status = gtk_label_new (NULL);
  gtk_label_set_line_wrap (GTK_LABEL (p->status), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (p->status), 24);
  gtk_label_set_xalign (GTK_LABEL (p->status), 0.0);
  gtk_label_set_selectable (GTK_LABEL (p->status), TRUE);
  gtk_widget_set_size_request (p->status, GESSO_PREVIEW_SIZE, -1);
  gtk_box_pack_start (GTK_BOX (p->box), p->status, FALSE, FALSE, 0);

  gtk_widget_show_all (p->box);
  gtk_widget_hide (p->status);
  gtk_widget_set_no_show_all (p->status, TRUE);
  return p;
}

GtkWidget *
gesso_preview_get_widget (GessoPreview *p)
{
  return p->box;
}

void
gesso_preview_set_done_func (GessoPreview *p, GessoPreviewDoneFunc func, gpointer data)
{
  p->done_func = func;
  p->done_data = data;
}

gboolean
gesso_preview_drew_seed (GessoPreview *p)
{
  return p->drew_seed;
}

void
gesso_preview_free (GessoPreview *p)
{
  if (p == NULL)
    return;
  stop_pulse (p);
  if (p->prepare_id != 0)
    g_source_remove (p->prepare_id);
  if (p->job != NULL)
    {
      PreviewJob *job = p->job;
      gint64 t0 = g_get_monotonic_time ();

      /* the worker stops at its next step, or as soon as the model has loaded; its pending
       * idles find the job detached and do nothing */
      g_atomic_int_set (&job->cancel, 1);
      if (g_atomic_int_get (&job->loading))
        {
          /* loading cannot be interrupted: the thread finishes on the job's own data, which
           * its reference keeps, and the dialog closes now */
          g_thread_unref (p->thread);
          g_debug ("preview cancelled by closing the dialog while the model loads; left "
                   "to finish");
        }
      else
        {
          g_thread_join (p->thread);
          g_debug ("preview cancelled by closing the dialog; joined in %.2f s",
                   (g_get_monotonic_time () - t0) / 1e6);
          adopt_model (p, job);
        }
      p->thread = NULL;
      job->owner = NULL;
      p->job = NULL;
      job_unref (job);
    }
  g_clear_pointer (&p->model, gesso_model_free);
  g_free (p->model_path);
  g_free (p->vae_path);
  g_clear_object (&p->base);
  g_clear_object (&p->box);
  g_clear_object (&p->config);
  g_free (p);
}
