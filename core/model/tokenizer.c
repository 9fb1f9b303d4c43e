/* CLIP byte-level BPE, matching transformers' slow CLIPTokenizer (no ftfy) id for id; the
 * pipeline is described in tokenizer.h. Where Python and GLib differ (lower(), Unicode
 * categories, whitespace), the helpers below follow Python, because the reference ids do. */
#include "model/tokenizer.h"

#include <string.h>

#include <json-glib/json-glib.h>

/* CLIP's vocabulary is 49152 entries: 256 bytes, 256 bytes + "</w>", the merges, and the two
 * specials, so CLIPTokenizer reads only this many merge lines whatever the file holds. */
#define MAX_MERGES (49152 - 256 - 2)
#define DEFAULT_MAX_LENGTH 77
/* model_max_length values above this are "no limit" placeholders (1e30 and the like). */
#define MAX_MAX_LENGTH 65536
/* transformers' word cache grows without bound; a plug-in lives long, so ours is emptied when
 * it reaches this many words. */
#define CACHE_LIMIT 10000

typedef struct
{
  const char *content;          /* in the tokenizer's string chunk */
  size_t length;
  int64_t id;
  int64_t n_ids;                /* 1; a trigger word: ids id .. id + n_ids - 1 */
} AddedToken;

typedef struct
{
  size_t n;
  int64_t ids[];
} CachedWord;

/* A BPE symbol: LENGTH bytes at START of the byte-encoded word (merges only ever join
 * neighbours, so every symbol is a contiguous span). */
typedef struct
{
  guint start;
  guint length;
} Symbol;

typedef enum
{
  WORD_NONE,                    /* matched by no branch of CLIP's regex */
  WORD_LETTER,
  WORD_NUMBER,
  WORD_OTHER,
} WordClass;

struct GessoTokenizer
{
  GStringChunk *strings;        /* every token and merge key, freed at once */
  GHashTable *vocab;            /* token -> id */
  GHashTable *decoder;          /* id -> token */
  GHashTable *ranks;            /* "left right" -> merge rank */
  GArray *added;                /* AddedToken, longest first */
  GArray *triggers;             /* AddedToken: embeddings' trigger words; NULL: none */
  GHashTable *cache;            /* word (UTF-8) -> CachedWord */
  GString *scratch;
  char bytes[256][4];           /* each byte's stand-in character, UTF-8, NUL-terminated */
  guint8 byte_length[256];
  int64_t bos_id;
  int64_t eos_id;
  int64_t pad_id;
  int64_t unk_id;
  int64_t n_ids;
  guint max_length;
};

static const char *const seeded_words[] = { "<|startoftext|>", "<|endoftext|>" };

/* --- Character classes, as Python and the `regex` module see them ----------------------- */

/* GLib's tables may be a Unicode version older than the reference's (Python 3.13: 15.1);
 * characters assigned since then would otherwise be dropped as unassigned. */
static GUnicodeType
char_type (gunichar c)
{
  GUnicodeType type = g_unichar_type (c);

  if (type != G_UNICODE_UNASSIGNED)
    return type;
  if ((c >= 0x2FFC && c <= 0x2FFF) || c == 0x31EF)
    return G_UNICODE_OTHER_SYMBOL;
  if (c >= 0x2EBF0 && c <= 0x2EE5D)
    return G_UNICODE_OTHER_LETTER;
  return type;
}

/* str.isspace (): what str.split () splits on. */
static gboolean
is_py_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0
         || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029
         || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* BasicTokenizer._is_control: every category C* except tab and newlines. */
static gboolean
is_control (gunichar c)
{
  if (c == '\t' || c == '\n' || c == '\r')
    return FALSE;
  switch (char_type (c))
    {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_UNASSIGNED:
    case G_UNICODE_PRIVATE_USE:
    case G_UNICODE_SURROGATE:
      return TRUE;
    default:
      return FALSE;
    }
}

/* BasicTokenizer._is_whitespace: only Zs and the four ASCII ones. */
static gboolean
is_bert_space (gunichar c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r'
         || char_type (c) == G_UNICODE_SPACE_SEPARATOR;
}

/* BasicTokenizer._is_chinese_char: the CJK ideograph blocks (not kana or hangul). */
static gboolean
is_cjk (gunichar c)
{
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF)
         || (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F)
         || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF)
         || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Unicode's Case_Ignorable: marks, format characters, modifiers, and the Word_Break
 * MidLetter/MidNumLet/Single_Quote characters. */
static gboolean
is_case_ignorable (gunichar c)
{
  static const gunichar mid[] = {
    0x27, 0x2E, 0x3A, 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
    0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A,
  };

  switch (char_type (c))
    {
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_FORMAT:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_MODIFIER_SYMBOL:
      return TRUE;
    default:
      break;
    }
  for (size_t i = 0; i < G_N_ELEMENTS (mid); i++)
    if (c == mid[i])
      return TRUE;
  return FALSE;
}

/* Unicode's Cased: Lu, Ll, Lt and the Other_Lowercase/Other_Uppercase characters that are
 * not case-ignorable (ordinals, roman numerals, circled and squared letters). */
static gboolean
is_cased (gunichar c)
{
  GUnicodeType type = char_type (c);

  return type == G_UNICODE_UPPERCASE_LETTER || type == G_UNICODE_LOWERCASE_LETTER
         || type == G_UNICODE_TITLECASE_LETTER || c == 0xAA || c == 0xBA
         || (c >= 0x2160 && c <= 0x217F) || (c >= 0x24B6 && c <= 0x24E9)
         || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169)
         || (c >= 0x1F170 && c <= 0x1F189);
}

/* Python lowers a capital sigma to final sigma after a cased letter that no cased letter
 * follows (case-ignorable characters skipped both ways); GLib looks only forward. */
static gboolean
is_final_sigma (const gunichar *s, glong n, glong i)
{
  glong j;

  for (j = i - 1; j >= 0 && is_case_ignorable (s[j]); j--)
    ;
  if (j < 0 || !is_cased (s[j]))
    return FALSE;
  for (j = i + 1; j < n && is_case_ignorable (s[j]); j++)
    ;
  return j == n || !is_cased (s[j]);
}

/* str.lower (): simple lower-case mappings plus the two special ones Python applies. GLib maps
 * only letters; Python maps whatever has a mapping, which adds roman numerals (Nl) and
 * circled letters (So). */
static void
py_lower (const gunichar *s, glong n, GArray *out)
{
  g_array_set_size (out, 0);
  for (glong i = 0; i < n; i++)
    {
      gunichar c = s[i];

      if (c == 0x130)
        {
          /* Capital I with dot: "i" + combining dot above, as SpecialCasing.txt says. */
          gunichar pair[2] = { 'i', 0x307 };
          g_array_append_vals (out, pair, 2);
          continue;
        }
      if (c == 0x3A3)
        c = is_final_sigma (s, n, i) ? 0x3C2 : 0x3C3;
      else if (c >= 0x2160 && c <= 0x216F)
        c += 0x10;
      else if (c >= 0x24B6 && c <= 0x24CF)
        c += 0x1A;
      else
        c = g_unichar_tolower (c);
      g_array_append_val (out, c);
    }
}

/* The classes of CLIP's regex. It is compiled with IGNORECASE, under which the `regex` module
 * matches U+0345 (a mark whose upper case is a letter) with neither [\p{L}] nor
 * [^\s\p{L}\p{N}], so findall steps over it like a space. */
static WordClass
word_class (gunichar c)
{
  if (c == 0x345 || is_py_space (c))
    return WORD_NONE;
  switch (char_type (c))
    {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return WORD_LETTER;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return WORD_NUMBER;
    default:
      return WORD_OTHER;
    }
}

/* Case-insensitive match of C against the lower-case ASCII LIT, with the simple case folds
 * that reach ASCII letters from outside it (long s, Kelvin sign). */
static gboolean
matches_ignore_case (gunichar c, char lit)
{
  if (c == (gunichar) lit)
    return TRUE;
  if (lit < 'a' || lit > 'z')
    return FALSE;
  return c == (gunichar) g_ascii_toupper (lit) || (lit == 's' && c == 0x17F)
         || (lit == 'k' && c == 0x212A);
}

static gboolean
matches_literal (const gunichar *s, glong n, glong i, const char *lit)
{
  for (glong k = 0; lit[k] != '\0'; k++)
    if (i + k >= n || !matches_ignore_case (s[i + k], lit[k]))
      return FALSE;
  return TRUE;
}

/* End of the match of CLIP's pattern
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * at I (branches tried in order, as a backtracking engine does); I when nothing matches. */
static glong
match_at (const gunichar *s, glong n, glong i)
{
  static const char *const literals[] = {
    "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
  };
  WordClass class;
  glong j;

  for (size_t k = 0; k < G_N_ELEMENTS (literals); k++)
    if (matches_literal (s, n, i, literals[k]))
      return i + (glong) strlen (literals[k]);

  class = word_class (s[i]);
  switch (class)
    {
    case WORD_NONE:
      return i;
    case WORD_NUMBER:
      return i + 1;
    case WORD_LETTER:
    case WORD_OTHER:
    default:
      for (j = i + 1; j < n && word_class (s[j]) == class; j++)
        ;
      return j;
    }
}

/* --- Lookups ------------------------------------------------------------------------------ */

static gboolean
lookup_id (GHashTable *table, const char *key, int64_t *id)
{
  gpointer value;

  if (!g_hash_table_lookup_extended (table, key, NULL, &value))
    return FALSE;
  *id = GPOINTER_TO_INT (value);
  return TRUE;
}

static const AddedToken *
find_added (const GessoTokenizer *tok, const char *content, size_t length)
{
  for (guint i = 0; i < tok->added->len; i++)
    {
      const AddedToken *a = &g_array_index (tok->added, AddedToken, i);
      if (a->length == length && memcmp (a->content, content, length) == 0)
        return a;
    }
  return NULL;
}

/* convert_tokens_to_ids: added tokens first, then the vocabulary, else the unknown token. */
static int64_t
piece_id (GessoTokenizer *tok, const char *piece, size_t length)
{
  const AddedToken *added = find_added (tok, piece, length);
  int64_t id;

  if (added != NULL)
    return added->id;
  g_string_truncate (tok->scratch, 0);
  g_string_append_len (tok->scratch, piece, (gssize) length);
  if (lookup_id (tok->vocab, tok->scratch->str, &id))
    return id;
  return tok->unk_id;
}

static guint
pair_rank (GessoTokenizer *tok, const char *word, Symbol left, Symbol right)
{
  gpointer value;

  g_string_truncate (tok->scratch, 0);
  g_string_append_len (tok->scratch, word + left.start, left.length);
  g_string_append_c (tok->scratch, ' ');
  g_string_append_len (tok->scratch, word + right.start, right.length);
  if (!g_hash_table_lookup_extended (tok->ranks, tok->scratch->str, NULL, &value))
    return G_MAXUINT;
  return GPOINTER_TO_UINT (value);
}

static gboolean
same_symbol (const char *word, Symbol a, Symbol b)
{
  return a.length == b.length && memcmp (word + a.start, word + b.start, a.length) == 0;
}

/* --- BPE ---------------------------------------------------------------------------------- */

/* One word: its bytes as stand-in characters, "</w>" glued to the last, then the lowest-ranked
 * adjacent pair merged everywhere (left to right, non-overlapping) until no pair has a rank. */
static CachedWord *
bpe (GessoTokenizer *tok, const char *word)
{
  GString *enc = g_string_new (NULL);
  GArray *symbols = g_array_new (FALSE, FALSE, sizeof (Symbol));
  GArray *ranks = g_array_new (FALSE, FALSE, sizeof (guint));
  GArray *new_ranks = g_array_new (FALSE, FALSE, sizeof (guint));
  GArray *origin = g_array_new (FALSE, FALSE, sizeof (gint));
  CachedWord *result;

  for (const guchar *p = (const guchar *) word; *p != '\0'; p++)
    {
      Symbol s = { (guint) enc->len, tok->byte_length[*p] };
      g_string_append_len (enc, tok->bytes[*p], tok->byte_length[*p]);
      g_array_append_val (symbols, s);
    }
  g_string_append (enc, "</w>");
  g_array_index (symbols, Symbol, symbols->len - 1).length += 4;

  for (guint i = 0; i + 1 < symbols->len; i++)
    {
      guint r = pair_rank (tok, enc->str, g_array_index (symbols, Symbol, i),
                           g_array_index (symbols, Symbol, i + 1));
      g_array_append_val (ranks, r);
    }

  while (symbols->len > 1)
    {
      Symbol *sym = (Symbol *) symbols->data;
      guint n = symbols->len;
      guint best = 0;
      guint o = 0;
      Symbol first;
      Symbol second;

      for (guint i = 1; i + 1 < n; i++)
        if (g_array_index (ranks, guint, i) < g_array_index (ranks, guint, best))
          best = i;
      if (g_array_index (ranks, guint, best) == G_MAXUINT)
        break;
      first = sym[best];
      second = sym[best + 1];

      /* Compact in place; ORIGIN remembers which symbols survived unchanged, so only pairs
       * touching a merged symbol need a new rank lookup. */
      g_array_set_size (origin, n);
      for (guint i = 0; i < n; o++)
        {
          if (i + 1 < n && same_symbol (enc->str, sym[i], first)
              && same_symbol (enc->str, sym[i + 1], second))
            {
              sym[o].start = sym[i].start;
              sym[o].length = sym[i].length + sym[i + 1].length;
              g_array_index (origin, gint, o) = -1;
              i += 2;
            }
          else
            {
              sym[o] = sym[i];
              g_array_index (origin, gint, o) = (gint) i;
              i += 1;
            }
        }
      g_array_set_size (symbols, o);

      g_array_set_size (new_ranks, o > 0 ? o - 1 : 0);
      for (guint i = 0; i + 1 < o; i++)
        {
          gint a = g_array_index (origin, gint, i);
          gint b = g_array_index (origin, gint, i + 1);
          g_array_index (new_ranks, guint, i) =
            (a >= 0 && b == a + 1) ? g_array_index (ranks, guint, a)
                                   : pair_rank (tok, enc->str, sym[i], sym[i + 1]);
        }
      GArray *swap = ranks;
      ranks = new_ranks;
      new_ranks = swap;
    }

  result = g_malloc (sizeof (CachedWord) + symbols->len * sizeof (int64_t));
  result->n = symbols->len;
  for (guint i = 0; i < symbols->len; i++)
    {
      Symbol s = g_array_index (symbols, Symbol, i);
      result->ids[i] = piece_id (tok, enc->str + s.start, s.length);
    }

  g_array_free (origin, TRUE);
  g_array_free (new_ranks, TRUE);
  g_array_free (ranks, TRUE);
  g_array_free (symbols, TRUE);
  g_string_free (enc, TRUE);
  return result;
}

static void
emit_word (GessoTokenizer *tok, const gunichar *s, glong n, GArray *out)
{
  char *word = g_ucs4_to_utf8 (s, n, NULL, NULL, NULL);
  CachedWord *cached;

  if (word == NULL)             /* cannot happen for characters that came from valid UTF-8 */
    return;
  /* CLIPTokenizer seeds its BPE cache with the two specials, so a word spelling one exactly
   * (it can survive the added-token split, e.g. in upper case) becomes that token, no "</w>". */
  for (size_t k = 0; k < G_N_ELEMENTS (seeded_words); k++)
    if (strcmp (word, seeded_words[k]) == 0)
      {
        int64_t id = piece_id (tok, word, strlen (word));
        g_array_append_val (out, id);
        g_free (word);
        return;
      }

  cached = g_hash_table_lookup (tok->cache, word);
  if (cached == NULL)
    {
      cached = bpe (tok, word);
      if (g_hash_table_size (tok->cache) >= CACHE_LIMIT)
        g_hash_table_remove_all (tok->cache);
      g_hash_table_insert (tok->cache, word, cached);
    }
  else
    {
      g_free (word);
    }
  g_array_append_vals (out, cached->ids, (guint) cached->n);
}

/* --- Text to words ------------------------------------------------------------------------ */

/* One stretch of prompt between added tokens: BasicTokenizer (clean, space CJK, NFC, split on
 * whitespace, lower), then CLIP's regex on each whitespace-separated token (the regex never
 * matches across whitespace, so per token is the same as on the joined text). */
static void
tokenize_stretch (GessoTokenizer *tok, const char *text, size_t length, GArray *out)
{
  GString *clean = g_string_sized_new (length + 8);
  GArray *lower = g_array_new (FALSE, FALSE, sizeof (gunichar));
  char *nfc;
  gunichar *u = NULL;
  glong n = 0;

  for (const char *p = text; p < text + length; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c == 0 || c == 0xFFFD || is_control (c))
        continue;
      if (is_bert_space (c))
        {
          g_string_append_c (clean, ' ');
        }
      else if (is_cjk (c))
        {
          g_string_append_c (clean, ' ');
          g_string_append_unichar (clean, c);
          g_string_append_c (clean, ' ');
        }
      else
        {
          g_string_append_unichar (clean, c);
        }
    }

  nfc = g_utf8_normalize (clean->str, (gssize) clean->len, G_NORMALIZE_NFC);
  if (nfc != NULL)
    u = g_utf8_to_ucs4_fast (nfc, -1, &n);

  for (glong i = 0; i < n;)
    {
      glong start;

      while (i < n && is_py_space (u[i]))
        i++;
      start = i;
      while (i < n && !is_py_space (u[i]))
        i++;
      if (i == start)
        continue;

      py_lower (u + start, i - start, lower);
      const gunichar *w = (const gunichar *) lower->data;
      glong wn = (glong) lower->len;
      for (glong k = 0; k < wn;)
        {
          glong end = match_at (w, wn, k);
          if (end == k)
            {
              k++;
              continue;
            }
          emit_word (tok, w + k, end - k, out);
          k = end;
        }
    }

  g_free (u);
  g_free (nfc);
  g_array_free (lower, TRUE);
  g_string_free (clean, TRUE);
}

/* The longest added token that starts at P, NULL when none does. */
static const AddedToken *
added_at (const GessoTokenizer *tok, const char *p)
{
  /* The array is sorted longest first, so the first hit is the longest. */
  for (guint i = 0; i < tok->added->len; i++)
    {
      const AddedToken *a = &g_array_index (tok->added, AddedToken, i);
      if (strncmp (p, a->content, a->length) == 0)
        return a;
    }
  return NULL;
}

static gboolean
is_word_char (const char *p)
{
  return g_unichar_isalnum (g_utf8_get_char (p)) || *p == '_';
}

/* The longest trigger word that stands as a whole word at P (START: the prompt's start, for
 * the character before P), matched ignoring ASCII case as the tokenizer lower-cases the words
 * around it; NULL when none does. */
static const AddedToken *
trigger_at (const GessoTokenizer *tok, const char *start, const char *p)
{
  const AddedToken *best = NULL;

  if (tok->triggers == NULL || (p > start && is_word_char (g_utf8_prev_char (p))))
    return NULL;
  for (guint i = 0; i < tok->triggers->len; i++)
    {
      const AddedToken *t = &g_array_index (tok->triggers, AddedToken, i);

      if (g_ascii_strncasecmp (p, t->content, t->length) == 0
          && (p[t->length] == '\0' || !is_word_char (p + t->length))
          && (best == NULL || t->length > best->length))
        best = t;
    }
  return best;
}

gboolean
gesso_tokenizer_add_trigger (GessoTokenizer *tokenizer, const char *word, int64_t first_id,
                             int64_t n_ids, GError **error)
{
  AddedToken t;

  g_return_val_if_fail (tokenizer != NULL && word != NULL && n_ids > 0, FALSE);
  if (word[0] == '\0' || !g_utf8_validate (word, -1, NULL))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "an embedding's trigger word must be non-empty UTF-8 text");
      return FALSE;
    }
  if (tokenizer->triggers == NULL)
    tokenizer->triggers = g_array_new (FALSE, FALSE, sizeof (AddedToken));
  t.content = g_string_chunk_insert (tokenizer->strings, word);
  t.length = strlen (word);
  t.id = first_id;
  t.n_ids = n_ids;
  g_array_append_val (tokenizer->triggers, t);
  return TRUE;
}

gboolean
gesso_tokenizer_has_trigger (const GessoTokenizer *tokenizer, const char *word)
{
  for (guint i = 0; tokenizer->triggers != NULL && i < tokenizer->triggers->len; i++)
    if (g_ascii_strcasecmp (g_array_index (tokenizer->triggers, AddedToken, i).content, word)
        == 0)
      return TRUE;
  return FALSE;
}

gboolean
gesso_tokenizer_encode (GessoTokenizer *tokenizer, const char *text, int64_t *ids,
                        size_t n_ids, int64_t **untruncated, size_t *n_untruncated,
                        GError **error)
{
  GArray *seq;
  const char *stretch;
  const char *p;

  g_return_val_if_fail (tokenizer != NULL, FALSE);
  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (ids == NULL || n_ids >= 2, FALSE);
  g_return_val_if_fail ((untruncated == NULL) == (n_untruncated == NULL), FALSE);

  if (!g_utf8_validate (text, -1, NULL))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "the prompt is not valid UTF-8 text");
      return FALSE;
    }

  seq = g_array_new (FALSE, FALSE, sizeof (int64_t));
  g_array_append_val (seq, tokenizer->bos_id);

  /* Added tokens are cut out of the raw text first (leftmost, longest), as transformers'
   * trie does; only the stretches between them are cleaned and split into words. */
  stretch = text;
  for (p = text; *p != '\0';)
    {
      const AddedToken *t = trigger_at (tokenizer, text, p);
      const AddedToken *a = t != NULL ? t : added_at (tokenizer, p);

      if (a == NULL)
        {
          p = g_utf8_next_char (p);
          continue;
        }
      tokenize_stretch (tokenizer, stretch, (size_t) (p - stretch), seq);
      for (int64_t k = 0; k < a->n_ids; k++)
        {
          int64_t id = a->id + k;
          g_array_append_val (seq, id);
        }
      p += a->length;
      stretch = p;
    }
  tokenize_stretch (tokenizer, stretch, (size_t) (p - stretch), seq);
  g_array_append_val (seq, tokenizer->eos_id);

  if (ids != NULL)
    {
      size_t keep = MIN ((size_t) seq->len - 2, n_ids - 2);
      size_t i;

      memcpy (ids, seq->data, (keep + 1) * sizeof (int64_t));
      ids[keep + 1] = tokenizer->eos_id;
      for (i = keep + 2; i < n_ids; i++)
        ids[i] = tokenizer->pad_id;
    }

  if (untruncated != NULL)
    {
      *n_untruncated = seq->len;
      *untruncated = (int64_t *) (void *) g_array_free (seq, FALSE);
    }
  else
    {
      g_array_free (seq, TRUE);
    }
  return TRUE;
}

/* --- Loading ------------------------------------------------------------------------------ */

void
gesso_tokenizer_config_init (GessoTokenizerConfig *config)
{
  g_return_if_fail (config != NULL);
  memset (config, 0, sizeof *config);
  config->bos_token = "<|startoftext|>";
  config->eos_token = "<|endoftext|>";
  config->unk_token = "<|endoftext|>";
  config->pad_token = "<|endoftext|>";
  config->max_length = DEFAULT_MAX_LENGTH;
}

/* GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 (controls, space,
 * DEL, NBSP, soft hyphen) for U+0100 onwards in byte order, so no BPE symbol is whitespace. */
static void
init_byte_table (GessoTokenizer *tok)
{
  gunichar next = 0x100;

  for (guint b = 0; b < 256; b++)
    {
      gboolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      gunichar c = printable ? b : next++;
      int length = g_unichar_to_utf8 (c, tok->bytes[b]);

      tok->bytes[b][length] = '\0';
      tok->byte_length[b] = (guint8) length;
    }
}

static gboolean
parse_vocab (GessoTokenizer *tok, const char *data, gssize length, const char *name,
             GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local = NULL;
  JsonObjectIter iter;
  const char *key;
  JsonNode *node;
  JsonNode *root;

  if (!json_parser_load_from_data (parser, data, length, &local))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "%s is not valid JSON: %s", name,
                   local->message);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s must hold one JSON object mapping tokens to ids", name);
      return FALSE;
    }

  json_object_iter_init_ordered (&iter, json_node_get_object (root));
  while (json_object_iter_next_ordered (&iter, &key, &node))
    {
      gint64 id;
      char *token;

      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "%s: the id of token '%s' is not an integer", name, key);
          return FALSE;
        }
      id = json_node_get_int (node);
      if (id < 0 || id > G_MAXINT32)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "%s: token '%s' has id %" G_GINT64_FORMAT ", outside [0, %d]", name, key,
                       id, G_MAXINT32);
          return FALSE;
        }
      token = g_string_chunk_insert (tok->strings, key);
      g_hash_table_insert (tok->vocab, token, GINT_TO_POINTER ((gint) id));
      g_hash_table_insert (tok->decoder, GINT_TO_POINTER ((gint) id), token);
      tok->n_ids = MAX (tok->n_ids, id + 1);
    }
  if (g_hash_table_size (tok->vocab) == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "%s holds no tokens", name);
      return FALSE;
    }
  return TRUE;
}

/* The next whitespace-separated field of [*P, END), NULL when there is none. */
static const char *
next_field (const char **p, const char *end, size_t *length)
{
  const char *start;

  while (*p < end && is_py_space (g_utf8_get_char (*p)))
    *p = g_utf8_next_char (*p);
  if (*p >= end)
    return NULL;
  start = *p;
  while (*p < end && !is_py_space (g_utf8_get_char (*p)))
    *p = g_utf8_next_char (*p);
  *length = (size_t) (*p - start);
  return start;
}

/* CLIPTokenizer: read().strip().split("\n")[1:48895], each line split on whitespace, rank =
 * position. The first line is skipped whatever it says (it is "#version: 0.2"); lines that are
 * not two fields keep their rank but can never match; a repeated pair keeps its last rank. */
static gboolean
parse_merges (GessoTokenizer *tok, const char *data, gssize length, const char *name,
              GError **error)
{
  const char *start;
  const char *stop;
  const char *line;
  size_t size = length < 0 ? strlen (data) : (size_t) length;
  GString *key;
  guint index;

  if (!g_utf8_validate_len (data, size, &stop))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s is not UTF-8 text (bad byte at offset %zu)", name, (size_t) (stop - data));
      return FALSE;
    }

  start = data;
  stop = data + size;
  while (start < stop && is_py_space (g_utf8_get_char (start)))
    start = g_utf8_next_char (start);
  while (stop > start)
    {
      const char *prev = g_utf8_find_prev_char (start, stop);
      if (prev == NULL || !is_py_space (g_utf8_get_char (prev)))
        break;
      stop = prev;
    }

  key = g_string_new (NULL);
  line = start;
  for (index = 0; index <= MAX_MERGES; index++)
    {
      const char *eol = memchr (line, '\n', (size_t) (stop - line));
      const char *end = eol != NULL ? eol : stop;

      if (index > 0)
        {
          const char *p = line;
          size_t n_left, n_right, n_extra;
          const char *left = next_field (&p, end, &n_left);
          const char *right = left != NULL ? next_field (&p, end, &n_right) : NULL;

          if (right != NULL && next_field (&p, end, &n_extra) == NULL)
            {
              g_string_truncate (key, 0);
              g_string_append_len (key, left, (gssize) n_left);
              g_string_append_c (key, ' ');
              g_string_append_len (key, right, (gssize) n_right);
              g_hash_table_insert (tok->ranks,
                                   g_string_chunk_insert_len (tok->strings, key->str,
                                                              (gssize) key->len),
                                   GUINT_TO_POINTER (index - 1));
            }
        }
      if (eol == NULL)
        break;
      line = eol + 1;
    }
  g_string_free (key, TRUE);
  return TRUE;
}

/* Makes CONTENT an added token (first definition wins, as in transformers); ID < 0 takes its
 * vocabulary id. WHAT names it in messages. */
static gboolean
add_token (GessoTokenizer *tok, const char *content, int64_t id, const char *what,
           GError **error)
{
  AddedToken a;

  if (content[0] == '\0' || find_added (tok, content, strlen (content)) != NULL)
    return TRUE;
  if (id < 0 && !lookup_id (tok->vocab, content, &id))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the %s '%s' is not in the tokenizer's vocabulary", what, content);
      return FALSE;
    }
  if (id > G_MAXINT32)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the %s '%s' has id %" G_GINT64_FORMAT ", outside [0, %d]", what, content,
                   id, G_MAXINT32);
      return FALSE;
    }
  a.content = g_string_chunk_insert (tok->strings, content);
  a.length = strlen (content);
  a.id = id;
  a.n_ids = 1;
  g_array_append_val (tok->added, a);
  tok->n_ids = MAX (tok->n_ids, id + 1);
  return TRUE;
}

static gboolean
add_special (GessoTokenizer *tok, const char *content, const char *what, int64_t *id,
             GError **error)
{
  const AddedToken *a;

  if (content == NULL || content[0] == '\0')
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "the tokenizer has no %s; a CLIP tokenizer needs one", what);
      return FALSE;
    }
  if (!add_token (tok, content, -1, what, error))
    return FALSE;
  a = find_added (tok, content, strlen (content));
  *id = a->id;
  return TRUE;
}

static gint
compare_added (gconstpointer a, gconstpointer b)
{
  const AddedToken *x = a;
  const AddedToken *y = b;

  return x->length < y->length ? 1 : x->length > y->length ? -1 : 0;
}

void
gesso_tokenizer_free (GessoTokenizer *tokenizer)
{
  if (tokenizer == NULL)
    return;
  g_clear_pointer (&tokenizer->cache, g_hash_table_unref);
  g_clear_pointer (&tokenizer->ranks, g_hash_table_unref);
  g_clear_pointer (&tokenizer->decoder, g_hash_table_unref);
  g_clear_pointer (&tokenizer->vocab, g_hash_table_unref);
  if (tokenizer->added != NULL)
    g_array_free (tokenizer->added, TRUE);
  if (tokenizer->triggers != NULL)
    g_array_free (tokenizer->triggers, TRUE);
  if (tokenizer->scratch != NULL)
    g_string_free (tokenizer->scratch, TRUE);
  if (tokenizer->strings != NULL)
    g_string_chunk_free (tokenizer->strings);
  g_free (tokenizer);
}

static GessoTokenizer *
tokenizer_new (const char *vocab_json, gssize vocab_length, const char *vocab_name,
               const char *merges, gssize merges_length, const char *merges_name,
               const GessoTokenizerConfig *config, GError **error)
{
  GessoTokenizerConfig defaults;
  GessoTokenizer *tok;
  int64_t id;

  if (config == NULL)
    {
      gesso_tokenizer_config_init (&defaults);
      config = &defaults;
    }
  if (config->max_length < 2)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "a tokenizer's max_length must be at least 2 (BOS and EOS), not %u",
                   config->max_length);
      return NULL;
    }

  tok = g_new0 (GessoTokenizer, 1);
  tok->strings = g_string_chunk_new (64 * 1024);
  tok->vocab = g_hash_table_new (g_str_hash, g_str_equal);
  tok->decoder = g_hash_table_new (g_direct_hash, g_direct_equal);
  tok->ranks = g_hash_table_new (g_str_hash, g_str_equal);
  tok->added = g_array_new (FALSE, FALSE, sizeof (AddedToken));
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  tok->scratch = g_string_new (NULL);
  tok->max_length = config->max_length;
  init_byte_table (tok);

  if (!parse_vocab (tok, vocab_json, vocab_length, vocab_name, error))
    goto err_free_tok;
  if (!parse_merges (tok, merges, merges_length, merges_name, error))
    goto err_free_tok;

  /* transformers registers the listed added tokens first, then the special tokens. */
  for (guint i = 0; i < config->n_added_tokens; i++)
    {
      const GessoTokenizerAddedToken *a = &config->added_tokens[i];
      if (a->content != NULL && !add_token (tok, a->content, a->id, "added token", error))
        goto err_free_tok;
    }
  if (!add_special (tok, config->bos_token, "bos_token", &tok->bos_id, error)
      || !add_special (tok, config->eos_token, "eos_token", &tok->eos_id, error)
      || !add_special (tok, config->unk_token, "unk_token", &tok->unk_id, error)
      || !add_special (tok, config->pad_token, "pad_token", &tok->pad_id, error))
    goto err_free_tok;
  /* CLIPTokenizer maps unknown pieces through the vocabulary itself, not the added tokens. */
  if (lookup_id (tok->vocab, config->unk_token, &id))
    tok->unk_id = id;
  g_array_sort (tok->added, compare_added);
  return tok;

err_free_tok:
  gesso_tokenizer_free (tok);
  return NULL;
}

GessoTokenizer *
gesso_tokenizer_new_from_data (const char *vocab_json, gssize vocab_length, const char *merges,
                               gssize merges_length, const GessoTokenizerConfig *config,
                               GError **error)
{
  g_return_val_if_fail (vocab_json != NULL, NULL);
  g_return_val_if_fail (merges != NULL, NULL);
  return tokenizer_new (vocab_json, vocab_length, "vocab.json", merges, merges_length,
                        "merges.txt", config, error);
}

GessoTokenizer *
gesso_tokenizer_new_bundled (GessoClipFlavor flavor, GError **error)
{
  GessoTokenizerConfig config;
  const char *vocab;
  const char *merges;

  if (!gesso_clip_vocab_bundled (&vocab, &merges, error))
    return NULL;
  gesso_tokenizer_config_init (&config);
  /* OpenCLIP pads with "!" (SD 2.x's special_tokens_map.json says so); OpenAI's CLIP with
   * "<|endoftext|>", CLIPTokenizer's default */
  if (flavor == GESSO_CLIP_FLAVOR_OPENCLIP)
    config.pad_token = "!";
  return tokenizer_new (vocab, -1, "the bundled CLIP vocab.json", merges, -1,
                        "the bundled CLIP merges.txt", &config, error);
}

/* Names whichever of the two required files is absent, with the path looked at. */
static gboolean
check_files_present (const char *vocab_path, const char *merges_path, GError **error)
{
  gboolean has_vocab = g_file_test (vocab_path, G_FILE_TEST_EXISTS);
  gboolean has_merges = g_file_test (merges_path, G_FILE_TEST_EXISTS);

  if (has_vocab && has_merges)
    return TRUE;
  if (!has_vocab && !has_merges)
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                 "the tokenizer files are missing: looked for %s and %s", vocab_path,
                 merges_path);
  else
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                 "the tokenizer file %s is missing: looked for %s",
                 has_vocab ? "merges.txt" : "vocab.json", has_vocab ? merges_path : vocab_path);
  return FALSE;
}

static gboolean
read_file (const char *path, char **contents, gsize *length, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (g_file_get_contents (path, contents, length, &local))
    return TRUE;
  g_set_error (error, GESSO_ERROR,
               g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? GESSO_ERROR_MISSING
                                                                         : GESSO_ERROR_IO,
               "cannot read tokenizer file %s: %s", path, local->message);
  return FALSE;
}

GessoTokenizer *
gesso_tokenizer_new_from_files (const char *vocab_path, const char *merges_path,
                                const GessoTokenizerConfig *config, GError **error)
{
  g_autofree char *vocab = NULL;
  g_autofree char *merges = NULL;
  gsize vocab_length;
  gsize merges_length;

  g_return_val_if_fail (vocab_path != NULL, NULL);
  g_return_val_if_fail (merges_path != NULL, NULL);

  if (!check_files_present (vocab_path, merges_path, error)
      || !read_file (vocab_path, &vocab, &vocab_length, error)
      || !read_file (merges_path, &merges, &merges_length, error))
    return NULL;
  if (vocab_length > G_MAXSSIZE || merges_length > G_MAXSSIZE)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "the tokenizer files are too large");
      return NULL;
    }
  return tokenizer_new (vocab, (gssize) vocab_length, vocab_path, merges,
                        (gssize) merges_length, merges_path, config, error);
}

/* --- diffusers tokenizer/ folders --------------------------------------------------------- */

/* An optional JSON file: NULL without error when it does not exist. */
static gboolean
load_optional_json (const char *path, JsonObject **out, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local = NULL;
  JsonNode *root;

  *out = NULL;
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!json_parser_load_from_file (parser, path, &local))
    {
      g_set_error (error, GESSO_ERROR,
                   local->domain == G_FILE_ERROR ? GESSO_ERROR_IO : GESSO_ERROR_CORRUPT,
                   "cannot read %s: %s", path, local->message);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "%s must hold one JSON object",
                   path);
      return FALSE;
    }
  *out = json_node_dup_object (root);
  return TRUE;
}

/* A token as the configs write it: "text", or {"content": "text", ...} (AddedToken). */
static gboolean
token_content (JsonNode *node, const char *path, const char *key, const char **out,
               GError **error)
{
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      *out = json_node_get_string (node);
      return TRUE;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonNode *content = json_object_get_member (json_node_get_object (node), "content");
      if (content != NULL && JSON_NODE_HOLDS_VALUE (content)
          && json_node_get_value_type (content) == G_TYPE_STRING)
        {
          *out = json_node_get_string (content);
          return TRUE;
        }
    }
  if (JSON_NODE_HOLDS_NULL (node))
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                 "%s sets no %s; a CLIP tokenizer needs one", path, key);
  else
    g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                 "%s: %s must be a string or an object with a \"content\" string", path, key);
  return FALSE;
}

/* KEY from the first of FIRST, SECOND that has it; *OUT unchanged when neither does. */
static gboolean
special_token (JsonObject *first, const char *first_path, JsonObject *second,
               const char *second_path, const char *key, const char **out, GError **error)
{
  if (first != NULL && json_object_has_member (first, key))
    return token_content (json_object_get_member (first, key), first_path, key, out, error);
  if (second != NULL && json_object_has_member (second, key))
    return token_content (json_object_get_member (second, key), second_path, key, out, error);
  return TRUE;
}

static gboolean
collect_additional (JsonObject *config, const char *path, GArray *added, GError **error)
{
  JsonNode *node;
  JsonArray *array;

  if (config == NULL || !json_object_has_member (config, "additional_special_tokens"))
    return TRUE;
  node = json_object_get_member (config, "additional_special_tokens");
  if (JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s: additional_special_tokens must be a list", path);
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      GessoTokenizerAddedToken a = { NULL, -1 };
      if (!token_content (json_array_get_element (array, i), path,
                          "additional_special_tokens", &a.content, error))
        return FALSE;
      g_array_append_val (added, a);
    }
  return TRUE;
}

/* added_tokens_decoder: {"49406": {"content": "<|startoftext|>", ...}, ...}. */
static gboolean
collect_added_decoder (JsonObject *config, const char *path, GArray *added, GError **error)
{
  JsonNode *node = json_object_get_member (config, "added_tokens_decoder");
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "%s: added_tokens_decoder must be an object", path);
      return FALSE;
    }
  json_object_iter_init_ordered (&iter, json_node_get_object (node));
  while (json_object_iter_next_ordered (&iter, &key, &value))
    {
      GessoTokenizerAddedToken a = { NULL, -1 };
      guint64 id;

      if (!g_ascii_string_to_unsigned (key, 10, 0, G_MAXINT32, &id, NULL))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "%s: added_tokens_decoder key '%s' is not a token id", path, key);
          return FALSE;
        }
      if (!token_content (value, path, "added_tokens_decoder", &a.content, error))
        return FALSE;
      a.id = (int64_t) id;
      g_array_append_val (added, a);
    }
  return TRUE;
}

GessoTokenizer *
gesso_tokenizer_new_from_dir (const char *dir, GError **error)
{
  static const char *const keys[] = { "bos_token", "eos_token", "unk_token", "pad_token" };
  g_autofree char *vocab_path = NULL;
  g_autofree char *merges_path = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *map_path = NULL;
  g_autoptr (JsonObject) tc = NULL;
  g_autoptr (JsonObject) map = NULL;
  g_autoptr (GArray) added = NULL;
  GessoTokenizerConfig config;
  const char **tokens[G_N_ELEMENTS (keys)];
  gboolean modern;

  g_return_val_if_fail (dir != NULL, NULL);

  vocab_path = g_build_filename (dir, "vocab.json", NULL);
  merges_path = g_build_filename (dir, "merges.txt", NULL);
  config_path = g_build_filename (dir, "tokenizer_config.json", NULL);
  map_path = g_build_filename (dir, "special_tokens_map.json", NULL);
  if (!check_files_present (vocab_path, merges_path, error)
      || !load_optional_json (config_path, &tc, error)
      || !load_optional_json (map_path, &map, error))
    return NULL;

  gesso_tokenizer_config_init (&config);
  tokens[0] = &config.bos_token;
  tokens[1] = &config.eos_token;
  tokens[2] = &config.unk_token;
  tokens[3] = &config.pad_token;
  added = g_array_new (FALSE, FALSE, sizeof (GessoTokenizerAddedToken));

  /* transformers >= 4.34 saves added_tokens_decoder and then reads tokenizer_config.json only;
   * older folders (SD2's among them: pad "!" is only in special_tokens_map.json) let
   * special_tokens_map.json override tokenizer_config.json. */
  modern = tc != NULL && json_object_has_member (tc, "added_tokens_decoder");
  for (size_t i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      gboolean ok = modern ? special_token (tc, config_path, NULL, NULL, keys[i], tokens[i],
                                            error)
                           : special_token (map, map_path, tc, config_path, keys[i], tokens[i],
                                            error);
      if (!ok)
        return NULL;
    }
  if (modern && !collect_added_decoder (tc, config_path, added, error))
    return NULL;
  if (!collect_additional (tc, config_path, added, error)
      || (!modern && !collect_additional (map, map_path, added, error)))
    return NULL;

  if (tc != NULL && json_object_has_member (tc, "model_max_length"))
    {
      JsonNode *node = json_object_get_member (tc, "model_max_length");
      /* Tokenizers saved without a limit store a huge float; keep CLIP's 77 then. */
      if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64
          && json_node_get_int (node) >= 2 && json_node_get_int (node) <= MAX_MAX_LENGTH)
        config.max_length = (guint) json_node_get_int (node);
    }
  config.added_tokens = (const GessoTokenizerAddedToken *) (void *) added->data;
  config.n_added_tokens = added->len;

  return gesso_tokenizer_new_from_files (vocab_path, merges_path, &config, error);
}

/* --- Accessors ---------------------------------------------------------------------------- */

guint
gesso_tokenizer_get_max_length (const GessoTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, DEFAULT_MAX_LENGTH);
  return tokenizer->max_length;
}

int64_t
gesso_tokenizer_get_bos_id (const GessoTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, -1);
  return tokenizer->bos_id;
}

int64_t
gesso_tokenizer_get_eos_id (const GessoTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, -1);
  return tokenizer->eos_id;
}

int64_t
gesso_tokenizer_get_pad_id (const GessoTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, -1);
  return tokenizer->pad_id;
}

int64_t
gesso_tokenizer_get_n_ids (const GessoTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, 0);
  return tokenizer->n_ids;
}

const char *
gesso_tokenizer_id_to_token (const GessoTokenizer *tokenizer, int64_t id)
{
  g_return_val_if_fail (tokenizer != NULL, NULL);
  for (guint i = 0; i < tokenizer->added->len; i++)
    {
      const AddedToken *a = &g_array_index (tokenizer->added, AddedToken, i);
      if (a->id == id)
        return a->content;
    }
  if (id < 0 || id > G_MAXINT32)
    return NULL;
  return g_hash_table_lookup (tokenizer->decoder, GINT_TO_POINTER ((gint) id));
}
