/* The bundled CLIP BPE vocabulary; see clip_vocab.h for what is derived and why. */
#include "model/clip_vocab.h"

#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "gesso-resources.h"

#define RESOURCE_PATH "/org/gesso/Gesso/clip/bpe_simple_vocab_16e6.txt.gz"
/* CLIP's vocabulary: 256 bytes, 256 bytes + "</w>", the merges, two specials. */
#define N_IDS GESSO_CLIP_VOCAB_SIZE
#define N_MERGES (N_IDS - 2 * 256 - 2)

GBytes *
gesso_clip_vocab_bundled_text (GError **error)
{
  g_autoptr (GBytes) packed = NULL;
  g_autoptr (GInputStream) raw = NULL;
  g_autoptr (GConverter) gunzip = NULL;
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (GOutputStream) out = NULL;
  g_autoptr (GError) local = NULL;

  packed = g_resource_lookup_data (gesso_resources_get_resource (), RESOURCE_PATH,
                                   G_RESOURCE_LOOKUP_FLAGS_NONE, &local);
  if (packed == NULL)
    {
      /* only a broken build gets here: the file is compiled in */
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "the bundled CLIP vocabulary is missing from this build of Gesso (%s); "
                   "put the model's vocab.json and merges.txt beside it", local->message);
      return NULL;
    }
  raw = g_memory_input_stream_new_from_bytes (packed);
  gunzip = G_CONVERTER (g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP));
  stream = g_converter_input_stream_new (raw, gunzip);
  out = g_memory_output_stream_new_resizable ();
  if (g_output_stream_splice (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE
                                             | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                              NULL, &local) < 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the bundled CLIP vocabulary cannot be unpacked: %s", local->message);
      return NULL;
    }
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* bytes_to_unicode() order: the printable Latin-1 bytes stand for themselves, in byte order,
 * then the other 68 bytes' stand-ins U+0100... in byte order (GPT-2's table, which CLIP uses). */
static void
append_byte_tokens (GPtrArray *tokens, const char *suffix)
{
  gunichar next = 0x100;
  gunichar order[256];
  guint n = 0;

  for (guint b = 0; b < 256; b++)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
      order[n++] = b;
  for (guint b = 0; b < 256; b++)
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE))
      order[n++] = next++;
  for (guint i = 0; i < 256; i++)
    {
      char utf8[8];
      int length = g_unichar_to_utf8 (order[i], utf8);

      utf8[length] = '\0';
      g_ptr_array_add (tokens, g_strconcat (utf8, suffix, NULL));
    }
}

/* A JSON string as Python's json.dumps (ensure_ascii=False) writes it. Tokens are made of
 * byte stand-ins, which are never control characters, but a user-supplied text might be. */
static void
append_json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const char *p = s; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      if (c == '"' || c == '\\')
        g_string_append_c (out, '\\');
      if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char) c);
    }
  g_string_append_c (out, '"');
}

static gint
compare_keys (gconstpointer a, gconstpointer b)
{
  /* byte order of UTF-8 is code point order, which is how Python sorts str keys */
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

gboolean
gesso_clip_vocab_derive (const char *text, gsize length, char **vocab_json, char **merges_txt,
                         GError **error)
{
  g_autoptr (GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GString) merges = g_string_new ("#version: 0.2\n");
  g_autoptr (GString) vocab = NULL;
  g_autofree const char **keys = NULL;
  const char *p = text;
  const char *end = text + length;
  guint n_keys;

  g_return_val_if_fail (text != NULL && vocab_json != NULL && merges_txt != NULL, FALSE);
  if (!g_utf8_validate_len (text, length, NULL))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the CLIP vocabulary is not UTF-8 text");
      return FALSE;
    }
  append_byte_tokens (tokens, "");
  append_byte_tokens (tokens, "</w>");

  /* clip/simple_tokenizer.py: split("\n")[1:49152-256-2+1]: the first line is a header */
  p = memchr (p, '\n', length);
  for (guint i = 0; i < N_MERGES; i++)
    {
      const char *line = p != NULL ? p + 1 : end;
      const char *eol = line < end ? memchr (line, '\n', (size_t) (end - line)) : NULL;
      const char *stop = eol != NULL ? eol : end;
      const char *space = line < stop ? memchr (line, ' ', (size_t) (stop - line)) : NULL;

      if (p == NULL || space == NULL || space == line || space + 1 >= stop
          || memchr (space + 1, ' ', (size_t) (stop - space - 1)) != NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "the CLIP vocabulary's merge %u is not two symbols (\"a b\"); CLIP's "
                       "table has %d", i + 1, N_MERGES);
          return FALSE;
        }
      g_string_append_len (merges, line, stop - line);
      g_string_append_c (merges, '\n');
      /* the merged symbol is the pair joined: ''.join(merge.split()) */
      g_ptr_array_add (tokens, g_strdup_printf ("%.*s%.*s", (int) (space - line), line,
                                                (int) (stop - space - 1), space + 1));
      p = eol;
    }
  g_ptr_array_add (tokens, g_strdup ("<|startoftext|>"));
  g_ptr_array_add (tokens, g_strdup ("<|endoftext|>"));

  /* dict(zip(vocab, range(len(vocab)))): a token listed twice keeps its last id */
  for (guint i = 0; i < tokens->len; i++)
    g_hash_table_insert (ids, tokens->pdata[i], GUINT_TO_POINTER (i));
  keys = (const char **) g_hash_table_get_keys_as_array (ids, &n_keys);
  qsort (keys, n_keys, sizeof *keys, compare_keys);
  vocab = g_string_sized_new (1100 * 1024);
  g_string_append (vocab, "{\n");
  for (guint i = 0; i < n_keys; i++)
    {
      g_string_append (vocab, "  ");
      append_json_string (vocab, keys[i]);
      g_string_append_printf (vocab, ": %u%s\n", GPOINTER_TO_UINT (g_hash_table_lookup (ids,
                                                                                      keys[i])),
                              i + 1 < n_keys ? "," : "");
    }
  g_string_append (vocab, "}\n");
  *vocab_json = g_string_free (g_steal_pointer (&vocab), FALSE);
  *merges_txt = g_string_free (g_steal_pointer (&merges), FALSE);
  return TRUE;
}

gboolean
gesso_clip_vocab_bundled (const char **vocab_json, const char **merges_txt, GError **error)
{
  /* derived once per process (about 1.6 MB of text); kept for every model opened later */
  static GMutex lock;
  static char *vocab;
  static char *merges;
  gboolean ok = TRUE;

  g_mutex_lock (&lock);
  if (vocab == NULL)
    {
      g_autoptr (GBytes) text = gesso_clip_vocab_bundled_text (error);
      gsize length;
      const char *data;

      ok = text != NULL;
      if (ok)
        {
          data = g_bytes_get_data (text, &length);
          ok = gesso_clip_vocab_derive (data, length, &vocab, &merges, error);
        }
    }
  g_mutex_unlock (&lock);
  if (ok)
    {
      *vocab_json = vocab;
      *merges_txt = merges;
    }
  return ok;
}
