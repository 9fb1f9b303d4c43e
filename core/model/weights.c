/* Model weights by their diffusers names; see weights.h.
 *
 * Opening maps every stored key once (keymap.c) into one table per component: a name, the
 * shape diffusers gives it, and where its numbers are (an entry of a mapped file, plus an
 * element offset for the q/k/v row slices of a fused OpenCLIP projection). No tensor data is
 * read then. gesso_weights_get serves float32 data read from the file (pread, never a
 * mapping: see weight_data) into an owned cache, F16 and BF16 widened on the way, each weight
 * checked for infinities and NaNs while it is read. gesso_weights_get_stored serves the
 * layers' weight matrices as stored: 16-bit ones read into an owned cache as they are (half
 * the memory; the kernels widen them just before their products, see ops/weight.c).
 *
 * When to widen, measured (test-weights /model/weights/widen-cost prints it; 2-vCPU Xeon VM,
 * debugoptimized, best of 5, three runs): the tiny conformance models hold 3.55 M floats, 1.58 M
 * of them the token embedding table.
 *   widen everything at load (gesso_weights_preload):  fp16/bf16 3.9-14.6 ms, F32 0.04 ms
 *   on first use, embedding table by rows:               fp16/bf16 0.9-1.6 ms, F32 0.08 ms
 * Per float the two cost the same (0.4-1.6 G floats/s, the spread being page faults on fresh
 * allocations; warm memory converts F16 at ~0.8 G/s, BF16 ~0.7 G/s). A UNet or VAE uses every
 * weight in its first evaluation, so for them "at load" vs "first use" only moves the cost; the
 * real saving is the embedding table, of which a prompt reads 77 rows: widened whole it is
 * 152 MB for SD1 (49408 x 768), 202 MB for SD2. Extrapolated to SD1.5 fp16 (1.07 G params):
 * ~0.7-2.6 s and 4.1 GB of float32 either way. Hence: widen on first use by default, gather
 * embedding rows without caching, and gesso_weights_preload for callers that would rather pay
 * before the first step. 4 bytes per parameter proved too much for full-size models (a 512^2
 * SD 1.5 generate peaked at 4.5 GiB), hence the weight matrices kept as stored.
 */
#include "model/weights.h"

#include <math.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include "io/io-private.h"
#include "tensor/arena.h"
#include "model/keymap.h"
#include "tensor/half.h"
#include "tensor/tensor.h"

typedef struct
{
  const GessoSafetensorsEntry *entry;
  const char *name;             /* owned by the keymap target array */
  int ndim;
  int64_t shape[GESSO_SAFETENSORS_MAX_DIMS];
  int64_t offset;               /* first element in ENTRY */
  int64_t numel;
  float *owned;                 /* widened or realigned copy, made on first use; or NULL */
  uint16_t *stored;             /* F16/BF16 elements as stored, read on first use; or NULL */
  const GessoWeightDelta *delta; /* set by gesso_weights_set_delta; borrowed */
} Weight;

struct GessoWeights
{
  GessoModelFiles *files;
  GArray *targets;              /* GessoKeymapTarget: owns the names */
  GessoKeymapLayout layout;
  GPtrArray *weights[GESSO_COMPONENT_COUNT];   /* Weight *, in file order */
  GHashTable *by_name[GESSO_COMPONENT_COUNT];  /* name -> Weight * (borrowed from WEIGHTS) */
};

static void
weight_free (gpointer data)
{
  Weight *w = data;

  free (w->owned);
  free (w->stored);
  g_free (w);
}

/* SDXL's refiner conditions on OpenCLIP bigG alone and on an aesthetic score: its single file
 * keeps bigG as embedder 0 ("conditioner.embedders.0.model."), its folder has text_encoder_2/
 * without text_encoder/. The key that shows it, or NULL. */
static const char *
refiner_key (GessoModelFiles *files)
{
  const char *second = NULL;

  for (guint i = 0; i < gesso_model_files_count (files); i++)
    {
      const GessoModelTensor *t = gesso_model_files_tensor (files, i);

      if (g_str_has_prefix (t->key, "conditioner.embedders.0.model."))
        return t->key;
      if (t->component == GESSO_COMPONENT_TEXT_ENCODER)
        return NULL;
      if (t->component == GESSO_COMPONENT_TEXT_ENCODER_2 && second == NULL)
        second = t->key;
    }
  return second;
}

/* What a single file that is not a checkpoint holds, told by a key only that kind has:
 * lllyasviel's ControlNets keep their network under "control_model." (diffusers-named ones
 * have "controlnet_cond_embedding."); madebyollin's TAESD halves are nn.Sequentials whose
 * keys are bare layer numbers ("1.conv.0.weight"). NULL: nothing known. */
static const char *
other_kind_of_key (GessoComponent component, const char *key)
{
  if (component != GESSO_COMPONENT_OTHER)
    return NULL;
  if (g_str_has_prefix (key, "control_model.") || g_str_has_prefix (key, "controlnet_cond_embedding."))
    return "a ControlNet";
  if (g_ascii_isdigit (key[0]) && strchr (key, '.') != NULL
      && (g_str_has_suffix (key, ".weight") || g_str_has_suffix (key, ".bias")))
    return "one half of a TAESD tiny autoencoder";
  return NULL;
}

/* Refuses an SDXL refiner, a ControlNet or a TAESD by name now: their keys would otherwise map
 * to nothing, and the error would blame a missing text encoder or a config feature instead of
 * the kind of model. */
static gboolean
check_family (GessoModelFiles *files, GError **error)
{
  const char *refiner;

  for (guint i = 0; i < gesso_model_files_count (files); i++)
    {
      const GessoModelTensor *t = gesso_model_files_tensor (files, i);
      const char *other_kind = other_kind_of_key (t->component, t->key);

      if (other_kind != NULL && g_str_has_prefix (other_kind, "a ControlNet"))
        {
          g_autofree char *path = gesso_io_display (gesso_model_files_path (files));
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       "'%s' is a ControlNet, not a Stable Diffusion checkpoint: give it as a "
                       "control model (--control), with a checkpoint as the model", path);
          return FALSE;
        }
      if (other_kind != NULL)
        {
          g_autofree char *path = gesso_io_display (gesso_model_files_path (files));
          g_autofree char *key = gesso_io_display (t->key);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "'%s' is not supported yet: it is %s (tensor '%s'), not a Stable "
                       "Diffusion checkpoint", path, other_kind, key);
          return FALSE;
        }
    }
  refiner = refiner_key (files);
  if (refiner != NULL)
    {
      g_autofree char *path = gesso_io_display (gesso_model_files_path (files));
      g_autofree char *key = gesso_io_display (refiner);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "'%s' is an SDXL refiner (tensor '%s'), which Gesso does not run: use an "
                   "SDXL base model", path, key);
      return FALSE;
    }
  return TRUE;
}

GessoWeights *
gesso_weights_new (GessoModelFiles *files, GError **error)
{
  GessoWeights *weights;
  guint n;
  GessoKeymapKey *keys;

  g_return_val_if_fail (files != NULL, NULL);
  if (!check_family (files, error))
    return NULL;
  n = gesso_model_files_count (files);
  keys = g_new0 (GessoKeymapKey, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      const GessoModelTensor *t = gesso_model_files_tensor (files, i);
      keys[i].component = t->component;
      keys[i].key = t->key;
      keys[i].ndim = t->entry->ndim;
      keys[i].shape = t->entry->shape;
    }

  weights = g_new0 (GessoWeights, 1);
  weights->files = files;
  weights->targets = gesso_keymap_map (gesso_model_files_layout (files), keys, n,
                                       &weights->layout);
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    {
      weights->weights[c] = g_ptr_array_new_with_free_func (weight_free);
      weights->by_name[c] = g_hash_table_new (g_str_hash, g_str_equal);
    }
  for (guint i = 0; i < weights->targets->len; i++)
    {
      const GessoKeymapTarget *t = &g_array_index (weights->targets, GessoKeymapTarget, i);
      Weight *w = g_new0 (Weight, 1);

      w->entry = gesso_model_files_tensor (files, t->source)->entry;
      w->name = t->name;
      w->ndim = t->ndim;
      memcpy (w->shape, t->shape, sizeof w->shape);
      w->offset = t->offset;
      w->numel = t->numel;
      g_ptr_array_add (weights->weights[t->component], w);
      /* keymap.c keeps names unique per component, except under OTHER where two files of a
       * folder may share a key; the first one is found by name. */
      if (!g_hash_table_contains (weights->by_name[t->component], w->name))
        g_hash_table_insert (weights->by_name[t->component], (gpointer) w->name, w);
    }
  g_free (keys);
  return weights;
}

void
gesso_weights_free (GessoWeights *weights)
{
  if (weights == NULL)
    return;
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    {
      g_hash_table_unref (weights->by_name[c]);
      g_ptr_array_unref (weights->weights[c]);
    }
  g_array_unref (weights->targets);
  g_free (weights);
}

GessoModelLayout
gesso_weights_layout (const GessoWeights *weights)
{
  return gesso_model_files_layout (weights->files);
}

const char *
gesso_weights_path (const GessoWeights *weights)
{
  return gesso_model_files_path (weights->files);
}

gboolean
gesso_weights_is_sdxl (const GessoWeights *weights)
{
  return weights->layout.sdxl;
}

GessoTextKeys
gesso_weights_text_keys (const GessoWeights *weights)
{
  return weights->layout.text_keys;
}

guint
gesso_weights_count (const GessoWeights *weights, GessoComponent component)
{
  g_return_val_if_fail (component < GESSO_COMPONENT_COUNT, 0);
  return weights->weights[component]->len;
}

const char *
gesso_weights_name (const GessoWeights *weights, GessoComponent component, guint index)
{
  g_return_val_if_fail (component < GESSO_COMPONENT_COUNT, NULL);
  g_return_val_if_fail (index < weights->weights[component]->len, NULL);
  return ((const Weight *) weights->weights[component]->pdata[index])->name;
}

static Weight *
lookup (const GessoWeights *weights, GessoComponent component, const char *name)
{
  g_return_val_if_fail (weights != NULL && name != NULL, NULL);
  g_return_val_if_fail (component < GESSO_COMPONENT_COUNT, NULL);
  return g_hash_table_lookup (weights->by_name[component], name);
}

gboolean
gesso_weights_has (const GessoWeights *weights, GessoComponent component, const char *name)
{
  return lookup (weights, component, name) != NULL;
}

/* Some weight of COMPONENT is named PREFIX.something. */
static gboolean
has_block (const GessoWeights *weights, GessoComponent component, const char *prefix)
{
  const GPtrArray *list = weights->weights[component];
  size_t n = strlen (prefix);

  for (guint i = 0; i < list->len; i++)
    {
      const char *name = ((const Weight *) list->pdata[i])->name;

      if (strncmp (name, prefix, n) == 0 && name[n] == '.')
        return TRUE;
    }
  return FALSE;
}

gboolean
gesso_weights_probe (const GessoWeights *weights, GessoComponent component, const char *prefix,
                     const char *key, gboolean *present, GError **error)
{
  g_autofree char *name = g_strdup_printf ("%s.%s", prefix, key);

  *present = gesso_weights_has (weights, component, name);
  if (!*present && has_block (weights, component, prefix))
    {
      gesso_weights_set_missing_error (weights, component, name, error);
      return FALSE;
    }
  return TRUE;
}

gboolean
gesso_weights_count_blocks (const GessoWeights *weights, GessoComponent component,
                            const char *stem, int limit, const char *key, int *count,
                            GError **error)
{
  gboolean present = TRUE;

  for (*count = 0; *count <= limit; (*count)++)
    {
      g_autofree char *block = g_strdup_printf ("%s.%d", stem, *count);

      if (!gesso_weights_probe (weights, component, block, key, &present, error))
        return FALSE;
      if (!present)
        break;
    }
  return TRUE;
}

gboolean
gesso_weights_shape (const GessoWeights *weights, GessoComponent component, const char *name,
                     int *ndim, int64_t shape[8])
{
  const Weight *w = lookup (weights, component, name);

  if (w == NULL)
    return FALSE;
  *ndim = w->ndim;
  memset (shape, 0, 8 * sizeof *shape);
  memcpy (shape, w->shape, (size_t) w->ndim * sizeof *shape);
  return TRUE;
}

/* Dimensions up to the last one that is not 1: [C, C, 1, 1] and [C, C] both have 2. */
static int
significant_dims (int ndim, const int64_t *shape)
{
  while (ndim > 0 && shape[ndim - 1] == 1)
    ndim--;
  return ndim;
}

static gboolean
shape_matches (const Weight *w, int ndim, const int64_t *shape)
{
  int a = significant_dims (w->ndim, w->shape), b = significant_dims (ndim, shape);

  if (a != b)
    return FALSE;
  for (int i = 0; i < a; i++)
    if (w->shape[i] != shape[i])
      return FALSE;
  return TRUE;
}

/* Where COMPONENT's weights are stored, as a message shows it: its folder of a diffusers
 * model, else the model's file. */
static char *
component_location (const GessoWeights *weights, GessoComponent component)
{
  g_autofree char *path = NULL;

  if (gesso_weights_layout (weights) == GESSO_MODEL_LAYOUT_DIFFUSERS
      && component != GESSO_COMPONENT_OTHER)
    path = g_build_filename (gesso_weights_path (weights), gesso_component_name (component),
                             NULL);
  return gesso_io_display (path != NULL ? path : gesso_weights_path (weights));
}

void
gesso_weights_set_missing_error (const GessoWeights *weights, GessoComponent component,
                                 const char *name, GError **error)
{
  g_autofree char *where = component_location (weights, component);

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               "%s weight '%s' is missing from '%s'; the model is incomplete or not Stable "
               "Diffusion 1.x, 2.x or XL: download or convert it again",
               gesso_component_name (component), name, where);
}

void
gesso_weights_set_absent_error (const GessoWeights *weights, const char *part, GError **error)
{
  g_autofree char *path = gesso_io_display (gesso_weights_path (weights));

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               "'%s' has no %s weights; Gesso needs the whole checkpoint (UNet, VAE and text "
               "encoder)", path, part);
}

/* The weight NAME, checked to exist and to have SHAPE; NULL with a message otherwise. */
static Weight *
find_checked (GessoWeights *weights, GessoComponent component, const char *name, int ndim,
              const int64_t *shape, GError **error)
{
  Weight *w = lookup (weights, component, name);

  if (w == NULL)
    {
      gesso_weights_set_missing_error (weights, component, name, error);
      return NULL;
    }
  if (!shape_matches (w, ndim, shape))
    {
      g_autofree char *have = gesso_tensor_shape_string (w->ndim, w->shape);
      g_autofree char *want = gesso_tensor_shape_string (ndim, shape);
      g_autofree char *where = component_location (weights, component);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s weight '%s' has shape %s, expected %s; '%s' is damaged or does not "
                   "belong to this model: download or convert it again",
                   gesso_component_name (component), name, have, want, where);
      return NULL;
    }
  return w;
}

static gboolean
check_float_dtype (const GessoWeights *weights, GessoComponent component, const Weight *w,
                   GError **error)
{
  GessoDType dtype = w->entry->dtype;
  g_autofree char *where = NULL;

  if (dtype == GESSO_DTYPE_F32 || dtype == GESSO_DTYPE_F16 || dtype == GESSO_DTYPE_BF16)
    return TRUE;
  /* F64 and F8 are refused like the integer types, which would be quantized weights whose
   * scales Gesso does not know: gesso.h promises F32, F16 and BF16 */
  where = component_location (weights, component);
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               "%s weight '%s' in '%s' is stored as %s; Gesso computes with F32, F16 and BF16 "
               "weights: convert the model to F16 or F32", gesso_component_name (component),
               w->name, where, gesso_dtype_name (dtype));
  return FALSE;
}

/* Widens COUNT elements of W from element FIRST (relative to the weight) into DST, read from
 * the file into memory Gesso owns; a weight holding an infinity or a NaN (what a broken fp16
 * conversion leaves: every image would come out black) is refused by name. */
static gboolean
widen (const GessoWeights *weights, GessoComponent component, const Weight *w, int64_t first,
       int64_t count, float *dst, GError **error)
{
  int64_t bad;

  if (!gesso_safetensors_entry_read_f32 (w->entry, w->offset + first, count, dst, &bad, error))
    return FALSE;
  if (bad >= 0)
    {
      g_autofree char *where = component_location (weights, component);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s weight '%s' in '%s' holds %s (element %" G_GINT64_FORMAT "); the model "
                   "is broken, as a failed float16 conversion leaves it: convert or download "
                   "it again", gesso_component_name (component), w->name, where,
                   isnan (dst[bad]) ? "NaN" : "an infinite value", first + bad);
      return FALSE;
    }
  return TRUE;
}

static const float *
weight_data (const GessoWeights *weights, GessoComponent component, Weight *w, GError **error)
{
  static const float empty[1];
  size_t bytes;

  if (w->owned != NULL)
    return w->owned;
  if (!check_float_dtype (weights, component, w, error))
    return NULL;
  if (w->numel == 0)
    return empty;
  /* Every weight is read into memory Gesso owns, F32 too: a mapped page of a file that is
   * replaced or downloaded again while it is in use faults (SIGBUS) and kills the process.
   * This costs no more memory than the mapping did (whose pages counted as resident), and
   * F16/BF16 are widened from a small bounce buffer, so nothing is held twice.
   * 64-byte aligned like arena blocks, so kernels see the same alignment either way. */
  bytes = gesso_arena_block_size ((size_t) w->numel * sizeof (float));
  w->owned = aligned_alloc (GESSO_ARENA_ALIGN, bytes);
  if (w->owned == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "cannot allocate %.1f MiB to widen %s weight '%s' to float32",
                   (double) bytes / (1024.0 * 1024.0), gesso_component_name (component),
                   w->name);
      return NULL;
    }
  if (!widen (weights, component, w, 0, w->numel, w->owned, error))
    {
      free (w->owned);
      w->owned = NULL;
      return NULL;
    }
  return w->owned;
}

const float *
gesso_weights_get (GessoWeights *weights, GessoComponent component, const char *name, int ndim,
                   const int64_t *shape, GError **error)
{
  Weight *w;

  g_return_val_if_fail (ndim >= 0 && ndim <= GESSO_SAFETENSORS_MAX_DIMS, NULL);
  g_return_val_if_fail (shape != NULL || ndim == 0, NULL);
  w = find_checked (weights, component, name, ndim, shape, error);
  return w ? weight_data (weights, component, w, error) : NULL;
}

/* Index of the first F16 (or BF16) infinity or NaN in SRC[0, N), or -1: all exponent bits set
 * in either format. */
static int64_t
first_nonfinite_16 (const uint16_t *src, int64_t n, GessoDType dtype)
{
  const uint16_t exponent = dtype == GESSO_DTYPE_F16 ? 0x7c00u : 0x7f80u;

  for (int64_t i = 0; i < n; i++)
    if ((src[i] & exponent) == exponent)
      return i;
  return -1;
}

/* W's 16-bit elements read as stored into memory Gesso owns, checked as widen() checks. */
static const uint16_t *
stored_data (const GessoWeights *weights, GessoComponent component, Weight *w, GError **error)
{
  const GessoDType dtype = w->entry->dtype;
  size_t bytes;
  int64_t bad;

  if (w->stored != NULL)
    return w->stored;
  bytes = gesso_arena_block_size ((size_t) w->numel * sizeof (uint16_t));
  w->stored = aligned_alloc (GESSO_ARENA_ALIGN, bytes);
  if (w->stored == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "cannot allocate %.1f MiB for %s weight '%s'",
                   (double) bytes / (1024.0 * 1024.0), gesso_component_name (component),
                   w->name);
      return NULL;
    }
  if (!gesso_safetensors_entry_read (w->entry, (uint64_t) w->offset * sizeof (uint16_t),
                                     (uint64_t) w->numel * sizeof (uint16_t), w->stored, error))
    goto fail;
  bad = first_nonfinite_16 (w->stored, w->numel, dtype);
  if (bad >= 0)
    {
      g_autofree char *where = component_location (weights, component);
      const float value = dtype == GESSO_DTYPE_F16 ? gesso_f16_to_f32 (w->stored[bad])
                                                   : gesso_bf16_to_f32 (w->stored[bad]);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s weight '%s' in '%s' holds %s (element %" G_GINT64_FORMAT "); the model "
                   "is broken, as a failed float16 conversion leaves it: convert or download "
                   "it again", gesso_component_name (component), w->name, where,
                   isnan (value) ? "NaN" : "an infinite value", bad);
      goto fail;
    }
  return w->stored;

fail:
  free (w->stored);
  w->stored = NULL;
  return NULL;
}

gboolean
gesso_weights_get_stored (GessoWeights *weights, GessoComponent component, const char *name,
                          int ndim, const int64_t *shape, GessoWeight *out, GError **error)
{
  Weight *w;
  GessoDType dtype;

  g_return_val_if_fail (ndim >= 0 && ndim <= GESSO_SAFETENSORS_MAX_DIMS, FALSE);
  g_return_val_if_fail (shape != NULL || ndim == 0, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  *out = gesso_weight_f32 (NULL);
  w = find_checked (weights, component, name, ndim, shape, error);
  if (w == NULL || !check_float_dtype (weights, component, w, error))
    return FALSE;
  dtype = w->entry->dtype;
  out->delta = &w->delta;
  /* widened already (asked for as float32 before): no second copy */
  if (dtype == GESSO_DTYPE_F32 || w->owned != NULL || w->numel == 0)
    {
      out->data = weight_data (weights, component, w, error);
      return out->data != NULL;
    }
  out->data = stored_data (weights, component, w, error);
  out->dtype = dtype;
  return out->data != NULL;
}

gboolean
gesso_weights_set_delta (GessoWeights *weights, GessoComponent component, const char *name,
                         const GessoWeightDelta *delta, GError **error)
{
  Weight *w;

  g_return_val_if_fail (component < GESSO_COMPONENT_COUNT, FALSE);
  w = weights->by_name[component] ? g_hash_table_lookup (weights->by_name[component], name)
                                  : NULL;
  if (w == NULL)
    {
      gesso_weights_set_missing_error (weights, component, name, error);
      return FALSE;
    }
  for (const GessoWeightDelta *d = delta; d != NULL; d = d->next)
    g_return_val_if_fail (d->rows * d->cols == w->numel, FALSE);
  w->delta = delta;
  return TRUE;
}

void
gesso_weights_clear_deltas (GessoWeights *weights)
{
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    for (guint i = 0; weights->weights[c] != NULL && i < weights->weights[c]->len; i++)
      ((Weight *) weights->weights[c]->pdata[i])->delta = NULL;
}

gboolean
gesso_weights_gather_rows (GessoWeights *weights, GessoComponent component, const char *name,
                           const int64_t shape[2], const int64_t *rows, size_t n_rows,
                           float *dst, GError **error)
{
  Weight *w;
  int64_t n = shape[0], width = shape[1];

  g_return_val_if_fail (rows != NULL || n_rows == 0, FALSE);
  w = find_checked (weights, component, name, 2, shape, error);
  if (w == NULL || !check_float_dtype (weights, component, w, error))
    return FALSE;
  for (size_t i = 0; i < n_rows; i++)
    if (rows[i] < 0 || rows[i] >= n)
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     "row %" G_GINT64_FORMAT " of %s weight '%s' does not exist: it has %"
                     G_GINT64_FORMAT " rows", rows[i], gesso_component_name (component), name, n);
        return FALSE;
      }
  for (size_t i = 0; i < n_rows; i++)
    {
      if (w->owned != NULL)
        memcpy (dst + i * width, w->owned + rows[i] * width, (size_t) width * sizeof (float));
      else if (!widen (weights, component, w, rows[i] * width, width, dst + i * width, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
gesso_weights_preload (GessoWeights *weights, GessoComponent component, GError **error)
{
  int first = component == GESSO_COMPONENT_COUNT ? 0 : (int) component;
  int last = component == GESSO_COMPONENT_COUNT ? GESSO_COMPONENT_COUNT - 1 : (int) component;

  g_return_val_if_fail (component <= GESSO_COMPONENT_COUNT, FALSE);
  for (int c = first; c <= last; c++)
    for (guint i = 0; i < weights->weights[c]->len; i++)
      {
        Weight *w = weights->weights[c]->pdata[i];
        GessoDType dtype = w->entry->dtype;

        /* Schedule buffers, counters and ids are not weights; leave them alone. */
        if (dtype != GESSO_DTYPE_F32 && dtype != GESSO_DTYPE_F16 && dtype != GESSO_DTYPE_BF16)
          continue;
        if (weight_data (weights, (GessoComponent) c, w, error) == NULL)
          return FALSE;
      }
  return TRUE;
}

void
gesso_weights_release (GessoWeights *weights, GessoComponent component)
{
  g_return_if_fail (weights != NULL && component < GESSO_COMPONENT_COUNT);
  for (guint i = 0; i < weights->weights[component]->len; i++)
    {
      Weight *w = weights->weights[component]->pdata[i];

      g_clear_pointer (&w->owned, free);
      g_clear_pointer (&w->stored, free);
    }
#ifdef __GLIBC__
  /* weights of a few MB come from the heap, whose free pages glibc keeps: give them back */
  malloc_trim (0);
#endif
}
