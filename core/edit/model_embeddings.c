/* Textual-inversion embeddings taken into a model: each file's vectors become rows of the
 * text encoder's token table past the vocabulary, and its trigger word expands to their ids
 * in the tokenizer (core/model/embedding.h). */
#include <string.h>

#include "edit/model-private.h"
#include "io/io-private.h"
#include "model/embedding.h"

/* Takes EMB into M. A trigger already taken keeps its first embedding (as A1111 keeps the
 * first file of a name). */
static gboolean
add_embedding (GessoModel *m, const GessoEmbedding *emb, GError **error)
{
  const int64_t width = gesso_text_encoder_get_config (m->text_encoder)->hidden_size;
  int64_t first;

  if (emb->width != width)
    {
      gesso_embedding_set_width_error (emb, width, error);
      return FALSE;
    }
  if (gesso_tokenizer_has_trigger (m->tokenizer, emb->trigger))
    return TRUE;
  first = gesso_text_encoder_add_rows (m->text_encoder, emb->vectors, emb->n_vectors);
  /* kept for a text encoder opened again after a release (gesso_model_prompts_encoded) */
  if (m->embedding_rows == NULL)
    m->embedding_rows = g_array_new (FALSE, FALSE, sizeof (float));
  g_array_append_vals (m->embedding_rows, emb->vectors, (guint) (emb->n_vectors * width));
  return gesso_tokenizer_add_trigger (m->tokenizer, emb->trigger, first, emb->n_vectors, error);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Every .safetensors embedding in DIR that fits the model, in name order. What is no
 * embedding, or one for another family, is passed over: such folders are shared between
 * models (A1111's embeddings/ holds SD 1.x and SDXL files side by side), and A1111 skips
 * them the same way. Pickle files are never opened. */
static gboolean
add_folder (GessoModel *m, const char *dir, GError **error)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const int64_t width = gesso_text_encoder_get_config (m->text_encoder)->hidden_size;
  const char *entry;

  if (d == NULL)
    return FALSE;
  while ((entry = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (entry, ".safetensors"))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      g_autoptr (GessoEmbedding) emb = gesso_embedding_load (path, NULL);

      if (emb != NULL && emb->width == width && !add_embedding (m, emb, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
gesso_model_add_embeddings (GessoModel *m, const char *const *paths, GError **error)
{
  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      if (g_file_test (paths[i], G_FILE_TEST_IS_DIR))
        {
          if (!add_folder (m, paths[i], error))
            return FALSE;
        }
      else
        {
          g_autoptr (GessoEmbedding) emb = gesso_embedding_load (paths[i], error);

          if (emb == NULL || !add_embedding (m, emb, error))
            return FALSE;
        }
    }
  return TRUE;
}
