/* Prompt embeddings, cached.
 *
 * prompt -> tokenizer (the text encoder's 77 positions, the model's pad convention) -> text
 * encoder (clip skip) -> [tokens, hidden] floats. Editing sessions repeat prompts (the
 * unconditional "" above all, every job), so the last few embeddings are kept, keyed by
 * (text, clip_skip), least recently used dropped first.
 */
#ifndef GESSO_PROMPT_CACHE_H
#define GESSO_PROMPT_CACHE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "model/text_encoder.h"
#include "model/tokenizer.h"

G_BEGIN_DECLS

typedef struct GessoPromptCache GessoPromptCache;

/* Borrows TOKENIZER and ENCODER (they must outlive the cache); CAPACITY >= 1 embeddings are
 * kept. Fails when the tokenizer's length and the encoder's positions disagree. */
GessoPromptCache *gesso_prompt_cache_new (GessoTokenizer *tokenizer, GessoTextEncoder *encoder,
                                          guint capacity, GError **error);
void gesso_prompt_cache_free (GessoPromptCache *cache);
/* Makes the cache SDXL's (before its first encode): TOKENIZER and ENCODER (borrowed) are the
 * second pair, whose encoder has a text_projection. Embeddings are then both encoders'
 * penultimate hidden states side by side (no final norm), and each prompt has a pooled
 * embedding too. */
gboolean gesso_prompt_cache_set_second (GessoPromptCache *cache, GessoTokenizer *tokenizer,
                                        GessoTextEncoder *encoder, GError **error);
/* The pooled embedding's width: 0 unless the cache is SDXL's. */
int64_t gesso_prompt_cache_pooled_width (const GessoPromptCache *cache);

int64_t gesso_prompt_cache_tokens (const GessoPromptCache *cache);
int64_t gesso_prompt_cache_width (const GessoPromptCache *cache);

/* OUT (tokens * width floats) = the embedding of TEXT (NULL means "") with CLIP_SKIP
 * (0 = last layer; see text_encoder.h). Text longer than the window is cut, as diffusers'
 * pipelines cut it. */
gboolean gesso_prompt_cache_encode (GessoPromptCache *cache, const char *text, int clip_skip,
                                    float *out, GError **error);

/* The same, with POOLED (pooled width floats; may be NULL) = the prompt's pooled embedding. */
gboolean gesso_prompt_cache_encode_pooled (GessoPromptCache *cache, const char *text,
                                           int clip_skip, float *out, float *pooled,
                                           GError **error);

/* Forgets every embedding (the text encoder's weights changed: LoRAs). */
void gesso_prompt_cache_clear (GessoPromptCache *cache);
/* Whether TEXT with CLIP_SKIP is cached: gesso_prompt_cache_encode needs no encoder for it. */
gboolean gesso_prompt_cache_has (const GessoPromptCache *cache, const char *text,
                                 int clip_skip);
/* Replaces the borrowed encoders (same configurations; ENCODER_2 only for an SDXL cache): NULL
 * while the model has released them, when an encode of a prompt not cached is an error. */
void gesso_prompt_cache_set_encoders (GessoPromptCache *cache, GessoTextEncoder *encoder,
                                      GessoTextEncoder *encoder_2);

/* How many encodes were answered from the cache / computed (for tests). */
guint gesso_prompt_cache_hits (const GessoPromptCache *cache);
guint gesso_prompt_cache_misses (const GessoPromptCache *cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoPromptCache, gesso_prompt_cache_free)

G_END_DECLS

#endif /* GESSO_PROMPT_CACHE_H */
