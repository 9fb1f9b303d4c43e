/* The shipped demo model (data/models/gesso-emoji-64) against the PyTorch model it was
 * exported from: tests/demo-model/reference.safetensors holds, computed by
 * tools/train/export.py in float32 from the exported fp16 weights, the token ids of two
 * prompts, the text encoder's last_hidden_state, the UNet's noise_pred at three timesteps
 * and one VAE decode, plus the token ids of 360 captions. Token ids must match exactly, float
 * outputs to a max-abs tolerance. Skips when the model or the reference file is absent.
 * Prints every max-abs error (TAP comments). No PyTorch needed. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gesso.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "model/text_encoder.h"
#include "model/tokenizer.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"

#define MODEL_NAME "gesso-emoji-64"
#define TOLERANCE 2e-3   /* float32 vs PyTorch float32; outputs are O(1) */

static char *model_dir, *refs_path;

static float *
ref_f32 (GessoSafetensors *st, const char *name, int64_t *numel)
{
  const GessoSafetensorsEntry *e = gesso_safetensors_lookup (st, name);
  g_autoptr (GError) error = NULL;
  float *out;

  g_assert_nonnull (e);
  out = g_new (float, e->numel);
  g_assert_true (gesso_safetensors_entry_to_f32 (e, out, &error));
  g_assert_no_error (error);
  if (numel)
    *numel = e->numel;
  return out;
}

static double
max_abs (const float *a, const float *b, int64_t n)
{
  double m = 0;
  for (int64_t i = 0; i < n; i++)
    {
      double d = fabs ((double) a[i] - (double) b[i]);
      if (!(d <= m))
        m = isnan (d) ? INFINITY : d;
    }
  return m;
}

static gboolean
present (void)
{
  if (!g_file_test (model_dir, G_FILE_TEST_IS_DIR) || !g_file_test (refs_path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("demo model or reference tensors absent");
      return FALSE;
    }
  return TRUE;
}

static void
test_pipeline_parts (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoSafetensors) st = NULL;
  g_autoptr (GessoModelFiles) files = NULL;
  g_autoptr (GessoWeights) weights = NULL;
  g_autoptr (GessoTokenizer) tok = NULL;
  g_autoptr (GessoTextEncoder) te = NULL;
  g_autoptr (GessoUnet) unet = NULL;
  g_autoptr (GessoVae) vae = NULL;
  g_autofree char *tok_dir = NULL;
  g_autofree int64_t *want_ids = NULL;
  g_autofree float *want_ctx = NULL, *ctx = NULL, *sample = NULL;
  const GessoSafetensorsEntry *ids_entry;
  const char *prompts_json;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonArray *prompts;
  int64_t n_ctx, n_sample;
  int64_t batch, len, width;
  double err, worst = 0;

  if (!present ())
    return;
  st = gesso_safetensors_open (refs_path, &error);
  g_assert_no_error (error);

  /* tokenizer: exact ids */
  tok_dir = g_build_filename (model_dir, "tokenizer", NULL);
  tok = gesso_tokenizer_new_from_dir (tok_dir, &error);
  g_assert_no_error (error);
  ids_entry = gesso_safetensors_lookup (st, "input_ids");
  g_assert_nonnull (ids_entry);
  batch = ids_entry->shape[0];
  len = ids_entry->shape[1];
  want_ids = g_new (int64_t, ids_entry->numel);
  g_assert_true (gesso_safetensors_entry_to_i64 (ids_entry, want_ids, &error));
  prompts_json = gesso_safetensors_metadata (st, "prompts");
  g_assert_nonnull (prompts_json);
  g_assert_true (json_parser_load_from_data (parser, prompts_json, -1, &error));
  prompts = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpint (json_array_get_length (prompts), ==, batch);
  for (int64_t b = 0; b < batch; b++)
    {
      g_autofree int64_t *ids = g_new (int64_t, len);
      g_assert_true (gesso_tokenizer_encode (tok, json_array_get_string_element (prompts, b),
                                             ids, len, NULL, NULL, &error));
      g_assert_no_error (error);
      for (int64_t i = 0; i < len; i++)
        g_assert_cmpint (ids[i], ==, want_ids[b * len + i]);
    }
  printf ("# tokenizer: %" G_GINT64_FORMAT " prompts, ids identical\n", batch);
  {
    const GessoSafetensorsEntry *ce = gesso_safetensors_lookup (st, "caption_ids");
    const char *caps_json = gesso_safetensors_metadata (st, "captions");
    g_autoptr (JsonParser) cp = json_parser_new ();
    g_autofree int64_t *cids = NULL;
    JsonArray *caps;

    g_assert_nonnull (ce);
    g_assert_nonnull (caps_json);
    g_assert_true (json_parser_load_from_data (cp, caps_json, -1, &error));
    caps = json_node_get_array (json_parser_get_root (cp));
    g_assert_cmpint (json_array_get_length (caps), ==, ce->shape[0]);
    cids = g_new (int64_t, ce->numel);
    g_assert_true (gesso_safetensors_entry_to_i64 (ce, cids, &error));
    for (int64_t c = 0; c < ce->shape[0]; c++)
      {
        g_autofree int64_t *ids = g_new (int64_t, ce->shape[1]);
        g_assert_true (gesso_tokenizer_encode (tok, json_array_get_string_element (caps, c), ids,
                                               ce->shape[1], NULL, NULL, &error));
        for (int64_t i = 0; i < ce->shape[1]; i++)
          if (ids[i] != cids[c * ce->shape[1] + i])
            g_error ("caption \"%s\": token %" G_GINT64_FORMAT " is %" G_GINT64_FORMAT
                     " in Gesso, %" G_GINT64_FORMAT " in tools/train/bpe.py",
                     json_array_get_string_element (caps, c), i, ids[i],
                     cids[c * ce->shape[1] + i]);
      }
    printf ("# tokenizer: %" G_GINT64_FORMAT " captions, ids identical\n", ce->shape[0]);
  }

  files = gesso_model_files_open (model_dir, &error);
  g_assert_no_error (error);
  weights = gesso_weights_new (files, &error);
  g_assert_no_error (error);

  /* text encoder */
  te = gesso_text_encoder_new (weights, NULL, gesso_model_files_config (files, "text_encoder"),
                               &error);
  g_assert_no_error (error);
  want_ctx = ref_f32 (st, "last_hidden_state", &n_ctx);
  width = n_ctx / (batch * len);
  ctx = g_new (float, n_ctx);
  for (int64_t b = 0; b < batch; b++)
    {
      g_assert_true (gesso_text_encoder_encode (te, want_ids + b * len, 0, ctx + b * len * width,
                                                &error));
      g_assert_no_error (error);
    }
  err = max_abs (ctx, want_ctx, n_ctx);
  printf ("# text encoder last_hidden_state: max abs error %.3g\n", err);
  g_assert_cmpfloat (err, <=, TOLERANCE);

  /* UNet at three timesteps, fed the reference context so errors do not compound */
  unet = gesso_unet_new_for_model (files, weights, NULL, &error);
  g_assert_no_error (error);
  sample = ref_f32 (st, "sample", &n_sample);
  for (int k = 0; k < 3; k++)
    {
      char tname[32], pname[32];
      g_autofree float *ts = NULL, *want = NULL, *got = NULL;
      const GessoSafetensorsEntry *se = gesso_safetensors_lookup (st, "sample");

      g_snprintf (tname, sizeof tname, "timestep_%d", k);
      g_snprintf (pname, sizeof pname, "noise_pred_%d", k);
      ts = ref_f32 (st, tname, NULL);
      want = ref_f32 (st, pname, NULL);
      got = g_new (float, n_sample);
      g_assert_true (gesso_unet_forward (unet, sample, ts, want_ctx, se->shape[0], se->shape[2],
                                         se->shape[3], len, got, NULL, &error));
      g_assert_no_error (error);
      err = max_abs (got, want, n_sample);
      worst = MAX (worst, err);
      printf ("# unet noise_pred at t=%g: max abs error %.3g\n", ts[0], err);
    }
  g_assert_cmpfloat (worst, <=, TOLERANCE);

  /* VAE decode */
  vae = gesso_vae_new_for_model (files, weights, NULL, &error);
  g_assert_no_error (error);
  {
    int64_t n_img;
    g_autofree float *lat = ref_f32 (st, "decode_input", NULL);
    g_autofree float *want = ref_f32 (st, "decoded", &n_img);
    g_autofree float *got = g_new (float, n_img);
    const GessoSafetensorsEntry *le = gesso_safetensors_lookup (st, "decode_input");

    g_assert_true (gesso_vae_decode (vae, lat, le->shape[2], le->shape[3], got, NULL, &error));
    g_assert_no_error (error);
    err = max_abs (got, want, n_img);
    printf ("# vae decode: max abs error %.3g\n", err);
    g_assert_cmpfloat (err, <=, TOLERANCE);
  }
}

int
main (int argc, char **argv)
{
  const char *src = g_getenv ("GESSO_SOURCE_DIR");

  g_test_init (&argc, &argv, NULL);
  if (src == NULL)
    src = ".";
  model_dir = g_build_filename (src, "data", "models", MODEL_NAME, NULL);
  refs_path = g_build_filename (src, "tests", "demo-model", "reference.safetensors", NULL);
  g_test_add_func ("/demo-model/torch-vs-gesso", test_pipeline_parts);
  return g_test_run ();
}
