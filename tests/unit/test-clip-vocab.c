/* The CLIP vocabulary Gesso ships: that it is the file OpenAI published, that the tokenizer
 * files derived from it are byte for byte the ones transformers saves for Stable Diffusion
 * (the conformance models' tokenizer/ folders), and that a tokenizer built from it gives the
 * reference ids for every prompt of the conformance manifests, with SD 1.x's, SD 2.x's and
 * both of SDXL's conventions. The comparisons with ../shared/conformance are skipped without
 * it. */
#include "gesso-config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "gesso-resources.h"
#include "gesso.h"
#include "model/clip_vocab.h"
#include "model/tokenizer.h"

/* sha256sum of clip/bpe_simple_vocab_16e6.txt.gz in github.com/openai/CLIP (commit d05afc4),
 * as data/clip/README.md records it. */
#define PUBLISHED_SHA256 "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

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

static char *
tokenizer_dir (const char *model, const char *folder)
{
  g_autofree char *dir = conformance_dir ();

  return g_build_filename (dir, "models", model, "diffusers", folder, NULL);
}

/* The file compiled in is the one in the data folder, and that is the one OpenAI published. */
static void
test_bundled_is_published (void)
{
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  g_autofree char *path = g_build_filename (source != NULL ? source : GESSO_SOURCE_DIR, "data",
                                            "clip", "bpe_simple_vocab_16e6.txt.gz", NULL);
  g_autoptr (GBytes) resource = NULL;
  g_autofree char *file = NULL;
  g_autofree char *sum = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) text = NULL;
  gsize length;

  resource = g_resource_lookup_data (gesso_resources_get_resource (),
                                     "/org/gesso/Gesso/clip/bpe_simple_vocab_16e6.txt.gz",
                                     G_RESOURCE_LOOKUP_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (path, &file, &length, &error));
  g_assert_no_error (error);
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) file, length);
  g_assert_cmpstr (sum, ==, PUBLISHED_SHA256);
  g_assert_cmpmem (g_bytes_get_data (resource, NULL), g_bytes_get_size (resource), file,
                   length);

  text = gesso_clip_vocab_bundled_text (&error);
  g_assert_no_error (error);
  /* CLIP's header line, then the first merge */
  g_assert_true (g_str_has_prefix (g_bytes_get_data (text, NULL),
                                   "\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\n"));
}

/* Invariants that hold without any reference file: the ids CLIPTokenizer documents. */
static void
test_table_invariants (void)
{
  g_autoptr (GessoTokenizer) tok = NULL;
  g_autoptr (GessoTokenizer) open_clip = NULL;
  g_autoptr (GError) error = NULL;
  int64_t ids[8];

  tok = gesso_tokenizer_new_bundled (GESSO_CLIP_FLAVOR_OPENAI, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_tokenizer_get_n_ids (tok), ==, GESSO_CLIP_VOCAB_SIZE);
  g_assert_cmpint (gesso_tokenizer_get_bos_id (tok), ==, 49406);
  g_assert_cmpint (gesso_tokenizer_get_eos_id (tok), ==, 49407);
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==, 49407);
  g_assert_cmpuint (gesso_tokenizer_get_max_length (tok), ==, 77);
  /* bytes_to_unicode order: '!' first, then the printable bytes, U+0100 at 188; "</w>" forms
   * from 256; the first merge "i n" at 512 */
  g_assert_cmpstr (gesso_tokenizer_id_to_token (tok, 0), ==, "!");
  g_assert_cmpstr (gesso_tokenizer_id_to_token (tok, 188), ==, "\xc4\x80");
  g_assert_cmpstr (gesso_tokenizer_id_to_token (tok, 256), ==, "!</w>");
  g_assert_cmpstr (gesso_tokenizer_id_to_token (tok, 512), ==, "in");
  g_assert_true (gesso_tokenizer_encode (tok, "a photo", ids, 8, NULL, NULL, &error));
  g_assert_no_error (error);
  /* "a</w>" = 320 and "photo</w>" = 1125 in CLIP's published table */
  g_assert_cmpint (ids[1], ==, 320);
  g_assert_cmpint (ids[2], ==, 1125);
  g_assert_cmpint (ids[4], ==, 49407);

  open_clip = gesso_tokenizer_new_bundled (GESSO_CLIP_FLAVOR_OPENCLIP, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_tokenizer_get_pad_id (open_clip), ==, 0);
  g_assert_true (gesso_tokenizer_encode (open_clip, "a photo", ids, 8, NULL, NULL, &error));
  g_assert_cmpint (ids[3], ==, 49407);
  g_assert_cmpint (ids[4], ==, 0);
}

static void
test_derive_errors (void)
{
  g_autoptr (GError) error = NULL;
  char *vocab = NULL;
  char *merges = NULL;
  const char *short_text = "\"header#version: 0.2\ni n\nt h\n";

  g_assert_false (gesso_clip_vocab_derive (short_text, strlen (short_text), &vocab, &merges,
                                           &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_null (strchr (error->message, '\n'));
  g_clear_error (&error);
  g_assert_false (gesso_clip_vocab_derive ("a\xff", 2, &vocab, &merges, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_null (vocab);
  g_assert_null (merges);
}

/* vocab.json and merges.txt from the bundled table against transformers' files, byte for byte,
 * for every tokenizer folder of the conformance models (SD 1.x, SD 2.x, both of SDXL's). */
static void
test_equals_conformance_files (void)
{
  static const char *const folders[][2] = {
    { "tiny-sd1", "tokenizer" },
    { "tiny-sd2", "tokenizer" },
    { "tiny-sdxl", "tokenizer" },
    { "tiny-sdxl", "tokenizer_2" },
  };
  g_autoptr (GError) error = NULL;
  const char *vocab;
  const char *merges;
  guint compared = 0;

  g_assert_true (gesso_clip_vocab_bundled (&vocab, &merges, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (folders); i++)
    {
      g_autofree char *dir = tokenizer_dir (folders[i][0], folders[i][1]);
      g_autofree char *vocab_path = g_build_filename (dir, "vocab.json", NULL);
      g_autofree char *merges_path = g_build_filename (dir, "merges.txt", NULL);
      g_autofree char *want_vocab = NULL;
      g_autofree char *want_merges = NULL;
      gsize vocab_length, merges_length;

      if (!g_file_get_contents (vocab_path, &want_vocab, &vocab_length, NULL)
          || !g_file_get_contents (merges_path, &want_merges, &merges_length, NULL))
        continue;
      g_assert_cmpmem (vocab, strlen (vocab), want_vocab, vocab_length);
      g_assert_cmpmem (merges, strlen (merges), want_merges, merges_length);
      g_test_message ("%s/%s: vocab.json %zu bytes and merges.txt %zu bytes equal",
                      folders[i][0], folders[i][1], vocab_length, merges_length);
      compared++;
    }
  if (compared == 0)
    g_test_skip ("no conformance tokenizer files (set GESSO_CONFORMANCE_DIR)");
}

static JsonArray *
load_prompts (const char *model, JsonParser *parser, JsonObject **root)
{
  g_autofree char *dir = conformance_dir ();
  g_autofree char *name = g_strdup_printf ("tokenizer-%s.json", model);
  g_autofree char *path = g_build_filename (dir, "tokenizer", name, NULL);
  g_autoptr (GError) error = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  *root = json_node_get_object (json_parser_get_root (parser));
  return json_object_get_array_member (*root, "prompts");
}

static gboolean
ids_equal (JsonArray *expected, const int64_t *ids, size_t n)
{
  if (json_array_get_length (expected) != n)
    return FALSE;
  for (size_t i = 0; i < n; i++)
    if (json_array_get_int_element (expected, (guint) i) != ids[i])
      return FALSE;
  return TRUE;
}

/* Every prompt of the manifest of MODEL through the bundled table with FLAVOR: the reference
 * input_ids and untruncated ids exactly. */
static void
test_manifest (gconstpointer data)
{
  const char *model = data;
  GessoClipFlavor flavor = strcmp (model, "tiny-sd2") == 0 ? GESSO_CLIP_FLAVOR_OPENCLIP
                                                           : GESSO_CLIP_FLAVOR_OPENAI;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GessoTokenizer) tok = NULL;
  g_autoptr (GError) error = NULL;
  JsonObject *root = NULL;
  JsonArray *prompts = load_prompts (model, parser, &root);
  guint failed = 0;

  if (prompts == NULL)
    {
      g_test_skip ("no conformance tokenizer manifests (set GESSO_CONFORMANCE_DIR)");
      return;
    }
  tok = gesso_tokenizer_new_bundled (flavor, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_tokenizer_get_bos_id (tok), ==,
                   json_object_get_int_member (root, "bos_token_id"));
  g_assert_cmpint (gesso_tokenizer_get_eos_id (tok), ==,
                   json_object_get_int_member (root, "eos_token_id"));
  g_assert_cmpint (gesso_tokenizer_get_pad_id (tok), ==,
                   json_object_get_int_member (root, "pad_token_id"));
  for (guint i = 0; i < json_array_get_length (prompts); i++)
    {
      JsonObject *p = json_array_get_object_element (prompts, i);
      int64_t ids[77];
      g_autofree int64_t *all = NULL;
      size_t n_all = 0;

      g_assert_true (gesso_tokenizer_encode (tok, json_object_get_string_member (p, "prompt"),
                                             ids, 77, &all, &n_all, &error));
      if (!ids_equal (json_object_get_array_member (p, "input_ids"), ids, 77)
          || !ids_equal (json_object_get_array_member (p, "untruncated_ids"), all, n_all))
        {
          g_test_message ("%s prompt %u differs", model, i);
          failed++;
        }
    }
  g_test_message ("%s: %u of %u prompts match with the bundled table", model,
                  json_array_get_length (prompts) - failed, json_array_get_length (prompts));
  g_assert_cmpuint (failed, ==, 0);
}

/* SDXL has no manifest of its own: its two tokenizer folders must tokenize every manifest
 * prompt as the bundled table does with the matching convention (pad "<|endoftext|>" for the
 * first, "!" for the second). */
static void
test_sdxl_folders (void)
{
  static const char *const manifests[] = { "tiny-sd1", "tiny-sd2" };
  static const struct
  {
    const char *folder;
    GessoClipFlavor flavor;
  } pairs[] = {
    { "tokenizer", GESSO_CLIP_FLAVOR_OPENAI },
    { "tokenizer_2", GESSO_CLIP_FLAVOR_OPENCLIP },
  };
  guint compared = 0;

  for (guint k = 0; k < G_N_ELEMENTS (pairs); k++)
    {
      g_autofree char *dir = tokenizer_dir ("tiny-sdxl", pairs[k].folder);
      g_autoptr (GessoTokenizer) files = NULL;
      g_autoptr (GessoTokenizer) bundled = NULL;
      g_autoptr (GError) error = NULL;

      if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
        continue;
      files = gesso_tokenizer_new_from_dir (dir, &error);
      g_assert_no_error (error);
      bundled = gesso_tokenizer_new_bundled (pairs[k].flavor, &error);
      g_assert_no_error (error);
      g_assert_cmpint (gesso_tokenizer_get_pad_id (files), ==,
                       gesso_tokenizer_get_pad_id (bundled));
      for (guint m = 0; m < G_N_ELEMENTS (manifests); m++)
        {
          g_autoptr (JsonParser) parser = json_parser_new ();
          JsonObject *root = NULL;
          JsonArray *prompts = load_prompts (manifests[m], parser, &root);

          for (guint i = 0; prompts != NULL && i < json_array_get_length (prompts); i++)
            {
              const char *text = json_object_get_string_member (
                json_array_get_object_element (prompts, i), "prompt");
              int64_t a[77], b[77];

              g_assert_true (gesso_tokenizer_encode (files, text, a, 77, NULL, NULL, &error));
              g_assert_true (gesso_tokenizer_encode (bundled, text, b, 77, NULL, NULL, &error));
              g_assert_cmpmem (a, sizeof a, b, sizeof b);
              compared++;
            }
        }
    }
  if (compared == 0)
    g_test_skip ("no conformance SDXL tokenizers (set GESSO_CONFORMANCE_DIR)");
  else
    g_test_message ("%u prompts tokenized alike", compared);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/core/model/clip-vocab/bundled-is-published", test_bundled_is_published);
  g_test_add_func ("/core/model/clip-vocab/table-invariants", test_table_invariants);
  g_test_add_func ("/core/model/clip-vocab/derive-errors", test_derive_errors);
  g_test_add_func ("/core/model/clip-vocab/equals-conformance-files",
                   test_equals_conformance_files);
  g_test_add_data_func ("/core/model/clip-vocab/manifest/tiny-sd1", "tiny-sd1", test_manifest);
  g_test_add_data_func ("/core/model/clip-vocab/manifest/tiny-sd2", "tiny-sd2", test_manifest);
  g_test_add_func ("/core/model/clip-vocab/sdxl-folders", test_sdxl_folders);
  return g_test_run ();
}
