/* Model layouts: diffusers folders (variants, shards, several text encoders) and single
 * checkpoints, the summary `gesso info` prints, and every way a model folder can be wrong. */
#include <string.h>

#include "gesso.h"
#include "io-fixtures.h"
#include "io/model_files.h"

typedef struct
{
  const char *name;
  const char *dtype;
  const char *shape;
} Spec;

static GBytes *
build (const Spec *specs, guint n)
{
  FixtureSt b;

  fixture_st_init (&b);
  for (guint i = 0; i < n; i++)
    fixture_st_add (&b, specs[i].name, specs[i].dtype, specs[i].shape, NULL);
  return fixture_st_finish (&b);
}

static char *
write_st (const char *dir, const char *name, const Spec *specs, guint n)
{
  g_autoptr (GBytes) bytes = build (specs, n);

  return fixture_write (dir, name, bytes);
}

static void
assert_message (GError *error, int code, const char *expected)
{
  g_assert_error (error, GESSO_ERROR, code);
  if (strstr (error->message, expected) == NULL)
    g_error ("message \"%s\" lacks \"%s\"", error->message, expected);
  g_assert_null (strchr (error->message, '\n'));
}

static const Spec unet_specs[] = {
  { "conv_in.weight", "F32", "[8, 9, 3, 3]" },
  { "down_blocks.0.attentions.0.proj_in.weight", "F32", "[8, 8, 1, 1]" },
  { "conv_out.bias", "F16", "[4]" },
};
static const Spec vae_shard1[] = {
  { "encoder.conv_in.weight", "F32", "[8, 3, 3, 3]" },
  { "encoder.conv_in.bias", "F32", "[8]" },
};
static const Spec vae_shard2[] = {
  { "decoder.conv_out.weight", "BF16", "[3, 8, 3, 3]" },
};
static const Spec te_specs[] = {
  { "text_model.embeddings.token_embedding.weight", "F16", "[10, 4]" },
  { "text_model.embeddings.position_ids", "I64", "[1, 77]" },
};
static const Spec te2_specs[] = {
  { "text_model.embeddings.token_embedding.weight", "F16", "[10, 6]" },
};

static const char *const vae_index =
  "{\"metadata\": {\"total_size\": 1000},"
  " \"weight_map\": {"
  "\"encoder.conv_in.weight\": \"diffusion_pytorch_model-00001-of-00002.safetensors\","
  " \"encoder.conv_in.bias\": \"diffusion_pytorch_model-00001-of-00002.safetensors\","
  " \"decoder.conv_out.weight\": \"diffusion_pytorch_model-00002-of-00002.safetensors\"}}";

static void
put_text (const char *dir, const char *name, const char *text)
{
  g_free (fixture_write_text (dir, name, text));
}

static void
put_bytes (const char *dir, const char *name, const void *data, size_t size)
{
  g_autoptr (GBytes) bytes = g_bytes_new (data, size);

  g_free (fixture_write (dir, name, bytes));
}

static void
put_st (const char *dir, const char *name, const Spec *specs, guint n)
{
  g_free (write_st (dir, name, specs, n));
}

/* A diffusers folder with every layout feature: a plain file (and a pickle beside it that
 * must be ignored), a sharded VAE, a variant-only text encoder, and optionally a second
 * text encoder as SDXL has. */
static char *
make_diffusers (gboolean second_text_encoder)
{
  static const char pickle[] = "\x80\x02}q\x00.";
  char *dir = fixture_make_tmpdir ();
  g_autofree char *index = g_strdup_printf (
    "{\"_class_name\": \"StableDiffusionPipeline\", \"_diffusers_version\": \"0.36.0\","
    " \"requires_safety_checker\": false, \"safety_checker\": [null, null],"
    " \"feature_extractor\": [\"transformers\", \"CLIPImageProcessor\"],"
    " \"scheduler\": [\"diffusers\", \"DDIMScheduler\"],"
    " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],%s"
    " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],"
    " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],"
    " \"vae\": [\"diffusers\", \"AutoencoderKL\"]}",
    second_text_encoder ? " \"text_encoder_2\": [\"transformers\", \"CLIPTextModel\"]," : "");

  put_text (dir, "model_index.json", index);
  fixture_save_seed ("config", "model_index.json", index, strlen (index));
  put_text (dir, "unet/config.json", "{\"in_channels\": 9}");
  put_st (dir, "unet/diffusion_pytorch_model.safetensors", unet_specs,
          G_N_ELEMENTS (unet_specs));
  put_bytes (dir, "unet/diffusion_pytorch_model.bin", pickle, sizeof pickle - 1);
  put_text (dir, "vae/config.json", "{\"latent_channels\": 4}");
  put_text (dir, "vae/diffusion_pytorch_model.safetensors.index.json", vae_index);
  fixture_save_seed ("config", "index.json", vae_index, strlen (vae_index));
  put_st (dir, "vae/diffusion_pytorch_model-00001-of-00002.safetensors", vae_shard1,
          G_N_ELEMENTS (vae_shard1));
  put_st (dir, "vae/diffusion_pytorch_model-00002-of-00002.safetensors", vae_shard2,
          G_N_ELEMENTS (vae_shard2));
  put_text (dir, "text_encoder/config.json", "{\"hidden_size\": 4}");
  put_st (dir, "text_encoder/model.fp16.safetensors", te_specs, G_N_ELEMENTS (te_specs));
  put_text (dir, "tokenizer/tokenizer_config.json", "{\"model_max_length\": 77}");
  put_text (dir, "scheduler/scheduler_config.json", "{\"prediction_type\": \"v_prediction\"}");
  if (second_text_encoder)
    {
      put_text (dir, "text_encoder_2/config.json", "{}");
      put_st (dir, "text_encoder_2/model.safetensors", te2_specs, G_N_ELEMENTS (te2_specs));
    }
  return dir;
}

static void
test_diffusers_folder (void)
{
  g_autofree char *dir = make_diffusers (TRUE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelFiles) files = gesso_model_files_open (dir, &error);
  const GessoModelTensor *t;

  g_assert_no_error (error);
  g_assert_cmpint (gesso_model_files_layout (files), ==, GESSO_MODEL_LAYOUT_DIFFUSERS);
  g_assert_cmpstr (gesso_model_files_path (files), ==, dir);
  g_assert_cmpstr (gesso_model_files_dir (files), ==, dir);
  /* unet, two VAE shards, text_encoder (fp16 variant), text_encoder_2 */
  g_assert_cmpuint (gesso_model_files_n_files (files), ==, 5);
  g_assert_cmpuint (gesso_model_files_count (files), ==, 3 + 2 + 1 + 2 + 1);

  t = gesso_model_files_lookup (files, GESSO_COMPONENT_UNET, "conv_in.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->component, ==, GESSO_COMPONENT_UNET);
  g_assert_cmpstr (t->key, ==, "conv_in.weight");
  g_assert_cmpint (t->entry->shape[1], ==, 9);
  g_assert_null (gesso_model_files_lookup (files, GESSO_COMPONENT_VAE, "conv_in.weight"));
  g_assert_nonnull (gesso_model_files_lookup (files, GESSO_COMPONENT_VAE,
                                              "encoder.conv_in.bias"));
  t = gesso_model_files_lookup (files, GESSO_COMPONENT_VAE, "decoder.conv_out.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->entry->dtype, ==, GESSO_DTYPE_BF16);
  t = gesso_model_files_lookup (files, GESSO_COMPONENT_TEXT_ENCODER,
                                "text_model.embeddings.token_embedding.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->entry->shape[1], ==, 4);
  /* the second text encoder is a component of its own, its keys as stored */
  g_assert_null (gesso_model_files_lookup (files, GESSO_COMPONENT_TEXT_ENCODER,
                                           "text_encoder_2/text_model.embeddings.token_embedding."
                                           "weight"));
  t = gesso_model_files_lookup (files, GESSO_COMPONENT_TEXT_ENCODER_2,
                                "text_model.embeddings.token_embedding.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->entry->shape[1], ==, 6);

  for (guint i = 0; i < gesso_model_files_count (files); i++)
    {
      t = gesso_model_files_tensor (files, i);
      g_assert_true (gesso_model_files_lookup (files, t->component, t->key) == t);
    }

  g_assert_nonnull (gesso_model_files_config (files, "unet"));
  g_assert_cmpint (json_object_get_int_member (gesso_model_files_config (files, "unet"),
                                               "in_channels"), ==, 9);
  g_assert_nonnull (gesso_model_files_config (files, "vae"));
  g_assert_nonnull (gesso_model_files_config (files, "text_encoder"));
  g_assert_nonnull (gesso_model_files_config (files, "text_encoder_2"));
  g_assert_nonnull (gesso_model_files_config (files, "scheduler"));
  g_assert_nonnull (gesso_model_files_config (files, "tokenizer"));
  g_assert_nonnull (gesso_model_files_config (files, "model_index"));
  g_assert_null (gesso_model_files_config (files, "feature_extractor"));
  g_assert_null (gesso_model_files_config (files, "safety_checker"));
  fixture_remove_tree (dir);
}

static void
test_diffusers_summary (void)
{
  g_autofree char *dir = make_diffusers (FALSE);
  g_autofree char *sdxl_dir = make_diffusers (TRUE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelSummary) s = gesso_model_summary_new (dir, &error);
  g_autoptr (GessoModelSummary) sdxl = NULL;
  const GessoComponentSummary *unet, *te;

  g_assert_no_error (error);
  g_assert_cmpstr (s->path, ==, dir);
  g_assert_cmpint (s->layout, ==, GESSO_MODEL_LAYOUT_DIFFUSERS);
  g_assert_cmpuint (s->n_files, ==, 4);
  g_assert_cmpuint (s->n_tensors, ==, 8);
  unet = &s->components[GESSO_COMPONENT_UNET];
  g_assert_cmpuint (unet->n_tensors, ==, 3);
  g_assert_cmpuint (unet->n_params, ==, 8 * 9 * 9 + 64 + 4);
  g_assert_cmpuint (unet->n_tensors_by_dtype[GESSO_DTYPE_F32], ==, 2);
  g_assert_cmpuint (unet->n_tensors_by_dtype[GESSO_DTYPE_F16], ==, 1);
  g_assert_cmpuint (s->components[GESSO_COMPONENT_VAE].n_params, ==, 8 * 27 + 8 + 3 * 72);
  /* position_ids are indices, not parameters */
  te = &s->components[GESSO_COMPONENT_TEXT_ENCODER];
  g_assert_cmpuint (te->n_tensors, ==, 2);
  g_assert_cmpuint (te->n_params, ==, 40);
  g_assert_cmpuint (te->n_tensors_by_dtype[GESSO_DTYPE_I64], ==, 1);
  g_assert_cmpuint (s->components[GESSO_COMPONENT_OTHER].n_tensors, ==, 0);
  g_assert_cmpuint (s->n_params, ==, unet->n_params
                                     + s->components[GESSO_COMPONENT_VAE].n_params + 40);
  g_assert_cmpstr (s->architecture, ==,
                   "Stable Diffusion 1.x (inpainting, 9 input channels, v-prediction)");

  sdxl = gesso_model_summary_new (sdxl_dir, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sdxl->architecture, ==,
                   "Stable Diffusion XL (inpainting, 9 input channels, v-prediction)");
  g_assert_cmpuint (sdxl->components[GESSO_COMPONENT_TEXT_ENCODER_2].n_params, >, 0);
  g_assert_cmpuint (sdxl->components[GESSO_COMPONENT_TEXT_ENCODER].n_params
                    + sdxl->components[GESSO_COMPONENT_TEXT_ENCODER_2].n_params, ==, 100);
  fixture_remove_tree (dir);
  fixture_remove_tree (sdxl_dir);
}

static const Spec single_specs[] = {
  { "model.diffusion_model.input_blocks.0.0.weight", "F16", "[8, 4, 3, 3]" },
  { "model.diffusion_model.input_blocks.1.1.proj_in.weight", "F16", "[8, 8]" },
  { "first_stage_model.encoder.conv_in.weight", "F16", "[8, 3, 3, 3]" },
  { "cond_stage_model.model.ln_final.weight", "F16", "[4]" },
  { "betas", "F32", "[10]" },
  { "model_ema.num_updates", "I32", "[]" },
};

static void
test_single_file (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *path = write_st (dir, "tiny.safetensors", single_specs,
                                    G_N_ELEMENTS (single_specs));
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModelFiles) files = gesso_model_files_open (path, &error);
  g_autoptr (GessoModelSummary) s = NULL;
  const GessoComponent want[] = {
    GESSO_COMPONENT_UNET, GESSO_COMPONENT_UNET, GESSO_COMPONENT_VAE,
    GESSO_COMPONENT_TEXT_ENCODER, GESSO_COMPONENT_OTHER, GESSO_COMPONENT_OTHER,
  };

  g_assert_no_error (error);
  g_assert_cmpint (gesso_model_files_layout (files), ==, GESSO_MODEL_LAYOUT_SINGLE_FILE);
  g_assert_cmpstr (gesso_model_files_path (files), ==, path);
  g_assert_cmpstr (gesso_model_files_dir (files), ==, dir);
  g_assert_cmpuint (gesso_model_files_n_files (files), ==, 1);
  g_assert_cmpuint (gesso_model_files_count (files), ==, G_N_ELEMENTS (single_specs));
  g_assert_null (gesso_model_files_config (files, "unet"));
  for (guint i = 0; i < G_N_ELEMENTS (single_specs); i++)
    {
      const GessoModelTensor *t = gesso_model_files_lookup (files, want[i],
                                                            single_specs[i].name);
      g_assert_nonnull (t);
      g_assert_cmpstr (t->key, ==, single_specs[i].name);
      g_assert_cmpstr (t->entry->name, ==, single_specs[i].name);
    }

  s = gesso_model_summary_new (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (s->layout, ==, GESSO_MODEL_LAYOUT_SINGLE_FILE);
  g_assert_cmpuint (s->n_files, ==, 1);
  g_assert_cmpuint (s->components[GESSO_COMPONENT_UNET].n_params, ==, 288 + 64);
  g_assert_cmpuint (s->components[GESSO_COMPONENT_OTHER].n_tensors, ==, 2);
  g_assert_cmpuint (s->components[GESSO_COMPONENT_OTHER].n_params, ==, 10);
  /* linear proj_in and an OpenCLIP text encoder */
  g_assert_cmpstr (s->architecture, ==, "Stable Diffusion 2.x");
  fixture_remove_tree (dir);
}

static void
test_architecture_guesses (void)
{
  const struct { Spec specs[3]; guint n; const char *want; } cases[] = {
    { { { "model.diffusion_model.input_blocks.1.1.proj_in.weight", "F32", "[8, 8, 1, 1]" },
        { "cond_stage_model.transformer.text_model.final_layer_norm.weight", "F32", "[4]" } },
      2, "Stable Diffusion 1.x" },
    { { { "model.diffusion_model.input_blocks.0.0.weight", "F32", "[8, 9, 3, 3]" },
        { "model.diffusion_model.input_blocks.1.1.proj_in.weight", "F32", "[8, 8, 1, 1]" } },
      2, "Stable Diffusion 1.x (inpainting, 9 input channels)" },
    { { { "model.diffusion_model.input_blocks.0.0.weight", "F32", "[8, 5, 3, 3]" },
        { "model.diffusion_model.input_blocks.1.1.proj_in.weight", "F32", "[8, 8]" } },
      2, "Stable Diffusion 2.x (5 input channels)" },
    { { { "model.diffusion_model.input_blocks.0.0.weight", "F32", "[8, 4, 3, 3]" },
        { "conditioner.embedders.1.model.ln_final.weight", "F32", "[4]" } },
      2, "Stable Diffusion XL" },
    { { { "model.diffusion_model.input_blocks.0.0.weight", "F32", "[8, 4, 3, 3]" },
        { "conditioner.embedders.0.model.ln_final.weight", "F32", "[4]" } },
      2, "Stable Diffusion XL refiner (not supported)" },
    { { { "first_stage_model.encoder.conv_in.weight", "F32", "[8, 3, 3, 3]" } },
      1, "unknown" },
    { { { "model.diffusion_model.out.2.weight", "F32", "[4, 8, 3, 3]" } }, 1, "unknown" },
  };
  g_autofree char *dir = fixture_make_tmpdir ();

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("case%u.safetensors", i);
      g_autofree char *path = write_st (dir, name, cases[i].specs, cases[i].n);
      g_autoptr (GError) error = NULL;
      g_autoptr (GessoModelSummary) s = gesso_model_summary_new (path, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (s->architecture, ==, cases[i].want);
    }
  fixture_remove_tree (dir);
}

static void
test_refuse_pickles (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  const char *const names[] = { "model.ckpt", "model.pt", "model.PTH", "pytorch_model.bin" };
  g_autoptr (GBytes) good = build (single_specs, 1);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      /* refused by name, even when the content would pass as safetensors */
      g_autofree char *path = fixture_write (dir, names[i], good);
      g_autofree char *expected = g_strdup_printf (
        "refusing to load '%s': pickle checkpoints can execute arbitrary code when loaded; "
        "convert it to .safetensors first", path);
      g_autoptr (GError) error = NULL;
      GessoModelFiles *files = gesso_model_files_open (path, &error);

      g_assert_null (files);
      assert_message (error, GESSO_ERROR_UNSAFE, expected);
      g_assert_cmpstr (error->message, ==, expected);
    }

  /* refused by content, whatever the name: torch's zip format, a protocol 4 pickle */
  {
    static const char zip[] = "PK\x03\x04\x14\0\0\0\x08\0archive/data.pkl";
    static const char pickle[] = "\x80\x04\x95\x10\0\0\0\0\0\0\0}";
    g_autofree char *zip_path = g_build_filename (dir, "renamed.safetensors", NULL);
    g_autofree char *pickle_path = g_build_filename (dir, "model", NULL);
    g_autoptr (GError) error = NULL;

    put_bytes (dir, "renamed.safetensors", zip, sizeof zip - 1);
    put_bytes (dir, "model", pickle, sizeof pickle - 1);
    g_assert_null (gesso_model_files_open (zip_path, &error));
    assert_message (error, GESSO_ERROR_UNSAFE, "pickle checkpoints can execute");
    g_clear_error (&error);
    g_assert_null (gesso_model_files_open (pickle_path, &error));
    assert_message (error, GESSO_ERROR_UNSAFE, "refusing to load");
  }
  fixture_remove_tree (dir);
}

static void
test_missing (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *missing = g_build_filename (dir, "nothing.safetensors", NULL);
  g_autofree char *expected = g_strdup_printf (
    "'%s' is not a diffusers model folder: model_index.json is missing", dir);
  g_autoptr (GError) error = NULL;

  g_assert_null (gesso_model_files_open (missing, &error));
  assert_message (error, GESSO_ERROR_IO, missing);
  assert_message (error, GESSO_ERROR_IO, "No such file or directory");
  g_clear_error (&error);

  g_assert_null (gesso_model_files_open (dir, &error));
  assert_message (error, GESSO_ERROR_MISSING, expected);
  g_clear_error (&error);

  g_assert_null (gesso_model_summary_new (dir, &error));
  assert_message (error, GESSO_ERROR_MISSING, expected);
  fixture_remove_tree (dir);
}

/* Breaks a fresh diffusers folder, writing SIZE bytes of DATA to RELATIVE (or deleting it
 * when DATA is NULL), and checks the message. */
static void
expect_broken_folder_bytes (const char *relative, const void *data, size_t size,
                            int code, const char *expected)
{
  g_autofree char *dir = make_diffusers (FALSE);
  g_autofree char *path = g_build_filename (dir, relative, NULL);
  g_autoptr (GError) error = NULL;
  GessoModelFiles *files;

  if (data != NULL)
    put_bytes (dir, relative, data, size);
  else
    fixture_remove_tree (path);
  files = gesso_model_files_open (dir, &error);
  g_assert_null (files);
  assert_message (error, code, expected);
  fixture_remove_tree (dir);
}

static void
expect_broken_folder (const char *relative, const char *text, int code,
                      const char *expected)
{
  expect_broken_folder_bytes (relative, text, text ? strlen (text) : 0, code, expected);
}

static void
test_broken_folders (void)
{
  static const char short_header[] = "\x10\0\0\0\0\0\0\0{}";

  expect_broken_folder ("unet/diffusion_pytorch_model.safetensors", NULL, GESSO_ERROR_UNSAFE,
                        "unet/diffusion_pytorch_model.bin': pickle checkpoints can execute "
                        "arbitrary code when loaded; convert it to .safetensors first");
  expect_broken_folder ("vae", NULL, GESSO_ERROR_MISSING,
                        "vae' is missing, but model_index.json lists it");
  expect_broken_folder ("vae/config.json", NULL, GESSO_ERROR_MISSING,
                        "vae/config.json' is missing");
  expect_broken_folder ("unet/config.json", "{\"in_channels\": ", GESSO_ERROR_CORRUPT,
                        "unet/config.json: not valid JSON");
  expect_broken_folder ("model_index.json", "[]", GESSO_ERROR_CORRUPT,
                        "model_index.json: the top level must be a JSON object");
  expect_broken_folder ("model_index.json", "{\"../unet\": [\"diffusers\", \"UNet\"]}",
                        GESSO_ERROR_CORRUPT, "component '../unet' is not a folder name");
  expect_broken_folder_bytes ("unet/diffusion_pytorch_model.safetensors", short_header,
                              sizeof short_header - 1, GESSO_ERROR_CORRUPT,
                              "unet/diffusion_pytorch_model.safetensors: the header ends at "
                              "byte 24 but the file has 10 bytes");
  expect_broken_folder ("vae/diffusion_pytorch_model-00002-of-00002.safetensors", NULL,
                        GESSO_ERROR_MISSING,
                        "diffusion_pytorch_model.safetensors.index.json lists the shard "
                        "'diffusion_pytorch_model-00002-of-00002.safetensors', which is missing");
  expect_broken_folder ("vae/diffusion_pytorch_model.safetensors.index.json",
                        "{\"weight_map\": {\"encoder.conv_in.weight\": "
                        "\"diffusion_pytorch_model-00002-of-00002.safetensors\"}}",
                        GESSO_ERROR_CORRUPT,
                        "tensor 'encoder.conv_in.weight' is mapped to "
                        "'diffusion_pytorch_model-00002-of-00002.safetensors', which does not "
                        "hold it");
  expect_broken_folder ("vae/diffusion_pytorch_model.safetensors.index.json",
                        "{\"weight_map\": "
                        "{\"x\": \"../unet/diffusion_pytorch_model.safetensors\"}}",
                        GESSO_ERROR_CORRUPT,
                        "the shard of 'x' must be a file name in the same folder");
  expect_broken_folder ("vae/diffusion_pytorch_model.safetensors.index.json",
                        "{\"weight_map\": []}", GESSO_ERROR_CORRUPT,
                        "'weight_map' must be an object");
  expect_broken_folder ("vae/diffusion_pytorch_model.safetensors.index.json",
                        "{\"weight_map\": {}}", GESSO_ERROR_CORRUPT, "'weight_map' is empty");
  /* the second shard also holds a key of the first */
  {
    g_autofree char *dir = make_diffusers (FALSE);
    const Spec twice[] = { { "encoder.conv_in.bias", "F32", "[8]" },
                           { "decoder.conv_out.weight", "BF16", "[3, 8, 3, 3]" } };
    g_autoptr (GError) error = NULL;

    put_st (dir, "vae/diffusion_pytorch_model-00002-of-00002.safetensors", twice, 2);
    g_assert_null (gesso_model_files_open (dir, &error));
    assert_message (error, GESSO_ERROR_CORRUPT,
                    "vae tensor 'encoder.conv_in.bias' is stored twice");
    fixture_remove_tree (dir);
  }
  /* no weights at all */
  {
    g_autofree char *dir = make_diffusers (FALSE);
    g_autofree char *a = g_build_filename (dir, "text_encoder", "model.fp16.safetensors", NULL);
    g_autoptr (GError) error = NULL;
    fixture_remove_tree (a);
    g_assert_null (gesso_model_files_open (dir, &error));
    assert_message (error, GESSO_ERROR_MISSING,
                    "text_encoder' holds no weights: expected model.safetensors");
    fixture_remove_tree (dir);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/io/model-files/diffusers-folder", test_diffusers_folder);
  g_test_add_func ("/core/io/model-files/diffusers-summary", test_diffusers_summary);
  g_test_add_func ("/core/io/model-files/single-file", test_single_file);
  g_test_add_func ("/core/io/model-files/architecture-guesses", test_architecture_guesses);
  g_test_add_func ("/core/io/model-files/refuse-pickles", test_refuse_pickles);
  g_test_add_func ("/core/io/model-files/missing", test_missing);
  g_test_add_func ("/core/io/model-files/broken-folders", test_broken_folders);
  return g_test_run ();
}
