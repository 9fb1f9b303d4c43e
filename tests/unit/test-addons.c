/* Add-ons a user keeps beside a model: TAESD and textual-inversion embeddings.
 *
 * TAESD: the two layouts of the conformance model decode the same latent to the same pixels;
 * a model run with TAESD as its VAE (--vae) shows previews that are TAESD's own decodes (so
 * the last one matches the result far better than the fitted map's bound); bad files fail
 * with one line.
 * Embeddings: the independent truth is the text encoder's own token table. An embedding file
 * holding the table's row(s) of a word (written here byte by byte, tests/unit/io-fixtures.c)
 * must give exactly the prompt embedding of the word itself, in A1111's layout (trigger =
 * file stem, one and two vectors) and diffusers' (trigger = stored token); a trigger is a
 * whole word in any case; bad files (wrong width, pickle, truncated, SDXL, not an embedding)
 * fail the model's open with one line. Skipped without ../shared/conformance.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include "edit/model-private.h"
#include "gesso.h"
#include "model/embedding.h"
#include "model/taesd.h"
#include "tensor/half.h"
#include "unit/io-fixtures.h"

#define TOKEN_TABLE "text_model.embeddings.token_embedding.weight"

static char *
model_path (const char *model, const char *file)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  g_autofree char *dir = env != NULL && *env != '\0'
                           ? g_strdup (env)
                           : g_build_filename (source ? source : GESSO_SOURCE_DIR, "..",
                                               "shared", "conformance", NULL);
  char *path = g_build_filename (dir, "models", model, file, NULL);

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    g_clear_pointer (&path, g_free);
  return path;
}

/* --- TAESD --------------------------------------------------------------------------------- */

static void
test_taesd_layouts_agree (void)
{
  g_autofree char *folder = model_path ("tiny-taesd", "diffusers");
  g_autofree char *decoder = model_path ("tiny-taesd", "taesd_decoder.safetensors");
  g_autoptr (GessoTaesd) a = NULL;
  g_autoptr (GessoTaesd) b = NULL;
  g_autoptr (GError) error = NULL;
  float latent[4 * 3 * 5];
  g_autofree float *ia = g_new (float, 3 * 24 * 40);
  g_autofree float *ib = g_new (float, 3 * 24 * 40);

  if (folder == NULL || decoder == NULL)
    {
      g_test_skip ("no tiny-taesd in the conformance data");
      return;
    }
  a = gesso_taesd_open (folder, &error);
  g_assert_no_error (error);
  b = gesso_taesd_open (decoder, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_taesd_layout (a), ==, GESSO_TAESD_LAYOUT_DIFFUSERS);
  g_assert_cmpint (gesso_taesd_layout (b), ==, GESSO_TAESD_LAYOUT_MADEBYOLLIN);
  g_assert_true (gesso_taesd_has_encoder (b) && gesso_taesd_has_decoder (b));
  g_assert_cmpint (gesso_taesd_latent_factor (a), ==, 8);
  for (guint i = 0; i < G_N_ELEMENTS (latent); i++)
    latent[i] = sinf (0.7f * (float) i) * 2.0f;
  g_assert_true (gesso_taesd_decode (a, latent, 3, 5, ia, NULL, &error));
  g_assert_true (gesso_taesd_decode (b, latent, 3, 5, ib, NULL, &error));
  g_assert_cmpmem (ia, 3 * 24 * 40 * sizeof (float), ib, 3 * 24 * 40 * sizeof (float));
}

/* Copies an F16 tensor as F32 (USER_DATA NULL) or BF16: every value of the conformance files
 * is exact in both. */
static void
widen (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
       const void *values, gpointer user_data)
{
  const gboolean bf16 = user_data != NULL;
  size_t n = 1;
  g_autofree guint32 *f32 = NULL;
  g_autofree guint16 *b16 = NULL;

  g_assert_cmpstr (dtype, ==, "F16");
  for (const char *p = shape_json; *p != '\0'; p++)
    if (g_ascii_isdigit (*p))
      {
        n *= (size_t) g_ascii_strtoull (p, (char **) &p, 10);
        p--;
      }
  f32 = g_new (guint32, n);
  b16 = g_new (guint16, n);
  for (size_t i = 0; i < n; i++)
    {
      guint16 h;
      float f;

      memcpy (&h, (const guint8 *) values + 2 * i, 2);
      f = gesso_f16_to_f32 (h);
      memcpy (&f32[i], &f, 4);
      b16[i] = (guint16) (f32[i] >> 16);
    }
  fixture_st_add (st, name, bf16 ? "BF16" : "F32", shape_json,
                  bf16 ? (const void *) b16 : (const void *) f32);
}

/* The same pair stored as F32 and as BF16 decodes and encodes exactly as the F16 files do. */
static void
test_taesd_dtypes (void)
{
  g_autofree char *decoder = model_path ("tiny-taesd", "taesd_decoder.safetensors");
  g_autofree char *encoder = model_path ("tiny-taesd", "taesd_encoder.safetensors");
  g_autoptr (GessoTaesd) ref = NULL;
  float latent[4 * 2 * 2], image[3 * 16 * 16], want[3 * 16 * 16], z[4 * 2 * 2], want_z[16];

  if (decoder == NULL || encoder == NULL)
    {
      g_test_skip ("no tiny-taesd in the conformance data");
      return;
    }
  ref = gesso_taesd_open (decoder, NULL);
  g_assert_nonnull (ref);
  for (guint i = 0; i < G_N_ELEMENTS (latent); i++)
    latent[i] = cosf ((float) i);
  g_assert_true (gesso_taesd_decode (ref, latent, 2, 2, want, NULL, NULL));
  g_assert_true (gesso_taesd_encode (ref, want, 16, 16, want_z, NULL, NULL));
  for (int bf16 = 0; bf16 < 2; bf16++)
    {
      g_autofree char *dir = fixture_make_tmpdir ();
      g_autoptr (GessoTaesd) t = NULL;
      g_autoptr (GError) error = NULL;
      const char *const halves[2] = { encoder, decoder };
      const char *const names[2] = { "taesd_encoder.safetensors", "taesd_decoder.safetensors" };
      g_autofree char *path = NULL;

      for (int h = 0; h < 2; h++)
        {
          FixtureSt st;
          g_autoptr (GBytes) bytes = NULL;

          fixture_st_init (&st);
          fixture_st_add_file (&st, halves[h], widen, bf16 ? GINT_TO_POINTER (1) : NULL);
          bytes = fixture_st_finish (&st);
          g_free (path);
          path = fixture_write (dir, names[h], bytes);
        }
      t = gesso_taesd_open (path, &error);
      g_assert_no_error (error);
      g_assert_true (gesso_taesd_decode (t, latent, 2, 2, image, NULL, &error));
      g_assert_cmpmem (image, sizeof image, want, sizeof want);
      g_assert_true (gesso_taesd_encode (t, want, 16, 16, z, NULL, &error));
      g_assert_cmpmem (z, sizeof z, want_z, sizeof want_z);
      fixture_remove_tree (dir);
    }
}

/* A decoder without its encoder loads (it previews) and refuses to encode, saying what to add. */
static void
test_taesd_decoder_alone (void)
{
  g_autofree char *decoder = model_path ("tiny-taesd", "taesd_decoder.safetensors");
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *copy = NULL;
  g_autoptr (GessoTaesd) t = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  float image[3 * 8 * 8] = { 0 }, latent[4];
  gsize length;

  if (decoder == NULL)
    {
      g_test_skip ("no tiny-taesd in the conformance data");
      return;
    }
  g_assert_true (g_file_get_contents (decoder, &data, &length, NULL));
  copy = g_build_filename (dir, "taesd_decoder.safetensors", NULL);
  g_assert_true (g_file_set_contents (copy, data, (gssize) length, NULL));
  t = gesso_taesd_open (copy, &error);
  g_assert_no_error (error);
  g_assert_false (gesso_taesd_has_encoder (t));
  g_assert_false (gesso_taesd_encode (t, image, 8, 8, latent, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "taesd_encoder.safetensors"));
  fixture_remove_tree (dir);
}

static void
expect_one_line (const GError *error, int code)
{
  g_assert_error (error, GESSO_ERROR, code);
  g_assert_null (strchr (error->message, '\n'));
  g_test_message ("%s", error->message);
}

static void
test_taesd_bad_files (void)
{
  g_autofree char *decoder = model_path ("tiny-taesd", "taesd_decoder.safetensors");
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *data = NULL;
  gsize length;

  if (decoder == NULL)
    {
      g_test_skip ("no tiny-taesd in the conformance data");
      return;
    }
  g_assert_true (g_file_get_contents (decoder, &data, &length, NULL));
  {
    g_autoptr (GBytes) cut = g_bytes_new (data, length - 100);
    g_autofree char *path = fixture_write (dir, "cut_decoder.safetensors", cut);
    g_autoptr (GError) error = NULL;

    g_assert_null (gesso_taesd_open (path, &error));
    expect_one_line (error, GESSO_ERROR_CORRUPT);
  }
  {
    g_autoptr (GBytes) pickle = g_bytes_new_static ("\x80\x02}q\x00.", 6);
    g_autofree char *path = fixture_write (dir, "taesd_decoder.pth", pickle);
    g_autoptr (GError) error = NULL;

    g_assert_null (gesso_taesd_open (path, &error));
    expect_one_line (error, GESSO_ERROR_UNSAFE);
  }
  {
    /* a Block whose first conv reads more channels than the layer before makes */
    FixtureSt st;
    g_autoptr (GBytes) bytes = NULL;
    g_autofree char *path = NULL;
    g_autoptr (GError) error = NULL;

    fixture_st_init (&st);
    fixture_st_add (&st, "1.weight", "F32", "[8, 4, 3, 3]", NULL);
    fixture_st_add (&st, "1.bias", "F32", "[8]", NULL);
    for (int i = 0; i < 3; i++)
      {
        g_autofree char *w = g_strdup_printf ("3.conv.%d.weight", 2 * i);
        g_autofree char *b = g_strdup_printf ("3.conv.%d.bias", 2 * i);

        fixture_st_add (&st, w, "F32", i == 0 ? "[8, 16, 3, 3]" : "[8, 8, 3, 3]", NULL);
        fixture_st_add (&st, b, "F32", "[8]", NULL);
      }
    fixture_st_add (&st, "4.weight", "F32", "[3, 8, 3, 3]", NULL);
    fixture_st_add (&st, "4.bias", "F32", "[3]", NULL);
    bytes = fixture_st_finish (&st);
    path = fixture_write (dir, "odd_decoder.safetensors", bytes);
    g_assert_true (gesso_taesd_detect (path));
    g_assert_null (gesso_taesd_open (path, &error));
    expect_one_line (error, GESSO_ERROR_CORRUPT);
  }
  fixture_remove_tree (dir);
}

typedef struct
{
  GessoImage last;
} LastPreview;

static gboolean
keep_preview (int step, int total, const GessoImage *preview, gpointer data)
{
  LastPreview *lp = data;
  const size_t n = 4 * (size_t) preview->width * (size_t) preview->height;

  gesso_image_clear (&lp->last);
  g_assert_true (gesso_image_init (&lp->last, preview->width, preview->height, NULL));
  memcpy (lp->last.pixels, preview->pixels, n * sizeof (float));
  return TRUE;
}

/* --vae TAESD: a generate runs and its last preview (TAESD's decode of the final estimate, at
 * the result's size) is the result up to the sampler's last step: measured 0.001 per channel,
 * where the fitted map is allowed 0.3 (tests/unit/test-edit.c). */
static void
test_taesd_as_vae (void)
{
  g_autofree char *model = model_path ("tiny-sd1", "diffusers");
  g_autofree char *taesd = model_path ("tiny-taesd", "diffusers");
  g_autoptr (GessoModel) m = NULL;
  g_autoptr (GError) error = NULL;
  GessoModelParams params;
  GessoEditParams p;
  GessoEditResult result = { 0 };
  LastPreview lp = { 0 };
  double err = 0;
  size_t n;

  if (model == NULL || taesd == NULL)
    {
      g_test_skip ("no tiny-sd1 or tiny-taesd in the conformance data");
      return;
    }
  gesso_model_params_init (&params);
  params.path = model;
  params.vae = taesd;
  m = gesso_model_open (&params, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_model_get_latent_factor (m), ==, 8);
  gesso_edit_params_init (&p, GESSO_EDIT_GENERATE);
  p.prompt = "a red apple";
  p.steps = 3;
  p.seed = 5;
  /* the model's native size: the result is then the decode itself, not resized */
  p.width = p.height = gesso_model_get_native_size (m);
  p.sampler = "ddim";
  p.progress = keep_preview;
  p.progress_data = &lp;
  p.preview_size = p.width;
  g_assert_true (gesso_edit_run (m, &p, NULL, NULL, &result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (lp.last.width, ==, result.image.width);
  n = (size_t) result.image.width * (size_t) result.image.height;
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 3; c++)
      err += fabs (lp.last.pixels[4 * i + c] - result.image.pixels[4 * i + c]);
  err /= 3.0 * (double) n;
  g_test_message ("TAESD preview vs result: mean |error| %.4f", err);
  g_assert_cmpfloat (err, <, 0.01);
  gesso_image_clear (&lp.last);
  gesso_edit_result_clear (&result);
}

/* --- Embeddings ---------------------------------------------------------------------------- */

typedef struct
{
  char *model;
  char *dir;
  GessoModel *plain;            /* tiny-sd1 without embeddings */
  int64_t width;
} Fixture;

/* The token table's rows for the word pieces of TEXT (BOS and EOS dropped), as float32. */
static float *
word_rows (GessoModel *m, const char *text, int64_t *n_rows)
{
  const GessoTextEncoderConfig *c = gesso_text_encoder_get_config (m->text_encoder);
  const int64_t shape[2] = { c->vocab_size, c->hidden_size };
  g_autofree int64_t *ids = NULL;
  size_t n;
  float *rows;

  g_assert_true (gesso_tokenizer_encode (m->tokenizer, text, NULL, 0, &ids, &n, NULL));
  *n_rows = (int64_t) n - 2;
  rows = g_new (float, (size_t) *n_rows * c->hidden_size);
  g_assert_true (gesso_weights_gather_rows (m->weights, GESSO_COMPONENT_TEXT_ENCODER,
                                            TOKEN_TABLE, shape, ids + 1, (size_t) *n_rows,
                                            rows, NULL));
  return rows;
}

static char *
write_embedding (const char *dir, const char *file, const char *key, const float *rows,
                 int64_t n_rows, int64_t width, gboolean one_dim)
{
  FixtureSt st;
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *shape = one_dim ? g_strdup_printf ("[%" G_GINT64_FORMAT "]", width)
                                   : g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                                      "]", n_rows, width);

  fixture_st_init (&st);
  fixture_st_add (&st, key, "F32", shape, rows);
  bytes = fixture_st_finish (&st);
  return fixture_write (dir, file, bytes);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  GessoModelParams params;

  f->model = model_path ("tiny-sd1", "diffusers");
  if (f->model == NULL)
    return;
  f->dir = fixture_make_tmpdir ();
  gesso_model_params_init (&params);
  params.path = f->model;
  f->plain = gesso_model_open (&params, NULL);
  g_assert_nonnull (f->plain);
  f->width = gesso_text_encoder_get_config (f->plain->text_encoder)->hidden_size;
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  gesso_model_free (f->plain);
  if (f->dir != NULL)
    fixture_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->model);
}

static float *
encode (GessoModel *m, const char *text)
{
  const size_t n = (size_t) gesso_prompt_cache_tokens (m->prompts)
                   * (size_t) gesso_prompt_cache_width (m->prompts);
  float *out = g_new (float, n);

  g_assert_true (gesso_prompt_cache_encode (m->prompts, text, 0, out, NULL));
  return out;
}

static void
assert_same_encoding (GessoModel *a, const char *ta, GessoModel *b, const char *tb)
{
  const size_t n = (size_t) gesso_prompt_cache_tokens (a->prompts)
                   * (size_t) gesso_prompt_cache_width (a->prompts);
  g_autofree float *ea = encode (a, ta);
  g_autofree float *eb = encode (b, tb);

  if (memcmp (ea, eb, n * sizeof (float)) != 0)
    g_error ("'%s' and '%s' encode differently", ta, tb);
}

static void
test_embedding_is_its_word (Fixture *f, gconstpointer data)
{
  g_autofree float *cat = NULL;
  g_autofree float *red_cat = NULL;
  g_autofree char *a = NULL, *b = NULL, *c = NULL;
  g_autoptr (GessoModel) m = NULL;
  g_autoptr (GError) error = NULL;
  GessoModelParams params;
  int64_t n_cat, n_red_cat;

  if (f->model == NULL)
    {
      g_test_skip ("no tiny-sd1 in the conformance data");
      return;
    }
  cat = word_rows (f->plain, "cat", &n_cat);
  red_cat = word_rows (f->plain, "red cat", &n_red_cat);
  g_assert_cmpint (n_cat, ==, 1);
  g_assert_cmpint (n_red_cat, ==, 2);
  a = write_embedding (f->dir, "zorblax.safetensors", "emb_params", cat, 1, f->width, FALSE);
  b = write_embedding (f->dir, "Quux.safetensors", "string_to_param.*", red_cat, 2, f->width,
                       FALSE);
  c = write_embedding (f->dir, "learned_embeds.safetensors", "<fluff>", cat, 1, f->width, TRUE);

  gesso_model_params_init (&params);
  params.path = f->model;
  params.embeddings = (const char *const[]) { a, f->dir, NULL };
  m = gesso_model_open (&params, &error);
  g_assert_no_error (error);
  assert_same_encoding (m, "a zorblax on a mat", f->plain, "a cat on a mat");
  assert_same_encoding (m, "a ZorBlax, on a mat", f->plain, "a cat, on a mat");
  assert_same_encoding (m, "a quux on a mat", f->plain, "a red cat on a mat");
  assert_same_encoding (m, "a <fluff> on a mat", f->plain, "a cat on a mat");
  /* the model library knows all three layouts for embeddings */
  for (const char *const *p = (const char *const[]) { a, b, c, NULL }; *p != NULL; p++)
    {
      GessoAssetKind kind;
      g_autofree char *family = NULL;

      g_assert_true (gesso_asset_identify (*p, NULL, &kind, &family, &error));
      g_assert_cmpint (kind, ==, GESSO_ASSET_EMBEDDING);
    }
  /* only whole words call an embedding up */
  assert_same_encoding (m, "zorblaxes and quuxy", f->plain, "zorblaxes and quuxy");
}

static void
expect_open_fails (Fixture *f, const char *path, int code)
{
  g_autoptr (GError) error = NULL;
  GessoModelParams params;

  gesso_model_params_init (&params);
  params.path = f->model;
  params.embeddings = (const char *const[]) { path, NULL };
  g_assert_null (gesso_model_open (&params, &error));
  expect_one_line (error, code);
}

static void
test_embedding_bad_files (Fixture *f, gconstpointer data)
{
  g_autofree float *wide = NULL;
  g_autofree char *path = NULL;

  if (f->model == NULL)
    {
      g_test_skip ("no tiny-sd1 in the conformance data");
      return;
    }
  wide = g_new0 (float, 1024);
  path = write_embedding (f->dir, "wide.safetensors", "emb_params", wide, 1, 1024, FALSE);
  expect_open_fails (f, path, GESSO_ERROR_UNSUPPORTED);
  {
    GessoEmbeddingInfo info;
    g_autoptr (GError) error = NULL;

    g_assert_true (gesso_embedding_probe (path, &info, &error));
    g_assert_cmpstr (info.trigger, ==, "wide");
    g_assert_cmpstr (info.family, ==, "SD 2.x");
    g_assert_cmpint (info.width, ==, 1024);
    gesso_embedding_info_clear (&info);
  }
  {
    g_autoptr (GBytes) pickle = g_bytes_new_static ("\x80\x02}q\x00.", 6);
    g_autofree char *p = fixture_write (f->dir, "old.pt", pickle);

    expect_open_fails (f, p, GESSO_ERROR_UNSAFE);
  }
  {
    g_autofree char *contents = NULL;
    gsize length;
    g_autoptr (GBytes) cut = NULL;
    g_autofree char *p = NULL;

    g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
    cut = g_bytes_new (contents, length - 16);
    p = fixture_write (f->dir, "cut.safetensors", cut);
    expect_open_fails (f, p, GESSO_ERROR_CORRUPT);
  }
  {
    FixtureSt st;
    g_autoptr (GBytes) bytes = NULL;
    g_autofree char *p = NULL;

    fixture_st_init (&st);
    fixture_st_add (&st, "clip_g", "F32", "[1, 1280]", NULL);
    fixture_st_add (&st, "clip_l", "F32", "[1, 768]", NULL);
    bytes = fixture_st_finish (&st);
    p = fixture_write (f->dir, "xl.safetensors", bytes);
    expect_open_fails (f, p, GESSO_ERROR_UNSUPPORTED);
  }
  {
    FixtureSt st;
    g_autoptr (GBytes) bytes = NULL;
    g_autofree char *p = NULL;

    fixture_st_init (&st);
    fixture_st_add (&st, "lora_unet_x.lora_down.weight", "F32", "[4, 32]", NULL);
    fixture_st_add (&st, "lora_unet_x.lora_up.weight", "F32", "[32, 4]", NULL);
    bytes = fixture_st_finish (&st);
    p = fixture_write (f->dir, "lora.safetensors", bytes);
    expect_open_fails (f, p, GESSO_ERROR_UNSUPPORTED);
  }
}

/* A folder passes over what does not fit (other widths, other kinds, pickles) and takes the
 * rest. */
static void
test_embedding_folder_skips (Fixture *f, gconstpointer data)
{
  g_autofree float *cat = NULL;
  g_autofree float *wide = g_new0 (float, 1024);
  g_autofree char *a = NULL, *b = NULL, *c = NULL;
  g_autoptr (GessoModel) m = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) pickle = g_bytes_new_static ("\x80\x02}q\x00.", 6);
  GessoModelParams params;
  int64_t n;

  if (f->model == NULL)
    {
      g_test_skip ("no tiny-sd1 in the conformance data");
      return;
    }
  cat = word_rows (f->plain, "cat", &n);
  a = write_embedding (f->dir, "zorblax.safetensors", "emb_params", cat, 1, f->width, FALSE);
  b = write_embedding (f->dir, "wide.safetensors", "emb_params", wide, 1, 1024, FALSE);
  c = fixture_write (f->dir, "old.pt", pickle);
  gesso_model_params_init (&params);
  params.path = f->model;
  params.embeddings = (const char *const[]) { f->dir, NULL };
  m = gesso_model_open (&params, &error);
  g_assert_no_error (error);
  assert_same_encoding (m, "a zorblax", f->plain, "a cat");
  assert_same_encoding (m, "a wide", f->plain, "a wide");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/addons/taesd/layouts-agree", test_taesd_layouts_agree);
  g_test_add_func ("/addons/taesd/dtypes", test_taesd_dtypes);
  g_test_add_func ("/addons/taesd/decoder-alone", test_taesd_decoder_alone);
  g_test_add_func ("/addons/taesd/bad-files", test_taesd_bad_files);
  g_test_add_func ("/addons/taesd/as-vae", test_taesd_as_vae);
  g_test_add ("/addons/embedding/is-its-word", Fixture, NULL, fixture_set_up,
              test_embedding_is_its_word, fixture_tear_down);
  g_test_add ("/addons/embedding/bad-files", Fixture, NULL, fixture_set_up,
              test_embedding_bad_files, fixture_tear_down);
  g_test_add ("/addons/embedding/folder-skips", Fixture, NULL, fixture_set_up,
              test_embedding_folder_skips, fixture_tear_down);
  return g_test_run ();
}
