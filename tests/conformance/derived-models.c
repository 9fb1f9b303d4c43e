/* Models a case derives from a conformance model by a fixed rule (the manifest's
 * "derived_model": {"from": MODEL, "rule": RULE}), for what the shared set has no model of and
 * whose data may not be copied into the project. tools/reference/sdxl-cases.py applies the
 * same rules to make the reference; they are written out here a second time, from the rule's
 * text, so that a slip in either shows as a failing case.
 *
 *   inpaint-9ch  MODEL's diffusers folder with conv_in widened from 4 to 9 inputs (latent,
 *                mask, masked-image latent): input channel c >= 4 of output o, kernel cell k
 *                (row-major) gets ((o * 9 + (c - 4) * 5 + k) % 23 - 11) / 256, exact in F16.
 *   bf16         MODEL's F16 single file with every tensor rounded to BF16 (nearest, ties to
 *                even), its diffusers folder beside it for the configs.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "derived-models.h"
#include "../unit/io-fixtures.h"

/* float to bfloat16 (nearest, ties to even), written here rather than taken from core/tensor */
static guint16
float_to_bf16 (float f)
{
  guint32 bits;

  memcpy (&bits, &f, sizeof bits);
  if (isnan (f))
    return (guint16) ((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return (guint16) (bits >> 16);
}

static guint16
float_to_half_exact (float f)
{
  /* only for the rule's values, multiples of 1/256 below 1/16 in magnitude: normal halves */
  const guint16 sign = f < 0 ? 0x8000 : 0;
  int exponent;
  float m = frexpf (fabsf (f), &exponent);        /* |f| = m 2^exponent, m in [0.5, 1) */

  if (f == 0.0f)
    return 0;
  return (guint16) (sign | (guint16) ((exponent + 14) << 10)
                    | (guint16) lrintf ((m * 2.0f - 1.0f) * 1024.0f));
}

static void
widen_conv_in (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
               const void *values, gpointer user_data)
{
  const int *shape = user_data;        /* out, in, kh, kw of conv_in */
  const int out = shape[0], in = shape[1], cells = shape[2] * shape[3], wide = 9;
  g_autofree guint16 *w = NULL;
  g_autofree char *wide_shape = NULL;

  if (strcmp (name, "conv_in.weight") != 0)
    {
      fixture_st_add (st, name, dtype, shape_json, values);
      return;
    }
  g_assert_cmpstr (dtype, ==, "F16");
  w = g_new0 (guint16, (size_t) out * wide * cells);
  for (int o = 0; o < out; o++)
    {
      memcpy (w + (size_t) o * wide * cells, (const guint16 *) values + (size_t) o * in * cells,
              (size_t) in * cells * sizeof (guint16));
      for (int c = in; c < wide; c++)
        for (int k = 0; k < cells; k++)
          w[((size_t) o * wide + c) * cells + k]
            = float_to_half_exact ((float) ((o * 9 + (c - 4) * 5 + k) % 23 - 11) / 256.0f);
    }
  wide_shape = g_strdup_printf ("[%d, %d, %d, %d]", out, wide, shape[2], shape[3]);
  fixture_st_add (st, name, dtype, wide_shape, w);
}

static void
to_bf16 (FixtureSt *st, const char *name, const char *dtype, const char *shape_json,
         const void *values, gpointer user_data)
{
  gint64 numel = 1;
  g_autofree guint16 *narrow = NULL;
  g_auto (GStrv) dims = g_strsplit_set (shape_json, "[], ", -1);

  (void) user_data;
  if (strcmp (dtype, "F16") != 0 && strcmp (dtype, "F32") != 0)
    {
      fixture_st_add (st, name, dtype, shape_json, values);
      return;
    }
  for (char **d = dims; *d != NULL; d++)
    if (**d != '\0')
      numel *= g_ascii_strtoll (*d, NULL, 10);
  narrow = g_new (guint16, (size_t) MAX (numel, 1));
  for (gint64 i = 0; i < numel; i++)
    narrow[i] = float_to_bf16 (strcmp (dtype, "F16") == 0
                                 ? fixture_half_to_float (((const guint16 *) values)[i])
                                 : ((const float *) values)[i]);
  fixture_st_add (st, name, "BF16", shape_json, narrow);
}

static void
rewrite_safetensors (const char *path, FixtureStCopyFunc func, gpointer data)
{
  FixtureSt st;
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *source = g_strconcat (path, ".source", NULL);

  g_assert_cmpint (g_rename (path, source), ==, 0);
  fixture_st_init (&st);
  fixture_st_add_file (&st, source, func, data);
  bytes = fixture_st_finish (&st);
  g_free (fixture_write (dir, base, bytes));
  g_unlink (source);
}

/* FOLDER/unet: config in_channels 9, conv_in widened by the rule. */
static gboolean
derive_inpaint_9ch (const char *folder, GError **error)
{
  g_autofree char *config_path = g_build_filename (folder, "unet", "config.json", NULL);
  g_autofree char *weights = g_build_filename (folder, "unet",
                                               "diffusion_pytorch_model.safetensors", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  JsonObject *config;
  int shape[4];

  if (!json_parser_load_from_file (parser, config_path, error))
    return FALSE;
  config = json_node_get_object (json_parser_get_root (parser));
  shape[0] = (int) json_array_get_int_element (json_object_get_array_member (config,
                                                                             "block_out_channels"),
                                               0);
  shape[1] = (int) json_object_get_int_member (config, "in_channels");
  shape[2] = shape[3] = (int) json_object_get_int_member_with_default (config, "conv_in_kernel",
                                                                       3);
  json_object_set_int_member (config, "in_channels", 9);
  json_generator_set_root (generator, json_parser_get_root (parser));
  if (!json_generator_to_file (generator, config_path, error))
    return FALSE;
  rewrite_safetensors (weights, widen_conv_in, shape);
  return TRUE;
}

static ConformanceVariant *
variant_new (const char *label, const char *path)
{
  ConformanceVariant *v = g_new0 (ConformanceVariant, 1);

  v->label = g_strdup (label);
  v->path = g_strdup (path);
  return v;
}

GPtrArray *
conformance_derived_variants (const ConformanceCase *c, JsonObject *spec, char **tmpdir,
                              GError **error)
{
  const char *from = json_object_get_string_member_with_default (spec, "from", NULL);
  const char *rule = json_object_get_string_member_with_default (spec, "rule", "");
  g_autofree char *model_dir = from ? conformance_model_dir (c, from) : NULL;
  g_autofree char *diffusers = model_dir ? g_build_filename (model_dir, "diffusers", NULL)
                                         : NULL;
  GPtrArray *variants = g_ptr_array_new_with_free_func (conformance_variant_free);

  *tmpdir = NULL;
  if (diffusers == NULL || !g_file_test (diffusers, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "the derived model's source '%s' has no diffusers folder", from ? from : "?");
      goto fail;
    }
  *tmpdir = fixture_make_tmpdir ();
  if (strcmp (rule, "inpaint-9ch") == 0)
    {
      g_autofree char *folder = g_build_filename (*tmpdir, "diffusers", NULL);

      fixture_copy_tree (diffusers, folder);
      if (!derive_inpaint_9ch (folder, error))
        goto fail;
      g_ptr_array_add (variants, variant_new ("diffusers, inpaint-9ch", folder));
    }
  else if (strcmp (rule, "bf16") == 0)
    {
      g_autofree char *source = g_strdup_printf ("%s/%s-fp16.safetensors", model_dir, from);
      g_autofree char *file = g_strdup_printf ("%s/%s-bf16.safetensors", *tmpdir, from);
      g_autofree char *folder = g_build_filename (*tmpdir, "diffusers", NULL);
      g_autofree char *label = g_path_get_basename (file);
      FixtureSt st;
      g_autoptr (GBytes) bytes = NULL;

      if (!g_file_test (source, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING, "no F16 single file %s",
                       source);
          goto fail;
        }
      fixture_copy_tree (diffusers, folder);
      fixture_st_init (&st);
      fixture_st_add_file (&st, source, to_bf16, NULL);
      bytes = fixture_st_finish (&st);
      g_free (fixture_write (*tmpdir, label, bytes));
      g_ptr_array_add (variants, variant_new (label, file));
    }
  else
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, "unknown derived-model rule '%s'",
                   rule);
      goto fail;
    }
  return variants;

fail:
  g_ptr_array_unref (variants);
  fixture_remove_tree (*tmpdir);
  g_clear_pointer (tmpdir, g_free);
  return NULL;
}

void
conformance_remove_derived (char *tmpdir)
{
  fixture_remove_tree (tmpdir);
  g_free (tmpdir);
}
