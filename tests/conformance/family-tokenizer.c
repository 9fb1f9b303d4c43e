/* tokenizer/ cases: every prompt of the manifest through the model's diffusers tokenizer
 * folder (<dir>/models/<model>/diffusers/tokenizer), compared exactly with the manifest's
 * input_ids, the case tensor's row and untruncated_ids; then again through the CLIP table
 * Gesso ships (variant "bundled prompt NN"). One result per prompt (variant "prompt NN");
 * max_abs is the number of ids that differ, tol 0. */
#include <math.h>
#include <string.h>

#include "families.h"
#include "gesso.h"
#include "model/tokenizer.h"

/* Positions where the JSON int array EXPECTED and IDS[0..N) differ, a length difference
 * counting as that many mismatches; *FIRST gets the first such position. */
static guint
count_mismatches (JsonArray *expected, const int64_t *ids, size_t n, size_t *first)
{
  size_t length = expected != NULL ? json_array_get_length (expected) : 0;
  guint bad = 0;

  for (size_t i = 0; i < MAX (length, n); i++)
    if (i >= length || i >= n || json_array_get_int_element (expected, (guint) i) != ids[i])
      {
        if (bad++ == 0)
          *first = i;
      }
  return bad;
}

static JsonArray *
array_member (JsonObject *object, const char *key)
{
  JsonNode *node = json_object_get_member (object, key);

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

/* Compares a special token id with the manifest's KEY, when it has one. */
static void
check_special (ConformanceRun *run, const ConformanceCase *c, const char *key, int64_t id)
{
  JsonNode *node = json_object_get_member (c->manifest, key);
  int64_t want;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return;
  want = json_node_get_int (node);
  conformance_report (run, c, want == id ? CONFORMANCE_PASS : CONFORMANCE_FAIL, key,
                      want == id ? 0 : 1, 0, want == id ? NULL : "got %" G_GINT64_FORMAT
                      ", expected %" G_GINT64_FORMAT, id, want);
}

static void
check_prompt (ConformanceRun *run, const ConformanceCase *c, GessoTokenizer *tok,
              const char *prefix, guint index, JsonObject *prompt, const int64_t *row,
              size_t max_length)
{
  g_autofree char *variant = g_strdup_printf ("%sprompt %02u", prefix, index);
  g_autofree int64_t *ids = g_new (int64_t, max_length);
  g_autofree int64_t *all = NULL;
  g_autoptr (GError) error = NULL;
  JsonNode *text = json_object_get_member (prompt, "prompt");
  size_t n_all = 0;
  size_t first = 0;
  size_t first_row = 0;
  size_t first_all = 0;
  guint bad_ids;
  guint bad_row = 0;
  guint bad_all;

  if (text == NULL || !JSON_NODE_HOLDS_VALUE (text)
      || json_node_get_value_type (text) != G_TYPE_STRING)
    {
      conformance_report (run, c, CONFORMANCE_FAIL, variant, NAN, 0, "no prompt string");
      return;
    }
  if (!gesso_tokenizer_encode (tok, json_node_get_string (text), ids, max_length, &all, &n_all,
                               &error))
    {
      conformance_report (run, c, CONFORMANCE_FAIL, variant, NAN, 0, "%s", error->message);
      return;
    }

  bad_ids = count_mismatches (array_member (prompt, "input_ids"), ids, max_length, &first);
  bad_all = count_mismatches (array_member (prompt, "untruncated_ids"), all, n_all, &first_all);
  if (row != NULL)
    for (size_t i = 0; i < max_length; i++)
      if (row[i] != ids[i] && bad_row++ == 0)
        first_row = i;

  if (bad_ids + bad_row + bad_all == 0)
    {
      conformance_report (run, c, CONFORMANCE_PASS, variant, 0, 0, NULL);
      return;
    }
  /* Name the first difference with the token text, which is what one needs to debug BPE. */
  size_t at = bad_all > 0 ? first_all : bad_ids > 0 ? first : first_row;
  const int64_t *got = bad_all > 0 ? all : ids;
  size_t n_got = bad_all > 0 ? n_all : max_length;
  const char *token = at < n_got ? gesso_tokenizer_id_to_token (tok, got[at]) : NULL;
  conformance_report (run, c, CONFORMANCE_FAIL, variant, bad_ids + bad_row + bad_all, 0,
                      "%u input_ids, %u tensor, %u untruncated ids differ; first at %s[%zu], "
                      "got '%s' (%zu ids untruncated)",
                      bad_ids, bad_row, bad_all, bad_all > 0 ? "untruncated_ids" : "input_ids",
                      at, token != NULL ? token : "-", n_all);
}

void
conformance_family_tokenizer (ConformanceRun *run, const ConformanceCase *c)
{
  const char *model = conformance_manifest_string (c, "model");
  g_autofree char *model_dir = NULL;
  g_autofree char *tok_dir = NULL;
  g_autofree int64_t *rows = NULL;
  g_autoptr (GessoTokenizer) tok = NULL;
  g_autoptr (GError) error = NULL;
  JsonArray *prompts = array_member (c->manifest, "prompts");
  JsonNode *max_node = json_object_get_member (c->manifest, "max_length");
  size_t max_length = 77;
  size_t n_rows = 0;
  guint n_prompts;

  if (model == NULL || prompts == NULL)
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, 0,
                          "manifest lacks \"model\" or \"prompts\"");
      return;
    }
  if (max_node != NULL && JSON_NODE_HOLDS_VALUE (max_node))
    max_length = (size_t) CLAMP (json_node_get_int (max_node), 2, 4096);

  model_dir = conformance_model_dir (c, model);
  tok_dir = g_build_filename (model_dir, "diffusers", "tokenizer", NULL);
  tok = gesso_tokenizer_new_from_dir (tok_dir, &error);
  if (tok == NULL)
    {
      conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, 0, "%s", error->message);
      return;
    }
  check_special (run, c, "bos_token_id", gesso_tokenizer_get_bos_id (tok));
  check_special (run, c, "eos_token_id", gesso_tokenizer_get_eos_id (tok));
  check_special (run, c, "pad_token_id", gesso_tokenizer_get_pad_id (tok));

  n_prompts = json_array_get_length (prompts);
  /* The [N, max_length] tensor should repeat the manifest's input_ids; check it as well. */
  if (c->tensors != NULL)
    {
      if (!conformance_case_tensor_i64 (c, "input_ids", &rows, &n_rows, &error))
        {
          conformance_report (run, c, CONFORMANCE_FAIL, "input_ids tensor", NAN, 0, "%s",
                              error->message);
          g_clear_error (&error);
        }
      else if (n_rows != (size_t) n_prompts * max_length)
        {
          conformance_report (run, c, CONFORMANCE_FAIL, "input_ids tensor", NAN, 0,
                              "%zu ids for %u prompts of %zu", n_rows, n_prompts, max_length);
          g_clear_pointer (&rows, g_free);
        }
    }

  for (guint i = 0; i < n_prompts; i++)
    {
      JsonNode *node = json_array_get_element (prompts, i);
      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          g_autofree char *variant = g_strdup_printf ("prompt %02u", i);
          conformance_report (run, c, CONFORMANCE_FAIL, variant, NAN, 0, "not an object");
          continue;
        }
      check_prompt (run, c, tok, "", i, json_node_get_object (node),
                    rows != NULL ? rows + (size_t) i * max_length : NULL, max_length);
    }

  /* The same prompts through the CLIP table Gesso ships (model/clip_vocab.h), with the
   * convention the manifest's pad token names: what a model without tokenizer files gets. */
  {
    const char *pad = conformance_manifest_string (c, "pad_token");
    g_autoptr (GessoTokenizer) bundled = NULL;

    bundled = gesso_tokenizer_new_bundled (g_strcmp0 (pad, "!") == 0
                                             ? GESSO_CLIP_FLAVOR_OPENCLIP
                                             : GESSO_CLIP_FLAVOR_OPENAI, &error);
    if (bundled == NULL)
      {
        conformance_report (run, c, CONFORMANCE_FAIL, "bundled", NAN, 0, "%s",
                            error->message);
        return;
      }
    for (guint i = 0; i < n_prompts; i++)
      {
        JsonNode *node = json_array_get_element (prompts, i);
        if (JSON_NODE_HOLDS_OBJECT (node))
          check_prompt (run, c, bundled, "bundled ", i, json_node_get_object (node),
                        rows != NULL ? rows + (size_t) i * max_length : NULL, max_length);
      }
  }
}
