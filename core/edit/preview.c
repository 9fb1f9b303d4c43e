/* Per-step previews: the fitted latent-to-RGB map and the preview picture (see preview.h). */
#include "edit/preview.h"

#include <math.h>
#include <string.h>

#include "edit/model-private.h"
#include "edit/pipeline.h"
#include "edit/resample.h"
#include "io/io-private.h"
#include "model/taesd.h"
#include "sampling/rng.h"
#include <glib/gi18n-lib.h>

#define FIT_CELLS 16            /* the side of the latent decoded for the fit */
#define FIT_SEED 0x7072657669657721ull
#define RIDGE 1e-9

/* Where one preview column (or row) samples the latent grid: between cells I0 and I1 at T. */
typedef struct
{
  int i0, i1;
  float t;
} Tap;

struct GessoPreviewer
{
  const float *map;             /* borrowed from the model; NULL when TAESD decodes */
  GessoVae *taesd;              /* borrowed from the model; NULL: the map */
  GessoArena *scratch;          /* TAESD's, sized once */
  int channels;
  int latent_w, latent_h;
  int grid_w, grid_h;           /* the colour grid sampled: latent cells, or TAESD's pixels */
  size_t numel;
  float *latent;                /* [C, h, w]: the loop's estimate */
  float *cells;                 /* [3, grid_h, grid_w]: its colours */
  float *across;                /* [3, grid_h, preview width]: each grid row at each column */
  Tap *columns, *rows;          /* per preview column and row */
  float *weight;                /* per preview pixel: how much of the estimate shows */
  GessoImage base;              /* the input at preview size; empty for generate */
  GessoImage image;
};

/* --- the map -------------------------------------------------------------------------------- */

/* Solves the N x N symmetric positive definite system A X = B (3 right-hand sides, B is
 * N x 3) in place by Cholesky (A = L L^T); FALSE when A is not positive definite. */
static gboolean
cholesky_solve (double *a, double *b, int n)
{
  for (int j = 0; j < n; j++)
    {
      double d = a[j * n + j];

      for (int k = 0; k < j; k++)
        d -= a[j * n + k] * a[j * n + k];
      if (!(d > 0))
        return FALSE;
      a[j * n + j] = sqrt (d);
      for (int i = j + 1; i < n; i++)
        {
          double s = a[i * n + j];

          for (int k = 0; k < j; k++)
            s -= a[i * n + k] * a[j * n + k];
          a[i * n + j] = s / a[j * n + j];
        }
    }
  for (int o = 0; o < 3; o++)
    {
      for (int i = 0; i < n; i++)
        {
          double s = b[i * 3 + o];

          for (int k = 0; k < i; k++)
            s -= a[i * n + k] * b[k * 3 + o];
          b[i * 3 + o] = s / a[i * n + i];
        }
      for (int i = n - 1; i >= 0; i--)
        {
          double s = b[i * 3 + o];

          for (int k = i + 1; k < n; k++)
            s -= a[k * n + i] * b[k * 3 + o];
          b[i * 3 + o] = s / a[i * n + i];
        }
    }
  return TRUE;
}

static gboolean
fit_map (GessoModel *model, float *map, GError **error)
{
  const int f = gesso_vae_latent_factor (model->vae);
  const int channels = gesso_vae_latent_channels (model->vae), n = channels + 1;
  const int64_t plane = FIT_CELLS * FIT_CELLS, side = (int64_t) FIT_CELLS * f;
  g_autofree float *latent = g_try_new (float, channels * plane);
  g_autofree float *image = g_try_new (float, 3 * side * side);
  g_autofree double *ata = g_try_new0 (double, n * n);
  g_autofree double *atb = g_try_new0 (double, n * 3);
  g_autofree double *z = g_try_new (double, n);
  double ridge = 0;
  GessoRng rng;

  if (latent == NULL || image == NULL || ata == NULL || atb == NULL || z == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory to fit the preview colours"));
      return FALSE;
    }
  gesso_rng_init (&rng, FIT_SEED);
  gesso_rng_next_normal (&rng, latent, (size_t) (channels * plane));
  if (!gesso_pipeline_decode (model, latent, FIT_CELLS, FIT_CELLS, image, error))
    return FALSE;

  for (int64_t cell = 0; cell < plane; cell++)
    {
      int64_t cy = cell / FIT_CELLS, cx = cell % FIT_CELLS;
      double colour[3];

      /* the cell's colour: the mean of its f x f pixels, from [-1, 1] to [0, 1] */
      for (int o = 0; o < 3; o++)
        {
          double sum = 0;

          for (int y = 0; y < f; y++)
            for (int x = 0; x < f; x++)
              sum += image[(o * side + cy * f + y) * side + cx * f + x];
          colour[o] = (sum / (f * f) + 1) / 2;
        }
      for (int c = 0; c < channels; c++)
        z[c] = latent[c * plane + cell];
      z[channels] = 1;
      for (int i = 0; i < n; i++)
        {
          for (int j = 0; j < n; j++)
            ata[i * n + j] += z[i] * z[j];
          for (int o = 0; o < 3; o++)
            atb[i * 3 + o] += z[i] * colour[o];
        }
    }
  for (int i = 0; i < n; i++)
    ridge += ata[i * n + i];
  ridge *= RIDGE / n;
  for (int i = 0; i < n; i++)
    ata[i * n + i] += ridge;
  if (!cholesky_solve (ata, atb, n))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_FAILED,
                   _("the model's VAE decoder gives no finite colours to fit previews to; turn "
                   "previews off"));
      return FALSE;
    }
  for (int o = 0; o < 3; o++)
    for (int i = 0; i < n; i++)
      map[o * n + i] = (float) atb[i * 3 + o];
  return TRUE;
}

const float *
gesso_model_preview_map (GessoModel *model, GError **error)
{
  float *map;

  g_return_val_if_fail (model != NULL, NULL);
  if (model->preview_map != NULL)
    return model->preview_map;
  map = g_new (float, 3 * (gesso_vae_latent_channels (model->vae) + 1));
  if (!fit_map (model, map, error))
    {
      g_free (map);
      return NULL;
    }
  model->preview_map = map;
  return map;
}

/* --- TAESD beside the model -------------------------------------------------------------- */

/* Where users keep TAESD next to a model: in its folder, or in the vae_approx/ (ComfyUI) or
 * VAE-approx/ (A1111) folder beside the checkpoints' folder. */
static GessoVae *
find_taesd (GessoModel *model)
{
  g_autofree char *dir = g_strdup (gesso_model_files_dir (model->files));
  g_autofree char *parent = g_path_get_dirname (dir);
  const char *const candidates[][2] = {
    { dir, "taesd_decoder.safetensors" },
    { dir, "taesd" },
    { parent, "vae_approx/taesd_decoder.safetensors" },
    { parent, "VAE-approx/taesd_decoder.safetensors" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
    {
      g_autofree char *path = g_build_filename (candidates[i][0], candidates[i][1], NULL);
      GessoTaesd *taesd;

      if (!g_file_test (path, G_FILE_TEST_EXISTS) || !gesso_taesd_detect (path))
        continue;
      taesd = gesso_taesd_open (path, NULL);
      /* one for another latent (taesd3, taef1) or without a decoder is no preview */
      if (taesd != NULL && gesso_taesd_has_decoder (taesd)
          && gesso_taesd_latent_channels (taesd) == gesso_vae_latent_channels (model->vae))
        return gesso_vae_new_taesd (taesd);
      gesso_taesd_free (taesd);
    }
  return NULL;
}

/* The TAESD previews decode with: the model's own VAE when it is one (--vae), else one found
 * beside the model (looked for once); NULL: previews use the fitted map. */
static GessoVae *
preview_taesd (GessoModel *model)
{
  if (gesso_vae_is_taesd (model->vae))
    return model->vae;
  if (!model->preview_taesd_sought)
    {
      model->preview_taesd = find_taesd (model);
      model->preview_taesd_sought = TRUE;
    }
  return model->preview_taesd;
}

/* Decodes the whole latent into the colour grid. (Shrinking the latent to what the preview
 * shows first would save work, but a latent is no picture: on the tiny models the decode of a
 * 4x smaller latent missed the result by 0.39 per channel, where the whole one misses by the
 * sampler's last step only.) */
static gboolean
taesd_cells (GessoPreviewer *pv, GError **error)
{
  const size_t grid = (size_t) pv->grid_w * (size_t) pv->grid_h;

  if (!gesso_vae_decode (pv->taesd, pv->latent, pv->latent_h, pv->latent_w, pv->cells,
                         pv->scratch, error))
    return FALSE;
  for (size_t i = 0; i < 3 * grid; i++)
    pv->cells[i] = (pv->cells[i] + 1.0f) / 2.0f;
  return TRUE;
}

static void
map_cells (GessoPreviewer *pv)
{
  const int n = pv->channels + 1;
  const size_t plane = (size_t) pv->latent_w * (size_t) pv->latent_h;

  for (int o = 0; o < 3; o++)
    {
      const float *m = pv->map + o * n;

      for (size_t cell = 0; cell < plane; cell++)
        {
          float v = m[pv->channels];

          for (int c = 0; c < pv->channels; c++)
            v += m[c] * pv->latent[c * plane + cell];
          pv->cells[o * plane + cell] = v;
        }
    }
}

/* Sets up TAESD decoding for PV: the colour grid is the decoded picture, its scratch planned
 * once. */
static gboolean
setup_taesd (GessoPreviewer *pv, GError **error)
{
  const int f = gesso_vae_latent_factor (pv->taesd);
  size_t bytes;

  pv->grid_w = pv->latent_w * f;
  pv->grid_h = pv->latent_h * f;
  if (!gesso_vae_decode_scratch_bytes (pv->taesd, pv->latent_h, pv->latent_w, &bytes, error))
    return FALSE;
  pv->scratch = gesso_arena_new (bytes, error);
  return pv->scratch != NULL;
}

/* --- the previewer -------------------------------------------------------------------------- */

/* The bilinear tap at X on an axis of N samples, sample i covering [i, i + 1): between the
 * two nearest sample centres, clamped at the edges. */
static Tap
tap_at (double x, int n)
{
  double u = CLAMP (x - 0.5, 0.0, (double) (n - 1));
  Tap tap;

  tap.i0 = (int) u;
  tap.i1 = MIN (tap.i0 + 1, n - 1);
  tap.t = (float) (u - tap.i0);
  return tap;
}

static float
bilinear (const float *plane, int w, Tap x, Tap y)
{
  float top = plane[y.i0 * w + x.i0] + x.t * (plane[y.i0 * w + x.i1] - plane[y.i0 * w + x.i0]);
  float bottom = plane[y.i1 * w + x.i0]
                 + x.t * (plane[y.i1 * w + x.i1] - plane[y.i1 * w + x.i0]);

  return top + y.t * (bottom - top);
}

/* The centre of preview pixel P on an axis of N preview pixels over FRAME frame pixels. */
static double
frame_at (int p, int n, int frame)
{
  return (p + 0.5) * frame / n;
}

GessoPreviewer *
gesso_previewer_new (GessoModel *model, int size, const GessoRegion *region,
                     const GessoImage *input, const GessoMask *blend, GError **error)
{
  g_autoptr (GessoPreviewer) pv = NULL;
  const float *map;
  int f, pw, ph, frame_w, frame_h;

  g_return_val_if_fail (model != NULL && region != NULL && size > 0, NULL);
  pv = g_new0 (GessoPreviewer, 1);
  pv->taesd = preview_taesd (model);
  map = pv->taesd == NULL ? gesso_model_preview_map (model, error) : NULL;
  if (pv->taesd == NULL && map == NULL)
    return NULL;
  f = gesso_vae_latent_factor (model->vae);
  pv->map = map;
  pv->channels = gesso_vae_latent_channels (model->vae);
  pv->latent_w = region->work_width / f;
  pv->latent_h = region->work_height / f;
  pv->grid_w = pv->latent_w;
  pv->grid_h = pv->latent_h;
  pv->numel = (size_t) pv->channels * (size_t) pv->latent_w * (size_t) pv->latent_h;
  frame_w = input != NULL ? input->width : region->width;
  frame_h = input != NULL ? input->height : region->height;
  pw = frame_w >= frame_h ? size : MAX (1, (int) lround ((double) size * frame_w / frame_h));
  ph = frame_h >= frame_w ? size : MAX (1, (int) lround ((double) size * frame_h / frame_w));
  if (pv->taesd != NULL && !setup_taesd (pv, error))
    return NULL;
  pv->latent = g_try_new (float, pv->numel);
  pv->cells = g_try_new (float, 3 * (size_t) pv->grid_w * (size_t) pv->grid_h);
  pv->across = g_try_new (float, 3 * (size_t) pv->grid_h * (size_t) pw);
  pv->columns = g_try_new (Tap, pw);
  pv->rows = g_try_new (Tap, ph);
  pv->weight = g_try_new (float, (size_t) pw * (size_t) ph);
  if (pv->latent == NULL || pv->cells == NULL || pv->across == NULL || pv->columns == NULL
      || pv->rows == NULL || pv->weight == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   _("not enough memory for a %d x %d preview"), pw, ph);
      return NULL;
    }
  if (!gesso_image_init (&pv->image, pw, ph, error))
    return NULL;
  if (input != NULL
      && (!gesso_image_init (&pv->base, pw, ph, error)
          || !gesso_resample_rgba (input->pixels, input->width * 4, input->width, input->height,
                                   pv->base.pixels, pw, ph, error)))
    return NULL;

  /* each preview pixel's centre in the frame, then in the region (crop pixels) and in the
   * colour grid, which spans the region */
  for (int px = 0; px < pw; px++)
    pv->columns[px] = tap_at ((frame_at (px, pw, frame_w) - region->x) * pv->grid_w
                              / region->width, pv->grid_w);
  for (int py = 0; py < ph; py++)
    pv->rows[py] = tap_at ((frame_at (py, ph, frame_h) - region->y) * pv->grid_h
                           / region->height, pv->grid_h);
  for (int py = 0; py < ph; py++)
    for (int px = 0; px < pw; px++)
      {
        double rx = frame_at (px, pw, frame_w) - region->x;
        double ry = frame_at (py, ph, frame_h) - region->y;
        float b = 0;

        /* the blend mask at that point; 0 outside the region */
        if (rx >= 0 && ry >= 0 && rx < region->width && ry < region->height)
          b = blend != NULL && blend->values != NULL
                ? bilinear (blend->values, blend->width, tap_at (rx, blend->width),
                            tap_at (ry, blend->height))
                : 1.0f;
        pv->weight[py * pw + px] = b;
      }
  return g_steal_pointer (&pv);
}

void
gesso_previewer_free (GessoPreviewer *pv)
{
  if (pv == NULL)
    return;
  g_free (pv->latent);
  gesso_arena_free (pv->scratch);
  g_free (pv->cells);
  g_free (pv->across);
  g_free (pv->columns);
  g_free (pv->rows);
  g_free (pv->weight);
  gesso_image_clear (&pv->base);
  gesso_image_clear (&pv->image);
  g_free (pv);
}

float *
gesso_previewer_latent (GessoPreviewer *pv, size_t *numel)
{
  g_return_val_if_fail (pv != NULL, NULL);
  if (numel != NULL)
    *numel = pv->numel;
  return pv->latent;
}

const GessoImage *
gesso_previewer_render (GessoPreviewer *pv)
{
  int lw, lh, pw, ph;
  size_t plane;

  g_return_val_if_fail (pv != NULL, NULL);
  lw = pv->grid_w;
  lh = pv->grid_h;
  plane = (size_t) lw * (size_t) lh;
  pw = pv->image.width;
  ph = pv->image.height;
  if (pv->taesd == NULL)
    map_cells (pv);
  else if (!taesd_cells (pv, NULL))
    /* a preview is a courtesy: one TAESD cannot make (no memory) shows the last one */
    return &pv->image;
  /* bilinear, separably: along the rows of cells first, then down the preview's columns */
  for (int o = 0; o < 3; o++)
    for (int y = 0; y < lh; y++)
      {
        const float *c = pv->cells + o * plane + (size_t) y * lw;
        float *a = pv->across + ((size_t) o * lh + y) * pw;

        for (int px = 0; px < pw; px++)
          {
            Tap t = pv->columns[px];

            a[px] = c[t.i0] + t.t * (c[t.i1] - c[t.i0]);
          }
      }
  for (int py = 0; py < ph; py++)
    {
      Tap r = pv->rows[py];
      float *out = pv->image.pixels + (size_t) py * pw * 4;
      const float *in = pv->base.pixels != NULL ? pv->base.pixels + (size_t) py * pw * 4 : NULL;
      const float *b = pv->weight + (size_t) py * pw;

      for (int o = 0; o < 3; o++)
        {
          const float *a0 = pv->across + ((size_t) o * lh + r.i0) * pw;
          const float *a1 = pv->across + ((size_t) o * lh + r.i1) * pw;

          /* b = 0 gives in exactly: est - in is finite, so b (est - in) is a zero */
          for (int px = 0; px < pw; px++)
            {
              float est = CLAMP (a0[px] + r.t * (a1[px] - a0[px]), 0.0f, 1.0f);

              out[4 * px + o] = in != NULL ? in[4 * px + o] + b[px] * (est - in[4 * px + o])
                                           : est;
            }
        }
      for (int px = 0; px < pw; px++)
        out[4 * px + 3] = in != NULL ? in[4 * px + 3] : 1.0f;
    }
  return &pv->image;
}
