/* The VAE's config: parsing config.json, inferring it from weight shapes, refusing what the
 * builder cannot run, and the scratch plan. Inference and the builder run on a synthetic
 * diffusers folder written to a temporary directory (random weights of a tiny VAE). */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "io/config.h"
#include "io/model_files.h"
#include "model/vae.h"
#include "model/weights.h"
#include "ops/ops.h"

static const char tiny_json[] =
  "{\"_class_name\": \"AutoencoderKL\", \"act_fn\": \"silu\", \"block_out_channels\": [32, 64],"
  " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],"
  " \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"],"
  " \"in_channels\": 3, \"out_channels\": 3, \"latent_channels\": 4, \"layers_per_block\": 2,"
  " \"norm_num_groups\": 32, \"scaling_factor\": 0.18215, \"shift_factor\": null,"
  " \"latents_mean\": null, \"mid_block_add_attention\": true, \"use_quant_conv\": true,"
  " \"use_post_quant_conv\": true, \"force_upcast\": true, \"sample_size\": 64}";

static const char sd_json[] =
  "{\"_class_name\": \"AutoencoderKL\", \"block_out_channels\": [128, 256, 512, 512],"
  " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\","
  " \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], \"layers_per_block\": 2,"
  " \"latent_channels\": 4, \"norm_num_groups\": 32, \"sample_size\": 512}";

static gboolean
parse (const char *text, GessoVaeConfig *config, GError **error)
{
  g_autoptr (JsonObject) json = gesso_config_load_from_data (text, -1, "test.json", error);

  return json != NULL && gesso_vae_config_from_json (config, json, "test.json", error);
}

static void
test_json_tiny (void)
{
  g_autoptr (GError) error = NULL;
  GessoVaeConfig c;

  g_assert_true (parse (tiny_json, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.n_levels, ==, 2);
  g_assert_cmpint (c.block_out_channels[0], ==, 32);
  g_assert_cmpint (c.block_out_channels[1], ==, 64);
  g_assert_cmpint (c.layers_per_block, ==, 2);
  g_assert_cmpint (c.latent_channels, ==, 4);
  g_assert_cmpint (c.in_channels, ==, 3);
  g_assert_cmpint (c.out_channels, ==, 3);
  g_assert_cmpint (c.norm_num_groups, ==, 32);
  g_assert_cmpfloat (c.norm_eps, ==, 1e-6f);
  g_assert_cmpfloat (c.scaling_factor, ==, 0.18215);
  g_assert_cmpfloat (c.shift_factor, ==, 0.0);
  g_assert_true (c.mid_attention && c.use_quant_conv && c.use_post_quant_conv);
  g_assert_cmpint (gesso_vae_config_latent_factor (&c), ==, 2);
}

static void
test_json_sd_and_defaults (void)
{
  g_autoptr (GError) error = NULL;
  GessoVaeConfig c, d;

  g_assert_true (parse (sd_json, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.n_levels, ==, 4);
  g_assert_cmpint (c.block_out_channels[3], ==, 512);
  g_assert_cmpint (gesso_vae_config_latent_factor (&c), ==, 8);
  g_assert_cmpfloat (c.scaling_factor, ==, GESSO_VAE_SD_SCALING_FACTOR);

  /* absent keys take diffusers' defaults */
  g_assert_true (parse ("{}", &d, &error));
  g_assert_no_error (error);
  g_assert_cmpint (d.n_levels, ==, 1);
  g_assert_cmpint (d.block_out_channels[0], ==, 64);
  g_assert_cmpint (d.layers_per_block, ==, 1);
  g_assert_cmpint (gesso_vae_config_latent_factor (&d), ==, 1);

  /* the scaling factor is the config's, not a constant */
  g_assert_true (parse ("{\"block_out_channels\": [32, 64], \"scaling_factor\": 0.13025,"
                        " \"shift_factor\": 0.0609, \"mid_block_add_attention\": false}",
                        &d, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (d.scaling_factor, ==, 0.13025);
  g_assert_cmpfloat (d.shift_factor, ==, 0.0609);
  g_assert_false (d.mid_attention);
}

static void
test_json_refused (void)
{
  static const struct
  {
    const char *json;
    GessoErrorCode code;
    const char *says;
  } cases[] = {
    { "{\"_class_name\": \"AutoencoderTiny\"}", GESSO_ERROR_UNSUPPORTED, "AutoencoderTiny" },
    { "{\"act_fn\": \"gelu\"}", GESSO_ERROR_UNSUPPORTED, "gelu" },
    { "{\"block_out_channels\": [32, 64], \"up_block_types\": [\"UpDecoderBlock2D\","
      " \"AttnUpDecoderBlock2D\"]}", GESSO_ERROR_UNSUPPORTED, "AttnUpDecoderBlock2D" },
    { "{\"block_out_channels\": [32, 64], \"down_block_types\": [\"DownEncoderBlock2D\"]}",
      GESSO_ERROR_CORRUPT, "down_block_types" },
    { "{\"block_out_channels\": [32, 48]}", GESSO_ERROR_INVALID_ARGUMENT, "norm_num_groups" },
    { "{\"block_out_channels\": [32, 32, 32, 32, 32, 32, 32, 32, 32]}",
      GESSO_ERROR_UNSUPPORTED, "9 levels" },
    { "{\"block_out_channels\": []}", GESSO_ERROR_UNSUPPORTED, "0 levels" },
    { "{\"layers_per_block\": 0}", 0, "layers_per_block" },
    { "{\"latent_channels\": \"four\"}", 0, "latent_channels" },
    { "{\"block_out_channels\": \"64\"}", 0, "block_out_channels" },
    { "{\"scaling_factor\": -1}", 0, "scaling_factor" },
    { "{\"norm_num_groups\": 0}", 0, "norm_num_groups" },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      GessoVaeConfig c;

      g_assert_false (parse (cases[i].json, &c, &error));
      g_assert_nonnull (error);
      g_assert_true (error->domain == GESSO_ERROR);
      if (cases[i].code != 0)
        g_assert_cmpint (error->code, ==, cases[i].code);
      if (strstr (error->message, cases[i].says) == NULL)
        g_error ("case %zu: \"%s\" does not mention %s", i, error->message, cases[i].says);
    }
}

/* --- A synthetic diffusers folder ------------------------------------------------------- */

typedef struct
{
  GString *header;
  GByteArray *data;
  guint32 seed;
} Writer;

static float
next_value (Writer *w, float scale)
{
  w->seed = w->seed * 1664525u + 1013904223u;
  return scale * ((float) (w->seed >> 8) / (float) (1u << 24) - 0.5f);
}

static void
add_tensor (Writer *w, const char *name, int ndim, const int64_t *shape, float center,
            float scale)
{
  int64_t n = 1;
  size_t begin = w->data->len;

  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  for (int64_t i = 0; i < n; i++)
    {
      float v = center + next_value (w, scale);
      g_byte_array_append (w->data, (const guint8 *) &v, sizeof v);
    }
  g_string_append_printf (w->header, "%s\"%s\": {\"dtype\": \"F32\", \"shape\": [",
                          w->header->len > 1 ? ", " : "", name);
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (w->header, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_printf (w->header, "], \"data_offsets\": [%zu, %u]}", begin, w->data->len);
}

static void
add_conv (Writer *w, const char *prefix, int64_t in, int64_t out, int64_t k)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);
  const int64_t shape[4] = { out, in, k, k };

  /* about unit gain, so activations neither vanish nor blow up through the network */
  add_tensor (w, wn, 4, shape, 0.0f, 2.0f * sqrtf (3.0f / (float) (in * k * k)));
  add_tensor (w, bn, 1, &out, 0.0f, 0.1f);
}

static void
add_norm (Writer *w, const char *prefix, int64_t channels)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);

  add_tensor (w, wn, 1, &channels, 1.0f, 0.2f);
  add_tensor (w, bn, 1, &channels, 0.0f, 0.2f);
}

static void
add_linear (Writer *w, const char *prefix, int64_t channels)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);
  const int64_t shape[2] = { channels, channels };

  add_tensor (w, wn, 2, shape, 0.0f, 2.0f * sqrtf (3.0f / (float) channels));
  add_tensor (w, bn, 1, &channels, 0.0f, 0.1f);
}

static void
add_resnet (Writer *w, const char *prefix, int64_t in, int64_t out)
{
  g_autofree char *n1 = g_strconcat (prefix, ".norm1", NULL);
  g_autofree char *c1 = g_strconcat (prefix, ".conv1", NULL);
  g_autofree char *n2 = g_strconcat (prefix, ".norm2", NULL);
  g_autofree char *c2 = g_strconcat (prefix, ".conv2", NULL);
  g_autofree char *sc = g_strconcat (prefix, ".conv_shortcut", NULL);

  add_norm (w, n1, in);
  add_conv (w, c1, in, out, 3);
  add_norm (w, n2, out);
  add_conv (w, c2, out, out, 3);
  if (in != out)
    add_conv (w, sc, in, out, 1);
}

static void
add_mid (Writer *w, const char *part, int64_t ch, gboolean attention)
{
  char p[128];

  for (int j = 0; j < 2; j++)
    {
      g_snprintf (p, sizeof p, "%s.mid_block.resnets.%d", part, j);
      add_resnet (w, p, ch, ch);
    }
  if (!attention)
    return;
  g_snprintf (p, sizeof p, "%s.mid_block.attentions.0.group_norm", part);
  add_norm (w, p, ch);
  static const char *const proj[] = { "to_q", "to_k", "to_v", "to_out.0" };
  for (int j = 0; j < 4; j++)
    {
      g_snprintf (p, sizeof p, "%s.mid_block.attentions.0.%s", part, proj[j]);
      add_linear (w, p, ch);
    }
}

/* Writes DIR/model_index.json, DIR/vae/config.json (the JSON of C) and the weights of C, by
 * diffusers' names, written out independently of the builder. */
static void
write_vae_folder (const char *dir, const GessoVaeConfig *c)
{
  g_autofree char *vae_dir = g_build_filename (dir, "vae", NULL);
  g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);
  g_autofree char *config = g_build_filename (vae_dir, "config.json", NULL);
  g_autofree char *weights = g_build_filename (vae_dir, "diffusion_pytorch_model.safetensors",
                                               NULL);
  g_autoptr (GString) json = g_string_new ("{\"_class_name\": \"AutoencoderKL\", ");
  g_autoptr (GError) error = NULL;
  Writer w = { g_string_new ("{"), g_byte_array_new (), 12345u };
  const int n = c->n_levels;
  char p[128];

  g_assert_cmpint (g_mkdir_with_parents (vae_dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (index, "{\"_class_name\": \"StableDiffusionPipeline\","
                                      " \"vae\": [\"diffusers\", \"AutoencoderKL\"]}", -1,
                                      &error));
  g_string_append (json, "\"block_out_channels\": [");
  for (int i = 0; i < n; i++)
    g_string_append_printf (json, "%s%d", i ? ", " : "", c->block_out_channels[i]);
  g_string_append_printf (json, "], \"layers_per_block\": %d, \"latent_channels\": %d, "
                          "\"in_channels\": %d, \"out_channels\": %d, \"norm_num_groups\": %d, "
                          "\"mid_block_add_attention\": %s, \"use_quant_conv\": %s, "
                          "\"use_post_quant_conv\": %s, \"scaling_factor\": %.17g}",
                          c->layers_per_block, c->latent_channels, c->in_channels,
                          c->out_channels, c->norm_num_groups,
                          c->mid_attention ? "true" : "false",
                          c->use_quant_conv ? "true" : "false",
                          c->use_post_quant_conv ? "true" : "false", c->scaling_factor);
  g_assert_true (g_file_set_contents (config, json->str, -1, &error));

  add_conv (&w, "encoder.conv_in", c->in_channels, c->block_out_channels[0], 3);
  for (int i = 0; i < n; i++)
    {
      int in = c->block_out_channels[i > 0 ? i - 1 : 0], out = c->block_out_channels[i];

      for (int j = 0; j < c->layers_per_block; j++)
        {
          g_snprintf (p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
          add_resnet (&w, p, j ? out : in, out);
        }
      g_snprintf (p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv", i);
      if (i < n - 1)
        add_conv (&w, p, out, out, 3);
    }
  add_mid (&w, "encoder", c->block_out_channels[n - 1], c->mid_attention);
  add_norm (&w, "encoder.conv_norm_out", c->block_out_channels[n - 1]);
  add_conv (&w, "encoder.conv_out", c->block_out_channels[n - 1], 2 * c->latent_channels, 3);
  if (c->use_quant_conv)
    add_conv (&w, "quant_conv", 2 * c->latent_channels, 2 * c->latent_channels, 1);
  if (c->use_post_quant_conv)
    add_conv (&w, "post_quant_conv", c->latent_channels, c->latent_channels, 1);
  add_conv (&w, "decoder.conv_in", c->latent_channels, c->block_out_channels[n - 1], 3);
  add_mid (&w, "decoder", c->block_out_channels[n - 1], c->mid_attention);
  for (int i = 0; i < n; i++)
    {
      int prev = c->block_out_channels[n - 1 - (i > 0 ? i - 1 : 0)];
      int out = c->block_out_channels[n - 1 - i];

      for (int j = 0; j < c->layers_per_block + 1; j++)
        {
          g_snprintf (p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
          add_resnet (&w, p, j ? out : prev, out);
        }
      g_snprintf (p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
      if (i < n - 1)
        add_conv (&w, p, out, out, 3);
    }
  add_norm (&w, "decoder.conv_norm_out", c->block_out_channels[0]);
  add_conv (&w, "decoder.conv_out", c->block_out_channels[0], c->out_channels, 3);

  g_string_append (w.header, "}");
  while (w.header->len % 8 != 0)
    g_string_append_c (w.header, ' ');

  guint64 header_len = GUINT64_TO_LE (w.header->len);
  g_autoptr (GByteArray) file = g_byte_array_new ();
  g_byte_array_append (file, (const guint8 *) &header_len, 8);
  g_byte_array_append (file, (const guint8 *) w.header->str, (guint) w.header->len);
  g_byte_array_append (file, w.data->data, w.data->len);
  g_assert_true (g_file_set_contents (weights, (const char *) file->data, file->len, &error));
  g_assert_no_error (error);
  g_string_free (w.header, TRUE);
  g_byte_array_unref (w.data);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_remove (child);
    }
  g_rmdir (path);
}

static GessoVaeConfig
small_config (void)
{
  GessoVaeConfig c;

  gesso_vae_config_init (&c);
  c.n_levels = 3;
  c.block_out_channels[0] = 8;
  c.block_out_channels[1] = 16;
  c.block_out_channels[2] = 16;
  c.layers_per_block = 1;
  c.norm_num_groups = 4;
  return c;
}

typedef struct
{
  char *dir;
  GessoModelFiles *files;
  GessoWeights *weights;
} Folder;

static void
folder_open (Folder *f, const GessoVaeConfig *c)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("gesso-vae-XXXXXX", &error);
  g_assert_no_error (error);
  write_vae_folder (f->dir, c);
  f->files = gesso_model_files_open (f->dir, &error);
  g_assert_no_error (error);
  f->weights = gesso_weights_new (f->files, &error);
  g_assert_no_error (error);
}

static void
folder_close (Folder *f)
{
  gesso_weights_free (f->weights);
  gesso_model_files_free (f->files);
  remove_tree (f->dir);
  g_free (f->dir);
}

/* What inference can see: SD-like channel counts (multiples of 32) at a small size. */
static GessoVaeConfig
inferable_config (void)
{
  GessoVaeConfig c;

  gesso_vae_config_init (&c);
  c.n_levels = 3;
  c.block_out_channels[0] = 32;
  c.block_out_channels[1] = 32;
  c.block_out_channels[2] = 64;
  c.layers_per_block = 1;
  return c;
}

static void
test_infer (void)
{
  GessoVaeConfig variants[3];

  variants[0] = inferable_config ();
  variants[1] = inferable_config ();
  variants[1].mid_attention = FALSE;
  variants[1].layers_per_block = 2;
  variants[1].latent_channels = 3;
  variants[2] = inferable_config ();
  variants[2].use_quant_conv = FALSE;
  variants[2].use_post_quant_conv = FALSE;
  variants[2].n_levels = 1;

  for (size_t i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      g_autoptr (GError) error = NULL;
      GessoVaeConfig inferred;
      Folder f;

      folder_open (&f, &variants[i]);
      g_assert_true (gesso_vae_config_infer (&inferred, f.weights, &error));
      g_assert_no_error (error);
      g_assert_true (gesso_vae_config_same_architecture (&inferred, &variants[i]));
      /* shapes cannot tell these; the documented rule gives SD's */
      g_assert_cmpint (inferred.norm_num_groups, ==, 32);
      g_assert_cmpfloat (inferred.scaling_factor, ==, GESSO_VAE_SD_SCALING_FACTOR);
      g_assert_cmpint (gesso_vae_config_latent_factor (&inferred), ==,
                       1 << (variants[i].n_levels - 1));
      folder_close (&f);
    }

  /* channels 32 groups do not divide: inference cannot guess, and says what to provide */
  {
    g_autoptr (GError) error = NULL;
    GessoVaeConfig c = small_config (), inferred;
    Folder f;

    folder_open (&f, &c);
    g_assert_false (gesso_vae_config_infer (&inferred, f.weights, &error));
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "config.json"));
    folder_close (&f);
  }
}

static void
test_build_mismatch (void)
{
  GessoVaeConfig c = small_config ();
  GessoVaeConfig wrong;
  Folder f;

  folder_open (&f, &c);

  /* fewer resnets than the weights hold: the extra ones must not be skipped silently */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GessoVae) vae = NULL;

    wrong = c;
    wrong.layers_per_block = 2;
    vae = gesso_vae_new (f.weights, &wrong, &error);
    g_assert_null (vae);
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_MISSING);
    g_test_message ("%s", error->message);
  }
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GessoVae) vae = NULL;

    wrong = c;
    wrong.mid_attention = FALSE;
    vae = gesso_vae_new (f.weights, &wrong, &error);
    g_assert_null (vae);
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
    g_assert_nonnull (strstr (error->message, "mid attention"));
  }
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GessoVae) vae = NULL;

    wrong = c;
    wrong.block_out_channels[1] = 32;
    vae = gesso_vae_new (f.weights, &wrong, &error);
    g_assert_null (vae);
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT);
  }
  {
    /* groups the channels do not divide */
    g_autoptr (GError) error = NULL;
    g_autoptr (GessoVae) vae = NULL;

    wrong = c;
    wrong.norm_num_groups = 32;
    vae = gesso_vae_new (f.weights, &wrong, &error);
    g_assert_null (vae);
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  }
  folder_close (&f);
}

static gboolean
all_finite (const float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isfinite (x[i]))
      return FALSE;
  return TRUE;
}

static void
test_run (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoVae) vae = NULL;
  GessoVaeConfig c = small_config ();
  const int64_t h = 16, w = 24, f = 4, lh = h / f, lw = w / f;
  const size_t n_image = 3 * h * w, n_latent = 4 * lh * lw;
  g_autofree float *image = g_new (float, n_image);
  g_autofree float *mean = g_new (float, n_latent);
  g_autofree float *logvar = g_new (float, n_latent);
  g_autofree float *std = g_new (float, n_latent);
  g_autofree float *mean2 = g_new (float, n_latent);
  g_autofree float *decoded = g_new (float, n_image);
  g_autofree float *decoded2 = g_new (float, n_image);
  size_t enc_bytes, dec_bytes;
  Folder folder;

  folder_open (&folder, &c);
  vae = gesso_vae_new_for_model (folder.files, folder.weights, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gesso_vae_latent_factor (vae), ==, (int) f);
  g_assert_cmpint (gesso_vae_latent_channels (vae), ==, 4);
  g_assert_cmpfloat (gesso_vae_scaling_factor (vae), ==, GESSO_VAE_SD_SCALING_FACTOR);
  g_assert_cmpint (gesso_vae_get_config (vae)->norm_num_groups, ==, 4);

  for (size_t i = 0; i < n_image; i++)
    image[i] = sinf ((float) i * 0.37f);

  g_assert_true (gesso_vae_encode (vae, image, h, w, mean, logvar, std, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (all_finite (mean, n_latent) && all_finite (logvar, n_latent));
  for (size_t i = 0; i < n_latent; i++)
    {
      g_assert_cmpfloat (logvar[i], >=, -30.0f);
      g_assert_cmpfloat (logvar[i], <=, 20.0f);
      g_assert_cmpfloat_with_epsilon (std[i], expf (0.5f * logvar[i]), 1e-6f * std[i]);
    }
  g_assert_true (gesso_vae_decode (vae, mean, lh, lw, decoded, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (all_finite (decoded, n_image));

  /* a caller's arena of exactly the planned size gives the same numbers and is handed back
   * at its mark; logvar and std are optional */
  g_assert_true (gesso_vae_encode_scratch_bytes (vae, h, w, &enc_bytes, &error));
  g_assert_true (gesso_vae_decode_scratch_bytes (vae, lh, lw, &dec_bytes, &error));
  g_assert_no_error (error);
  {
    g_autoptr (GessoArena) arena = gesso_arena_new (MAX (enc_bytes, dec_bytes), &error);

    g_assert_no_error (error);
    g_assert_true (gesso_vae_encode (vae, image, h, w, mean2, NULL, NULL, arena, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (mean, n_latent * sizeof (float), mean2, n_latent * sizeof (float));
    g_assert_true (gesso_vae_decode (vae, mean, lh, lw, decoded2, arena, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (decoded, n_image * sizeof (float), decoded2, n_image * sizeof (float));
    g_assert_cmpuint (gesso_arena_used (arena), ==, 0);
    g_assert_cmpuint (gesso_arena_peak (arena), <=, MAX (enc_bytes, dec_bytes));
  }
  {
    g_autoptr (GessoArena) small = gesso_arena_new (dec_bytes / 2, &error);

    g_assert_false (gesso_vae_decode (vae, mean, lh, lw, decoded2, small, &error));
    g_assert_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY);
    g_clear_error (&error);
  }

  /* sizes the VAE cannot take */
  g_assert_false (gesso_vae_encode (vae, image, 18, 24, mean, NULL, NULL, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "multiples of 4"));
  g_clear_error (&error);
  g_assert_false (gesso_vae_encode (vae, image, 0, 24, mean, NULL, NULL, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_vae_encode (vae, image, 40000, 24, mean, NULL, NULL, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gesso_vae_decode (vae, mean, 0, 6, decoded, NULL, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  folder_close (&folder);
}

static void
test_plan_sd (void)
{
  g_autoptr (GError) error = NULL;
  GessoVaeConfig c;
  size_t dec, enc;

  g_assert_true (parse (sd_json, &c, &error));
  g_assert_true (gesso_vae_config_decode_scratch_bytes (&c, 64, 64, &dec, &error));
  g_assert_true (gesso_vae_config_encode_scratch_bytes (&c, 512, 512, &enc, &error));
  g_assert_no_error (error);
  g_test_message ("SD VAE scratch: decode 64x64 -> 512x512 %.1f MiB, encode 512x512 %.1f MiB",
                  (double) dec / 1048576.0, (double) enc / 1048576.0);
  /* The activations: three rotating buffers, at most 256 + 256 + 128 MiB (the upsampled
   * 256-channel 512x512 map, the conv after it, and the 128-channel maps of the last level).
   * On top comes one kernel's scratch at a time, whatever the convolution asks for. */
  size_t conv_scratch = 0;
  const int64_t convs[][3] = { { 256, 256, 512 }, { 256, 128, 512 }, { 128, 128, 512 },
                               { 512, 512, 256 }, { 512, 256, 256 }, { 512, 512, 128 } };
  for (size_t i = 0; i < G_N_ELEMENTS (convs); i++)
    {
      const GessoConv2dShape shape = { 1, convs[i][0], convs[i][2], convs[i][2], convs[i][1],
                                       3, 3, 1, 1 };
      conv_scratch = MAX (conv_scratch, gesso_conv2d_scratch_bytes (&shape));
    }
  g_test_message ("of which the largest 3x3 conv's own scratch: %.1f MiB",
                  (double) conv_scratch / 1048576.0);
  g_assert_cmpuint (dec, >=, 2 * (size_t) 256 * 512 * 512 * sizeof (float));
  g_assert_cmpuint (dec, <=, (size_t) (640 + 1) * 1048576 + conv_scratch);
  g_assert_cmpuint (enc, <, dec);

  g_assert_false (gesso_vae_config_decode_scratch_bytes (&c, 64, 4096, &dec, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/vae/config/json-tiny", test_json_tiny);
  g_test_add_func ("/model/vae/config/json-sd-and-defaults", test_json_sd_and_defaults);
  g_test_add_func ("/model/vae/config/json-refused", test_json_refused);
  g_test_add_func ("/model/vae/config/infer", test_infer);
  g_test_add_func ("/model/vae/build/mismatch", test_build_mismatch);
  g_test_add_func ("/model/vae/run/synthetic", test_run);
  g_test_add_func ("/model/vae/plan/sd-512", test_plan_sd);
  return g_test_run ();
}
