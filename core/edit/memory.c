/* How much memory an edit will take, and whether the machine has it: refuse a job before it
 * starts rather than let the kernel's OOM killer end it (and GIMP's plug-in with it) without a
 * word halfway through.
 *
 * The estimate is the peak of what gesso_edit_run allocates beyond the model's weights (which
 * are in memory, and out of MemAvailable, once the model is open):
 *   - the UNet's activations for a guided pair at the working size (its own planner:
 *     gesso_unet_scratch_bytes), the VAE's for encoding and decoding (gesso_vae_*_scratch),
 *     whichever is larger, plus the sampling loop's latents and the working-size image planes;
 *   - the buffers at image size: the result crop (RGBA float, 16 bytes a pixel) and its blend
 *     mask (4), and the grown and feathered mask (4) when there is one;
 *   - the buffer the kernels widen a 16-bit weight matrix into (ops/weight.c), as large as
 *     the UNet's largest;
 *   - each ControlNet's weights (twice its files: more than they take, as 16-bit matrices
 *     stay 16-bit), activations and control images.
 * Every figure is an upper bound (the crop is at most the image; RePaint's extra buffers are a
 * few latents), so a job that is refused could not have run, and one that runs may still fail
 * if something else takes the memory meanwhile; that failure is then a NO_MEMORY error, as
 * every allocation here is checked.
 *
 * Available memory is what the system can give the process now: the kernel's MemAvailable,
 * lowered by a cgroup v2 memory limit on the process's group or any group above it (a
 * container's limit, which MemAvailable does not see) and by an address-space limit
 * (ulimit -v).
 */
#include "gesso-config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edit/model-private.h"
#include "edit/region.h"
#include <glib/gi18n-lib.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

/* The first number in the file PATH after the text KEY ("MemAvailable:"), times SCALE; or
 * G_MAXUINT64 when the file or the key is not there or says "max". KEY NULL: the file's
 * first number. */
static guint64
read_number (const char *path, const char *key, guint64 scale)
{
  g_autofree char *text = NULL;
  const char *at;
  guint64 value;
  char *end;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return G_MAXUINT64;
  at = key != NULL ? strstr (text, key) : text;
  if (at == NULL)
    return G_MAXUINT64;
  at += key != NULL ? strlen (key) : 0;
  while (*at == ' ' || *at == '\t')
    at++;
  value = g_ascii_strtoull (at, &end, 10);
  if (end == at)
    return G_MAXUINT64;
  return value > G_MAXUINT64 / scale ? G_MAXUINT64 : value * scale;
}

/* The room left under the cgroup v2 limits of this process's group and of every group above
 * it; G_MAXUINT64 when none is set (or cgroup v2 is not mounted). */
static guint64
cgroup_room (void)
{
  g_autofree char *self = NULL;
  g_autofree char *group = NULL;
  guint64 room = G_MAXUINT64;
  char *line;

  if (!g_file_get_contents ("/proc/self/cgroup", &self, NULL, NULL))
    return room;
  /* v2 has the one line "0::/path" */
  line = strstr (self, "0::");
  if (line == NULL)
    return room;
  group = g_strndup (line + 3, strcspn (line + 3, "\n"));
  while (group[0] == '/')
    {
      g_autofree char *dir = g_build_filename ("/sys/fs/cgroup", group, NULL);
      g_autofree char *max_path = g_build_filename (dir, "memory.max", NULL);
      g_autofree char *current_path = g_build_filename (dir, "memory.current", NULL);
      guint64 max = read_number (max_path, NULL, 1);
      guint64 current = read_number (current_path, NULL, 1);
      char *slash;

      if (max != G_MAXUINT64 && current != G_MAXUINT64)
        room = MIN (room, max > current ? max - current : 0);
      slash = strrchr (group, '/');
      if (slash == group)
        break;
      *slash = '\0';
    }
  return room;
}

/* The room left under RLIMIT_AS: the limit less the address space in use now. */
static guint64
address_space_room (void)
{
  struct rlimit limit;
  guint64 used;
  long page = sysconf (_SC_PAGESIZE);

  if (getrlimit (RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return G_MAXUINT64;
  /* /proc/self/statm: the first number is the address space in pages */
  used = read_number ("/proc/self/statm", NULL, page > 0 ? (guint64) page : 4096);
  if (used == G_MAXUINT64)
    return G_MAXUINT64;
  return (guint64) limit.rlim_cur > used ? (guint64) limit.rlim_cur - used : 0;
}

guint64
gesso_memory_available (void)
{
  guint64 available = read_number ("/proc/meminfo", "MemAvailable:", 1024);

  available = MIN (available, cgroup_room ());
  return MIN (available, address_space_room ());
}

static guint64
add_saturated (guint64 a, guint64 b)
{
  return a > G_MAXUINT64 - b ? G_MAXUINT64 : a + b;
}

/* Bytes of the .safetensors files at PATH (a file, or a folder and its sub-folders one deep:
 * a diffusers ControlNet keeps its weights at the top): what a ControlNet loaded during the
 * edit will add, twice over for 16-bit files widened to float32. */
static guint64
weights_upper_bound (const char *path)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;
  guint64 total = 0;
  GStatBuf st;

  if (path == NULL || g_stat (path, &st) != 0)
    return 0;
  if (!S_ISDIR (st.st_mode))
    return g_str_has_suffix (path, ".safetensors") ? 2 * (guint64) st.st_size : 0;
  dir = g_dir_open (path, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_str_has_suffix (name, ".safetensors") && g_stat (child, &st) == 0
          && S_ISREG (st.st_mode))
        total = add_saturated (total, 2 * (guint64) st.st_size);
    }
  return total;
}

/* Bytes of the UNet's largest weight as float32: what the widening buffer grows to. */
static guint64
largest_unet_weight (const GessoModel *model)
{
  guint64 most = 0;

  for (guint i = 0; i < gesso_weights_count (model->weights, GESSO_COMPONENT_UNET); i++)
    {
      int ndim;
      int64_t shape[8];
      guint64 n = 1;

      if (!gesso_weights_shape (model->weights, GESSO_COMPONENT_UNET,
                                gesso_weights_name (model->weights, GESSO_COMPONENT_UNET, i),
                                &ndim, shape))
        continue;
      for (int d = 0; d < ndim; d++)
        n *= (guint64) shape[d];
      most = MAX (most, n);
    }
  return most * sizeof (float);
}

guint64
gesso_edit_estimate_memory (GessoModel *model, const GessoEditParams *params, int width,
                            int height, gboolean with_mask, int *work_width, int *work_height)
{
  const GessoUnetConfig *u;
  GessoRegion region;
  int f, multiple, budget, w, h;
  gint64 lh, lw, latent;
  guint64 pixels, total = 0;
  size_t unet = 0, encode = 0, decode = 0;

  g_return_val_if_fail (model != NULL && params != NULL, G_MAXUINT64);
  u = gesso_unet_get_config (model->unet);
  f = gesso_vae_latent_factor (model->vae);
  multiple = f << (u->n_levels - 1);
  budget = params->pixel_budget > 0 ? params->pixel_budget
                                    : model->native_size * model->native_size;
  w = width > 0 ? width : model->native_size;
  h = height > 0 ? height : model->native_size;
  /* the whole image as the crop: the largest working size any mask could give */
  if (!gesso_region_plan (w, h, NULL, 0, budget, multiple, &region, NULL))
    return G_MAXUINT64;
  if (work_width != NULL)
    *work_width = region.work_width;
  if (work_height != NULL)
    *work_height = region.work_height;
  lh = region.work_height / f;
  lw = region.work_width / f;
  latent = (gint64) gesso_vae_latent_channels (model->vae) * lh * lw;

  gesso_model_apply_threads (model);
  unet = gesso_unet_scratch_bytes (model->unet, 2, lh, lw, gesso_model_context_tokens (model));
  if (unet == 0
      || !gesso_vae_encode_scratch_bytes (model->vae, region.work_height, region.work_width,
                                          &encode, NULL)
      || !gesso_vae_decode_scratch_bytes (model->vae, lh, lw, &decode, NULL))
    return G_MAXUINT64;
  /* the guider keeps its arena through the run; the VAE's come and go around it */
  total = add_saturated (total, unet);
  total = add_saturated (total, MAX (encode, decode));
  total = add_saturated (total, largest_unet_weight (model));
  /* sampling: the latents, a noisy copy, the model input, guided pairs, noise draws and the
   * known region: a few dozen latents at most */
  total = add_saturated (total, (guint64) latent * sizeof (float) * 32);
  /* working-size planes: the image in, the decoded image out (RGB), the pixel mask */
  total = add_saturated (total, (guint64) region.work_width * (guint64) region.work_height
                                  * sizeof (float) * 7);
  /* image size: the result crop (RGBA), its blend mask, the prepared mask */
  pixels = (guint64) w * (guint64) h;
  total = add_saturated (total, pixels * (16 + 4 + (with_mask ? 4 : 0)));
  /* each ControlNet: its weights, activations no larger than the UNet's (it is the UNet's
   * encoder), the residuals it hands the UNet (a latent per block, a few dozen), and its
   * control image at image size, as given and as preprocessed */
  for (int i = 0; i < params->n_controls && params->controls != NULL; i++)
    {
      total = add_saturated (total, weights_upper_bound (params->controls[i].model));
      total = add_saturated (total, unet);
      total = add_saturated (total, (guint64) latent * sizeof (float) * 64);
      total = add_saturated (total, pixels * 32);
    }
  return total;
}

gboolean
gesso_edit_check_memory (GessoModel *model, const GessoEditParams *params, int width,
                         int height, gboolean with_mask, guint64 extra, GError **error)
{
  int work_w = 0, work_h = 0;
  guint64 need = gesso_edit_estimate_memory (model, params, width, height, with_mask, &work_w,
                                             &work_h);
  guint64 available = gesso_memory_available ();

  need = add_saturated (need, extra);
  if (need <= available)
    return TRUE;
  if (width <= 0)
    width = model->native_size;
  if (height <= 0)
    height = model->native_size;
  if (need == G_MAXUINT64)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                 _("a %d x %d edit at the pixel budget's %d x %d working size is beyond what "
                 "this machine's memory can hold; lower the pixel budget or edit a smaller "
                 "image or area"), width, height, work_w, work_h);
  else
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                 _("this edit needs about %.1f GiB of memory but %.1f GiB is available "
                 "(image %d x %d, working size %d x %d); lower the pixel budget or edit a "
                 "smaller image or area"), (double) need / GIB, (double) available / GIB, width,
                 height, work_w, work_h);
  return FALSE;
}
