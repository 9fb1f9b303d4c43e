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

/* numel small floats of a fixed pseudo-random sequence */
static float *
random_floats (size_t n, guint32 seed)
{
  float *v = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    {
      seed = seed * 1664525u + 1013904223u;
      v[i] = ((float) (seed >> 8) / 16777216.0f - 0.5f) * 0.1f;
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
  return g_test_run ();
}
