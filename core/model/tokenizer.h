/* The CLIP tokenizer: prompt text to the token ids a CLIP text encoder reads.
 *
 * Matches transformers' slow CLIPTokenizer as diffusers runs it without ftfy installed:
 * added tokens (the special tokens and any others the folder lists) are split out of the text
 * first; each remaining piece is cleaned like BERT's BasicTokenizer (control characters dropped,
 * whitespace collapsed, CJK ideographs spaced, NFC, Python's lower()); CLIP's pre-tokenisation
 * regex cuts it into words; each word's UTF-8 bytes go through the byte-to-unicode table and
 * byte-level BPE with "</w>" marking the word's end. The result is [BOS] tokens [EOS], cut to
 * the length the text encoder reads with EOS kept last, then padded with the pad token: SD1
 * pads with "<|endoftext|>", SD2 with "!" (which, being an added token, also turns every "!"
 * of an SD2 prompt into its own id).
 *
 * Vocabulary and merges are untrusted input; every failure is a GError.
 */
#ifndef GESSO_TOKENIZER_H
#define GESSO_TOKENIZER_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gesso.h"
#include "model/clip_vocab.h"

G_BEGIN_DECLS

typedef struct GessoTokenizer GessoTokenizer;

/* A token matched whole in prompts before any cleanup, like transformers' added tokens. */
typedef struct
{
  const char *content;
  int64_t id;                   /* < 0: the id vocab.json gives CONTENT */
} GessoTokenizerAddedToken;

/* What tokenizer_config.json / special_tokens_map.json say; strings are borrowed. The four
 * special tokens are added tokens too, so they are matched whole in prompts. */
typedef struct
{
  const char *bos_token;        /* "<|startoftext|>" */
  const char *eos_token;        /* "<|endoftext|>" */
  const char *unk_token;        /* "<|endoftext|>": the id of BPE pieces the vocab lacks */
  const char *pad_token;        /* "<|endoftext|>" (SD1); SD2 uses "!" */
  guint max_length;             /* model_max_length: 77 */
  const GessoTokenizerAddedToken *added_tokens;
  guint n_added_tokens;
} GessoTokenizerConfig;

/* CLIPTokenizer's defaults, which are SD1's. */
void gesso_tokenizer_config_init (GessoTokenizerConfig *config);

/* VOCAB_PATH is a vocab.json (token -> id), MERGES_PATH a merges.txt (a "#version" line, then
 * one "left right" pair a line, best first). CONFIG NULL means gesso_tokenizer_config_init's.
 * A missing file is a GESSO_ERROR_MISSING error naming the file and where it was looked for. */
GessoTokenizer *gesso_tokenizer_new_from_files (const char *vocab_path, const char *merges_path,
                                                const GessoTokenizerConfig *config,
                                                GError **error);
/* The same from memory (embedded tokenizers, fuzzing); lengths may be -1 for NUL-terminated. */
GessoTokenizer *gesso_tokenizer_new_from_data (const char *vocab_json, gssize vocab_length,
                                               const char *merges, gssize merges_length,
                                               const GessoTokenizerConfig *config,
                                               GError **error);
/* A diffusers tokenizer/ folder: vocab.json and merges.txt, and the special tokens, added
 * tokens and model_max_length of tokenizer_config.json and special_tokens_map.json the way
 * transformers reads them (either may be absent; then CLIPTokenizer's defaults apply). */
GessoTokenizer *gesso_tokenizer_new_from_dir (const char *dir, GError **error);
/* OpenAI's CLIP table that Gesso ships (model/clip_vocab.h), with FLAVOR's conventions and
 * CLIPTokenizer's defaults otherwise: for models that bring no tokenizer files. */
GessoTokenizer *gesso_tokenizer_new_bundled (GessoClipFlavor flavor, GError **error);
void gesso_tokenizer_free (GessoTokenizer *tokenizer);

guint gesso_tokenizer_get_max_length (const GessoTokenizer *tokenizer);
int64_t gesso_tokenizer_get_bos_id (const GessoTokenizer *tokenizer);
int64_t gesso_tokenizer_get_eos_id (const GessoTokenizer *tokenizer);
int64_t gesso_tokenizer_get_pad_id (const GessoTokenizer *tokenizer);
/* One more than the largest id the tokenizer can produce: the embedding table must have at
 * least this many rows. */
int64_t gesso_tokenizer_get_n_ids (const GessoTokenizer *tokenizer);
/* The vocabulary string of ID (added tokens first), NULL when there is none. Borrowed. */
const char *gesso_tokenizer_id_to_token (const GessoTokenizer *tokenizer, int64_t id);

/* Tokenizes TEXT (UTF-8; anything else is an INVALID_ARGUMENT error). When IDS is not NULL it
 * receives exactly N_IDS ids (N_IDS >= 2, usually gesso_tokenizer_get_max_length): BOS, the
 * first N_IDS - 2 tokens, EOS, then pad ids. When UNTRUNCATED is not NULL it receives the whole
 * [BOS] tokens [EOS] sequence (g_free), and N_UNTRUNCATED its length, for prompts longer than
 * one window. Not thread-safe: a cache of tokenized words lives in TOKENIZER. */
gboolean gesso_tokenizer_encode (GessoTokenizer *tokenizer, const char *text, int64_t *ids,
                                 size_t n_ids, int64_t **untruncated, size_t *n_untruncated,
                                 GError **error);

/* Makes WORD (a textual-inversion embedding's trigger) stand for the N_IDS ids FIRST_ID ..
 * FIRST_ID + N_IDS - 1, which lie past the vocabulary (the text encoder holds their rows). It
 * is matched in the raw prompt before anything else, as a whole word (no letter, digit or _
 * on either side) and ignoring ASCII case, the longest trigger first. Not counted in
 * gesso_tokenizer_get_n_ids. */
gboolean gesso_tokenizer_add_trigger (GessoTokenizer *tokenizer, const char *word,
                                      int64_t first_id, int64_t n_ids, GError **error);
/* Whether WORD is a trigger already (ignoring ASCII case). */
gboolean gesso_tokenizer_has_trigger (const GessoTokenizer *tokenizer, const char *word);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoTokenizer, gesso_tokenizer_free)

G_END_DECLS

#endif /* GESSO_TOKENIZER_H */
