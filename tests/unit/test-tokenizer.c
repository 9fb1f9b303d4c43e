/* The CLIP tokenizer: BPE mechanics on a tiny hand-made vocabulary, the transformers quirks it
 * must reproduce, loading errors, and every prompt of the conformance tokenizer manifests. */
#include "gesso-config.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "gesso.h"
#include "model/tokenizer.h"

/* The tiny vocabulary: byte B's stand-in character is id B, with "</w>" id 256 + B (written
 * out independently of the tokenizer's own table), the merge results from 512, the specials
 * at 600 and 601. */
#define ID_BOS 600
#define ID_EOS 601

typedef struct
{
  const char *token;
  int64_t id;
} VocabEntry;

static const char *const tiny_merges =
  "#version: 0.2\n"
  "l o\n"                       /* 512 lo */
  "e r</w>\n"                   /* 513 er</w> */
  "lo w\n"                      /* 514 low */
  "low er</w>\n"                /* 515 lower</w> */
  "a a\n"                       /* 516 aa */
  "a a</w>\n"                   /* 517 aa</w> */
  "aa aa</w>\n"                 /* 518 aaaa</w> */
  "not a-pair-line\n"           /* three fields: takes a rank, never matches */
  "c d\n";                      /* 519 cd; and "cd" has no "cd</w>" entry */

static const VocabEntry tiny_merged[] = {
  { "lo", 512 }, { "er</w>", 513 }, { "low", 514 }, { "lower</w>", 515 }, { "aa", 516 },
  { "aa</w>", 517 }, { "aaaa</w>", 518 }, { "cd", 519 },
  { "<|startoftext|>", ID_BOS }, { "<|endoftext|>", ID_EOS },
};

/* GPT-2's byte-to-unicode table, spelled out here so the test does not share the code. */
static gunichar
stand_in (guint b)
{
  static const guint8 unprintable[] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D,
    0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B,
    0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xAD,
  };
  for (guint i = 0; i < G_N_ELEMENTS (unprintable); i++)
    if (unprintable[i] == b)
      return 0x100 + i;
  return b;
}

static char *
tiny_vocab_json (void)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (builder);
  for (guint b = 0; b < 256; b++)
    {
      char utf8[8] = { 0 };
      g_unichar_to_utf8 (stand_in (b), utf8);
      g_autofree char *end = g_strconcat (utf8, "</w>", NULL);
      json_builder_set_member_name (builder, utf8);
      json_builder_add_int_value (builder, b);
      json_builder_set_member_name (builder, end);
      json_builder_add_int_value (builder, 256 + b);
    }
  for (guint i = 0; i < G_N_ELEMENTS (tiny_merged); i++)
    {
      json_builder_set_member_name (builder, tiny_merged[i].token);
      json_builder_add_int_value (builder, tiny_merged[i].id);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

/* Ids of a word no merge applies to: its bytes, the last one with "</w>". */
static void
append_plain_word (GArray *ids, const char *word)
{
  size_t n = strlen (word);

  for (size_t i = 0; i < n; i++)
    {
      int64_t id = (guchar) word[i] + (i + 1 == n ? 256 : 0);
      g_array_append_val (ids, id);
    }
}

static GessoTokenizer *
tiny_tokenizer (const GessoTokenizerConfig *config)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *vocab = tiny_vocab_json ();
  GessoTokenizer *tok = gesso_tokenizer_new_from_data (vocab, -1, tiny_merges, -1, config,
                                                       &error);
  g_assert_no_error (error);
  g_assert_nonnull (tok);
  return tok;
}

/* Untruncated ids of TEXT, as a GArray for comparison. */
static GArray *
encode_all (GessoTokenizer *tok, const char *text)
{
  g_autoptr (GError) error = NULL;
  int64_t *ids = NULL;
  size_t n = 0;
  GArray *out = g_array_new (FALSE, FALSE, sizeof (int64_t));

  g_assert_true (gesso_tokenizer_encode (tok, text, NULL, 0, &ids, &n, &error));
  g_assert_no_error (error);
  g_array_append_vals (out, ids, (guint) n);
  g_free (ids);
  return out;
}

/* Checks TEXT encodes to BOS, the N ids in EXPECTED, EOS. */
static void
assert_tokens (GessoTokenizer *tok, const char *text, const int64_t *expected, guint n)
{
  g_autoptr (GArray) got = encode_all (tok, text);

  g_assert_cmpuint (got->len, ==, n + 2);
  g_assert_cmpint (g_array_index (got, int64_t, 0), ==, ID_BOS);
  for (guint i = 0; i < n; i++)
    {
      if (g_array_index (got, int64_t, i + 1) != expected[i])
        g_test_message ("'%s': token %u is %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT,
                        text, i, g_array_index (got, int64_t, i + 1), expected[i]);
      g_assert_cmpint (g_array_index (got, int64_t, i + 1), ==, expected[i]);
    }
  g_assert_cmpint (g_array_index (got, int64_t, n + 1), ==, ID_EOS);
}

static void
assert_plain_words (GessoTokenizer *tok, const char *text, const char *const *words)
{
  g_autoptr (GArray) expected = g_array_new (FALSE, FALSE, sizeof (int64_t));

  for (guint i = 0; words[i] != NULL; i++)
    append_plain_word (expected, words[i]);
  assert_tokens (tok, text, (const int64_t *) (void *) expected->data, expected->len);
}

static void
test_bpe_merges (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);

  /* l o w e r</w> -> lo w e r</w> -> lo w er</w> (rank 1 beats lo+w at 2) -> low er</w>. */
  assert_tokens (tok, "lower", (const int64_t[]) { 515 }, 1);
  /* Without "</w>" on the r the merge chain stops at "low". */
  assert_tokens (tok, "lowe", (const int64_t[]) { 514, 'e' + 256 }, 2);
  /* "a a" merges left to right without overlap: a a a</w> -> aa a</w>. */
  assert_tokens (tok, "aaa", (const int64_t[]) { 516, 'a' + 256 }, 2);
  /* aa a a</w> -> aa aa</w> -> aaaa</w>. */
  assert_tokens (tok, "aaaa", (const int64_t[]) { 518 }, 1);
  /* A single character is just itself with "</w>". */
  assert_tokens (tok, "a", (const int64_t[]) { 'a' + 256 }, 1);
  /* "cd" merges but "cd</w>" is not a token: c d</w> has no rank, so no merge at the end... */
  assert_tokens (tok, "cd", (const int64_t[]) { 'c', 'd' + 256 }, 2);
  /* ...while inside a word it does; "cd" and "e</w>" are both in the vocabulary. */
  assert_tokens (tok, "cde", (const int64_t[]) { 519, 'e' + 256 }, 2);
  /* The cache must give the same answer the second time. */
  assert_tokens (tok, "lower lower", (const int64_t[]) { 515, 515 }, 2);
}

static void
test_unknown_piece (void)
{
  g_autoptr (GessoTokenizer) tok = NULL;
  g_autoptr (GError) error = NULL;
  /* Only merges, specials and "x</w>": every other piece is unknown and maps to unk. */
  static const char *const small_vocab =
    "{\"x</w>\": 5, \"lo\": 6, \"<|startoftext|>\": 600, \"<|endoftext|>\": 601}";

  tok = gesso_tokenizer_new_from_data (small_vocab, -1, tiny_merges, -1, NULL, &error);
  g_assert_no_error (error);
  assert_tokens (tok, "x low", (const int64_t[]) { 5, 6, ID_EOS }, 3);
}

static void
test_bytes (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);

  /* Non-ASCII text becomes one symbol per UTF-8 byte: U+0101 is C4 81, and 0x81 is one of
   * the bytes whose stand-in is above U+0100. */
  assert_tokens (tok, "\xc4\x81", (const int64_t[]) { 0xC4, 0x81 + 256 }, 2);
  /* Emoji: four bytes, one word. */
  assert_tokens (tok, "\xf0\x9f\x90\xb1",
                 (const int64_t[]) { 0xF0, 0x9F, 0x90, 0xB1 + 256 }, 4);
  /* Marks and symbols are "other" characters: one word with the letters around split off. */
  assert_plain_words (tok, "a\xe2\x99\xa5!b", (const char *const[]) {
                        "a", "\xe2\x99\xa5!", "b", NULL });
}

static void
test_cleanup (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);

  /* Lower case, whitespace collapsed; zero-width space (Cf) and a C0 control dropped, so
   * the letters either side join. */
  assert_plain_words (tok, "  Ab\tX\xe2\x80\x8b" "Y\x01" "Z\n\r\nF\xc2\xa0g  ",
                      (const char *const[]) { "ab", "xyz", "f", "g", NULL });
  /* U+2028 splits words too (str.split), though BERT's whitespace test does not know it. */
  assert_plain_words (tok, "ab\xe2\x80\xa8" "xy!", (const char *const[]) {
                        "ab", "xy", "!", NULL });
  /* CJK ideographs are spaced, kana are not. */
  assert_plain_words (tok, "\xe3\x81\xae\xe6\x9d\xb1\xe3\x81\xae",
                      (const char *const[]) { "\xe3\x81\xae", "\xe6\x9d\xb1", "\xe3\x81\xae",
                                              NULL });
}

static void
test_lower_case (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);

  /* NFC makes E + acute into U+00C9; lower() makes that U+00E9 (C3 A9). */
  assert_plain_words (tok, "E\xcc\x81", (const char *const[]) { "\xc3\xa9", NULL });
  /* Sigma: final (U+03C2) only after a cased letter and before none; otherwise U+03C3. */
  assert_plain_words (tok, "\xce\x91\xce\xa3", (const char *const[]) { "\xce\xb1\xcf\x82", NULL });
  assert_plain_words (tok, "\xce\xa3", (const char *const[]) { "\xcf\x83", NULL });
  assert_plain_words (tok, "\xce\xa3\xce\x91", (const char *const[]) { "\xcf\x83\xce\xb1", NULL });
  /* Python also lowers the non-letters that have a mapping: roman numerals, circled letters. */
  assert_plain_words (tok, "\xe2\x85\xab\xe2\x92\xb6", (const char *const[]) {
                        "\xe2\x85\xbb", "\xe2\x93\x90", NULL });
  /* Capital I with dot: "i" + U+0307, and the mark is an "other" character for the regex. */
  assert_plain_words (tok, "\xc4\xb0x", (const char *const[]) { "i", "\xcc\x87", "x", NULL });
}

static void
test_regex (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);

  assert_plain_words (tok, "Don't", (const char *const[]) { "don", "'t", NULL });
  assert_plain_words (tok, "'single'", (const char *const[]) { "'s", "ingle", "'", NULL });
  assert_plain_words (tok, "you're we'll", (const char *const[]) {
                        "you", "'re", "we", "'ll", NULL });
  assert_plain_words (tok, "x123y", (const char *const[]) { "x", "1", "2", "3", "y", NULL });
  assert_plain_words (tok, "(a:1.5)", (const char *const[]) {
                        "(", "a", ":", "1", ".", "5", ")", NULL });
  /* A run of punctuation swallows what would otherwise be a contraction. */
  assert_plain_words (tok, "?'s", (const char *const[]) { "?'", "s", NULL });
  /* Long s folds to s under the regex's IGNORECASE. */
  assert_plain_words (tok, "'\xc5\xbf", (const char *const[]) { "'\xc5\xbf", NULL });
}

static void
test_specials (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);

  /* Split out before cleanup, wherever they are. */
  assert_tokens (tok, "a<|startoftext|>b<|endoftext|>",
                 (const int64_t[]) { 'a' + 256, ID_BOS, 'b' + 256, ID_EOS }, 4);
  /* Upper case escapes the split, is lower-cased, and then CLIP's regex and the seeded BPE
   * cache turn it into the special id anyway. */
  assert_tokens (tok, "x<|EndOfText|>", (const int64_t[]) { 'x' + 256, ID_EOS }, 2);
  /* After other punctuation the regex's punctuation branch wins and it is plain text. */
  assert_plain_words (tok, "?<|EndOfText|>", (const char *const[]) {
                        "?<|", "endoftext", "|>", NULL });
}

static void
test_truncate_and_pad (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);
  g_autoptr (GError) error = NULL;
  int64_t ids[6];
  int64_t *all = NULL;
  size_t n_all = 0;

  g_assert_cmpuint (gesso_tokenizer_get_max_length (tok), ==, 77);
  g_assert_cmpint (gesso_tokenizer_get_bos_id (tok), ==, ID_BOS);
  g_assert_cmpint (gesso_tokenizer_get_eos_id (tok), ==, ID_EOS);
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==, ID_EOS);
  g_assert_cmpint (gesso_tokenizer_get_n_ids (tok), ==, 602);
  g_assert_cmpstr (gesso_tokenizer_id_to_token (tok, 515), ==, "lower</w>");

  g_assert_true (gesso_tokenizer_encode (tok, "a b c d e f", ids, 6, &all, &n_all, &error));
  g_assert_cmpuint (n_all, ==, 8);
  g_assert_cmpint (all[7], ==, ID_EOS);
  /* Truncated to four tokens with EOS kept last. */
  const int64_t cut[] = { ID_BOS, 'a' + 256, 'b' + 256, 'c' + 256, 'd' + 256, ID_EOS };
  g_assert_cmpmem (ids, sizeof ids, cut, sizeof cut);
  g_free (all);

  /* Padded with the pad id (EOS by default); the empty prompt is BOS EOS. */
  g_assert_true (gesso_tokenizer_encode (tok, "", ids, 6, NULL, NULL, &error));
  const int64_t empty[] = { ID_BOS, ID_EOS, ID_EOS, ID_EOS, ID_EOS, ID_EOS };
  g_assert_cmpmem (ids, sizeof ids, empty, sizeof empty);

  /* Exactly full: no padding, nothing lost. */
  g_assert_true (gesso_tokenizer_encode (tok, "a b c d", ids, 6, NULL, NULL, &error));
  g_assert_cmpint (ids[4], ==, 'd' + 256);
  g_assert_cmpint (ids[5], ==, ID_EOS);
  g_assert_no_error (error);
}

static void
test_sd2_pad (void)
{
  GessoTokenizerConfig config;
  g_autoptr (GessoTokenizer) tok = NULL;
  g_autoptr (GError) error = NULL;
  int64_t ids[8];

  gesso_tokenizer_config_init (&config);
  config.pad_token = "!";
  tok = tiny_tokenizer (&config);
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==, '!');

  /* The pad token is an added token: every "!" is split out as id 33 with no "</w>", where
   * otherwise "!!" would be one word. */
  assert_tokens (tok, "wow!!", (const int64_t[]) { 'w', 'o', 'w' + 256, '!', '!' }, 5);
  g_assert_true (gesso_tokenizer_encode (tok, "a!", ids, 8, NULL, NULL, &error));
  const int64_t expected[] = { ID_BOS, 'a' + 256, '!', ID_EOS, '!', '!', '!', '!' };
  g_assert_cmpmem (ids, sizeof ids, expected, sizeof expected);

  /* Explicit added tokens with their own ids, longest match first. */
  const GessoTokenizerAddedToken added[] = { { "ab", 700 }, { "abc", 701 } };
  GessoTokenizerConfig config2;
  gesso_tokenizer_config_init (&config2);
  config2.added_tokens = added;
  config2.n_added_tokens = G_N_ELEMENTS (added);
  g_autoptr (GessoTokenizer) tok2 = tiny_tokenizer (&config2);
  assert_tokens (tok2, "xabcab", (const int64_t[]) { 'x' + 256, 701, 700 }, 3);
  g_assert_cmpint (gesso_tokenizer_get_n_ids (tok2), ==, 702);
}

static void
test_bad_input (void)
{
  g_autoptr (GessoTokenizer) tok = tiny_tokenizer (NULL);
  g_autoptr (GError) error = NULL;
  GessoTokenizerConfig config;
  GessoTokenizer *bad;
  int64_t ids[77];

  g_assert_false (gesso_tokenizer_encode (tok, "ab\xff", ids, 77, NULL, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  bad = gesso_tokenizer_new_from_data ("[1, 2]", -1, tiny_merges, -1, NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_clear_error (&error);

  bad = gesso_tokenizer_new_from_data ("{\"a\": \"b\"}", -1, tiny_merges, -1, NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_clear_error (&error);

  bad = gesso_tokenizer_new_from_data ("{\"a\": 1", -1, tiny_merges, -1, NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_clear_error (&error);

  bad = gesso_tokenizer_new_from_data ("{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1}", -1,
                                       "#version\n\xc3(", -1, NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_clear_error (&error);

  /* A pad token the vocabulary lacks. */
  gesso_tokenizer_config_init (&config);
  config.pad_token = "<pad>";
  g_autofree char *vocab = tiny_vocab_json ();
  bad = gesso_tokenizer_new_from_data (vocab, -1, tiny_merges, -1, &config, &error);
  g_assert_null (bad);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "<pad>"));
  g_clear_error (&error);

  /* An empty merges file is allowed (every word splits into bytes), as in transformers. */
  g_autoptr (GessoTokenizer) bare = gesso_tokenizer_new_from_data (vocab, -1, "", 0, NULL,
                                                                   &error);
  g_assert_no_error (error);
  assert_tokens (bare, "lower", (const int64_t[]) { 'l', 'o', 'w', 'e', 'r' + 256 }, 5);
}

static void
write_file (const char *dir, const char *name, const char *contents)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, contents, -1, &error));
}

static void
remove_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_remove (path);
}

static void
test_load_dir (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gesso-tokenizer-XXXXXX", &error);
  g_autofree char *vocab = tiny_vocab_json ();
  g_autofree char *merges_path = NULL;
  GessoTokenizer *tok;

  g_assert_no_error (error);
  merges_path = g_build_filename (dir, "merges.txt", NULL);

  /* Nothing there: both files named, with where they were looked for. */
  tok = gesso_tokenizer_new_from_dir (dir, &error);
  g_assert_null (tok);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "vocab.json"));
  g_assert_nonnull (strstr (error->message, merges_path));
  g_clear_error (&error);

  /* Only vocab.json: merges.txt is the one named. */
  write_file (dir, "vocab.json", vocab);
  tok = gesso_tokenizer_new_from_dir (dir, &error);
  g_assert_null (tok);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "merges.txt"));
  g_assert_nonnull (strstr (error->message, merges_path));
  g_assert_null (strstr (error->message, "vocab.json"));
  g_clear_error (&error);

  /* Both, no configs: CLIPTokenizer's defaults (pad = EOS). */
  write_file (dir, "merges.txt", tiny_merges);
  tok = gesso_tokenizer_new_from_dir (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==, ID_EOS);
  gesso_tokenizer_free (tok);

  /* Legacy folder (no added_tokens_decoder): special_tokens_map.json overrides, as in SD2. */
  write_file (dir, "tokenizer_config.json",
              "{\"pad_token\": \"<|endoftext|>\", \"model_max_length\": 77,"
              " \"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<|startoftext|>\"}}");
  write_file (dir, "special_tokens_map.json", "{\"pad_token\": {\"content\": \"!\"}}");
  tok = gesso_tokenizer_new_from_dir (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==, '!');
  g_assert_cmpint (gesso_tokenizer_get_bos_id (tok), ==, ID_BOS);
  gesso_tokenizer_free (tok);

  /* Current folders: tokenizer_config.json with added_tokens_decoder decides alone. */
  write_file (dir, "tokenizer_config.json",
              "{\"added_tokens_decoder\": {\"601\": {\"content\": \"<|endoftext|>\"},"
              " \"700\": {\"content\": \"zz\"}},"
              " \"pad_token\": \"<|endoftext|>\", \"model_max_length\": 1e30}");
  tok = gesso_tokenizer_new_from_dir (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==, ID_EOS);
  g_assert_cmpuint (gesso_tokenizer_get_max_length (tok), ==, 77);
  assert_tokens (tok, "azz", (const int64_t[]) { 'a' + 256, 700 }, 2);
  gesso_tokenizer_free (tok);

  /* A config that is not JSON is an error naming it, not a silent default. */
  write_file (dir, "special_tokens_map.json", "{\"pad_token\": ");
  remove_file (dir, "tokenizer_config.json");
  tok = gesso_tokenizer_new_from_dir (dir, &error);
  g_assert_null (tok);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "special_tokens_map.json"));
  g_clear_error (&error);

  /* new_from_files names the missing file too. */
  remove_file (dir, "vocab.json");
  g_autofree char *vocab_path = g_build_filename (dir, "vocab.json", NULL);
  tok = gesso_tokenizer_new_from_files (vocab_path, merges_path, NULL, &error);
  g_assert_null (tok);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, vocab_path));
  g_clear_error (&error);

  remove_file (dir, "merges.txt");
  remove_file (dir, "special_tokens_map.json");
  g_rmdir (dir);
}

/* --- The conformance manifests ------------------------------------------------------------ */

static char *
conformance_dir (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_build_filename (source != NULL ? source : GESSO_SOURCE_DIR, "..", "shared",
                           "conformance", NULL);
}

/* Mismatching positions between the JSON int array NODE and IDS[0..N), counting a length
 * difference as mismatches too. */
static guint
count_mismatches (JsonArray *expected, const int64_t *ids, size_t n)
{
  guint length = json_array_get_length (expected);
  guint bad = 0;

  for (size_t i = 0; i < MAX ((size_t) length, n); i++)
    if (i >= length || i >= n || json_array_get_int_element (expected, (guint) i) != ids[i])
      bad++;
  return bad;
}

static void
test_conformance_manifest (gconstpointer data)
{
  const char *model = data;
  g_autofree char *dir = conformance_dir ();
  g_autofree char *manifest_name = g_strdup_printf ("tokenizer-%s.json", model);
  g_autofree char *manifest = g_build_filename (dir, "tokenizer", manifest_name, NULL);
  g_autofree char *tok_dir = g_build_filename (dir, "models", model, "diffusers", "tokenizer",
                                               NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GessoTokenizer) tok = NULL;
  g_autoptr (GError) error = NULL;
  JsonObject *root;
  JsonArray *prompts;
  guint failed = 0;

  if (!g_file_test (manifest, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no conformance data (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  g_assert_true (json_parser_load_from_file (parser, manifest, &error));
  root = json_node_get_object (json_parser_get_root (parser));
  tok = gesso_tokenizer_new_from_dir (tok_dir, &error);
  g_assert_no_error (error);

  g_assert_cmpint (gesso_tokenizer_get_bos_id (tok), ==,
                   json_object_get_int_member (root, "bos_token_id"));
  g_assert_cmpint (gesso_tokenizer_get_eos_id (tok), ==,
                   json_object_get_int_member (root, "eos_token_id"));
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==,
                   json_object_get_int_member (root, "pad_token_id"));
  g_assert_cmpint (gesso_tokenizer_get_max_length (tok), ==,
                   json_object_get_int_member (root, "max_length"));

  prompts = json_object_get_array_member (root, "prompts");
  for (guint i = 0; i < json_array_get_length (prompts); i++)
    {
      JsonObject *p = json_array_get_object_element (prompts, i);
      const char *text = json_object_get_string_member (p, "prompt");
      int64_t ids[77];
      g_autofree int64_t *all = NULL;
      size_t n_all = 0;
      guint bad;

      g_assert_true (gesso_tokenizer_encode (tok, text, ids, 77, &all, &n_all, &error));
      bad = count_mismatches (json_object_get_array_member (p, "input_ids"), ids, 77)
            + count_mismatches (json_object_get_array_member (p, "untruncated_ids"), all, n_all);
      if (bad > 0)
        {
          g_autoptr (GString) got = g_string_new (NULL);
          for (size_t k = 0; k < n_all; k++)
            g_string_append_printf (got, " %s", gesso_tokenizer_id_to_token (tok, all[k]));
          g_test_message ("%s prompt %u: %u ids differ; got%s", model, i, bad, got->str);
          failed++;
        }
    }
  g_test_message ("%s: %u of %u prompts match", model, json_array_get_length (prompts) - failed,
                  json_array_get_length (prompts));
  g_assert_cmpuint (failed, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/core/model/tokenizer/bpe-merges", test_bpe_merges);
  g_test_add_func ("/core/model/tokenizer/unknown-piece", test_unknown_piece);
  g_test_add_func ("/core/model/tokenizer/bytes", test_bytes);
  g_test_add_func ("/core/model/tokenizer/cleanup", test_cleanup);
  g_test_add_func ("/core/model/tokenizer/lower-case", test_lower_case);
  g_test_add_func ("/core/model/tokenizer/regex", test_regex);
  g_test_add_func ("/core/model/tokenizer/specials", test_specials);
  g_test_add_func ("/core/model/tokenizer/truncate-and-pad", test_truncate_and_pad);
  g_test_add_func ("/core/model/tokenizer/sd2-pad", test_sd2_pad);
  g_test_add_func ("/core/model/tokenizer/bad-input", test_bad_input);
  g_test_add_func ("/core/model/tokenizer/load-dir", test_load_dir);
  g_test_add_data_func ("/core/model/tokenizer/conformance/tiny-sd1", "tiny-sd1",
                        test_conformance_manifest);
  g_test_add_data_func ("/core/model/tokenizer/conformance/tiny-sd2", "tiny-sd2",
                        test_conformance_manifest);
  return g_test_run ();
}
