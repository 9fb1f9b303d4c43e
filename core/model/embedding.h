/* Textual-inversion embeddings: learnt token vectors that a trigger word calls up in prompts.
 *
 * Layouts read (safetensors only; pickle .pt/.bin files are refused as checkpoints are):
 *   A1111        "emb_params" [n, width] (or "string_to_param.*", the pickle dict's key kept
 *                when converted); the trigger word is the file's stem
 *   diffusers    learned_embeds.safetensors: one entry {token: [width] or [n, width]}; the
 *                trigger is the stored token
 * SDXL embeddings (clip_l + clip_g) are recognised and refused: Gesso runs SD 1.x/2.x.
 *
 * A model takes an embedding by appending its vectors to the text encoder's token table as
 * ids past the vocabulary (gesso_text_encoder_add_rows) and making the trigger expand to those
 * n ids in the tokenizer (gesso_tokenizer_add_trigger): the encoder then sees exactly what a
 * word whose token rows were these vectors would give.
 */
#ifndef GESSO_EMBEDDING_H
#define GESSO_EMBEDDING_H

#include <glib.h>
#include <stdint.h>

#include "gesso.h"

G_BEGIN_DECLS

/* More vectors than a prompt window holds tokens (77 - BOS - EOS) cannot be an embedding. */
#define GESSO_EMBEDDING_MAX_VECTORS 75

typedef struct
{
  char *path;
  char *trigger;                /* the word that calls it up */
  const char *layout;           /* "A1111 (emb_params)", ... (static) */
  int64_t n_vectors;
  int64_t width;                /* the text encoder's hidden size it was made for */
  float *vectors;               /* [n_vectors, width], widened to float32 */
} GessoEmbedding;

/* Reads PATH. Refused: pickle files (UNSAFE), files holding no embedding in a known layout and
 * SDXL embeddings (UNSUPPORTED), a misshapen vector (CORRUPT); each one line naming the file. */
GessoEmbedding *gesso_embedding_load (const char *path, GError **error);
void gesso_embedding_free (GessoEmbedding *embedding);

/* "SD 1.x" (768), "SD 2.x" (1024), or NULL for another width. */
const char *gesso_embedding_family_of_width (int64_t width);

/* The one-line refusal for an embedding of WIDTH on a text encoder of MODEL_WIDTH. */
void gesso_embedding_set_width_error (const GessoEmbedding *embedding, int64_t model_width,
                                      GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoEmbedding, gesso_embedding_free)

G_END_DECLS

#endif /* GESSO_EMBEDDING_H */
