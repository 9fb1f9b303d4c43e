/* LoRA files in the layouts that circulate, matched to the shipped demo model's weights.
 *
 * The files are built here byte by byte (tests/unit/io-fixtures.c, not core/io) with module
 * names spelled as each layout spells them, so the key mapping is checked against names
 * written independently of the code that reads them. The demo model (data/models) is always
 * there, so these tests need no ../shared.
 */
#include "gesso-config.h"

#include <math.h>
#include <string.h>

#include "gesso.h"
#include "io/model_files.h"
#include "model/lora.h"
#include "model/weights.h"
#include "unit/io-fixtures.h"

/* The demo model's layers the fixtures change, diffusers names without ".weight", with the
 * weight's rows, its input width and kernel size. */
typedef struct
{
  const char *module;
  GessoComponent component;
  int out, in, kernel;
} Layer;

static const Layer layers[] = {
  { "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", GESSO_COMPONENT_UNET, 64, 64, 0 },
  { "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0", GESSO_COMPONENT_UNET, 64, 64, 0 },
  { "down_blocks.1.attentions.0.proj_in", GESSO_COMPONENT_UNET, 64, 64, 1 },
  { "down_blocks.1.resnets.0.conv1", GESSO_COMPONENT_UNET, 64, 32, 3 },
  { "text_model.encoder.layers.0.self_attn.q_proj", GESSO_COMPONENT_TEXT_ENCODER, 128, 128, 0 },
};

static char *
demo_model (void)
{
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  return g_build_filename (source ? source : GESSO_SOURCE_DIR, "data", "models",
                           "gesso-emoji-64", NULL);
}

static GessoWeights *
open_demo (GessoModelFiles **files)
{
  g_autofree char *path = demo_model ();
  g_autoptr (GError) error = NULL;
  GessoWeights *weights;

  *files = gesso_model_files_open (path, &error);
  g_assert_no_error (error);
  weights = gesso_weights_new (*files, &error);
  g_assert_no_error (error);
  return weights;
}

/* How large the fixtures' factors are: small for the mapping tests, large enough to change
 * the picture for the image tests. */
static float factor_amplitude = 0.1f;

/* N floats of a fixed pseudo-random sequence in [-amplitude / 2, amplitude / 2) */
static float *
random_floats (size_t n, guint32 seed)
{
  float *v = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    {
      seed = seed * 1664525u + 1013904223u;
      v[i] = ((float) (seed >> 8) / 16777216.0f - 0.5f) * factor_amplitude;
    }
  return v;
}

static void
add_factor (FixtureSt *st, const char *key, int rows, int cols, int kernel, gboolean down,
            guint32 seed)
{
  /* a convolution's factors keep 4 dims in every layout: down [r, in, k, k], up [out, r, 1, 1] */
  g_autofree char *shape = kernel == 0
                             ? g_strdup_printf ("[%d, %d]", rows, cols)
                             : down ? g_strdup_printf ("[%d, %d, %d, %d]", rows, cols, kernel, kernel)
                                    : g_strdup_printf ("[%d, %d, 1, 1]", rows, cols);
  const int k2 = kernel == 0 ? 1 : (down ? kernel * kernel : 1);
  g_autofree float *values = random_floats ((size_t) rows * cols * k2, seed);

  fixture_st_add (st, key, "F32", shape, values);
}

typedef enum { KOHYA, PEFT, OLD, PROCESSOR } Layout;

/* A LoRA of rank RANK on LAYERS (all of them, or the first N_LAYERS) in LAYOUT. */
static char *
write_lora (const char *dir, const char *file, Layout layout, int rank, guint n_layers,
            gboolean with_alpha, const char *metadata)
{
  FixtureSt st;

  fixture_st_init (&st);
  if (metadata != NULL)
    fixture_st_add_raw (&st, "__metadata__", metadata);
  for (guint i = 0; i < n_layers; i++)
    {
      const Layer *l = &layers[i];
      const gboolean unet = l->component == GESSO_COMPONENT_UNET;
      g_autofree char *kohya = g_strdup (l->module);
      g_autofree char *stem = NULL, *down = NULL, *up = NULL;

      g_strdelimit (kohya, ".", '_');
      switch (layout)
        {
        case KOHYA:
          stem = g_strdup_printf ("%s%s", unet ? "lora_unet_" : "lora_te_", kohya);
          down = g_strconcat (stem, ".lora_down.weight", NULL);
          up = g_strconcat (stem, ".lora_up.weight", NULL);
          break;
        case PEFT:
          stem = g_strdup_printf ("%s%s", unet ? "unet." : "text_encoder.", l->module);
          down = g_strconcat (stem, ".lora_A.weight", NULL);
          up = g_strconcat (stem, ".lora_B.weight", NULL);
          break;
        case OLD:
          stem = g_strdup_printf ("%s%s", unet ? "unet." : "text_encoder.", l->module);
          down = g_strconcat (stem, ".lora.down.weight", NULL);
          up = g_strconcat (stem, ".lora.up.weight", NULL);
          break;
        case PROCESSOR:
          {
            /* "...attn1.to_q" -> "...attn1.processor.to_q_lora"; to_out.0 -> to_out_lora */
            g_autofree char *attn = g_strndup (l->module, strstr (l->module, ".to_") - l->module);
            const char *proj = strstr (l->module, ".to_") + 1;
            g_autofree char *name = g_strndup (proj, strcspn (proj, "."));
            stem = g_strdup_printf ("%s.processor.%s_lora", attn, name);
            down = g_strconcat (stem, ".down.weight", NULL);
            up = g_strconcat (stem, ".up.weight", NULL);
          }
          break;
        }
      add_factor (&st, down, rank, l->in, l->kernel, TRUE, 7 + i);
      add_factor (&st, up, l->out, rank, l->kernel, FALSE, 101 + i);
      if (layout == KOHYA && with_alpha)
        {
          g_autofree char *key = g_strconcat (stem, ".alpha", NULL);
          const float alpha = 2.0f;
          fixture_st_add (&st, key, "F32", "[]", &alpha);
        }
    }
  return fixture_write (dir, file, fixture_st_finish (&st));
}

static const GessoLoraModule *
find_module (const GessoLora *lora, const char *name)
{
  for (guint i = 0; i < gesso_lora_count (lora); i++)
    if (strcmp (gesso_lora_module (lora, i)->name, name) == 0)
      return gesso_lora_module (lora, i);
  return NULL;
}

/* Every layer is matched to its own weight, with its shapes, in each layout. */
static void
check_binds (Layout layout, GessoLoraLayout expected, guint n_layers, float scale)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *path = write_lora (dir, "style.safetensors", layout, 4, n_layers, TRUE,
                                      layout == PEFT
                                        ? "{\"lora_adapter_metadata\": \"{\\\"unet.lora_alpha\\\": "
                                          "8, \\\"unet.r\\\": 4}\"}"
                                        : NULL);
  g_autoptr (GError) error = NULL;
  GessoModelFiles *files;
  g_autoptr (GessoWeights) weights = open_demo (&files);
  g_autoptr (GessoLora) lora = gesso_lora_open (path, &error);

  g_assert_no_error (error);
  g_assert_cmpint (gesso_lora_layout (lora), ==, expected);
  g_assert_cmpuint (gesso_lora_count (lora), ==, n_layers);
  g_assert_cmpint (gesso_lora_max_rank (lora), ==, 4);
  g_assert_true (gesso_lora_bind (lora, weights, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < n_layers; i++)
    {
      g_autofree char *name = g_strconcat (layers[i].module, ".weight", NULL);
      const GessoLoraModule *m = find_module (lora, name);
      const int k2 = layers[i].kernel ? layers[i].kernel * layers[i].kernel : 1;

      g_assert_nonnull (m);
      g_assert_cmpint (m->component, ==, layers[i].component);
      g_assert_cmpint (m->rank, ==, 4);
      g_assert_cmpint (m->out_features, ==, layers[i].out);
      g_assert_cmpint (m->in_features, ==, layers[i].in * k2);
      if (m->component == GESSO_COMPONENT_UNET || layout != PEFT)
        g_assert_cmpfloat_with_epsilon (m->scale, scale, 1e-7);
      else
        g_assert_cmpfloat_with_epsilon (m->scale, 1.0, 1e-7);   /* no text_encoder.* metadata */
      /* the factors as written: the fixture's first value of each */
      {
        g_autofree float *up = g_new (float, (size_t) (m->out_features * m->rank));
        g_autofree float *down = g_new (float, (size_t) (m->rank * m->in_features));
        g_autofree float *want_down = random_floats (1, 7 + i);
        g_autofree float *want_up = random_floats (1, 101 + i);

        gesso_lora_module_widen (m, up, down);
        g_assert_cmpfloat (down[0], ==, want_down[0]);
        g_assert_cmpfloat (up[0], ==, want_up[0]);
      }
    }
  gesso_model_files_free (files);
  fixture_remove_tree (dir);
}

static void
test_kohya (void)
{
  /* alpha 2 at rank 4 */
  check_binds (KOHYA, GESSO_LORA_KOHYA, G_N_ELEMENTS (layers), 0.5f);
}

static void
test_kohya_without_alpha (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *path = write_lora (dir, "a.safetensors", KOHYA, 3, 2, FALSE, NULL);
  g_autoptr (GError) error = NULL;
  GessoModelFiles *files;
  g_autoptr (GessoWeights) weights = open_demo (&files);
  g_autoptr (GessoLora) lora = gesso_lora_open (path, &error);

  g_assert_no_error (error);
  g_assert_true (gesso_lora_bind (lora, weights, &error));
  for (guint i = 0; i < gesso_lora_count (lora); i++)
    g_assert_cmpfloat (gesso_lora_module (lora, i)->scale, ==, 1.0f);   /* alpha = rank */
  gesso_model_files_free (files);
  fixture_remove_tree (dir);
}

static void
test_peft (void)
{
  /* lora_alpha 8 over r 4 from the metadata */
  check_binds (PEFT, GESSO_LORA_PEFT, G_N_ELEMENTS (layers), 2.0f);
}

static void
test_diffusers_old (void)
{
  check_binds (OLD, GESSO_LORA_DIFFUSERS_OLD, G_N_ELEMENTS (layers), 1.0f);
}

static void
test_attn_processor (void)
{
  /* the two attention layers: to_q, and to_out_lora = to_out.0 */
  check_binds (PROCESSOR, GESSO_LORA_ATTN_PROCESSOR, 2, 1.0f);
}

static void
expect_open_error (const char *header_key, const char *shape, gint code, const char *words)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autoptr (GessoLora) lora = NULL;
  FixtureSt st;

  fixture_st_init (&st);
  fixture_st_add (&st, header_key, "F32", shape, NULL);
  path = fixture_write (dir, "bad.safetensors", fixture_st_finish (&st));
  lora = gesso_lora_open (path, &error);
  g_assert_null (lora);
  g_assert_error (error, GESSO_ERROR, code);
  g_assert_nonnull (strstr (error->message, words));
  g_assert_null (strchr (error->message, '\n'));
  fixture_remove_tree (dir);
}

static void
test_refusals (void)
{
  expect_open_error ("lora_unet_mid_block_attentions_0_proj_in.hada_w1_a", "[4, 4]",
                     GESSO_ERROR_UNSUPPORTED, "LyCORIS LoHa");
  expect_open_error ("lora_unet_mid_block_attentions_0_proj_in.lokr_w1", "[4, 4]",
                     GESSO_ERROR_UNSUPPORTED, "LyCORIS LoKr");
  /* a down factor without its up */
  expect_open_error ("lora_unet_mid_block_attentions_0_proj_in.lora_down.weight", "[4, 128]",
                     GESSO_ERROR_CORRUPT, "has no up (B) factor");
  /* a model, not a LoRA */
  expect_open_error ("down_blocks.0.resnets.0.conv1.weight", "[4, 4, 3, 3]",
                     GESSO_ERROR_INVALID_ARGUMENT, "is not a LoRA");
}

static void
test_pickle_refused (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoLora) lora = gesso_lora_open ("/nonexistent/style.pt", &error);

  g_assert_null (lora);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_UNSAFE);
}

/* A LoRA for a model of another width: one line naming the first key and the family the
 * factors' widths point to. */
static void
test_other_family (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL, *absent = NULL;
  GessoModelFiles *files;
  g_autoptr (GessoWeights) weights = open_demo (&files);
  g_autoptr (GessoLora) lora = NULL;
  GessoLoraInfo info;
  FixtureSt st;

  /* SD 1.x's cross-attention key projection reads 768-wide text */
  fixture_st_init (&st);
  add_factor (&st, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
              4, 768, 0, TRUE, 1);
  add_factor (&st, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight",
              64, 4, 0, FALSE, 2);
  path = fixture_write (dir, "sd15.safetensors", fixture_st_finish (&st));
  lora = gesso_lora_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gesso_lora_family_guess (lora), ==, "Stable Diffusion 1.x");
  /* what `gesso info` says of it, without a model */
  g_assert_true (gesso_lora_probe (path, &info, &error));
  g_assert_cmpstr (info.layout, ==, "kohya/A1111");
  g_assert_cmpuint (info.unet_layers, ==, 1);
  g_assert_cmpuint (info.text_layers, ==, 0);
  g_assert_cmpint (info.max_rank, ==, 4);
  g_assert_cmpstr (info.family, ==, "Stable Diffusion 1.x");
  g_assert_false (gesso_lora_bind (lora, weights, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "attn2_to_k.lora_down.weight"));
  g_assert_nonnull (strstr (error->message, "seems made for Stable Diffusion 1.x"));
  g_clear_error (&error);
  g_clear_pointer (&lora, gesso_lora_free);

  /* a layer the model does not have (SD 1.5 has four UNet levels; the demo model three) */
  fixture_st_init (&st);
  add_factor (&st, "lora_unet_down_blocks_3_resnets_0_conv1.lora_down.weight", 4, 64, 0, TRUE, 1);
  add_factor (&st, "lora_unet_down_blocks_3_resnets_0_conv1.lora_up.weight", 64, 4, 0, FALSE, 2);
  absent = fixture_write (dir, "deeper.safetensors", fixture_st_finish (&st));
  lora = gesso_lora_open (absent, &error);
  g_assert_no_error (error);
  g_assert_false (gesso_lora_bind (lora, weights, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "matches no layer of the model's UNet"));
  g_assert_nonnull (strstr (error->message, "down_blocks_3_resnets_0_conv1"));
  gesso_model_files_free (files);
  fixture_remove_tree (dir);
}


/* A1111's <lora:NAME:WEIGHT> tags: taken out of the prompt, NAME found by its stem in the
 * folders given (sub-folders too), weight 1 when not given; a name no folder has fails. */
static void
test_prompt_tags (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *other = fixture_make_tmpdir ();
  g_autofree char *ink = fixture_write_text (dir, "styles/ink.safetensors", "x");
  g_autofree char *clay = fixture_write_text (other, "clay.safetensors", "x");
  const char *const dirs[] = { dir, other, NULL };
  g_autoptr (GArray) uses = g_array_new (FALSE, FALSE, sizeof (GessoLoraUse));
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_autofree char *clean = NULL, *untouched = NULL, *failed = NULL;

  clean = gesso_prompt_take_loras ("a cat,  <lora:ink:0.6> in the snow <lora:clay>", dirs, uses,
                                   paths, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (clean, ==, "a cat, in the snow");
  g_assert_cmpuint (uses->len, ==, 2);
  g_assert_cmpstr (g_array_index (uses, GessoLoraUse, 0).path, ==, ink);
  g_assert_cmpfloat (g_array_index (uses, GessoLoraUse, 0).weight, ==, 0.6f);
  g_assert_cmpstr (g_array_index (uses, GessoLoraUse, 1).path, ==, clay);
  g_assert_cmpfloat (g_array_index (uses, GessoLoraUse, 1).weight, ==, 1.0f);

  /* a prompt without tags is left exactly as it is */
  untouched = gesso_prompt_take_loras ("two  spaces\nand a line", dirs, uses, paths, &error);
  g_assert_cmpstr (untouched, ==, "two  spaces\nand a line");
  g_assert_cmpuint (uses->len, ==, 2);

  failed = gesso_prompt_take_loras ("<lora:watercolour:1>", dirs, uses, paths, &error);
  g_assert_null (failed);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "watercolour.safetensors"));
  g_clear_error (&error);
  failed = gesso_prompt_take_loras ("<lora:ink:strong>", dirs, uses, paths, &error);
  g_assert_null (failed);
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  fixture_remove_tree (dir);
  fixture_remove_tree (other);
}

/* --- the LoRA's picture against a model merged by hand ------------------------------------- */

typedef struct
{
  GessoComponent component;     /* of the file being copied */
  double weight;                /* the LoRA's weight times its alpha / rank */
} Merge;

/* Copies a weight, changed to W + weight * up * down (in double, stored F32) when a fixture
 * layer names it. */
static void
copy_merged (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
             const void *values, gpointer user_data)
{
  const Merge *merge = user_data;

  for (guint i = 0; i < G_N_ELEMENTS (layers); i++)
    {
      const Layer *l = &layers[i];
      g_autofree char *weight_name = g_strconcat (l->module, ".weight", NULL);
      const int k2 = l->kernel ? l->kernel * l->kernel : 1, rank = 4, cols = l->in * k2;
      g_autofree float *down = NULL, *up = NULL, *merged = NULL;

      if (l->component != merge->component || strcmp (name, weight_name) != 0)
        continue;
      g_assert_cmpstr (dtype, ==, "F16");
      down = random_floats ((size_t) rank * cols, 7 + i);
      up = random_floats ((size_t) l->out * rank, 101 + i);
      merged = g_new (float, (size_t) l->out * cols);
      for (int r = 0; r < l->out; r++)
        for (int c = 0; c < cols; c++)
          {
            double sum = 0.0;

            for (int k = 0; k < rank; k++)
              sum += (double) up[r * rank + k] * (double) down[k * cols + c];
            merged[r * cols + c]
              = (float) ((double) fixture_half_to_float (((const guint16 *) values)[r * cols + c])
                         + merge->weight * sum);
          }
      fixture_st_add (st, name, "F32", shape_json, merged);
      return;
    }
  fixture_st_add (st, name, dtype, shape_json, values);
}

/* A copy of the demo model in DIR/merged with the fixture LoRA merged at WEIGHT_SCALE. */
static char *
write_merged_model (const char *dir, double weight_scale)
{
  g_autofree char *source = demo_model ();
  char *merged = g_build_filename (dir, "merged", NULL);
  static const struct
  {
    const char *file;
    GessoComponent component;
  } parts[] = {
    { "unet/diffusion_pytorch_model.safetensors", GESSO_COMPONENT_UNET },
    { "text_encoder/model.safetensors", GESSO_COMPONENT_TEXT_ENCODER },
  };

  fixture_copy_tree (source, merged);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_autofree char *src = g_build_filename (source, parts[i].file, NULL);
      Merge merge = { parts[i].component, weight_scale };
      FixtureSt st;

      fixture_st_init (&st);
      fixture_st_add_file (&st, src, copy_merged, &merge);
      g_free (fixture_write (merged, parts[i].file, fixture_st_finish (&st)));
    }
  return merged;
}

/* 32 x 32, 3 steps of SAMPLER (NULL: "auto"), fixed seed, with LORAS. */
static GessoImage
generate_with (GessoModel *model, const GessoLoraUse *loras, int n_loras, const char *prompt,
               const char *sampler)
{
  g_autoptr (GError) error = NULL;
  GessoEditParams p;
  GessoEditResult result = { 0 };
  GessoImage image;

  gesso_edit_params_init (&p, GESSO_EDIT_GENERATE);
  p.prompt = prompt;
  p.steps = 3;
  p.seed = 5;
  p.width = p.height = 32;
  p.sampler = sampler;
  p.loras = loras;
  p.n_loras = n_loras;
  g_assert_true (gesso_edit_run (model, &p, NULL, NULL, &result, &error));
  g_assert_no_error (error);
  image = result.image;
  result.image.pixels = NULL;
  gesso_edit_result_clear (&result);
  return image;
}

static GessoImage
generate (GessoModel *model, const GessoLoraUse *loras, int n_loras, const char *prompt)
{
  return generate_with (model, loras, n_loras, prompt, "ddim");
}

static GessoModel *
open_model (const char *path)
{
  g_autoptr (GError) error = NULL;
  GessoModelParams params;
  GessoModel *model;

  gesso_model_params_init (&params);
  params.path = path;
  model = gesso_model_open (&params, &error);
  g_assert_no_error (error);
  return model;
}

/* The largest difference of two pictures, in 8-bit levels. */
static double
max_levels (const GessoImage *a, const GessoImage *b)
{
  double worst = 0.0;

  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  for (size_t i = 0; i < (size_t) 4 * a->width * a->height; i++)
    worst = MAX (worst, fabs ((double) a->pixels[i] - (double) b->pixels[i]) * 255.0);
  return worst;
}

/* --lora FILE:w on the model as it is paints what the model with W + w * alpha / r * up * down
 * merged into its weights paints, in both file layouts; the model's own picture comes back bit
 * for bit at weight 0 and once the LoRA is gone. */
static void
test_merged_by_hand (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *kohya = NULL, *peft = NULL, *merged_path = NULL;
  g_autoptr (GessoModel) model = NULL, merged = NULL;
  const float weight = 0.7f;
  const char *prompt = "a red apple";
  GessoImage own, with_kohya, with_peft, by_hand, at_zero, after;

  factor_amplitude = 0.5f;
  /* kohya alpha 2 at rank 4, PEFT lora_alpha 8 over r 16 in its metadata: both scale 0.5 */
  kohya = write_lora (dir, "kohya.safetensors", KOHYA, 4, G_N_ELEMENTS (layers), TRUE, NULL);
  peft = write_lora (dir, "peft.safetensors", PEFT, 4, G_N_ELEMENTS (layers), FALSE,
                     "{\"lora_adapter_metadata\": \"{\\\"unet.lora_alpha\\\": 8, "
                     "\\\"unet.r\\\": 16, \\\"text_encoder.lora_alpha\\\": 2, "
                     "\\\"text_encoder.r\\\": 4}\"}");
  merged_path = write_merged_model (dir, weight * 0.5);
  factor_amplitude = 0.1f;
  {
    g_autofree char *demo = demo_model ();
    model = open_model (demo);
  }
  merged = open_model (merged_path);

  own = generate (model, NULL, 0, prompt);
  {
    const GessoLoraUse use = { kohya, weight };
    with_kohya = generate (model, &use, 1, prompt);
  }
  {
    const GessoLoraUse use = { peft, weight };
    with_peft = generate (model, &use, 1, prompt);
  }
  {
    const GessoLoraUse use = { kohya, 0.0f };
    at_zero = generate (model, &use, 1, prompt);
  }
  after = generate (model, NULL, 0, prompt);
  by_hand = generate (merged, NULL, 0, prompt);

  g_test_message ("LoRA vs own picture: %.1f levels; vs merged by hand: kohya %.3f, PEFT %.3f",
                  max_levels (&with_kohya, &own), max_levels (&with_kohya, &by_hand),
                  max_levels (&with_peft, &by_hand));
  /* the LoRA changes the picture, so the comparisons below can fail */
  g_assert_cmpfloat (max_levels (&with_kohya, &own), >, 10.0);
  g_assert_cmpfloat (max_levels (&with_kohya, &by_hand), <=, 1.0);
  g_assert_cmpfloat (max_levels (&with_peft, &by_hand), <=, 1.0);
  g_assert_cmpmem (at_zero.pixels, sizeof (float) * 4 * 32 * 32, own.pixels,
                   sizeof (float) * 4 * 32 * 32);
  g_assert_cmpmem (after.pixels, sizeof (float) * 4 * 32 * 32, own.pixels,
                   sizeof (float) * 4 * 32 * 32);
  g_free (own.pixels);
  g_free (with_kohya.pixels);
  g_free (with_peft.pixels);
  g_free (by_hand.pixels);
  g_free (at_zero.pixels);
  g_free (after.pixels);
  fixture_remove_tree (dir);
}

/* Two LoRAs on the same layers add up: one at 0.4 twice is the same at 0.8. */
static void
test_two_add_up (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *a = NULL;
  g_autoptr (GessoModel) model = NULL;
  GessoImage once, twice;

  factor_amplitude = 0.5f;
  a = write_lora (dir, "a.safetensors", KOHYA, 4, G_N_ELEMENTS (layers), TRUE, NULL);
  factor_amplitude = 0.1f;
  {
    g_autofree char *demo = demo_model ();
    model = open_model (demo);
  }
  {
    const GessoLoraUse use = { a, 0.8f };
    once = generate (model, &use, 1, "a blue car");
  }
  {
    /* the same file twice: two deltas chained on every layer it changes */
    const GessoLoraUse uses[2] = { { a, 0.4f }, { a, 0.4f } };
    twice = generate (model, uses, 2, "a blue car");
  }
  g_test_message ("two halves vs one whole: %.4f levels", max_levels (&once, &twice));
  g_assert_cmpfloat (max_levels (&once, &twice), <=, 1.0);
  g_free (once.pixels);
  g_free (twice.pixels);
  fixture_remove_tree (dir);
}

/* The sampler "auto" names for an edit of KIND on MODEL as it is now. */
static const char *
auto_sampler (GessoModel *model, GessoEditKind kind)
{
  GessoEditParams p;

  gesso_edit_params_init (&p, kind);
  p.sampler = NULL;
  return gesso_edit_sampler_name (model, &p);
}

/* An LCM-LoRA, known by its file name or its title, makes "auto" sample with lcm in every
 * edit but restyle (which must retrace DDIM); another LoRA leaves auto as it was. */
static void
test_lcm_auto (void)
{
  g_autofree char *dir = fixture_make_tmpdir ();
  g_autofree char *by_name = NULL, *by_title = NULL, *plain = NULL;
  g_autoptr (GessoModel) model = NULL;
  GessoImage automatic, lcm, dpm;

  by_name = write_lora (dir, "lcm-lora-sdv1-5.safetensors", KOHYA, 4, 2, TRUE, NULL);
  by_title = write_lora (dir, "pytorch_lora_weights.safetensors", KOHYA, 4, 2, TRUE,
                         "{\"ss_output_name\": \"LCM_LoRA_sd15\"}");
  plain = write_lora (dir, "ink.safetensors", KOHYA, 4, 2, TRUE, NULL);
  {
    g_autofree char *demo = demo_model ();
    model = open_model (demo);
  }
  g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_GENERATE), ==, "dpmpp_2m");
  {
    const GessoLoraUse use = { by_name, 1.0f };
    automatic = generate_with (model, &use, 1, "a red apple", NULL);
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_GENERATE), ==, "lcm");
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_INPAINT), ==, "lcm");
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_SDEDIT), ==, "lcm");
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_RESTYLE), ==, "ddim");
    lcm = generate_with (model, &use, 1, "a red apple", "lcm");
    dpm = generate_with (model, &use, 1, "a red apple", "dpmpp_2m");
  }
  /* what auto ran is lcm's picture, which differs from dpmpp_2m's */
  g_assert_cmpmem (automatic.pixels, sizeof (float) * 4 * 32 * 32, lcm.pixels,
                   sizeof (float) * 4 * 32 * 32);
  g_assert_cmpfloat (max_levels (&automatic, &dpm), >, 1.0);
  {
    const GessoLoraUse use = { by_title, 1.0f };
    g_free (generate_with (model, &use, 1, "a red apple", "ddim").pixels);
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_GENERATE), ==, "lcm");
  }
  {
    const GessoLoraUse use = { plain, 1.0f };
    g_free (generate_with (model, &use, 1, "a red apple", "ddim").pixels);
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_GENERATE), ==, "dpmpp_2m");
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_INPAINT), ==, "repaint");
  }
  {
    const GessoLoraUse use = { by_name, 0.0f };
    g_free (generate_with (model, &use, 1, "a red apple", "ddim").pixels);
    g_assert_cmpstr (auto_sampler (model, GESSO_EDIT_GENERATE), ==, "dpmpp_2m");
  }
  g_free (automatic.pixels);
  g_free (lcm.pixels);
  g_free (dpm.pixels);
  fixture_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/lora/kohya", test_kohya);
  g_test_add_func ("/lora/kohya-without-alpha", test_kohya_without_alpha);
  g_test_add_func ("/lora/peft", test_peft);
  g_test_add_func ("/lora/diffusers-old", test_diffusers_old);
  g_test_add_func ("/lora/attn-processor", test_attn_processor);
  g_test_add_func ("/lora/refusals", test_refusals);
  g_test_add_func ("/lora/pickle-refused", test_pickle_refused);
  g_test_add_func ("/lora/other-family", test_other_family);
  g_test_add_func ("/lora/prompt-tags", test_prompt_tags);
  g_test_add_func ("/lora/merged-by-hand", test_merged_by_hand);
  g_test_add_func ("/lora/two-add-up", test_two_add_up);
  g_test_add_func ("/lora/lcm-auto", test_lcm_auto);
  return g_test_run ();
}
