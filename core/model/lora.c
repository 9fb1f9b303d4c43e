/* LoRA files read and matched to a model's weights (see lora.h). */
#include "model/lora.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "io/io-private.h"
#include "io/safetensors.h"
#include "tensor/half.h"

/* A module of the file before it is matched: its key stem and its two factors' entries. */
typedef struct
{
  char *stem;                   /* the file's module key, layout prefixes and suffixes off */
  GessoComponent component;
  const GessoSafetensorsEntry *down, *up, *alpha;
} Pending;

struct GessoLora
{
  char *path;
  GessoSafetensors *file;
  GessoLoraLayout layout;
  GArray *pending;              /* of Pending, in file order */
  GArray *modules;              /* of GessoLoraModule, after bind */
  float peft_scale[GESSO_COMPONENT_COUNT];   /* lora_alpha / r from the metadata; 1 if none */
};

/* LyCORIS kinds other than LoRA/LoCon, by a weight suffix only they use. */
static const struct
{
  const char *suffix;
  const char *kind;
} lycoris_kinds[] = {
  { ".hada_w1_a", "LoHa" }, { ".hada_w1_b", "LoHa" }, { ".lokr_w1", "LoKr" },
  { ".lokr_w1_a", "LoKr" }, { ".a1.weight", "GLoRA" }, { ".oft_blocks", "OFT" },
  { ".oft_diag", "OFT" }, { ".diff", "a full-weight difference (LyCORIS 'full')" },
  { ".w_norm", "a norm-layer LyCORIS" },
};

static void
pending_clear (gpointer data)
{
  g_free (((Pending *) data)->stem);
}

static void
module_clear (gpointer data)
{
  GessoLoraModule *m = data;

  g_free (m->name);
  g_free (m->key);
  g_free (m->up);
  g_free (m->down);
}

void
gesso_lora_free (GessoLora *lora)
{
  if (lora == NULL)
    return;
  g_clear_pointer (&lora->pending, g_array_unref);
  g_clear_pointer (&lora->modules, g_array_unref);
  g_clear_pointer (&lora->file, gesso_safetensors_free);
  g_free (lora->path);
  g_free (lora);
}

const char *
gesso_lora_layout_name (GessoLoraLayout layout)
{
  switch (layout)
    {
    case GESSO_LORA_KOHYA:
      return "kohya/A1111";
    case GESSO_LORA_PEFT:
      return "diffusers (PEFT)";
    case GESSO_LORA_DIFFUSERS_OLD:
      return "diffusers (lora.down/lora.up)";
    case GESSO_LORA_ATTN_PROCESSOR:
    default:
      return "diffusers attention processor";
    }
}

/* --- reading the file's keys --------------------------------------------------------------- */

/* The component a key's prefix names, and the prefix's length; FALSE for a key of no part
 * Gesso knows (kohya's lora_te2_ of SDXL, say, on an engine without that encoder). */
static gboolean
key_component (GessoLoraLayout layout, const char *key, GessoComponent *component,
               size_t *prefix_len)
{
  static const struct
  {
    GessoLoraLayout layout;
    const char *prefix;
    GessoComponent component;
  } prefixes[] = {
    { GESSO_LORA_KOHYA, "lora_unet_", GESSO_COMPONENT_UNET },
    { GESSO_LORA_KOHYA, "lora_te1_", GESSO_COMPONENT_TEXT_ENCODER },
    { GESSO_LORA_KOHYA, "lora_te_", GESSO_COMPONENT_TEXT_ENCODER },
    { GESSO_LORA_KOHYA, "lora_te2_", GESSO_COMPONENT_TEXT_ENCODER_2 },
    { GESSO_LORA_PEFT, "unet.", GESSO_COMPONENT_UNET },
    { GESSO_LORA_PEFT, "text_encoder.", GESSO_COMPONENT_TEXT_ENCODER },
    { GESSO_LORA_PEFT, "text_encoder_2.", GESSO_COMPONENT_TEXT_ENCODER_2 },
    { GESSO_LORA_DIFFUSERS_OLD, "unet.", GESSO_COMPONENT_UNET },
    { GESSO_LORA_DIFFUSERS_OLD, "text_encoder.", GESSO_COMPONENT_TEXT_ENCODER },
    { GESSO_LORA_DIFFUSERS_OLD, "text_encoder_2.", GESSO_COMPONENT_TEXT_ENCODER_2 },
    { GESSO_LORA_ATTN_PROCESSOR, "", GESSO_COMPONENT_UNET },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (prefixes); i++)
    if (prefixes[i].layout == layout && g_str_has_prefix (key, prefixes[i].prefix))
      {
        *component = prefixes[i].component;
        *prefix_len = strlen (prefixes[i].prefix);
        return TRUE;
      }
  return FALSE;
}

/* The layout's down/up/alpha suffixes; a key with none of them is not a factor. */
typedef enum { ROLE_NONE, ROLE_DOWN, ROLE_UP, ROLE_ALPHA } Role;

static Role
key_role (GessoLoraLayout layout, const char *key, size_t *stem_end)
{
  static const struct
  {
    GessoLoraLayout layout;
    const char *suffix;
    Role role;
  } suffixes[] = {
    { GESSO_LORA_KOHYA, ".lora_down.weight", ROLE_DOWN },
    { GESSO_LORA_KOHYA, ".lora_up.weight", ROLE_UP },
    { GESSO_LORA_KOHYA, ".alpha", ROLE_ALPHA },
    { GESSO_LORA_PEFT, ".lora_A.weight", ROLE_DOWN },
    { GESSO_LORA_PEFT, ".lora_B.weight", ROLE_UP },
    { GESSO_LORA_DIFFUSERS_OLD, ".lora.down.weight", ROLE_DOWN },
    { GESSO_LORA_DIFFUSERS_OLD, ".lora.up.weight", ROLE_UP },
    { GESSO_LORA_ATTN_PROCESSOR, "_lora.down.weight", ROLE_DOWN },
    { GESSO_LORA_ATTN_PROCESSOR, "_lora.up.weight", ROLE_UP },
  };
  const size_t len = strlen (key);

  for (size_t i = 0; i < G_N_ELEMENTS (suffixes); i++)
    if (suffixes[i].layout == layout && g_str_has_suffix (key, suffixes[i].suffix))
      {
        *stem_end = len - strlen (suffixes[i].suffix);
        return suffixes[i].role;
      }
  return ROLE_NONE;
}

static gboolean
detect_layout (GessoLora *lora, GError **error)
{
  gboolean kohya = FALSE, peft = FALSE, old = FALSE, processor = FALSE;
  g_autofree char *shown = gesso_io_display (lora->path);

  for (guint i = 0; i < gesso_safetensors_count (lora->file); i++)
    {
      const char *key = gesso_safetensors_entry (lora->file, i)->name;

      for (size_t k = 0; k < G_N_ELEMENTS (lycoris_kinds); k++)
        if (g_str_has_suffix (key, lycoris_kinds[k].suffix))
          {
            g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                         "'%s' is a LyCORIS %s (tensor '%s'), not a LoRA: Gesso loads LoRA and "
                         "LoCon files only", shown, lycoris_kinds[k].kind, key);
            return FALSE;
          }
      kohya |= g_str_has_suffix (key, ".lora_down.weight");
      peft |= g_str_has_suffix (key, ".lora_A.weight");
      old |= g_str_has_suffix (key, ".lora.down.weight");
      processor |= g_str_has_suffix (key, "_lora.down.weight") && strstr (key, ".processor.");
    }
  if (kohya + peft + old + processor != 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   kohya + peft + old + processor == 0
                     ? "'%s' is not a LoRA: it holds no lora_down/lora_up (kohya), lora_A/lora_B "
                       "(diffusers) or processor *_lora factors"
                     : "'%s' mixes LoRA layouts (kohya, diffusers and attention-processor keys "
                       "together): Gesso cannot tell how to scale it", shown);
      return FALSE;
    }
  lora->layout = kohya ? GESSO_LORA_KOHYA
                 : peft ? GESSO_LORA_PEFT
                 : old ? GESSO_LORA_DIFFUSERS_OLD : GESSO_LORA_ATTN_PROCESSOR;
  return TRUE;
}

/* diffusers writes PEFT's lora_alpha and r per part into the metadata
 * ("unet.lora_alpha": 8, "unet.r": 4); scale = lora_alpha / r, else 1. */
static void
read_peft_scales (GessoLora *lora)
{
  static const struct
  {
    const char *part;
    GessoComponent component;
  } parts[] = {
    { "unet", GESSO_COMPONENT_UNET },
    { "text_encoder", GESSO_COMPONENT_TEXT_ENCODER },
    { "text_encoder_2", GESSO_COMPONENT_TEXT_ENCODER_2 },
  };
  const char *json = gesso_safetensors_metadata (lora->file, "lora_adapter_metadata");
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o;

  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    lora->peft_scale[c] = 1.0f;
  if (json == NULL || !json_parser_load_from_data (parser, json, -1, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return;
  o = json_node_get_object (json_parser_get_root (parser));
  for (size_t i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_autofree char *alpha = g_strdup_printf ("%s.lora_alpha", parts[i].part);
      g_autofree char *rank = g_strdup_printf ("%s.r", parts[i].part);

      if (json_object_has_member (o, alpha) && json_object_has_member (o, rank)
          && json_object_get_double_member (o, rank) > 0)
        lora->peft_scale[parts[i].component]
          = (float) (json_object_get_double_member (o, alpha)
                     / json_object_get_double_member (o, rank));
    }
}

static Pending *
pending_for (GessoLora *lora, GHashTable *by_stem, const char *stem, GessoComponent component)
{
  gpointer index;
  Pending p = { 0 };

  if (g_hash_table_lookup_extended (by_stem, stem, NULL, &index))
    return &g_array_index (lora->pending, Pending, GPOINTER_TO_UINT (index));
  p.stem = g_strdup (stem);
  p.component = component;
  g_array_append_val (lora->pending, p);
  g_hash_table_insert (by_stem, g_strdup (stem), GUINT_TO_POINTER (lora->pending->len - 1));
  return &g_array_index (lora->pending, Pending, lora->pending->len - 1);
}

static gboolean
collect_modules (GessoLora *lora, GError **error)
{
  g_autoptr (GHashTable) by_stem = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *shown = gesso_io_display (lora->path);

  for (guint i = 0; i < gesso_safetensors_count (lora->file); i++)
    {
      const GessoSafetensorsEntry *e = gesso_safetensors_entry (lora->file, i);
      GessoComponent component;
      size_t prefix_len, stem_end;
      Role role = key_role (lora->layout, e->name, &stem_end);
      Pending *p;

      if (role == ROLE_NONE || !key_component (lora->layout, e->name, &component, &prefix_len)
          || stem_end <= prefix_len)
        continue;               /* another part's factors, or a non-factor entry */
      {
        g_autofree char *stem = g_strndup (e->name + prefix_len, stem_end - prefix_len);
        p = pending_for (lora, by_stem, stem, component);
      }
      if (role == ROLE_DOWN)
        p->down = e;
      else if (role == ROLE_UP)
        p->up = e;
      else
        p->alpha = e;
    }
  if (lora->pending->len == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "'%s' is a %s LoRA for parts of a model Gesso does not run (none of its keys "
                   "is for a UNet or a text encoder it has)", shown,
                   gesso_lora_layout_name (lora->layout));
      return FALSE;
    }
  for (guint i = 0; i < lora->pending->len; i++)
    {
      const Pending *p = &g_array_index (lora->pending, Pending, i);

      if (p->down == NULL || p->up == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "'%s' is damaged: LoRA module '%s' has no %s factor", shown, p->stem,
                       p->down == NULL ? "down (A)" : "up (B)");
          return FALSE;
        }
    }
  return TRUE;
}

GessoLora *
gesso_lora_open (const char *path, GError **error)
{
  g_autoptr (GessoLora) lora = g_new0 (GessoLora, 1);

  g_return_val_if_fail (path != NULL, NULL);
  lora->path = g_strdup (path);
  lora->pending = g_array_new (FALSE, TRUE, sizeof (Pending));
  g_array_set_clear_func (lora->pending, pending_clear);
  lora->modules = g_array_new (FALSE, TRUE, sizeof (GessoLoraModule));
  g_array_set_clear_func (lora->modules, module_clear);
  if (gesso_io_has_pickle_extension (path))
    {
      gesso_io_set_pickle_error (error, path);
      return NULL;
    }
  if ((lora->file = gesso_safetensors_open (path, error)) == NULL
      || !detect_layout (lora, error) || !collect_modules (lora, error))
    return NULL;
  read_peft_scales (lora);
  return g_steal_pointer (&lora);
}

/* --- facts about the file ------------------------------------------------------------------- */

const char *
gesso_lora_path (const GessoLora *lora)
{
  return lora->path;
}

GessoLoraLayout
gesso_lora_layout (const GessoLora *lora)
{
  return lora->layout;
}

guint
gesso_lora_count (const GessoLora *lora)
{
  return lora->pending->len;
}

guint
gesso_lora_count_for (const GessoLora *lora, GessoComponent component)
{
  guint n = 0;

  for (guint i = 0; i < lora->pending->len; i++)
    n += g_array_index (lora->pending, Pending, i).component == component;
  return n;
}

int64_t
gesso_lora_max_rank (const GessoLora *lora)
{
  int64_t rank = 0;

  for (guint i = 0; i < lora->pending->len; i++)
    rank = MAX (rank, g_array_index (lora->pending, Pending, i).down->shape[0]);
  return rank;
}

static gboolean
mentions_lcm (const char *text)
{
  g_autofree char *lower = text != NULL ? g_ascii_strdown (text, -1) : NULL;

  return lower != NULL && (strstr (lower, "lcm") != NULL
                           || strstr (lower, "latent consistency") != NULL
                           || strstr (lower, "latent-consistency") != NULL);
}

gboolean
gesso_lora_is_lcm (const GessoLora *lora)
{
  static const char *const title_keys[] = { "ss_output_name", "modelspec.title" };
  g_autofree char *base = g_path_get_basename (lora->path);

  if (mentions_lcm (base))
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (title_keys); i++)
    if (mentions_lcm (gesso_safetensors_metadata (lora->file, title_keys[i])))
      return TRUE;
  return FALSE;
}

const char *
gesso_lora_family_guess (const GessoLora *lora)
{
  for (guint i = 0; i < gesso_safetensors_count (lora->file); i++)
    {
      const char *key = gesso_safetensors_entry (lora->file, i)->name;
      if (g_str_has_prefix (key, "lora_te2_") || g_str_has_prefix (key, "text_encoder_2.")
          || strstr (key, "add_embedding") != NULL)
        return "SDXL";
    }
  /* the text conditioning's width: what cross-attention's key projection reads */
  for (guint i = 0; i < lora->pending->len; i++)
    {
      const Pending *p = &g_array_index (lora->pending, Pending, i);
      const gboolean cross = p->component == GESSO_COMPONENT_UNET
                             && (g_str_has_suffix (p->stem, "attn2_to_k")
                                 || g_str_has_suffix (p->stem, "attn2.to_k")
                                 || g_str_has_suffix (p->stem, "attn2.processor.to_k"));
      const gboolean text = p->component == GESSO_COMPONENT_TEXT_ENCODER
                            || p->component == GESSO_COMPONENT_TEXT_ENCODER_2;
      const int64_t width = p->down->ndim >= 2 ? p->down->shape[1] : 0;

      if (!cross && !text)
        continue;
      if (width == 768)
        return "Stable Diffusion 1.x";
      if (width == 1024)
        return "Stable Diffusion 2.x";
      if (width == 2048)
        return "SDXL";
    }
  return NULL;
}

const GessoLoraModule *
gesso_lora_module (const GessoLora *lora, guint index)
{
  g_return_val_if_fail (index < lora->modules->len, NULL);
  return &g_array_index (lora->modules, GessoLoraModule, index);
}

void
gesso_lora_module_widen (const GessoLoraModule *m, float *up, float *down)
{
  const size_t n_up = (size_t) (m->out_features * m->rank);
  const size_t n_down = (size_t) (m->rank * m->in_features);

  if (m->up_dtype == GESSO_DTYPE_F16)
    gesso_f16_to_f32_array (m->up, up, n_up);
  else if (m->up_dtype == GESSO_DTYPE_BF16)
    gesso_bf16_to_f32_array (m->up, up, n_up);
  else
    memcpy (up, m->up, n_up * sizeof (float));
  if (m->down_dtype == GESSO_DTYPE_F16)
    gesso_f16_to_f32_array (m->down, down, n_down);
  else if (m->down_dtype == GESSO_DTYPE_BF16)
    gesso_bf16_to_f32_array (m->down, down, n_down);
  else
    memcpy (down, m->down, n_down * sizeof (float));
}

/* --- matching to a model --------------------------------------------------------------------- */

/* The stem as the model's weight name would spell it in this layout: kohya's stems are module
 * paths with '_' for '.', so the model's names are spelled that way to look them up. */
static char *
kohya_spelling (const char *module)
{
  char *s = g_strdup (module);

  g_strdelimit (s, ".", '_');
  return s;
}

/* The attention processor's "attn1.processor.to_q" is the module "attn1.to_q";
 * "to_out" is "to_out.0". */
static char *
processor_module (const char *stem)
{
  g_autofree char *plain = NULL;
  char *at = strstr (stem, ".processor.");

  if (at == NULL)
    return g_strdup (stem);
  plain = g_strdup_printf ("%.*s.%s", (int) (at - stem), stem, at + strlen (".processor."));
  if (g_str_has_suffix (plain, ".to_out"))
    return g_strconcat (plain, ".0", NULL);
  return g_steal_pointer (&plain);
}

/* Model weight names of COMPONENT by the spelling this layout's stems use. */
static GHashTable *
weight_names_by_stem (GessoLora *lora, GessoWeights *weights, GessoComponent component)
{
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (guint i = 0; i < gesso_weights_count (weights, component); i++)
    {
      const char *name = gesso_weights_name (weights, component, i);
      g_autofree char *module = NULL;

      if (!g_str_has_suffix (name, ".weight"))
        continue;
      module = g_strndup (name, strlen (name) - strlen (".weight"));
      g_hash_table_insert (names,
                           lora->layout == GESSO_LORA_KOHYA ? kohya_spelling (module)
                                                            : g_strdup (module),
                           g_strdup (name));
    }
  return names;
}

static char *
family_hint (const GessoLora *lora)
{
  const char *family = gesso_lora_family_guess (lora);

  return family ? g_strdup_printf ("; it seems made for %s", family) : g_strdup ("");
}

static gboolean
read_factor (const GessoSafetensorsEntry *e, void **data, GessoDType *dtype, GError **error)
{
  if (e->dtype != GESSO_DTYPE_F32 && e->dtype != GESSO_DTYPE_F16 && e->dtype != GESSO_DTYPE_BF16)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "LoRA tensor '%s' is not stored as F32, F16 or BF16", e->name);
      return FALSE;
    }
  *dtype = e->dtype;
  *data = g_try_malloc (MAX (e->nbytes, 1));
  if (*data == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "not enough memory for LoRA tensor '%s' (%" G_GUINT64_FORMAT " bytes)",
                   e->name, e->nbytes);
      return FALSE;
    }
  return gesso_safetensors_entry_read (e, 0, e->nbytes, *data, error);
}

static float
alpha_of (const Pending *p, int64_t rank, GError **error)
{
  float alpha = (float) rank;

  if (p->alpha != NULL && p->alpha->numel == 1
      && !gesso_safetensors_entry_to_f32 (p->alpha, &alpha, error))
    return NAN;
  return alpha;
}

/* Checks P's factors against the weight NAME and fills M. */
static gboolean
bind_module (GessoLora *lora, GessoWeights *weights, const Pending *p, const char *name,
             GessoLoraModule *m, GError **error)
{
  int ndim;
  int64_t shape[8], in = 1, rank = p->down->shape[0];
  int64_t down_in = 1, up_rank = 1;
  g_autofree char *hint = family_hint (lora);
  float alpha;

  gesso_weights_shape (weights, p->component, name, &ndim, shape);
  for (int d = 1; d < ndim; d++)
    in *= shape[d];
  for (int d = 1; d < p->down->ndim; d++)
    down_in *= p->down->shape[d];
  for (int d = 1; d < p->up->ndim; d++)
    up_rank *= p->up->shape[d];
  if (p->down->ndim < 2 || down_in != in || p->up->ndim < 2 || p->up->shape[0] != shape[0]
      || up_rank != rank)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "LoRA module '%s' does not fit the model: its factors make a [%" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT "] change (rank %" G_GINT64_FORMAT " / %" G_GINT64_FORMAT
                   ") for weight '%s' of [%" G_GINT64_FORMAT " x %" G_GINT64_FORMAT "]%s",
                   p->down->name, p->up->shape[0], down_in, rank, up_rank, name, shape[0], in,
                   hint);
      return FALSE;
    }
  if (isnan (alpha = alpha_of (p, rank, error)))
    return FALSE;
  m->component = p->component;
  m->name = g_strdup (name);
  m->key = g_strdup (p->down->name);
  m->rank = rank;
  m->out_features = shape[0];
  m->in_features = in;
  m->scale = lora->layout == GESSO_LORA_KOHYA ? alpha / (float) rank
             : lora->layout == GESSO_LORA_PEFT ? lora->peft_scale[p->component] : 1.0f;
  return read_factor (p->up, &m->up, &m->up_dtype, error)
         && read_factor (p->down, &m->down, &m->down_dtype, error);
}

gboolean
gesso_lora_bind (GessoLora *lora, GessoWeights *weights, GError **error)
{
  GHashTable *by_component[GESSO_COMPONENT_COUNT] = { 0 };
  gboolean ok = TRUE;

  g_array_set_size (lora->modules, 0);
  for (guint i = 0; ok && i < lora->pending->len; i++)
    {
      const Pending *p = &g_array_index (lora->pending, Pending, i);
      g_autofree char *module = lora->layout == GESSO_LORA_ATTN_PROCESSOR
                                  ? processor_module (p->stem) : g_strdup (p->stem);
      const char *name;
      GessoLoraModule m = { 0 };

      if (by_component[p->component] == NULL)
        by_component[p->component] = weight_names_by_stem (lora, weights, p->component);
      name = g_hash_table_lookup (by_component[p->component], module);
      if (name == NULL)
        {
          g_autofree char *hint = family_hint (lora);
          g_autofree char *shown = gesso_io_display (lora->path);

          g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                       "LoRA '%s' does not fit this model: its module '%s' matches no layer of "
                       "the model's %s%s", shown, p->down->name,
                       p->component == GESSO_COMPONENT_UNET ? "UNet"
                       : p->component == GESSO_COMPONENT_TEXT_ENCODER ? "text encoder"
                                                                      : "second text encoder",
                       hint);
          ok = FALSE;
          break;
        }
      ok = bind_module (lora, weights, p, name, &m, error);
      g_array_append_val (lora->modules, m);
    }
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    g_clear_pointer (&by_component[c], g_hash_table_unref);
  if (!ok)
    g_array_set_size (lora->modules, 0);
  return ok;
}

gboolean
gesso_lora_probe (const char *path, GessoLoraInfo *info, GError **error)
{
  g_autoptr (GessoLora) lora = gesso_lora_open (path, error);

  g_return_val_if_fail (info != NULL, FALSE);
  if (lora == NULL)
    return FALSE;
  info->layout = gesso_lora_layout_name (lora->layout);
  info->unet_layers = gesso_lora_count_for (lora, GESSO_COMPONENT_UNET);
  info->text_layers = gesso_lora_count (lora) - info->unet_layers;
  info->max_rank = gesso_lora_max_rank (lora);
  info->family = gesso_lora_family_guess (lora);
  return TRUE;
}

GessoWeightDelta *
gesso_lora_set_deltas (GessoLora *const *loras, const float *scales, int n,
                       GessoWeights *weights, gboolean *changes_text, GError **error)
{
  g_autoptr (GHashTable) heads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GessoWeightDelta *deltas;
  guint total = 0, k = 0;
  gboolean text = FALSE;

  for (int i = 0; i < n; i++)
    total += loras[i] != NULL ? loras[i]->modules->len : 0;
  deltas = g_new0 (GessoWeightDelta, MAX (total, 1));
  for (int i = 0; i < n; i++)
    for (guint j = 0; loras[i] != NULL && j < loras[i]->modules->len; j++)
      {
        const GessoLoraModule *m = gesso_lora_module (loras[i], j);
        GessoWeightDelta *d = &deltas[k++];
        g_autofree char *key = g_strdup_printf ("%d:%s", m->component, m->name);

        *d = (GessoWeightDelta) { .up = m->up, .down = m->down, .up_dtype = m->up_dtype,
                                  .down_dtype = m->down_dtype, .rows = m->out_features,
                                  .rank = m->rank, .cols = m->in_features,
                                  .scale = m->scale * scales[i],
                                  .next = g_hash_table_lookup (heads, key) };
        g_hash_table_insert (heads, g_steal_pointer (&key), d);
        text |= m->component == GESSO_COMPONENT_TEXT_ENCODER
                || m->component == GESSO_COMPONENT_TEXT_ENCODER_2;
        if (!gesso_weights_set_delta (weights, m->component, m->name, d, error))
          {
            gesso_weights_clear_deltas (weights);
            g_free (deltas);
            return NULL;
          }
      }
  if (changes_text != NULL)
    *changes_text = text;
  return deltas;
}
