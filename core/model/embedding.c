/* Reading textual-inversion embedding files (see embedding.h). */
#include <string.h>

#include "io/io-private.h"
#include "io/safetensors.h"
#include "model/embedding.h"

void
gesso_embedding_free (GessoEmbedding *embedding)
{
  if (embedding == NULL)
    return;
  g_free (embedding->path);
  g_free (embedding->trigger);
  g_free (embedding->vectors);
  g_free (embedding);
}

const char *
gesso_embedding_family_of_width (int64_t width)
{
  return width == 768 ? "SD 1.x" : width == 1024 ? "SD 2.x" : NULL;
}

static const char *
family_or_unknown (int64_t width)
{
  const char *f = gesso_embedding_family_of_width (width);

  return f != NULL ? f : "an unknown model";
}

void
gesso_embedding_set_width_error (const GessoEmbedding *embedding, int64_t model_width,
                                 GError **error)
{
  g_autofree char *shown = gesso_io_display (embedding->path);

  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               "the embedding '%s' holds %" G_GINT64_FORMAT "-wide vectors (%s) but the "
               "model's text encoder is %" G_GINT64_FORMAT " wide (%s): it was made for "
               "another model family", shown, embedding->width,
               family_or_unknown (embedding->width), model_width,
               family_or_unknown (model_width));
}

/* The file's stem: A1111 calls an embedding up by its file name. */
static char *
stem_of (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');

  if (dot != NULL && dot != base)
    *dot = '\0';
  return g_strdup (base);
}

/* The vector tensor of ST and the trigger it comes with; NULL (with ERROR) when ST is no
 * embedding Gesso reads. */
static const GessoSafetensorsEntry *
find_vectors (const GessoSafetensors *st, const char *path, const char **layout,
              char **trigger, GError **error)
{
  g_autofree char *shown = gesso_io_display (path);
  const guint n = gesso_safetensors_count (st);
  const GessoSafetensorsEntry *e;

  if ((e = gesso_safetensors_lookup (st, "emb_params")) != NULL)
    {
      *layout = "A1111 (emb_params)";
      *trigger = stem_of (path);
      return e;
    }
  for (guint i = 0; i < n; i++)
    if (g_str_has_prefix (gesso_safetensors_entry (st, i)->name, "string_to_param."))
      {
        *layout = "A1111 (string_to_param)";
        *trigger = stem_of (path);
        return gesso_safetensors_entry (st, i);
      }
  if (gesso_safetensors_lookup (st, "clip_l") != NULL
      || gesso_safetensors_lookup (st, "clip_g") != NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "'%s' is an SDXL embedding (clip_l, clip_g); Gesso runs SD 1.x/2.x models",
                   shown);
      return NULL;
    }
  if (n == 1 && (e = gesso_safetensors_entry (st, 0))->ndim >= 1 && e->ndim <= 2
      && strchr (e->name, '.') == NULL)
    {
      *layout = "diffusers (learned_embeds)";
      *trigger = g_strdup (e->name);
      return e;
    }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
               "'%s' is not a textual-inversion embedding: expected emb_params, "
               "string_to_param.* or a single {token: vector} entry", shown);
  return NULL;
}

GessoEmbedding *
gesso_embedding_load (const char *path, GError **error)
{
  g_autoptr (GessoSafetensors) st = NULL;
  g_autoptr (GessoEmbedding) emb = NULL;
  g_autofree char *shown = NULL;
  const GessoSafetensorsEntry *e;
  const char *layout = NULL;
  char *trigger = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  if (gesso_io_has_pickle_extension (path))
    {
      gesso_io_set_pickle_error (error, path);
      return NULL;
    }
  st = gesso_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  e = find_vectors (st, path, &layout, &trigger, error);
  if (e == NULL)
    return NULL;
  emb = g_new0 (GessoEmbedding, 1);
  emb->path = g_strdup (path);
  emb->trigger = trigger;
  emb->layout = layout;
  emb->n_vectors = e->ndim == 2 ? e->shape[0] : 1;
  emb->width = e->shape[e->ndim - 1];
  shown = gesso_io_display (path);
  if (e->ndim < 1 || e->ndim > 2 || emb->width < 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s': embedding '%s' must be [vectors, width]; it has %d dimensions", shown,
                   e->name, e->ndim);
      return NULL;
    }
  if (emb->n_vectors < 1 || emb->n_vectors > GESSO_EMBEDDING_MAX_VECTORS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s': embedding '%s' holds %" G_GINT64_FORMAT " vectors; 1 to %d fit a "
                   "prompt", shown, e->name, emb->n_vectors, GESSO_EMBEDDING_MAX_VECTORS);
      return NULL;
    }
  if (emb->trigger[0] == '\0' || strpbrk (emb->trigger, " \t\n") != NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "'%s': the embedding's trigger word '%s' is empty or holds spaces; rename "
                   "the file", shown, emb->trigger);
      return NULL;
    }
  emb->vectors = g_try_new (float, (size_t) e->numel);
  if (emb->vectors == NULL || !gesso_safetensors_entry_to_f32 (e, emb->vectors, error))
    {
      if (emb->vectors == NULL)
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                     "out of memory reading the embedding '%s'", shown);
      return NULL;
    }
  return g_steal_pointer (&emb);
}

gboolean
gesso_embedding_probe (const char *path, GessoEmbeddingInfo *info, GError **error)
{
  g_autoptr (GessoEmbedding) emb = NULL;

  g_return_val_if_fail (path != NULL && info != NULL, FALSE);
  emb = gesso_embedding_load (path, error);
  if (emb == NULL)
    return FALSE;
  *info = (GessoEmbeddingInfo) {
    .trigger = g_steal_pointer (&emb->trigger),
    .layout = emb->layout,
    .n_vectors = (int) emb->n_vectors,
    .width = (int) emb->width,
    .family = gesso_embedding_family_of_width (emb->width),
  };
  return TRUE;
}

void
gesso_embedding_info_clear (GessoEmbeddingInfo *info)
{
  g_clear_pointer (&info->trigger, g_free);
}
