/* Prompt -> embedding, with a small least-recently-used cache keyed by (text, clip_skip). */
#include "edit/prompt_cache.h"

#include <string.h>

#include "gesso.h"
#include <glib/gi18n-lib.h>

typedef struct
{
  char *key;
  float *embedding;
} Entry;

struct GessoPromptCache
{
  GessoTokenizer *tokenizer;
  GessoTextEncoder *encoder;
  guint capacity;
  int64_t tokens;
  int64_t width;
  int n_layers;
  GQueue entries;               /* of Entry *, most recently used last */
  int64_t *ids;                 /* tokens ids, reused */
  guint hits;
  guint misses;
};

static void
entry_free (gpointer data)
{
  Entry *e = data;

  g_free (e->key);
  g_free (e->embedding);
  g_free (e);
}

GessoPromptCache *
gesso_prompt_cache_new (GessoTokenizer *tokenizer, GessoTextEncoder *encoder, guint capacity,
                        GError **error)
{
  const GessoTextEncoderConfig *config;
  GessoPromptCache *cache;

  g_return_val_if_fail (tokenizer != NULL && encoder != NULL && capacity >= 1, NULL);
  config = gesso_text_encoder_get_config (encoder);
  if ((int64_t) gesso_tokenizer_get_max_length (tokenizer) != config->max_positions)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("the tokenizer makes %u tokens per prompt but the text encoder reads %d "
                   "positions; the tokenizer files do not belong to this model"),
                   gesso_tokenizer_get_max_length (tokenizer), config->max_positions);
      return NULL;
    }
  if (gesso_tokenizer_get_n_ids (tokenizer) > config->vocab_size)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the tokenizer has %" G_GINT64_FORMAT " token ids but the text encoder "
                   "only %d embeddings; the tokenizer files do not belong to this model",
                   gesso_tokenizer_get_n_ids (tokenizer), config->vocab_size);
      return NULL;
    }
  cache = g_new0 (GessoPromptCache, 1);
  cache->tokenizer = tokenizer;
  cache->encoder = encoder;
  cache->capacity = capacity;
  cache->tokens = config->max_positions;
  cache->width = config->hidden_size;
  cache->n_layers = config->n_layers;
  g_queue_init (&cache->entries);
  cache->ids = g_new (int64_t, cache->tokens);
  return cache;
}

void
gesso_prompt_cache_free (GessoPromptCache *cache)
{
  if (cache == NULL)
    return;
  g_queue_clear_full (&cache->entries, entry_free);
  g_free (cache->ids);
  g_free (cache);
}

int64_t
gesso_prompt_cache_tokens (const GessoPromptCache *cache)
{
  return cache->tokens;
}

int64_t
gesso_prompt_cache_width (const GessoPromptCache *cache)
{
  return cache->width;
}

guint
gesso_prompt_cache_hits (const GessoPromptCache *cache)
{
  return cache->hits;
}

guint
gesso_prompt_cache_misses (const GessoPromptCache *cache)
{
  return cache->misses;
}

gboolean
gesso_prompt_cache_encode (GessoPromptCache *cache, const char *text, int clip_skip,
                           float *out, GError **error)
{
  size_t n = (size_t) (cache->tokens * cache->width);
  g_autofree char *key = NULL;
  Entry *e;

  g_return_val_if_fail (cache != NULL && out != NULL, FALSE);
  if (text == NULL)
    text = "";
  if (clip_skip < 0 || clip_skip >= cache->n_layers)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("clip skip %d is out of range: this text encoder has %d layers, so use 0 to "
                   "%d (1 = the penultimate layer)"), clip_skip, cache->n_layers,
                   cache->n_layers - 1);
      return FALSE;
    }
  /* the clip skip first: a prompt may contain any character, a number cannot */
  key = g_strdup_printf ("%d:%s", clip_skip, text);
  for (GList *l = cache->entries.head; l != NULL; l = l->next)
    {
      e = l->data;
      if (strcmp (e->key, key) != 0)
        continue;
      /* most recently used goes last */
      g_queue_unlink (&cache->entries, l);
      g_queue_push_tail_link (&cache->entries, l);
      memcpy (out, e->embedding, n * sizeof (float));
      cache->hits++;
      return TRUE;
    }

  if (!gesso_tokenizer_encode (cache->tokenizer, text, cache->ids, (size_t) cache->tokens, NULL,
                               NULL, error)
      || !gesso_text_encoder_encode (cache->encoder, cache->ids, clip_skip, out, error))
    return FALSE;
  cache->misses++;

  if (cache->entries.length >= cache->capacity)
    entry_free (g_queue_pop_head (&cache->entries));
  e = g_new (Entry, 1);
  e->key = g_steal_pointer (&key);
  e->embedding = g_memdup2 (out, n * sizeof (float));
  g_queue_push_tail (&cache->entries, e);
  return TRUE;
}
