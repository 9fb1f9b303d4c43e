/* The CLIP BPE vocabulary Gesso ships, for models that bring no tokenizer files.
 *
 * A single .safetensors checkpoint carries no tokenizer, yet every Stable Diffusion text
 * encoder (SD 1.x's CLIP ViT-L, SD 2.x's OpenCLIP ViT-H, both of SDXL's) reads ids of one and
 * the same table: OpenAI's CLIP BPE vocabulary, bpe_simple_vocab_16e6.txt.gz from the
 * openai/CLIP repository (MIT licence; data/clip/README.md records where and when it was taken).
 * The file is compiled into the engine as a GResource, byte for byte as published, so there is
 * no install path to find and nothing to go missing.
 *
 * The file holds a header line and the merges, best first. CLIP derives the tokenizer from it
 * (clip/simple_tokenizer.py): the 256 byte stand-ins in bytes_to_unicode() order, the same
 * with "</w>", one token per merge (the pair joined) for the first 49152 - 256 - 2 merges, then
 * "<|startoftext|>" and "<|endoftext|>": 49408 ids. Gesso derives the same and writes it as
 * the vocab.json and merges.txt a diffusers tokenizer/ folder holds, so the bundled table goes
 * through the very parser user files do; for the published table those texts are byte for
 * byte the files transformers saves (tests/unit/test-clip-vocab.c checks).
 */
#ifndef GESSO_CLIP_VOCAB_H
#define GESSO_CLIP_VOCAB_H

#include <glib.h>

#include "gesso.h"

G_BEGIN_DECLS

/* Ids in CLIP's table: the rows of every SD text encoder's token embedding. */
#define GESSO_CLIP_VOCAB_SIZE 49408

/* The conventions a model's text encoder was trained with, which the one table serves. */
typedef enum
{
  GESSO_CLIP_FLAVOR_OPENAI,     /* SD 1.x and SDXL's first encoder: pad "<|endoftext|>" */
  GESSO_CLIP_FLAVOR_OPENCLIP,   /* SD 2.x and SDXL's second encoder: pad "!" (id 0) */
} GessoClipFlavor;

/* The bundled file, gunzipped: the text of bpe_simple_vocab_16e6.txt. */
GBytes *gesso_clip_vocab_bundled_text (GError **error);

/* From TEXT (a bpe_simple_vocab file's contents) the vocab.json and merges.txt a diffusers
 * tokenizer/ folder would hold: vocab.json as transformers writes it (keys sorted, two-space
 * indent, non-ASCII kept), merges.txt "#version: 0.2" then one merge a line. Both g_free. A
 * text too short to give CLIP's 49408 ids is a CORRUPT error. */
gboolean gesso_clip_vocab_derive (const char *text, gsize length, char **vocab_json,
                                  char **merges_txt, GError **error);

/* The bundled table's vocab.json and merges.txt, derived once and kept (borrowed, alive for
 * the process; thread-safe). */
gboolean gesso_clip_vocab_bundled (const char **vocab_json, const char **merges_txt,
                                   GError **error);

G_END_DECLS

#endif /* GESSO_CLIP_VOCAB_H */
