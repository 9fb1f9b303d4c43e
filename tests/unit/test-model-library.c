/* The model folders users already have: A1111 and ComfyUI installs under a home folder built
 * here, ComfyUI's extra_model_paths.yaml, the folders a user adds, and what each file is,
 * read from headers laid out by hand (tests/unit/io-fixtures.c). */
#include "gesso-config.h"

#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "io/comfy_paths.h"
#include "io/header_scan.h"
#include "io/safetensors.h"
#include "unit/io-fixtures.h"

static const float zeros[320 * 1024];    /* the largest tensor written */

static char *
write_st (const char *dir, const char *name, const char *const *keys, const char *const *shapes,
          const char *metadata_json)
{
  FixtureSt st;
  g_autoptr (GBytes) bytes = NULL;

  fixture_st_init (&st);
  if (metadata_json != NULL)
    fixture_st_add_raw (&st, "__metadata__", metadata_json);
  for (guint i = 0; keys[i] != NULL; i++)
    fixture_st_add (&st, keys[i], "F32", shapes[i], zeros);
  bytes = fixture_st_finish (&st);
  return fixture_write (dir, name, bytes);
}

/* A checkpoint's telling keys: SD 1.x (transformers text encoder) or SD 2.x (OpenCLIP). */
static char *
write_checkpoint (const char *dir, const char *name, gboolean sd2, gboolean inpaint)
{
  const char *keys[] = {
    "model.diffusion_model.input_blocks.0.0.weight",
    sd2 ? "cond_stage_model.model.token_embedding.weight"
        : "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
    "first_stage_model.decoder.conv_in.weight", NULL,
  };
  const char *shapes[] = { inpaint ? "[4, 9, 3, 3]" : "[4, 4, 3, 3]", "[4, 8]",
                           "[8, 4, 3, 3]", NULL };

  return write_st (dir, name, keys, shapes, NULL);
}

static const GessoAsset *
find (GessoModelLibrary *library, const char *suffix)
{
  for (guint i = 0; i < gesso_model_library_count (library); i++)
    {
      const GessoAsset *a = gesso_model_library_get (library, i);
      if (g_str_has_suffix (a->path, suffix))
        return a;
    }
  return NULL;
}

static void
assert_asset (GessoModelLibrary *library, const char *suffix, GessoAssetKind kind,
              const char *family)
{
  const GessoAsset *a = find (library, suffix);

  if (a == NULL)
    g_error ("%s was not found", suffix);
  g_assert_cmpstr (gesso_asset_kind_name (a->kind), ==, gesso_asset_kind_name (kind));
  g_assert_cmpstr (a->family, ==, family);
}

/* Every kind, from its header alone, in the folders A1111 and ComfyUI use and one that
 * extra_model_paths.yaml names. */
static void
test_known_folders (void)
{
  g_autofree char *home = fixture_make_tmpdir ();
  g_autofree char *a1111 = g_build_filename (home, "stable-diffusion-webui", NULL);
  g_autofree char *comfy = g_build_filename (home, "ComfyUI", NULL);
  g_autofree char *dir = NULL;
  g_autoptr (GessoModelLibrary) library = gesso_model_library_new ();
  g_autoptr (GessoModelCache) cache = gesso_model_cache_new (NULL);
  const char *lora_keys[] = {
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight",
    NULL,
  };
  const char *lora_shapes[] = { "[4, 1024]", "[320, 4]", NULL };
  const char *xl_lora_keys[] = { "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                                 NULL };
  const char *xl_lora_shapes[] = { "[4, 1280]", NULL };
  const char *peft_keys[] = { "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
                              ".lora_A.weight", NULL };
  const char *peft_shapes[] = { "[4, 768]", NULL };
  const char *emb_keys[] = { "emb_params", NULL };
  const char *emb_shapes[] = { "[3, 768]", NULL };
  const char *xl_emb_keys[] = { "clip_g", "clip_l", NULL };
  const char *xl_emb_shapes[] = { "[2, 1280]", "[2, 768]", NULL };
  const char *cn_keys[] = { "control_model.input_hint_block.0.weight",
                            "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k"
                            ".weight", NULL };
  const char *cn_shapes[] = { "[16, 3, 3, 3]", "[320, 768]", NULL };
  const char *vae_keys[] = { "encoder.conv_in.weight", "decoder.conv_in.weight",
                             "quant_conv.weight", NULL };
  const char *vae_shapes[] = { "[8, 3, 3, 3]", "[8, 4, 3, 3]", "[8, 8, 1, 1]", NULL };
  const char *taesd_keys[] = { "1.weight", "3.conv.0.weight", NULL };
  const char *taesd_shapes[] = { "[8, 4, 3, 3]", "[8, 8, 3, 3]", NULL };
  const char *other_keys[] = { "something.else", NULL };
  const char *other_shapes[] = { "[2]", NULL };

  dir = g_build_filename (a1111, "models", "Stable-diffusion", NULL);
  g_free (write_checkpoint (dir, "sd15.safetensors", FALSE, FALSE));
  g_free (write_checkpoint (dir, "sub/inpaint.safetensors", FALSE, TRUE));
  g_free (fixture_write_text (dir, "old.ckpt", "pickle, not listed"));
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (a1111, "models", "Lora", NULL);
  g_free (write_st (dir, "sd2-lora.safetensors", lora_keys, lora_shapes, NULL));
  g_free (write_st (dir, "xl-lora.safetensors", xl_lora_keys, xl_lora_shapes, NULL));
  /* kohya's metadata outranks the shapes */
  g_free (write_st (dir, "tagged.safetensors", lora_keys, lora_shapes,
                    "{\"ss_base_model_version\": \"sd_v1\"}"));
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (a1111, "embeddings", NULL);
  g_free (write_st (dir, "emb.safetensors", emb_keys, emb_shapes, NULL));
  g_free (write_st (dir, "xl-emb.safetensors", xl_emb_keys, xl_emb_shapes, NULL));
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (a1111, "models", "ControlNet", NULL);
  g_free (write_st (dir, "canny.safetensors", cn_keys, cn_shapes, NULL));
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (comfy, "models", "checkpoints", NULL);
  g_free (write_checkpoint (dir, "sd21.safetensors", TRUE, FALSE));
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (comfy, "models", "vae", NULL);
  g_free (write_st (dir, "vae-ft-mse.safetensors", vae_keys, vae_shapes, NULL));
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (comfy, "models", "vae_approx", NULL);
  g_free (write_st (dir, "taesd_decoder.safetensors", taesd_keys, taesd_shapes, NULL));
  g_clear_pointer (&dir, g_free);
  dir = g_build_filename (home, "more", "loras", NULL);
  g_free (write_st (dir, "peft.safetensors", peft_keys, peft_shapes, NULL));
  g_free (write_st (dir, "other.safetensors", other_keys, other_shapes, NULL));
  g_clear_pointer (&dir, g_free);
  g_free (fixture_write_text (comfy, "extra_model_paths.yaml",
                              "other:\n"
                              "  base_path: ~/more\n"
                              "  is_default: true\n"
                              "  loras: |\n"
                              "    loras\n"
                              "    not-there\n"
                              "  upscale_models: loras\n"));

  gesso_model_library_add_known_folders (library, home);
  gesso_model_library_scan (library, cache);
  assert_asset (library, "/sd15.safetensors", GESSO_ASSET_CHECKPOINT, "SD 1.x");
  assert_asset (library, "/sub/inpaint.safetensors", GESSO_ASSET_CHECKPOINT,
                "SD 1.x inpainting");
  assert_asset (library, "/sd21.safetensors", GESSO_ASSET_CHECKPOINT, "SD 2.x");
  assert_asset (library, "/sd2-lora.safetensors", GESSO_ASSET_LORA, "SD 2.x");
  assert_asset (library, "/xl-lora.safetensors", GESSO_ASSET_LORA, "SDXL");
  assert_asset (library, "/tagged.safetensors", GESSO_ASSET_LORA, "SD 1.x");
  assert_asset (library, "/peft.safetensors", GESSO_ASSET_LORA, "SD 1.x");
  assert_asset (library, "/emb.safetensors", GESSO_ASSET_EMBEDDING, "SD 1.x");
  assert_asset (library, "/xl-emb.safetensors", GESSO_ASSET_EMBEDDING, "SDXL");
  assert_asset (library, "/canny.safetensors", GESSO_ASSET_CONTROLNET, "SD 1.x");
  assert_asset (library, "/vae-ft-mse.safetensors", GESSO_ASSET_VAE, "SD 1.x/2.x/XL");
  assert_asset (library, "/taesd_decoder.safetensors", GESSO_ASSET_TAESD, "SD 1.x/2.x/XL");
  assert_asset (library, "/other.safetensors", GESSO_ASSET_UNKNOWN, NULL);
  g_assert_null (find (library, "old.ckpt"));
  g_assert_cmpuint (gesso_model_library_count (library), ==, 13);
  /* sorted by kind: checkpoints first */
  g_assert_cmpint (gesso_model_library_get (library, 0)->kind, ==, GESSO_ASSET_CHECKPOINT);
  g_assert_null (gesso_model_library_get_warnings (library)[0]);
  fixture_remove_tree (home);
}

static void
collect (const char *type, const char *dir, gpointer data)
{
  g_ptr_array_add (data, g_strdup_printf ("%s=%s", type, dir));
}

/* extra_model_paths.yaml as ComfyUI reads it: base_path absolute, "~", or relative to the
 * file; one folder per line; sections, comments and keys Gesso does not use. */
static void
test_comfy_paths (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *yaml = fixture_write_text (dir, "extra_model_paths.yaml",
                                              "# comment\n"
                                              "a111:\n"
                                              "    base_path: ../webui/\n"
                                              "    checkpoints: models/Stable-diffusion\n"
                                              "    loras: |\n"
                                              "         models/Lora\n"
                                              "         models/LyCORIS\n"
                                              "    nested:\n"
                                              "        deeper: ignored\n"
                                              "    list: [a, b]\n"
                                              "comfy:\n"
                                              "    base_path: /abs\n"
                                              "    vae: /elsewhere/vae\n"
                                              "home:\n"
                                              "    base_path: ~/models\n"
                                              "    embeddings: emb\n");
  g_autoptr (GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_autofree char *webui = g_build_filename (dir, "..", "webui", NULL);
  g_autofree char *want0 = g_strdup_printf ("checkpoints=%s/models/Stable-diffusion", webui);
  g_autofree char *want1 = g_strdup_printf ("loras=%s/models/Lora", webui);
  g_autofree char *want2 = g_strdup_printf ("loras=%s/models/LyCORIS", webui);
  g_autofree char *broken = NULL;

  g_assert_true (gesso_comfy_paths_read (yaml, "/home/me", collect, seen, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (seen->len, ==, 5);
  g_assert_cmpstr (seen->pdata[0], ==, want0);
  g_assert_cmpstr (seen->pdata[1], ==, want1);
  g_assert_cmpstr (seen->pdata[2], ==, want2);
  g_assert_cmpstr (seen->pdata[3], ==, "vae=/elsewhere/vae");
  g_assert_cmpstr (seen->pdata[4], ==, "embeddings=/home/me/models/emb");

  broken = fixture_write_text (dir, "broken.yaml", "a:\n  b: [unclosed\n");
  g_assert_false (gesso_comfy_paths_read (broken, "/home/me", collect, seen, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  g_assert_null (strchr (error->message, '\n'));
  fixture_remove_tree (dir);
}

/* A file is identified once per version: the second look takes the cache's answer (proved by
 * planting another), and a changed file is read again. The folders a user adds are
 * remembered once each and scanned for every kind. */
static void
test_cache_and_user_folders (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *cache_file = g_build_filename (dir, "cache.ini", NULL);
  g_autofree char *models = g_build_filename (dir, "mine", NULL);
  g_autofree char *path = write_checkpoint (models, "m.safetensors", FALSE, FALSE);
  g_autofree char *text = NULL;
  g_autofree char *family = NULL;
  g_autoptr (GString) planted = NULL;
  g_autoptr (GError) error = NULL;
  GessoAssetKind kind;

  {
    g_autoptr (GessoModelCache) cache = gesso_model_cache_new (cache_file);
    g_assert_true (gesso_asset_identify (path, cache, &kind, &family, &error));
    g_assert_cmpint (kind, ==, GESSO_ASSET_CHECKPOINT);
    g_assert_true (gesso_model_cache_save (cache, &error));
  }
  g_assert_true (g_file_get_contents (cache_file, &text, NULL, NULL));
  planted = g_string_new (text);
  g_assert_cmpint (g_string_replace (planted, "family=SD 1.x", "family=planted", 1), ==, 1);
  g_assert_true (g_file_set_contents (cache_file, planted->str, -1, NULL));
  {
    g_autoptr (GessoModelCache) cache = gesso_model_cache_new (cache_file);
    g_clear_pointer (&family, g_free);
    g_assert_true (gesso_asset_identify (path, cache, &kind, &family, &error));
    g_assert_cmpstr (family, ==, "planted");
    /* a new version of the file: read again */
    g_free (write_checkpoint (models, "m.safetensors", TRUE, FALSE));
    g_clear_pointer (&family, g_free);
    g_assert_true (gesso_asset_identify (path, cache, &kind, &family, &error));
    g_assert_cmpstr (family, ==, "SD 2.x");
  }

  g_assert_true (gesso_model_library_remember_folder (dir, models, &error));
  g_assert_true (gesso_model_library_remember_folder (dir, models, &error));
  g_assert_no_error (error);
  {
    g_autoptr (GessoModelLibrary) library = gesso_model_library_new ();
    g_autofree char *list = g_build_filename (dir, "gesso", "model-folders", NULL);
    g_autofree char *contents = NULL;
    g_autofree char *line = g_strdup_printf ("%s\n", models);

    g_assert_true (g_file_get_contents (list, &contents, NULL, NULL));
    g_assert_cmpstr (contents, ==, line);
    gesso_model_library_add_user_folders (library, dir);
    gesso_model_library_scan (library, NULL);
    g_assert_cmpuint (gesso_model_library_count (library), ==, 1);
    g_assert_cmpstr (gesso_model_library_get (library, 0)->source, ==, "added");
    g_assert_cmpstr (gesso_model_library_get_folders (library)[0], ==, models);
  }
  fixture_remove_tree (dir);
}

/* Broken files are left out with a warning, and a broken extra_model_paths.yaml does not stop
 * the rest. */
static void
test_warnings (void)
{
  g_autofree char *home = fixture_make_tmpdir ();
  g_autofree char *comfy = g_build_filename (home, "ComfyUI", NULL);
  g_autofree char *dir = g_build_filename (comfy, "models", "checkpoints", NULL);
  g_autoptr (GessoModelLibrary) library = gesso_model_library_new ();
  const char *const *warnings;

  g_free (write_checkpoint (dir, "good.safetensors", FALSE, FALSE));
  g_free (fixture_write_text (dir, "bad.safetensors", "not a safetensors file"));
  g_free (fixture_write_text (comfy, "extra_model_paths.yaml", "a: [\n"));
  gesso_model_library_add_known_folders (library, home);
  gesso_model_library_scan (library, NULL);
  /* the bad file is listed, as unknown, with what is wrong */
  g_assert_cmpuint (gesso_model_library_count (library), ==, 2);
  g_assert_nonnull (find (library, "/bad.safetensors")->problem);
  g_assert_cmpint (find (library, "/bad.safetensors")->kind, ==, GESSO_ASSET_UNKNOWN);
  g_assert_null (find (library, "/good.safetensors")->problem);
  warnings = gesso_model_library_get_warnings (library);
  g_assert_nonnull (warnings[0]);
  g_assert_nonnull (warnings[1]);
  g_assert_null (warnings[2]);
  fixture_remove_tree (home);
}

typedef struct
{
  GString *text;
  guint n;
} Collected;

static void
collect_tensor (const char *name, int ndim, const int64_t *shape, gpointer data)
{
  Collected *c = data;

  g_string_append_printf (c->text, "%s[", name);
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (c->text, "%s%" G_GINT64_FORMAT, i ? "," : "", shape[i]);
  g_string_append (c->text, "]\n");
  c->n++;
}

static void
collect_metadata (const char *key, const char *value, gpointer data)
{
  Collected *c = data;

  g_string_append_printf (c->text, "%s=%s\n", key, value);
}

static int
compare_lines (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The quick header pass sees what the validating reader sees: every name and shape of every
 * conformance model file (the independent truth is core/io/safetensors.c's full parse, with
 * json-glib), in order of the header; escapes and malformed text handled. */
static void
test_header_scan (void)
{
  const char *env = g_getenv ("GESSO_CONFORMANCE_DIR");
  const char *source = g_getenv ("GESSO_SOURCE_DIR");
  g_autofree char *models = env != NULL && *env != '\0'
                              ? g_build_filename (env, "models", NULL)
                              : g_build_filename (source ? source : GESSO_SOURCE_DIR, "..",
                                                  "shared", "conformance", "models", NULL);
  static const char *const bad[] = {
    "", "[]", "{", "{\"a\":", "{\"a\": {\"shape\": [1, 2}}", "{\"a\": {}}",
    "{\"a\": {\"shape\": [1,2,3,4,5,6,7,8,9]}}", "{\"a\": {\"shape\": [-1]}}",
    "{\"a\": {\"shape\": [99999999999999999999]}}", "{\"a\" {\"shape\": []}}",
    "{\"\\x\": {\"shape\": []}}", "{\"a\": {\"shape\": []}} x",
    /* nested deeper than the pass follows */
    ("{\"a\": {\"shape\": [], \"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]}}"),
  };
  const char *good = "{\"__metadata__\": {\"ss_base_model_version\": \"sd_v1\", "
                     "\"n\": {\"x\": 1}}, \"a\\\"\\u00e9\\ud83d\\ude00\": "
                     "{\"dtype\": \"F16\", \"data_offsets\": [0, 8], "
                     "\"shape\": [2, 2]}, \"b\": {\"shape\": []}}   ";
  Collected c = { g_string_new (NULL), 0 };
  g_autoptr (GError) error = NULL;
  GDir *dir;
  const char *name;
  guint files = 0;

  g_assert_true (gesso_header_scan_data (good, strlen (good), "good", collect_tensor,
                                         collect_metadata, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (c.text->str, ==,
                   "ss_base_model_version=sd_v1\na\"\xc3\xa9\xf0\x9f\x98\x80[2,2]\nb[]\n");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_string_truncate (c.text, 0);
      g_assert_false (gesso_header_scan_data (bad[i], strlen (bad[i]), "bad", collect_tensor,
                                              NULL, &c, &error));
      g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
      g_assert_null (strchr (error->message, '\n'));
      g_clear_error (&error);
    }

  dir = g_dir_open (models, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *sub = g_build_filename (models, name, NULL);
      GDir *files_dir = g_dir_open (sub, 0, NULL);
      const char *file;

      while (files_dir != NULL && (file = g_dir_read_name (files_dir)) != NULL)
        {
          g_autofree char *path = g_build_filename (sub, file, NULL);
          g_autoptr (GessoSafetensors) st = NULL;
          Collected scan = { g_string_new (NULL), 0 };
          g_autoptr (GString) truth = g_string_new (NULL);
          g_auto (GStrv) scanned = NULL;
          g_auto (GStrv) expected = NULL;

          if (!g_str_has_suffix (file, ".safetensors"))
            continue;
          st = gesso_safetensors_open (path, &error);
          g_assert_no_error (error);
          g_assert_true (gesso_header_scan_file (path, collect_tensor, NULL, &scan, &error));
          g_assert_no_error (error);
          for (guint i = 0; i < gesso_safetensors_count (st); i++)
            {
              const GessoSafetensorsEntry *e = gesso_safetensors_entry (st, i);
              collect_tensor (e->name, e->ndim, e->shape, &(Collected) { truth, 0 });
            }
          /* the validating reader lists by data offset, the scan by header order: compare
           * as sets */
          scanned = g_strsplit (scan.text->str, "\n", -1);
          expected = g_strsplit (truth->str, "\n", -1);
          qsort (scanned, g_strv_length (scanned), sizeof (char *), compare_lines);
          qsort (expected, g_strv_length (expected), sizeof (char *), compare_lines);
          g_assert_true (g_strv_equal ((const char *const *) scanned,
                                       (const char *const *) expected));
          g_string_free (scan.text, TRUE);
          files++;
        }
      if (files_dir != NULL)
        g_dir_close (files_dir);
    }
  if (dir != NULL)
    g_dir_close (dir);
  g_string_free (c.text, TRUE);
  g_test_message ("%u conformance files scanned alike", files);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/io/model-library/known-folders", test_known_folders);
  g_test_add_func ("/core/io/model-library/comfy-paths", test_comfy_paths);
  g_test_add_func ("/core/io/model-library/cache-and-user-folders", test_cache_and_user_folders);
  g_test_add_func ("/core/io/model-library/warnings", test_warnings);
  g_test_add_func ("/core/io/model-library/header-scan", test_header_scan);
  return g_test_run ();
}
