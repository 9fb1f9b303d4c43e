/* The bad-model matrix: a model with a missing tensor (or block, or whole part), a wrongly
 * shaped one, one of a type Gesso does not compute with, a truncated file, an incomplete SDXL checkpoint,
 * or a single file with no usable tokenizer must fail in gesso_model_open, with the right error code
 * and one line that names the culprit and, where the user can do something, says what.
 *
 * Every model is built here at run time from the bundled demo model
 * (data/models/gesso-emoji-64): a copy of its diffusers folder with one component file
 * rewritten, and the same weights as one CompVis/LDM checkpoint, whose key names this file
 * writes out by itself (not through core/model/keymap.c, which it thereby checks). Each
 * group starts with the unbroken model opening, so a refusal is the breakage's doing.
 */
#include <stdio.h>
#include <string.h>

#include "gesso.h"
#include "io-fixtures.h"

#include <json-glib/json-glib.h>

#define UNET_FILE "unet/diffusion_pytorch_model.safetensors"
#define VAE_FILE "vae/diffusion_pytorch_model.safetensors"
#define TE_FILE "text_encoder/model.safetensors"
#define SINGLE_FILE "single/model.safetensors"

/* --- Breakages ---------------------------------------------------------------------------- */

typedef enum
{
  EDIT_NONE,
  EDIT_DROP,                    /* leave out the tensors whose names start with NAME */
  EDIT_RESHAPE,                 /* store it with shape VALUE (JSON) */
  EDIT_RETYPE,                  /* store it as dtype VALUE */
  EDIT_ADD,                     /* add an F16 tensor of shape VALUE */
} EditKind;

typedef struct
{
  EditKind kind;
  const char *name;             /* the tensor as stored in the file being written */
  const char *value;
} Edit;

static const Edit no_edit = { EDIT_NONE, NULL, NULL };

/* The demo model's architecture, which the LDM names depend on. */
typedef struct
{
  int unet_layers_per_block;
  gboolean up_attention[8];     /* per up block (deepest first) */
  int vae_levels;
} Layout;

typedef enum
{
  KEYS_AS_STORED,
  KEYS_LDM_TEXT,
  KEYS_LDM_UNET,
  KEYS_LDM_VAE,
} KeyStyle;

/* What a file being written goes through: key renaming, then the breakage. */
typedef struct
{
  const Layout *layout;
  KeyStyle style;
  const char *text_prefix;      /* KEYS_LDM_TEXT: "cond_stage_model.transformer." */
  const Edit *edit;
  gboolean edited;
  char *last;                   /* the tensor whose data comes last */
} Writer;

typedef struct
{
  char *demo;                   /* the bundled demo model */
  char *tmp;                    /* scratch folder, removed after each test */
  char *folder;                 /* TMP/model: a copy of the demo model */
  Layout layout;
} Fixture;

/* --- CompVis/LDM names of the demo model ------------------------------------------------ */

typedef const char *const Renames[][2];

/* PREFIX (taken) + REST with its start renamed by TABLE. */
static char *
rename_start (char *prefix, const char *rest, Renames table, guint n)
{
  for (guint i = 0; i < n; i++)
    if (g_str_has_prefix (rest, table[i][0]))
      {
        char *key = g_strconcat (prefix, table[i][1], rest + strlen (table[i][0]), NULL);
        g_free (prefix);
        return key;
      }
  g_error ("no CompVis name for '%s'", rest);
}

/* PREFIX + KEY (taken). */
static char *
with_prefix (const char *prefix, char *key)
{
  char *full = g_strconcat (prefix, key, NULL);

  g_free (key);
  return full;
}

#define RENAME(prefix, rest, table) rename_start (prefix, rest, table, G_N_ELEMENTS (table))

/* NAME matches FORMAT (integers are read into the arguments); REST_AT is then the offset of
 * what follows the match. */
#define MATCH(name, format, ...)                                                       \
  (rest_at = 0, (void) sscanf (name, format "%n", __VA_ARGS__, &rest_at), rest_at > 0)

/* diffusers ResnetBlock2D -> LDM UNet ResBlock: in_layers = [norm, SiLU, conv], emb_layers =
 * [SiLU, linear], out_layers = [norm, SiLU, dropout, conv] */
static Renames unet_resnet = {
  { "norm1.", "in_layers.0." },  { "conv1.", "in_layers.2." },
  { "time_emb_proj.", "emb_layers.1." }, { "norm2.", "out_layers.0." },
  { "conv2.", "out_layers.3." }, { "conv_shortcut.", "skip_connection." },
};

static Renames unet_top = {
  { "conv_in.", "input_blocks.0.0." },   { "time_embedding.linear_1.", "time_embed.0." },
  { "time_embedding.linear_2.", "time_embed.2." }, { "conv_norm_out.", "out.0." },
  { "conv_out.", "out.2." },
};

static Renames vae_resnet = {
  { "norm1.", "norm1." }, { "conv1.", "conv1." }, { "norm2.", "norm2." },
  { "conv2.", "conv2." }, { "conv_shortcut.", "nin_shortcut." },
};

static Renames vae_attention = {
  { "group_norm.", "norm." }, { "to_q.", "q." }, { "to_k.", "k." }, { "to_v.", "v." },
  { "to_out.0.", "proj_out." },
};

/* LDM numbers the UNet's blocks in one list per direction: input block 0 is conv_in, then
 * per level LPB [resnet, attention] pairs and a downsampler; output blocks per level LPB + 1
 * [resnet, attention] pairs, the last one ending with the upsampler. */
static char *
ldm_unet_key (const Layout *l, const char *name)
{
  const int per = l->unet_layers_per_block + 1;
  char *key;
  int a, b, rest_at;

  if (MATCH (name, "down_blocks.%d.resnets.%d.", &a, &b))
    key = RENAME (g_strdup_printf ("input_blocks.%d.0.", 1 + a * per + b), name + rest_at,
                  unet_resnet);
  else if (MATCH (name, "down_blocks.%d.attentions.%d.", &a, &b))
    key = g_strdup_printf ("input_blocks.%d.1.%s", 1 + a * per + b, name + rest_at);
  else if (MATCH (name, "down_blocks.%d.downsamplers.0.conv.", &a))
    key = g_strdup_printf ("input_blocks.%d.0.op.%s", (a + 1) * per, name + rest_at);
  else if (MATCH (name, "mid_block.resnets.%d.", &a))
    key = RENAME (g_strdup_printf ("middle_block.%d.", 2 * a), name + rest_at, unet_resnet);
  else if (MATCH (name, "mid_block.attentions.%d.", &a))
    key = g_strdup_printf ("middle_block.1.%s", name + rest_at);
  else if (MATCH (name, "up_blocks.%d.resnets.%d.", &a, &b))
    key = RENAME (g_strdup_printf ("output_blocks.%d.0.", a * per + b), name + rest_at,
                  unet_resnet);
  else if (MATCH (name, "up_blocks.%d.attentions.%d.", &a, &b))
    key = g_strdup_printf ("output_blocks.%d.1.%s", a * per + b, name + rest_at);
  else if (MATCH (name, "up_blocks.%d.upsamplers.0.conv.", &a))
    key = g_strdup_printf ("output_blocks.%d.%d.conv.%s", a * per + per - 1,
                           l->up_attention[a] ? 2 : 1, name + rest_at);
  else
    key = RENAME (g_strdup (""), name, unet_top);
  return with_prefix ("model.diffusion_model.", key);
}

/* The LDM VAE keeps diffusers' encoder/decoder split but names blocks down.I.block.J, lists
 * the decoder's levels from the smallest resolution up, and keeps its mid attention's
 * q/k/v/proj_out as 1x1 convs (*CONV is set for those). */
static char *
ldm_vae_key (const Layout *l, const char *name, gboolean *conv)
{
  const char *side = g_str_has_prefix (name, "encoder.")   ? "encoder."
                     : g_str_has_prefix (name, "decoder.") ? "decoder."
                                                           : "";
  const char *p = name + strlen (side);
  char *key;
  int a, b, rest_at;

  *conv = FALSE;
  if (*side == '\0' || g_str_has_prefix (p, "conv_in.") || g_str_has_prefix (p, "conv_out."))
    key = g_strdup (name);
  else if (g_str_has_prefix (p, "conv_norm_out."))
    key = g_strconcat (side, "norm_out.", p + strlen ("conv_norm_out."), NULL);
  else if (MATCH (p, "mid_block.resnets.%d.", &a))
    key = RENAME (g_strdup_printf ("%smid.block_%d.", side, a + 1), p + rest_at, vae_resnet);
  else if (MATCH (p, "mid_block.attentions.%d.", &a))
    {
      *conv = TRUE;
      key = RENAME (g_strdup_printf ("%smid.attn_1.", side), p + rest_at, vae_attention);
    }
  else if (MATCH (p, "down_blocks.%d.resnets.%d.", &a, &b))
    key = RENAME (g_strdup_printf ("%sdown.%d.block.%d.", side, a, b), p + rest_at,
                  vae_resnet);
  else if (MATCH (p, "down_blocks.%d.downsamplers.0.conv.", &a))
    key = g_strdup_printf ("%sdown.%d.downsample.conv.%s", side, a, p + rest_at);
  else if (MATCH (p, "up_blocks.%d.resnets.%d.", &a, &b))
    key = RENAME (g_strdup_printf ("%sup.%d.block.%d.", side, l->vae_levels - 1 - a, b),
                  p + rest_at, vae_resnet);
  else if (MATCH (p, "up_blocks.%d.upsamplers.0.conv.", &a))
    key = g_strdup_printf ("%sup.%d.upsample.conv.%s", side, l->vae_levels - 1 - a,
                           p + rest_at);
  else
    g_error ("no CompVis name for 'vae/%s'", name);
  return with_prefix ("first_stage_model.", key);
}

/* --- Writing model files ------------------------------------------------------------------ */

static void
write_tensor (FixtureSt *st, const char *stored, const char *dtype, const char *shape_json,
              const void *values, gpointer user_data)
{
  Writer *w = user_data;
  g_autofree char *name = NULL;
  g_autofree char *shape = NULL;
  gboolean conv = FALSE;

  switch (w->style)
    {
    case KEYS_LDM_TEXT:
      name = g_strconcat (w->text_prefix, stored, NULL);
      break;
    case KEYS_LDM_UNET:
      name = ldm_unet_key (w->layout, stored);
      break;
    case KEYS_LDM_VAE:
      name = ldm_vae_key (w->layout, stored, &conv);
      break;
    case KEYS_AS_STORED:
    default:
      name = g_strdup (stored);
      break;
    }
  /* a [C, C] linear of diffusers is a [C, C, 1, 1] conv in LDM's VAE */
  if (conv && strchr (shape_json, ',') != NULL)
    shape = g_strdup_printf ("%.*s, 1, 1]", (int) strlen (shape_json) - 1, shape_json);
  else
    shape = g_strdup (shape_json);

  if (w->edit->name == NULL
      || (w->edit->kind == EDIT_DROP ? !g_str_has_prefix (name, w->edit->name)
                                     : strcmp (name, w->edit->name) != 0))
    fixture_st_add (st, name, dtype, shape, values);
  else
    {
      w->edited = TRUE;
      if (w->edit->kind == EDIT_DROP)
        return;
      if (w->edit->kind == EDIT_RESHAPE)
        fixture_st_add (st, name, dtype, w->edit->value, NULL);
      else if (w->edit->kind == EDIT_RETYPE)
        fixture_st_add (st, name, w->edit->value, shape, NULL);
    }
  g_free (w->last);
  w->last = g_steal_pointer (&name);
}

/* Adds the tensors of the demo model's FILE to ST through W. */
static void
add_demo_file (FixtureSt *st, const Fixture *f, const char *file, Writer *w)
{
  g_autofree char *path = g_build_filename (f->demo, file, NULL);

  fixture_st_add_file (st, path, write_tensor, w);
}

/* Finishes ST, after adding W's extra tensor if it asks for one. */
static GBytes *
finish (FixtureSt *st, Writer *w)
{
  if (w->edit->kind == EDIT_ADD)
    {
      fixture_st_add (st, w->edit->name, "F16", w->edit->value, NULL);
      w->edited = TRUE;
    }
  g_assert_true (w->edited || w->edit->kind == EDIT_NONE);
  return fixture_st_finish (st);
}

/* The demo model's component FILE with EDIT applied; *LAST (when not NULL) receives the name
 * of the tensor whose data comes last. */
static GBytes *
component_bytes (const Fixture *f, const char *file, const Edit *edit, char **last)
{
  Writer w = { &f->layout, KEYS_AS_STORED, NULL, edit, FALSE, NULL };
  GBytes *bytes;
  FixtureSt st;

  fixture_st_init (&st);
  add_demo_file (&st, f, file, &w);
  bytes = finish (&st, &w);
  if (last != NULL)
    *last = g_steal_pointer (&w.last);
  g_free (w.last);
  return bytes;
}

/* Replaces FILE of the model copy with the demo's, EDIT applied. */
static void
rewrite (const Fixture *f, const char *file, const Edit *edit)
{
  g_autoptr (GBytes) bytes = component_bytes (f, file, edit, NULL);

  g_free (fixture_write (f->folder, file, bytes));
}

/* The whole demo model as one SD 1.x checkpoint (CompVis/LDM names, the text encoder under
 * TEXT_PREFIX, its position_ids as SD 1.x files keep them), EDIT applied. */
static GBytes *
single_file_bytes (const Fixture *f, const char *text_prefix, const Edit *edit, char **last)
{
  Writer w = { &f->layout, KEYS_LDM_TEXT, text_prefix, edit, FALSE, NULL };
  gint64 positions[77];
  GBytes *bytes;
  FixtureSt st;

  for (int i = 0; i < 77; i++)
    positions[i] = GINT64_TO_LE (i);
  fixture_st_init (&st);
  add_demo_file (&st, f, TE_FILE, &w);
  write_tensor (&st, "text_model.embeddings.position_ids", "I64", "[1, 77]", positions, &w);
  w.style = KEYS_LDM_UNET;
  add_demo_file (&st, f, UNET_FILE, &w);
  w.style = KEYS_LDM_VAE;
  add_demo_file (&st, f, VAE_FILE, &w);
  bytes = finish (&st, &w);
  if (last != NULL)
    *last = g_steal_pointer (&w.last);
  g_free (w.last);
  return bytes;
}

/* Writes BYTES as TMP/single/model.safetensors, the demo's tokenizer/ beside it when
 * TOKENIZER is set; returns the path. */
static char *
write_single (const Fixture *f, GBytes *bytes, gboolean tokenizer)
{
  if (tokenizer)
    {
      g_autofree char *from = g_build_filename (f->demo, "tokenizer", NULL);
      g_autofree char *to = g_build_filename (f->tmp, "single", "tokenizer", NULL);
      fixture_copy_tree (from, to);
    }
  return fixture_write (f->tmp, SINGLE_FILE, bytes);
}

/* BYTES cut to their first N. */
static GBytes *
cut (GBytes *bytes, gsize n)
{
  g_assert_cmpuint (n, <, g_bytes_get_size (bytes));
  return g_bytes_new_from_bytes (bytes, 0, n);
}

/* --- Checking the refusal ----------------------------------------------------------------- */

/* Opening PATH must fail with CODE and a one-line message holding every string of the
 * NULL-terminated list that follows. */
static void
expect_refused (const char *path, GessoErrorCode code, ...) G_GNUC_NULL_TERMINATED;

static void
expect_refused (const char *path, GessoErrorCode code, ...)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModel) model = NULL;
  GessoModelParams params;
  const char *needle;
  va_list args;

  gesso_model_params_init (&params);
  params.path = path;
  model = gesso_model_open (&params, &error);
  g_assert_null (model);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_error (error, GESSO_ERROR, (gint) code);
  g_assert_null (strchr (error->message, '\n'));
  va_start (args, code);
  while ((needle = va_arg (args, const char *)) != NULL)
    if (strstr (error->message, needle) == NULL)
      g_error ("the message \"%s\" lacks \"%s\"", error->message, needle);
  va_end (args);
}

static void
expect_opens (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoModel) model = NULL;
  GessoModelParams params;

  gesso_model_params_init (&params);
  params.path = path;
  model = gesso_model_open (&params, &error);
  g_assert_no_error (error);
  g_assert_nonnull (model);
  /* the demo model: epsilon or v-prediction, as its scheduler config says */
  g_assert_true (g_str_has_prefix (gesso_model_get_architecture (model), "Stable Diffusion 1.x"));
}

/* --- Fixture ------------------------------------------------------------------------------ */

static JsonObject *
load_json (const char *dir, const char *file)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *path = g_build_filename (dir, file, NULL);

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static char *
demo_model_path (void)
{
  const char *source = g_getenv ("GESSO_SOURCE_DIR");

  return source ? g_build_filename (source, "data", "models", "gesso-emoji-64", NULL) : NULL;
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonObject) unet = NULL;
  g_autoptr (JsonObject) vae = NULL;
  JsonArray *up;

  (void) data;
  f->demo = demo_model_path ();
  f->tmp = fixture_make_tmpdir ();
  f->folder = g_build_filename (f->tmp, "model", NULL);
  fixture_copy_tree (f->demo, f->folder);

  unet = load_json (f->demo, "unet/config.json");
  vae = load_json (f->demo, "vae/config.json");
  f->layout.unet_layers_per_block = (int) json_object_get_int_member (unet, "layers_per_block");
  up = json_object_get_array_member (unet, "up_block_types");
  g_assert_cmpuint (json_array_get_length (up), <=, G_N_ELEMENTS (f->layout.up_attention));
  for (guint i = 0; i < json_array_get_length (up); i++)
    f->layout.up_attention[i] = g_str_has_prefix (json_array_get_string_element (up, i),
                                                  "CrossAttn");
  f->layout.vae_levels = (int) json_array_get_length (
    json_object_get_array_member (vae, "block_out_channels"));
}

static void
teardown (Fixture *f, gconstpointer data)
{
  (void) data;
  fixture_remove_tree (f->tmp);
  g_free (f->folder);
  g_free (f->tmp);
  g_free (f->demo);
}

/* --- Diffusers folders -------------------------------------------------------------------- */

static void
test_folder_opens (Fixture *f, gconstpointer data)
{
  (void) data;
  rewrite (f, UNET_FILE, &no_edit);
  rewrite (f, VAE_FILE, &no_edit);
  rewrite (f, TE_FILE, &no_edit);
  expect_opens (f->folder);
}

typedef struct
{
  const char *file;
  const char *component;        /* its folder */
  const char *tensor;
  const char *value;            /* a shape or a dtype */
  const char *original;         /* the shape the model needs */
} Case;

/* Left out: a tensor (or all whose names start so), and the weight the message must name. */
typedef struct
{
  const char *file;             /* diffusers folders: the component file */
  const char *component;
  const char *drop;
  const char *weight;
} MissingCase;

static void
test_folder_missing_tensor (Fixture *f, gconstpointer data)
{
  static const MissingCase cases[] = {
    /* tensors the UNet's structure is read from, and one it is not */
    { UNET_FILE, "unet", "down_blocks.0.resnets.0.conv1.weight",
      "unet weight 'down_blocks.0.resnets.0.conv1.weight'" },
    { UNET_FILE, "unet", "mid_block.attentions.0.proj_in.weight",
      "unet weight 'mid_block.attentions.0.proj_in.weight'" },
    { UNET_FILE, "unet", "up_blocks.1.resnets.1.conv2.weight",
      "unet weight 'up_blocks.1.resnets.1.conv2.weight'" },
    /* a whole resnet */
    { UNET_FILE, "unet", "up_blocks.2.resnets.1.", "unet weight 'up_blocks.2.resnets.1." },
    { VAE_FILE, "vae", "decoder.up_blocks.0.upsamplers.0.conv.weight",
      "vae weight 'decoder.up_blocks.0.upsamplers.0.conv.weight'" },
    { TE_FILE, "text_encoder", "text_model.encoder.layers.2.mlp.fc2.weight",
      "text_encoder weight 'text_model.encoder.layers.2.mlp.fc2.weight'" },
    { TE_FILE, "text_encoder", "text_model.embeddings.token_embedding.weight",
      "text_encoder weight 'text_model.embeddings.token_embedding.weight'" },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Edit edit = { EDIT_DROP, cases[i].drop, NULL };
      g_autofree char *where = g_strdup_printf ("is missing from '%s/%s'", f->folder,
                                                cases[i].component);

      rewrite (f, cases[i].file, &edit);
      expect_refused (f->folder, GESSO_ERROR_MISSING, cases[i].weight, where, "download", NULL);
      rewrite (f, cases[i].file, &no_edit);
    }
}

static void
test_folder_wrong_shape (Fixture *f, gconstpointer data)
{
  static const Case cases[] = {
    { UNET_FILE, "unet", "down_blocks.0.resnets.0.conv2.weight", "[32, 32, 1, 1]",
      "[32, 32, 3, 3]" },
    { VAE_FILE, "vae", "encoder.down_blocks.1.resnets.0.conv1.weight", "[64, 32, 1, 1]",
      "[64, 32, 3, 3]" },
    { TE_FILE, "text_encoder", "text_model.encoder.layers.1.self_attn.v_proj.weight",
      "[128, 32]", "[128, 128]" },
  };
  const Edit conv_in = { EDIT_RESHAPE, "conv_in.weight", "[32, 4, 1, 1]" };
  g_autofree char *config = g_build_filename (f->folder, "unet", "config.json", NULL);

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Edit edit = { EDIT_RESHAPE, cases[i].tensor, cases[i].value };
      g_autofree char *tensor = g_strdup_printf ("%s weight '%s'", cases[i].component,
                                                 cases[i].tensor);
      g_autofree char *shapes = g_strdup_printf ("has shape %s, expected %s", cases[i].value,
                                                 cases[i].original);
      g_autofree char *where = g_strdup_printf ("'%s/%s'", f->folder, cases[i].component);

      rewrite (f, cases[i].file, &edit);
      expect_refused (f->folder, GESSO_ERROR_CORRUPT, tensor, shapes, where, NULL);
      rewrite (f, cases[i].file, &no_edit);
    }

  /* a tensor the UNet's structure is read from: the config and the weights disagree */
  rewrite (f, UNET_FILE, &conv_in);
  expect_refused (f->folder, GESSO_ERROR_CORRUPT, config, "conv_in",
                  "3 in the config, 1 in the weights", NULL);
}

static void
test_folder_wrong_dtype (Fixture *f, gconstpointer data)
{
  static const Case cases[] = {
    { UNET_FILE, "unet", "down_blocks.2.attentions.0.transformer_blocks.0.ff.net.2.weight",
      "I32", NULL },
    { VAE_FILE, "vae", "decoder.conv_out.weight", "F64", NULL },
    { TE_FILE, "text_encoder", "text_model.final_layer_norm.weight", "F8_E4M3", NULL },
    /* read by rows, not whole */
    { TE_FILE, "text_encoder", "text_model.embeddings.token_embedding.weight", "I8", NULL },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Edit edit = { EDIT_RETYPE, cases[i].tensor, cases[i].value };
      g_autofree char *tensor = g_strdup_printf ("%s weight '%s' in '%s/%s'",
                                                 cases[i].component, cases[i].tensor,
                                                 f->folder, cases[i].component);
      g_autofree char *dtype = g_strdup_printf ("is stored as %s", cases[i].value);

      rewrite (f, cases[i].file, &edit);
      expect_refused (f->folder, GESSO_ERROR_UNSUPPORTED, tensor, dtype, "F32, F16",
                      "convert", NULL);
      rewrite (f, cases[i].file, &no_edit);
    }
}

static void
test_folder_truncated (Fixture *f, gconstpointer data)
{
  static const char *const files[] = { UNET_FILE, TE_FILE };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *last = NULL;
      g_autoptr (GBytes) whole = component_bytes (f, files[i], &no_edit, &last);
      gsize size = g_bytes_get_size (whole);
      /* half of the file, or all of it but its last byte */
      gsize kept = i == 0 ? size / 2 : size - 1;
      g_autoptr (GBytes) part = cut (whole, kept);
      g_autofree char *path = fixture_write (f->folder, files[i], part);
      g_autofree char *tensor = g_strdup_printf ("%s: tensor '%s'", path, last);
      g_autofree char *numbers = g_strdup_printf ("ends at byte %" G_GSIZE_FORMAT " but the "
                                                  "file has %" G_GSIZE_FORMAT " bytes", size,
                                                  kept);

      expect_refused (f->folder, GESSO_ERROR_CORRUPT, tensor, numbers, "truncated",
                      "download", NULL);
      rewrite (f, files[i], &no_edit);
    }

  /* cut inside the header: where the header would end */
  {
    g_autoptr (GBytes) whole = component_bytes (f, VAE_FILE, &no_edit, NULL);
    g_autoptr (GBytes) part = cut (whole, 20);
    g_autofree char *path = fixture_write (f->folder, VAE_FILE, part);
    guint64 header;
    g_autofree char *numbers = NULL;

    memcpy (&header, g_bytes_get_data (whole, NULL), 8);
    numbers = g_strdup_printf ("the header ends at byte %" G_GUINT64_FORMAT " but the file "
                               "has 20 bytes", 8 + GUINT64_FROM_LE (header));
    expect_refused (f->folder, GESSO_ERROR_CORRUPT, path, numbers, "truncated", "download",
                    NULL);
  }
}

static void
test_folder_sdxl (Fixture *f, gconstpointer data)
{
  /* SDXL's UNet embeds the image size and crop besides the pooled text: add_embedding, whose
   * 2816 inputs are 1280 pooled + 6 x 256 Fourier features */
  const Edit add_embedding = { EDIT_ADD, "add_embedding.linear_1.weight", "[8, 2816]" };
  g_autoptr (GBytes) bytes = NULL;
  FixtureSt st;

  (void) data;
  /* SDXL's second text encoder, listed in model_index.json */
  g_free (fixture_write_text (f->folder, "model_index.json",
    "{\"_class_name\": \"StableDiffusionXLPipeline\","
    " \"scheduler\": [\"diffusers\", \"DDIMScheduler\"],"
    " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],"
    " \"text_encoder_2\": [\"transformers\", \"CLIPTextModelWithProjection\"],"
    " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],"
    " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],"
    " \"vae\": [\"diffusers\", \"AutoencoderKL\"]}"));
  g_free (fixture_write_text (f->folder, "text_encoder_2/config.json", "{}"));
  fixture_st_init (&st);
  fixture_st_add (&st, "text_model.final_layer_norm.weight", "F16", "[64]", NULL);
  fixture_st_add (&st, "text_projection.weight", "F16", "[64, 64]", NULL);
  bytes = fixture_st_finish (&st);
  g_free (fixture_write (f->folder, "text_encoder_2/model.safetensors", bytes));
  /* SDXL runs now: a second text encoder without its weights is named */
  expect_refused (f->folder, GESSO_ERROR_MISSING,
                  "text_encoder_2 weight 'text_model.embeddings.token_embedding.weight' is "
                  "missing", "text_encoder_2'", NULL);

  /* one text encoder, but the UNet's size conditioning, which its config does not declare */
  fixture_remove_tree (f->folder);
  fixture_copy_tree (f->demo, f->folder);
  rewrite (f, UNET_FILE, &add_embedding);
  expect_refused (f->folder, GESSO_ERROR_CORRUPT, "does not describe this UNet's weights",
                  "added embedding input (add_embedding.linear_1): 0 in the config, 2816 in "
                  "the weights", NULL);
}

/* A diffusers folder without tokenizer/ gets the bundled CLIP table, which the demo model's
 * small text encoder cannot read: the message says it needs its own files. Half a tokenizer
 * is a mistake to point out, not to paper over with the bundled one. */
static void
test_folder_no_tokenizer (Fixture *f, gconstpointer data)
{
  g_autofree char *tokenizer = g_build_filename (f->folder, "tokenizer", NULL);
  g_autofree char *vocab = g_build_filename (tokenizer, "vocab.json", NULL);
  g_autofree char *half = g_strdup_printf ("%s has merges.txt but no vocab.json", tokenizer);

  (void) data;
  fixture_remove_tree (vocab);
  expect_refused (f->folder, GESSO_ERROR_MISSING, half, "incomplete tokenizer", NULL);
  fixture_remove_tree (tokenizer);
  expect_refused (f->folder, GESSO_ERROR_MISSING, "not CLIP's 49408",
                  "vocab.json and merges.txt", NULL);
}

/* --- Single files ------------------------------------------------------------------------- */

#define SD1_TEXT "cond_stage_model.transformer."

/* The single file with EDIT, its tokenizer beside it; returns its path. */
static char *
write_single_edited (const Fixture *f, const Edit *edit)
{
  g_autoptr (GBytes) bytes = single_file_bytes (f, SD1_TEXT, edit, NULL);

  return write_single (f, bytes, TRUE);
}

static void
test_single_opens (Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_single_edited (f, &no_edit);

  (void) data;
  expect_opens (path);
}

/* Single files are named CompVis-style, messages name weights diffusers-style. */
typedef struct
{
  const char *key;              /* as stored */
  const char *weight;           /* "unet weight 'down_blocks...'" */
  const char *value;
  const char *original;
} SingleCase;

static void
test_single_missing_tensor (Fixture *f, gconstpointer data)
{
  static const MissingCase cases[] = {
    /* single tensors */
    { NULL, NULL, "model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
      "unet weight 'down_blocks.0.resnets.0.conv1.weight'" },
    { NULL, NULL, "model.diffusion_model.input_blocks.2.0.op.weight",
      "unet weight 'down_blocks.0.downsamplers.0.conv.weight'" },
    { NULL, NULL, "model.diffusion_model.output_blocks.1.1.proj_out.weight",
      "unet weight 'up_blocks.0.attentions.1.proj_out.weight'" },
    { NULL, NULL, "first_stage_model.encoder.mid.attn_1.q.weight",
      "vae weight 'encoder.mid_block.attentions.0.to_q.weight'" },
    { NULL, NULL, "first_stage_model.quant_conv.weight", "vae weight 'quant_conv.weight'" },
    { NULL, NULL, SD1_TEXT "text_model.encoder.layers.0.self_attn.k_proj.weight",
      "text_encoder weight 'text_model.encoder.layers.0.self_attn.k_proj.weight'" },
    /* whole blocks, which the structure is read from: a downsampler, a resnet, the last
     * output block, a VAE level and attention, a text encoder layer */
    { NULL, NULL, "model.diffusion_model.input_blocks.2.",
      "unet weight 'down_blocks.0.downsamplers.0.conv.weight'" },
    { NULL, NULL, "model.diffusion_model.input_blocks.1.",
      "unet weight 'down_blocks.0.resnets.0." },
    { NULL, NULL, "model.diffusion_model.output_blocks.5.",
      "unet weight 'up_blocks.2.resnets.1." },
    { NULL, NULL, "first_stage_model.decoder.up.2.", "vae weight 'decoder.up_blocks.0." },
    { NULL, NULL, "first_stage_model.encoder.mid.attn_1.",
      "vae weight 'encoder.mid_block.attentions.0." },
    { NULL, NULL, SD1_TEXT "text_model.encoder.layers.0.",
      "text_encoder weight 'text_model.encoder.layers.0." },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Edit edit = { EDIT_DROP, cases[i].drop, NULL };
      g_autofree char *path = write_single_edited (f, &edit);
      g_autofree char *where = g_strdup_printf ("is missing from '%s'", path);

      expect_refused (path, GESSO_ERROR_MISSING, cases[i].weight, where, "download", NULL);
    }
}

/* A checkpoint without one of its parts. */
static void
test_single_missing_component (Fixture *f, gconstpointer data)
{
  static const struct
  {
    const char *prefix;
    const char *what;
  } cases[] = {
    { "model.diffusion_model.", "has no UNet weights" },
    { "first_stage_model.", "has no VAE weights" },
    { SD1_TEXT, "has no text encoder weights" },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Edit edit = { EDIT_DROP, cases[i].prefix, NULL };
      g_autofree char *path = write_single_edited (f, &edit);
      g_autofree char *what = g_strdup_printf ("'%s' %s", path, cases[i].what);

      expect_refused (path, GESSO_ERROR_MISSING, what,
                      "Gesso needs the whole checkpoint (UNet, VAE and text encoder)", NULL);
    }
}

static void
test_single_wrong_shape (Fixture *f, gconstpointer data)
{
  static const SingleCase cases[] = {
    { "model.diffusion_model.output_blocks.2.0.out_layers.3.weight",
      "unet weight 'up_blocks.1.resnets.0.conv2.weight'", "[64, 64, 1, 1]", "[64, 64, 3, 3]" },
    { "first_stage_model.decoder.up.1.block.0.conv1.weight",
      "vae weight 'decoder.up_blocks.1.resnets.0.conv1.weight'", "[64, 64, 1, 1]",
      "[64, 64, 3, 3]" },
    { SD1_TEXT "text_model.encoder.layers.0.mlp.fc2.weight",
      "text_encoder weight 'text_model.encoder.layers.0.mlp.fc2.weight'", "[128, 256]",
      "[128, 512]" },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Edit edit = { EDIT_RESHAPE, cases[i].key, cases[i].value };
      g_autofree char *path = write_single_edited (f, &edit);
      g_autofree char *shapes = g_strdup_printf ("has shape %s, expected %s", cases[i].value,
                                                 cases[i].original);
      g_autofree char *where = g_strdup_printf ("'%s'", path);

      expect_refused (path, GESSO_ERROR_CORRUPT, cases[i].weight, shapes, where, NULL);
    }
}

static void
test_single_wrong_dtype (Fixture *f, gconstpointer data)
{
  static const SingleCase cases[] = {
    { "model.diffusion_model.middle_block.1.proj_in.weight",
      "unet weight 'mid_block.attentions.0.proj_in.weight'", "I32", NULL },
    { "first_stage_model.quant_conv.weight", "vae weight 'quant_conv.weight'", "U8", NULL },
    { SD1_TEXT "text_model.embeddings.position_embedding.weight",
      "text_encoder weight 'text_model.embeddings.position_embedding.weight'", "F64", NULL },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Edit edit = { EDIT_RETYPE, cases[i].key, cases[i].value };
      g_autofree char *path = write_single_edited (f, &edit);
      g_autofree char *where = g_strdup_printf ("in '%s' is stored as %s", path,
                                                cases[i].value);

      expect_refused (path, GESSO_ERROR_UNSUPPORTED, cases[i].weight, where, "F32, F16",
                      "convert", NULL);
    }
}

static void
test_single_truncated (Fixture *f, gconstpointer data)
{
  g_autofree char *last = NULL;
  g_autoptr (GBytes) whole = single_file_bytes (f, SD1_TEXT, &no_edit, &last);
  gsize size = g_bytes_get_size (whole);
  g_autoptr (GBytes) part = cut (whole, size / 3);
  g_autofree char *path = write_single (f, part, TRUE);
  g_autofree char *tensor = g_strdup_printf ("%s: tensor '%s'", path, last);
  g_autofree char *numbers = g_strdup_printf ("ends at byte %" G_GSIZE_FORMAT " but the file "
                                              "has %" G_GSIZE_FORMAT " bytes", size, size / 3);

  (void) data;
  expect_refused (path, GESSO_ERROR_CORRUPT, tensor, numbers, "truncated", "download", NULL);
}

static void
test_single_sdxl (Fixture *f, gconstpointer data)
{
  /* SDXL files keep their two text encoders under "conditioner.embedders.N.": CLIP ViT-L
   * with transformers names, OpenCLIP ViT-bigG with OpenCLIP names */
  const Edit big_g = { EDIT_ADD, "conditioner.embedders.1.model.ln_final.weight", "[64]" };
  g_autoptr (GBytes) bytes = single_file_bytes (f, "conditioner.embedders.0.transformer.",
                                                &big_g, NULL);
  g_autofree char *path = write_single (f, bytes, TRUE);

  (void) data;
  expect_refused (path, GESSO_ERROR_MISSING, path,
                  "text_encoder_2 weight 'text_model.embeddings.token_embedding.weight' is "
                  "missing", NULL);
}

/* A single file alone: the bundled CLIP table, unless the text encoder is not CLIP-sized
 * (the demo model's is not: the message says it needs its own files) or half a tokenizer lies
 * beside it. */
static void
test_single_no_tokenizer (Fixture *f, gconstpointer data)
{
  g_autoptr (GBytes) bytes = single_file_bytes (f, SD1_TEXT, &no_edit, NULL);
  g_autofree char *path = write_single (f, bytes, FALSE);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *tokenizer = g_build_filename (dir, "tokenizer", NULL);
  g_autofree char *file = g_strdup_printf ("no tokenizer for '%s'", path);
  g_autofree char *incomplete = g_strdup_printf ("incomplete tokenizer for '%s'", path);
  g_autofree char *beside = g_strdup_printf ("%s has neither vocab.json nor merges.txt", dir);
  g_autofree char *half = g_strdup_printf ("%s has vocab.json but no merges.txt", tokenizer);
  g_autofree char *vocab = g_build_filename (f->demo, "tokenizer", "vocab.json", NULL);
  g_autofree char *contents = NULL;
  gsize size;

  (void) data;
  expect_refused (path, GESSO_ERROR_MISSING, file, "not CLIP's 49408",
                  "put the model's vocab.json and merges.txt beside the file", NULL);

  g_assert_true (g_file_get_contents (vocab, &contents, &size, NULL));
  g_free (fixture_write_text (tokenizer, "vocab.json", contents));
  expect_refused (path, GESSO_ERROR_MISSING, incomplete, beside, half, NULL);
}

/* --- Registration ------------------------------------------------------------------------- */

static void
add (const char *path, void (*func) (Fixture *, gconstpointer))
{
  g_test_add (path, Fixture, NULL, setup, func, teardown);
}

static void
skip_without_demo (void)
{
  g_test_skip ("the demo model data/models/gesso-emoji-64 is not there (GESSO_SOURCE_DIR)");
}

int
main (int argc, char **argv)
{
  g_autofree char *demo = demo_model_path ();

  g_test_init (&argc, &argv, NULL);
  if (demo == NULL || !g_file_test (demo, G_FILE_TEST_IS_DIR))
    {
      g_test_add_func ("/core/bad-models/skipped", skip_without_demo);
      return g_test_run ();
    }
  add ("/core/bad-models/folder/opens", test_folder_opens);
  add ("/core/bad-models/folder/missing-tensor", test_folder_missing_tensor);
  add ("/core/bad-models/folder/wrong-shape", test_folder_wrong_shape);
  add ("/core/bad-models/folder/wrong-dtype", test_folder_wrong_dtype);
  add ("/core/bad-models/folder/truncated", test_folder_truncated);
  add ("/core/bad-models/folder/sdxl", test_folder_sdxl);
  add ("/core/bad-models/folder/no-tokenizer", test_folder_no_tokenizer);
  add ("/core/bad-models/single-file/opens", test_single_opens);
  add ("/core/bad-models/single-file/missing-tensor", test_single_missing_tensor);
  add ("/core/bad-models/single-file/missing-component", test_single_missing_component);
  add ("/core/bad-models/single-file/wrong-shape", test_single_wrong_shape);
  add ("/core/bad-models/single-file/wrong-dtype", test_single_wrong_dtype);
  add ("/core/bad-models/single-file/truncated", test_single_truncated);
  add ("/core/bad-models/single-file/sdxl", test_single_sdxl);
  add ("/core/bad-models/single-file/no-tokenizer", test_single_no_tokenizer);
  return g_test_run ();
}
