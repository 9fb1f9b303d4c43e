/* Prompt -> embedding, with a small least-recently-used cache keyed by (text, clip_skip).
 * An SDXL cache keeps each prompt's pooled embedding after its token embeddings. */
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
  GessoTokenizer *tokenizer_2;  /* SDXL's second tokenizer and encoder; NULL otherwise */
  GessoTextEncoder *encoder_2;
  guint capacity;
  int64_t tokens;
  int64_t width;                /* both encoders' widths for SDXL */
  int64_t pooled;               /* SDXL's pooled width; 0 otherwise */
  int n_layers;                 /* clip skips allowed: 0 to n_layers - 1 */
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

static gboolean
check_pair (GessoTokenizer *tokenizer, GessoTextEncoder *encoder, GError **error)
{
  const GessoTextEncoderConfig *config = gesso_text_encoder_get_config (encoder);

  if ((int64_t) gesso_tokenizer_get_max_length (tokenizer) != config->max_positions)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("the tokenizer makes %u tokens per prompt but the text encoder reads %d "
                   "positions; the tokenizer files do not belong to this model"),
                   gesso_tokenizer_get_max_length (tokenizer), config->max_positions);
      return FALSE;
    }
  if (gesso_tokenizer_get_n_ids (tokenizer) > config->vocab_size)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the tokenizer has %" G_GINT64_FORMAT " token ids but the text encoder "
                   "only %d embeddings; the tokenizer files do not belong to this model",
                   gesso_tokenizer_get_n_ids (tokenizer), config->vocab_size);
      return FALSE;
    }
  return TRUE;
}

GessoPromptCache *
gesso_prompt_cache_new (GessoTokenizer *tokenizer, GessoTextEncoder *encoder, guint capacity,
                        GError **error)
{
  const GessoTextEncoderConfig *config;
  GessoPromptCache *cache;

  g_return_val_if_fail (tokenizer != NULL && encoder != NULL && capacity >= 1, NULL);
  config = gesso_text_encoder_get_config (encoder);
  if (!check_pair (tokenizer, encoder, error))
    return NULL;
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

gboolean
gesso_prompt_cache_set_second (GessoPromptCache *cache, GessoTokenizer *tokenizer,
                               GessoTextEncoder *encoder, GError **error)
{
  const GessoTextEncoderConfig *config;
  int layers_1;

  g_return_val_if_fail (cache != NULL && tokenizer != NULL && encoder != NULL, FALSE);
  g_return_val_if_fail (cache->tokenizer_2 == NULL && cache->entries.length == 0, FALSE);
  config = gesso_text_encoder_get_config (encoder);
  if (!check_pair (tokenizer, encoder, error))
    return FALSE;
  if (config->max_positions != cache->tokens || gesso_text_encoder_pooled_dim (encoder) < 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "SDXL's second text encoder reads %d positions (the first %" G_GINT64_FORMAT
                   ") and has %s text_projection; the model's text encoders do not fit "
                   "together", config->max_positions, cache->tokens,
                   gesso_text_encoder_pooled_dim (encoder) < 1 ? "no" : "a");
      return FALSE;
    }
  cache->tokenizer_2 = tokenizer;
  cache->encoder_2 = encoder;
  cache->width += config->hidden_size;
  cache->pooled = gesso_text_encoder_pooled_dim (encoder);
  /* SDXL reads the penultimate layer: a clip skip goes one further from there */
  layers_1 = gesso_text_encoder_get_config (cache->encoder)->n_layers;
  cache->n_layers = MIN (layers_1, config->n_layers) - 1;
  return TRUE;
}

int64_t
gesso_prompt_cache_pooled_width (const GessoPromptCache *cache)
{
  return cache->pooled;
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

/* SDXL: OUT [tokens, width] = both encoders' hidden states CLIP_SKIP + 1 layers from the
 * top, raw (diffusers' hidden_states[-(clip_skip + 2)]), side by side per token; POOLED the
 * second encoder's pooled embedding. Through OUT_POOLED, as the cache stores them. */
static gboolean
encode_sdxl (GessoPromptCache *cache, const char *text, int clip_skip, float *out,
             GError **error)
{
  const int64_t t = cache->tokens;
  const int64_t w1 = gesso_text_encoder_get_config (cache->encoder)->hidden_size;
  const int64_t w2 = cache->width - w1;
  g_autofree float *h1 = g_new (float, (size_t) (t * w1));
  g_autofree float *h2 = g_new (float, (size_t) (t * w2));

  if (!gesso_tokenizer_encode (cache->tokenizer, text, cache->ids, (size_t) t, NULL, NULL,
                               error)
      || !gesso_text_encoder_hidden_state (cache->encoder, cache->ids, clip_skip + 1, h1, error)
      || !gesso_tokenizer_encode (cache->tokenizer_2, text, cache->ids, (size_t) t, NULL, NULL,
                                  error)
      || !gesso_text_encoder_hidden_state (cache->encoder_2, cache->ids, clip_skip + 1, h2,
                                           error)
      || !gesso_text_encoder_pooled (cache->encoder_2, cache->ids, out + t * cache->width,
                                     error))
    return FALSE;
  for (int64_t i = 0; i < t; i++)
    {
      memcpy (out + i * cache->width, h1 + i * w1, (size_t) w1 * sizeof (float));
      memcpy (out + i * cache->width + w1, h2 + i * w2, (size_t) w2 * sizeof (float));
    }
  return TRUE;
}

static char *
entry_key (const char *text, int clip_skip)
{
  /* the clip skip first: a prompt may contain any character, a number cannot */
  return g_strdup_printf ("%d:%s", clip_skip, text != NULL ? text : "");
}

static GList *
find_entry (const GessoPromptCache *cache, const char *key)
{
  for (GList *l = cache->entries.head; l != NULL; l = l->next)
    if (strcmp (((const Entry *) l->data)->key, key) == 0)
      return l;
  return NULL;
}

void
gesso_prompt_cache_clear (GessoPromptCache *cache)
{
  Entry *e;

  while ((e = g_queue_pop_head (&cache->entries)) != NULL)
    entry_free (e);
}

gboolean
gesso_prompt_cache_has (const GessoPromptCache *cache, const char *text, int clip_skip)
{
  g_autofree char *key = entry_key (text, clip_skip);

  return find_entry (cache, key) != NULL;
}

void
gesso_prompt_cache_set_encoders (GessoPromptCache *cache, GessoTextEncoder *encoder,
                                 GessoTextEncoder *encoder_2)
{
  cache->encoder = encoder;
  cache->encoder_2 = encoder_2;
}

gboolean
gesso_prompt_cache_encode (GessoPromptCache *cache, const char *text, int clip_skip,
                           float *out, GError **error)
{
  return gesso_prompt_cache_encode_pooled (cache, text, clip_skip, out, NULL, error);
}

gboolean
gesso_prompt_cache_encode_pooled (GessoPromptCache *cache, const char *text, int clip_skip,
                                  float *out, float *pooled, GError **error)
{
  size_t n = (size_t) (cache->tokens * cache->width);
  g_autofree char *key = NULL;
  g_autofree float *computed = NULL;
  GList *l;
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
  key = entry_key (text, clip_skip);
  l = find_entry (cache, key);
  if (l != NULL)
    {
      /* most recently used goes last */
      g_queue_unlink (&cache->entries, l);
      g_queue_push_tail_link (&cache->entries, l);
      e = l->data;
      memcpy (out, e->embedding, n * sizeof (float));
      if (pooled != NULL)
        memcpy (pooled, e->embedding + n, (size_t) cache->pooled * sizeof (float));
      cache->hits++;
      return TRUE;
    }
  g_return_val_if_fail (cache->encoder != NULL
                        && (cache->tokenizer_2 == NULL || cache->encoder_2 != NULL), FALSE);

  computed = g_new (float, n + (size_t) cache->pooled);
  if (cache->tokenizer_2 != NULL ? !encode_sdxl (cache, text, clip_skip, computed, error)
      : !gesso_tokenizer_encode (cache->tokenizer, text, cache->ids, (size_t) cache->tokens,
                                 NULL, NULL, error)
          || !gesso_text_encoder_encode (cache->encoder, cache->ids, clip_skip, computed,
                                         error))
    return FALSE;
  cache->misses++;
  memcpy (out, computed, n * sizeof (float));
  if (pooled != NULL)
    memcpy (pooled, computed + n, (size_t) cache->pooled * sizeof (float));

  if (cache->entries.length >= cache->capacity)
    entry_free (g_queue_pop_head (&cache->entries));
  e = g_new (Entry, 1);
  e->key = g_steal_pointer (&key);
  e->embedding = g_steal_pointer (&computed);
  g_queue_push_tail (&cache->entries, e);
  return TRUE;
}
