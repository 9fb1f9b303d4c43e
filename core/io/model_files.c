/* The tensors of a model on disk: a single .safetensors checkpoint or a diffusers folder.
 *
 * Everything here is a file a user downloaded: model_index.json may name folders that do not
 * exist or paths that leave the model folder, a shard index may point at the wrong shard,
 * a folder may hold only pickle weights. Each of those is refused with a message naming the
 * file; nothing is read from a pickle file, not even to sniff it, unless the user named it
 * directly.
 */
#include "io/model_files.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "io/config.h"
#include "io/io-private.h"
#include <glib/gi18n-lib.h>

struct GessoModelFiles
{
  char *path;
  char *dir;
  GessoModelLayout layout;
  GPtrArray *files;             /* GessoSafetensors, owned */
  GArray *tensors;              /* GessoModelTensor; keys point into FILES or KEYS */
  GStringChunk *keys;           /* keys with a folder prefix ("text_encoder_2/...") */
  GHashTable *by_key[GESSO_COMPONENT_COUNT];    /* key -> index into TENSORS, plus one */
  GHashTable *configs;          /* sub-folder name -> JsonObject */
  char *vae_path;               /* a separate VAE in place of the model's own; or NULL */
};

/* Weight file names diffusers writes: models from diffusers, then from transformers. */
static const char *const weight_stems[] = { "diffusion_pytorch_model", "model" };

static GessoModelFiles *
model_files_alloc (const char *path, GessoModelLayout layout)
{
  GessoModelFiles *files = g_new0 (GessoModelFiles, 1);

  files->path = g_strdup (path);
  files->layout = layout;
  files->dir = layout == GESSO_MODEL_LAYOUT_DIFFUSERS ? g_strdup (path)
                                                       : g_path_get_dirname (path);
  files->files = g_ptr_array_new_with_free_func ((GDestroyNotify) gesso_safetensors_free);
  files->tensors = g_array_new (FALSE, FALSE, sizeof (GessoModelTensor));
  files->keys = g_string_chunk_new (4096);
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    files->by_key[c] = g_hash_table_new (g_str_hash, g_str_equal);
  files->configs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) json_object_unref);
  return files;
}

void
gesso_model_files_free (GessoModelFiles *files)
{
  if (files == NULL)
    return;
  g_hash_table_unref (files->configs);
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    g_hash_table_unref (files->by_key[c]);
  g_string_chunk_free (files->keys);
  g_array_unref (files->tensors);
  g_ptr_array_unref (files->files);
  g_free (files->vae_path);
  g_free (files->dir);
  g_free (files->path);
  g_free (files);
}

/* Adds one tensor; two tensors with one key in one component make the model ambiguous. */
static gboolean
add_tensor (GessoModelFiles *files, GessoComponent component, const char *key,
            const GessoSafetensorsEntry *entry, const GessoSafetensors *st, GError **error)
{
  GessoModelTensor tensor = { component, key, entry };
  gpointer index;

  if (g_hash_table_lookup_extended (files->by_key[component], key, NULL, &index))
    {
      g_autofree char *shown_key = gesso_io_display (key);
      g_autofree char *shown_path = gesso_io_display (gesso_safetensors_path (st));
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("%s: %s tensor '%s' is stored twice in the model"), shown_path,
                   gesso_component_name (component), shown_key);
      return FALSE;
    }
  g_array_append_val (files->tensors, tensor);
  g_hash_table_insert (files->by_key[component], (char *) key,
                       GUINT_TO_POINTER (files->tensors->len));
  return TRUE;
}

/* Takes ST (owned from here on) and adds its tensors to COMPONENT, their keys prefixed with
 * PREFIX when it is not NULL. */
static gboolean
add_file (GessoModelFiles *files, GessoSafetensors *st, GessoComponent component,
          const char *prefix, GError **error)
{
  g_ptr_array_add (files->files, st);
  for (guint i = 0; i < gesso_safetensors_count (st); i++)
    {
      const GessoSafetensorsEntry *entry = gesso_safetensors_entry (st, i);
      const char *key = entry->name;

      if (prefix != NULL)
        {
          g_autofree char *joined = g_strconcat (prefix, "/", entry->name, NULL);
          key = g_string_chunk_insert (files->keys, joined);
        }
      if (!add_tensor (files, component, key, entry, st, error))
        return FALSE;
    }
  return TRUE;
}

/* --- Single files ------------------------------------------------------------------------ */

/* CompVis/LDM checkpoints (and SDXL's, which say "conditioner") name components by prefix.
 * SDXL's second embedder is its own component, as text_encoder_2/ is in a folder. */
static GessoComponent
classify_single_file_key (const char *key)
{
  if (g_str_has_prefix (key, "conditioner.embedders.1."))
    return GESSO_COMPONENT_TEXT_ENCODER_2;
  if (g_str_has_prefix (key, "model.diffusion_model."))
    return GESSO_COMPONENT_UNET;
  if (g_str_has_prefix (key, "first_stage_model."))
    return GESSO_COMPONENT_VAE;
  if (g_str_has_prefix (key, "cond_stage_model.") || g_str_has_prefix (key, "conditioner."))
    return GESSO_COMPONENT_TEXT_ENCODER;
  return GESSO_COMPONENT_OTHER;
}

static GessoModelFiles *
open_single_file (const char *path, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  GessoSafetensors *st;

  /* refused by name before a byte is read: the user may not know what the file holds */
  if (gesso_io_has_pickle_extension (path))
    {
      gesso_io_set_pickle_error (error, path);
      return NULL;
    }
  st = gesso_safetensors_open (path, error);
  if (st == NULL)
    return NULL;

  files = model_files_alloc (path, GESSO_MODEL_LAYOUT_SINGLE_FILE);
  g_ptr_array_add (files->files, st);
  for (guint i = 0; i < gesso_safetensors_count (st); i++)
    {
      const GessoSafetensorsEntry *entry = gesso_safetensors_entry (st, i);
      /* names are unique inside one JSON header, so this cannot fail */
      if (!add_tensor (files, classify_single_file_key (entry->name), entry->name, entry, st,
                       error))
        return NULL;
    }
  return g_steal_pointer (&files);
}

/* --- Diffusers folders ------------------------------------------------------------------- */

static GessoComponent
classify_folder (const char *name)
{
  if (strcmp (name, "unet") == 0)
    return GESSO_COMPONENT_UNET;
  if (strcmp (name, "vae") == 0)
    return GESSO_COMPONENT_VAE;
  if (strcmp (name, "text_encoder_2") == 0)
    return GESSO_COMPONENT_TEXT_ENCODER_2;
  if (g_str_has_prefix (name, "text_encoder"))
    return GESSO_COMPONENT_TEXT_ENCODER;
  return GESSO_COMPONENT_OTHER;
}

/* A name from an untrusted file that must stay one plain entry of its folder. */
static gboolean
is_plain_file_name (const char *name)
{
  return name[0] != '\0' && strcmp (name, ".") != 0 && strcmp (name, "..") != 0
         && strchr (name, '/') == NULL && strchr (name, '\\') == NULL;
}

static gboolean
is_regular_file (const char *path)
{
  return g_file_test (path, G_FILE_TEST_IS_REGULAR);
}

/* For arrays of strings: g_ptr_array_sort and qsort pass pointers to the elements. */
static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The file names in DIR, sorted, so that a choice between variants does not depend on the
 * order the file system lists them in. */
static GPtrArray *
list_folder (const char *dir, GError **error)
{
  g_autoptr (GError) dir_error = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GDir *d = g_dir_open (dir, 0, &dir_error);
  const char *name;

  if (d == NULL)
    {
      g_autofree char *shown = gesso_io_display (dir);
      g_autofree char *reason = gesso_io_display (dir_error->message);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_IO, _("cannot list '%s': %s"), shown, reason);
      return NULL;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  return g_steal_pointer (&names);
}

/* "<stem>.<variant>.safetensors", as diffusers names a variant ("fp16", "non_ema"). */
static gboolean
is_variant_weights (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (weight_stems); i++)
    {
      size_t stem = strlen (weight_stems[i]);

      if (strncmp (name, weight_stems[i], stem) == 0 && name[stem] == '.'
          && g_str_has_suffix (name + stem + 1, ".safetensors")
          && strlen (name + stem + 1) > strlen (".safetensors")
          && strstr (name + stem + 1, ".safetensors.") == NULL)
        return TRUE;
    }
  return FALSE;
}

/* A shard index: "<stem>.safetensors.index.json" or a variant's
 * "<stem>.safetensors.index.<variant>.json". */
static gboolean
is_shard_index (const char *name)
{
  return strstr (name, ".safetensors.index.") != NULL && g_str_has_suffix (name, ".json");
}

typedef enum
{
  WEIGHTS_NONE,
  WEIGHTS_SINGLE,
  WEIGHTS_INDEX,
} WeightsKind;

/* Picks the weights of a component folder the way diffusers does without a variant: the
 * plain file, then a plain shard index; failing those, the first variant (file, then index).
 * Sets *PICKLE to the first pickle weight file seen, for the message when nothing else is. */
static WeightsKind
find_weights (const char *folder, GPtrArray *names, char **found, char **pickle)
{
  for (guint i = 0; i < G_N_ELEMENTS (weight_stems); i++)
    {
      g_autofree char *file = g_strconcat (weight_stems[i], ".safetensors", NULL);
      g_autofree char *path = g_build_filename (folder, file, NULL);
      if (is_regular_file (path))
        {
          *found = g_steal_pointer (&path);
          return WEIGHTS_SINGLE;
        }
    }
  for (guint i = 0; i < G_N_ELEMENTS (weight_stems); i++)
    {
      g_autofree char *file = g_strconcat (weight_stems[i], ".safetensors.index.json", NULL);
      g_autofree char *path = g_build_filename (folder, file, NULL);
      if (is_regular_file (path))
        {
          *found = g_steal_pointer (&path);
          return WEIGHTS_INDEX;
        }
    }
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < names->len; i++)
      {
        const char *name = names->pdata[i];
        if (pass == 0 ? is_variant_weights (name) : is_shard_index (name))
          {
            g_autofree char *path = g_build_filename (folder, name, NULL);
            if (is_regular_file (path))
              {
                *found = g_steal_pointer (&path);
                return pass == 0 ? WEIGHTS_SINGLE : WEIGHTS_INDEX;
              }
          }
      }
  for (guint i = 0; i < names->len && *pickle == NULL; i++)
    if (gesso_io_has_pickle_extension (names->pdata[i]))
      *pickle = g_build_filename (folder, names->pdata[i], NULL);
  return WEIGHTS_NONE;
}

/* Opens every shard that INDEX_PATH's weight_map names and checks that each key is in the
 * shard the index says it is. */
static gboolean
add_sharded (GessoModelFiles *files, const char *folder, const char *index_path,
             GessoComponent component, const char *prefix, GError **error)
{
  g_autoptr (JsonObject) index = NULL;
  g_autoptr (GHashTable) shards = NULL;           /* shard name -> GessoSafetensors */
  g_autofree char *shown = gesso_io_display (index_path);
  g_autofree const char **shard_names = NULL;
  JsonObjectIter iter;
  JsonObject *weight_map;
  JsonNode *node;
  const char *key;
  guint n_shards;

  index = gesso_config_load (index_path, error);
  if (index == NULL)
    return FALSE;
  node = json_object_get_member (index, "weight_map");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   _("%s: 'weight_map' must be an object of tensor names to shard files"), shown);
      return FALSE;
    }
  weight_map = json_node_get_object (node);

  shards = g_hash_table_new (g_str_hash, g_str_equal);
  json_object_iter_init (&iter, weight_map);
  while (json_object_iter_next (&iter, &key, &node))
    {
      const char *shard;

      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING
          || !is_plain_file_name (shard = json_node_get_string (node)))
        {
          g_autofree char *shown_key = gesso_io_display (key);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       _("%s: the shard of '%s' must be a file name in the same folder"), shown,
                       shown_key);
          return FALSE;
        }
      g_hash_table_insert (shards, (char *) shard, NULL);
    }
  if (g_hash_table_size (shards) == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT, _("%s: 'weight_map' is empty"), shown);
      return FALSE;
    }

  /* open the shards in name order: the tensor list must not depend on hash order */
  shard_names = (const char **) g_hash_table_get_keys_as_array (shards, &n_shards);
  qsort (shard_names, n_shards, sizeof *shard_names, compare_names);
  for (guint i = 0; i < n_shards; i++)
    {
      g_autofree char *path = g_build_filename (folder, shard_names[i], NULL);
      GessoSafetensors *st;

      if (!is_regular_file (path))
        {
          g_autofree char *shard = gesso_io_display (shard_names[i]);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                       _("%s lists the shard '%s', which is missing"), shown, shard);
          return FALSE;
        }
      st = gesso_safetensors_open (path, error);
      if (st == NULL)
        return FALSE;
      g_hash_table_insert (shards, (char *) shard_names[i], st);
      if (!add_file (files, st, component, prefix, error))
        return FALSE;
    }

  json_object_iter_init (&iter, weight_map);
  while (json_object_iter_next (&iter, &key, &node))
    {
      const char *shard = json_node_get_string (node);

      if (gesso_safetensors_lookup (g_hash_table_lookup (shards, shard), key) == NULL)
        {
          g_autofree char *shown_key = gesso_io_display (key);
          g_autofree char *shown_shard = gesso_io_display (shard);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       _("%s: tensor '%s' is mapped to '%s', which does not hold it"), shown,
                       shown_key, shown_shard);
          return FALSE;
        }
    }
  return TRUE;
}

/* The JSON a diffusers sub-folder describes itself with. */
static const char *
config_file_name (const char *folder_name)
{
  if (strcmp (folder_name, "scheduler") == 0)
    return "scheduler_config.json";
  if (g_str_has_prefix (folder_name, "tokenizer"))
    return "tokenizer_config.json";
  if (strcmp (folder_name, "feature_extractor") == 0)
    return "preprocessor_config.json";
  return "config.json";
}

/* Reads the sub-folder NAME that model_index.json lists. The UNet, VAE and text encoders
 * must be there with their config and safetensors weights; anything else (scheduler,
 * tokenizer, safety checker) is read when present. */
static gboolean
add_component (GessoModelFiles *files, const char *name, GError **error)
{
  GessoComponent component = classify_folder (name);
  gboolean required = component != GESSO_COMPONENT_OTHER;
  /* keys stay as stored for unet/, vae/ and text_encoder/; a second folder of a kind
   * (text_encoder_2/) or an unknown one gets its name as a prefix, so keys stay unique */
  const char *prefix = required && strcmp (name, gesso_component_name (component)) == 0
                         ? NULL : name;
  g_autofree char *folder = g_build_filename (files->path, name, NULL);
  g_autofree char *shown = gesso_io_display (folder);
  g_autofree char *config_path = g_build_filename (folder, config_file_name (name), NULL);
  g_autofree char *weights = NULL;
  g_autofree char *pickle = NULL;
  g_autoptr (GPtrArray) names = NULL;
  GessoSafetensors *st;

  if (!g_file_test (folder, G_FILE_TEST_IS_DIR))
    {
      if (!required)
        return TRUE;
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   _("'%s' is missing, but model_index.json lists it"), shown);
      return FALSE;
    }
  if (is_regular_file (config_path))
    {
      JsonObject *config = gesso_config_load (config_path, error);
      if (config == NULL)
        return FALSE;
      g_hash_table_insert (files->configs, g_strdup (name), config);
    }
  else if (required)
    {
      g_autofree char *shown_config = gesso_io_display (config_path);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING, _("'%s' is missing"), shown_config);
      return FALSE;
    }

  names = list_folder (folder, error);
  if (names == NULL)
    return FALSE;
  switch (find_weights (folder, names, &weights, &pickle))
    {
    case WEIGHTS_SINGLE:
      st = gesso_safetensors_open (weights, error);
      return st != NULL && add_file (files, st, component, prefix, error);
    case WEIGHTS_INDEX:
      return add_sharded (files, folder, weights, component, prefix, error);
    case WEIGHTS_NONE:
    default:
      if (!required)
        return TRUE;
      if (pickle != NULL)
        {
          gesso_io_set_pickle_error (error, pickle);
          return FALSE;
        }
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   _("'%s' holds no weights: expected %s.safetensors"), shown,
                   component == GESSO_COMPONENT_TEXT_ENCODER
                       || component == GESSO_COMPONENT_TEXT_ENCODER_2 ? "model"
                                                             : "diffusion_pytorch_model");
      return FALSE;
    }
}

/* A folder without model_index.json is often one model of another kind (a ControlNet or a
 * tiny autoencoder saved by diffusers) or one component of a pipeline: its config.json says
 * which, and the user learns more from that name than from the missing file. */
static void
set_not_a_pipeline_error (const char *path, GError **error)
{
  static const struct
  {
    const char *class_name;
    const char *what;
  } other_kinds[] = {
    { "AutoencoderTiny", "a TAESD tiny autoencoder" },
    { "T2IAdapter", "a T2I-Adapter" },
  };
  g_autofree char *shown = gesso_io_display (path);
  g_autofree char *config_path = g_build_filename (path, "config.json", NULL);
  g_autoptr (JsonObject) config = NULL;
  const char *class_name = NULL;

  if (is_regular_file (config_path))
    config = gesso_config_load (config_path, NULL);
  if (config != NULL)
    class_name = json_object_get_string_member_with_default (config, "_class_name", NULL);
  if (class_name == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   _("'%s' is not a diffusers model folder: model_index.json is missing"), shown);
      return;
    }
  g_autofree char *shown_class = gesso_io_display (class_name);
  if (strcmp (class_name, "ControlNetModel") == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("'%s' is a ControlNet, not a Stable Diffusion checkpoint: give it as a "
                   "control model (--control), with a checkpoint as the model"), shown);
      return;
    }
  for (size_t i = 0; i < G_N_ELEMENTS (other_kinds); i++)
    if (strcmp (class_name, other_kinds[i].class_name) == 0)
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                     _("'%s' is not supported yet: it is %s (%s), not a Stable Diffusion "
                     "checkpoint"), shown, other_kinds[i].what, shown_class);
        return;
      }
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
               _("'%s' is one part (%s) of a diffusers model, not a whole model: choose the "
               "folder above it that holds model_index.json"), shown, shown_class);
}

static GessoModelFiles *
open_diffusers (const char *path, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  g_autofree char *index_path = g_build_filename (path, "model_index.json", NULL);
  g_autofree char *shown_index = gesso_io_display (index_path);
  JsonObject *index;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  if (!is_regular_file (index_path))
    {
      set_not_a_pipeline_error (path, error);
      return NULL;
    }
  index = gesso_config_load (index_path, error);
  if (index == NULL)
    return NULL;
  files = model_files_alloc (path, GESSO_MODEL_LAYOUT_DIFFUSERS);
  g_hash_table_insert (files->configs, g_strdup ("model_index"), index);

  json_object_iter_init (&iter, index);
  while (json_object_iter_next (&iter, &name, &node))
    {
      JsonArray *pair;

      /* "_class_name" and friends are attributes; components are [library, class] pairs,
       * [null, null] for optional ones the pipeline was saved without */
      if (name[0] == '_' || !JSON_NODE_HOLDS_ARRAY (node))
        continue;
      pair = json_node_get_array (node);
      if (json_array_get_length (pair) != 2
          || JSON_NODE_HOLDS_NULL (json_array_get_element (pair, 0))
          || JSON_NODE_HOLDS_NULL (json_array_get_element (pair, 1)))
        continue;
      if (!is_plain_file_name (name))
        {
          g_autofree char *shown = gesso_io_display (name);
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       _("%s: component '%s' is not a folder name"), shown_index, shown);
          return NULL;
        }
      if (!add_component (files, name, error))
        return NULL;
    }
  return g_steal_pointer (&files);
}

GessoModelFiles *
gesso_model_files_open (const char *path, GError **error)
{
  GStatBuf st;

  g_return_val_if_fail (path != NULL, NULL);

  if (g_stat (path, &st) != 0)
    {
      gesso_io_set_errno_error (error, errno, "open", path);
      return NULL;
    }
  if (S_ISDIR (st.st_mode))
    return open_diffusers (path, error);
  return open_single_file (path, error);
}

GessoModelLayout
gesso_model_files_layout (const GessoModelFiles *files)
{
  return files->layout;
}

const char *
gesso_model_files_path (const GessoModelFiles *files)
{
  return files->path;
}

const char *
gesso_model_files_dir (const GessoModelFiles *files)
{
  return files->dir;
}

guint
gesso_model_files_n_files (const GessoModelFiles *files)
{
  return files->files->len;
}

guint
gesso_model_files_count (const GessoModelFiles *files)
{
  return files->tensors->len;
}

const GessoModelTensor *
gesso_model_files_tensor (const GessoModelFiles *files, guint index)
{
  g_return_val_if_fail (index < files->tensors->len, NULL);
  return &g_array_index (files->tensors, GessoModelTensor, index);
}

const GessoModelTensor *
gesso_model_files_lookup (const GessoModelFiles *files, GessoComponent component,
                          const char *key)
{
  guint index;

  g_return_val_if_fail (component < GESSO_COMPONENT_COUNT, NULL);
  index = GPOINTER_TO_UINT (g_hash_table_lookup (files->by_key[component], key));
  return index == 0 ? NULL : &g_array_index (files->tensors, GessoModelTensor, index - 1);
}

JsonObject *
gesso_model_files_config (const GessoModelFiles *files, const char *subfolder)
{
  return g_hash_table_lookup (files->configs, subfolder);
}

/* --- A separate VAE ------------------------------------------------------------------------ */

/* The VAE key of a standalone VAE file's KEY, without any prefix a checkpoint would give it
 * ("first_stage_model.", "vae."); NULL for what is not the autoencoder (EMA counters, the
 * training loss's discriminator that some VAE files still carry). */
static const char *
standalone_vae_key (const char *key)
{
  static const char *const prefixes[] = { "first_stage_model.", "vae." };
  static const char *const parts[] = { "encoder.", "decoder.", "quant_conv.", "post_quant_conv." };

  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++)
    if (g_str_has_prefix (key, prefixes[i]))
      key += strlen (prefixes[i]);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    if (g_str_has_prefix (key, parts[i]))
      return key;
  return NULL;
}

/* Drops every VAE tensor of the model, and its VAE config, before another VAE takes their
 * place; the lookup tables index the tensor array, so they are rebuilt. */
static void
drop_vae (GessoModelFiles *files)
{
  GArray *kept = g_array_new (FALSE, FALSE, sizeof (GessoModelTensor));

  for (guint i = 0; i < files->tensors->len; i++)
    {
      const GessoModelTensor *t = &g_array_index (files->tensors, GessoModelTensor, i);
      if (t->component != GESSO_COMPONENT_VAE)
        g_array_append_val (kept, *t);
    }
  g_array_unref (files->tensors);
  files->tensors = kept;
  for (int c = 0; c < GESSO_COMPONENT_COUNT; c++)
    g_hash_table_remove_all (files->by_key[c]);
  for (guint i = 0; i < files->tensors->len; i++)
    {
      const GessoModelTensor *t = &g_array_index (files->tensors, GessoModelTensor, i);
      g_hash_table_insert (files->by_key[t->component], (char *) t->key,
                           GUINT_TO_POINTER (i + 1));
    }
  g_hash_table_remove (files->configs, "vae");
}

/* Adds the autoencoder tensors of ST (owned from here on) as the model's VAE, named the way
 * the model's own layout names them: "first_stage_model." + the key in a single file (CompVis
 * and diffusers names alike: core/model/keymap.c maps both), the key itself in a folder. */
static gboolean
add_vae_file (GessoModelFiles *files, GessoSafetensors *st, guint *n_added, GError **error)
{
  g_ptr_array_add (files->files, st);
  for (guint i = 0; i < gesso_safetensors_count (st); i++)
    {
      const GessoSafetensorsEntry *entry = gesso_safetensors_entry (st, i);
      const char *key = standalone_vae_key (entry->name);

      if (key == NULL)
        continue;
      if (files->layout == GESSO_MODEL_LAYOUT_SINGLE_FILE)
        {
          g_autofree char *joined = g_strconcat ("first_stage_model.", key, NULL);
          key = g_string_chunk_insert (files->keys, joined);
        }
      if (!add_tensor (files, GESSO_COMPONENT_VAE, key, entry, st, error))
        return FALSE;
      (*n_added)++;
    }
  return TRUE;
}

gboolean
gesso_model_files_set_vae (GessoModelFiles *files, const char *path, GError **error)
{
  g_autofree char *shown = NULL;
  g_autofree char *weights = NULL;
  g_autofree char *pickle = NULL;
  g_autoptr (JsonObject) config = NULL;
  GessoSafetensors *st;
  guint n_added = 0;

  g_return_val_if_fail (files != NULL && path != NULL, FALSE);
  shown = gesso_io_display (path);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      /* a diffusers vae/ folder: config.json and its weights */
      g_autofree char *config_path = g_build_filename (path, "config.json", NULL);
      g_autoptr (GPtrArray) names = NULL;

      if (!is_regular_file (config_path))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                       _("'%s' is not a VAE folder: config.json is missing; name a VAE "
                       ".safetensors file or a diffusers vae/ folder"), shown);
          return FALSE;
        }
      config = gesso_config_load (config_path, error);
      if (config == NULL)
        return FALSE;
      names = list_folder (path, error);
      if (names == NULL)
        return FALSE;
      if (find_weights (path, names, &weights, &pickle) != WEIGHTS_SINGLE)
        {
          if (pickle != NULL)
            gesso_io_set_pickle_error (error, pickle);
          else
            g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                         _("'%s' holds no VAE weights: expected one "
                         "diffusion_pytorch_model.safetensors"), shown);
          return FALSE;
        }
    }
  else
    {
      if (gesso_io_has_pickle_extension (path))
        {
          gesso_io_set_pickle_error (error, path);
          return FALSE;
        }
      weights = g_strdup (path);
    }
  st = gesso_safetensors_open (weights, error);
  if (st == NULL)
    return FALSE;
  drop_vae (files);
  if (!add_vae_file (files, st, &n_added, error))
    return FALSE;
  if (n_added == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("'%s' is not a VAE: it holds no encoder.*, decoder.*, quant_conv or "
                   "post_quant_conv tensors"), shown);
      return FALSE;
    }
  if (config != NULL)
    g_hash_table_insert (files->configs, g_strdup ("vae"), g_steal_pointer (&config));
  g_free (files->vae_path);
  files->vae_path = g_strdup (path);
  return TRUE;
}

const char *
gesso_model_files_vae_path (const GessoModelFiles *files)
{
  return files->vae_path;
}

/* --- ControlNets ------------------------------------------------------------------------- */

static gboolean
add_controlnet_folder (GessoModelFiles *files, const char *path, GError **error)
{
  g_autofree char *shown = gesso_io_display (path);
  g_autofree char *config_path = g_build_filename (path, "config.json", NULL);
  g_autofree char *weights = NULL;
  g_autofree char *pickle = NULL;
  g_autoptr (GPtrArray) names = NULL;
  JsonObject *config;
  const char *class_name;
  GessoSafetensors *st;

  if (!is_regular_file (config_path))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   _("'%s' is not a ControlNet folder: config.json is missing"), shown);
      return FALSE;
    }
  config = gesso_config_load (config_path, error);
  if (config == NULL)
    return FALSE;
  g_hash_table_insert (files->configs, g_strdup ("controlnet"), config);
  class_name = json_object_get_string_member_with_default (config, "_class_name", "");
  if (strcmp (class_name, "ControlNetModel") != 0)
    {
      g_autofree char *shown_class = gesso_io_display (class_name);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("'%s' is not a ControlNet: its config.json says '%s', not ControlNetModel "
                   "(T2I-Adapters and other control models are not supported)"), shown,
                   shown_class);
      return FALSE;
    }
  names = list_folder (path, error);
  if (names == NULL)
    return FALSE;
  switch (find_weights (path, names, &weights, &pickle))
    {
    case WEIGHTS_SINGLE:
      st = gesso_safetensors_open (weights, error);
      return st != NULL && add_file (files, st, GESSO_COMPONENT_UNET, NULL, error);
    case WEIGHTS_INDEX:
      return add_sharded (files, path, weights, GESSO_COMPONENT_UNET, NULL, error);
    case WEIGHTS_NONE:
    default:
      if (pickle != NULL)
        gesso_io_set_pickle_error (error, pickle);
      else
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                     _("'%s' holds no weights: expected diffusion_pytorch_model.safetensors"),
                     shown);
      return FALSE;
    }
}

/* The original layout keeps the network under "control_model."; anything else in the file
 * (EMA counters, say) is not the ControlNet's. */
static gboolean
add_controlnet_file (GessoModelFiles *files, const char *path, GError **error)
{
  g_autofree char *shown = gesso_io_display (path);
  GessoSafetensors *st;
  guint n_control = 0;

  if (gesso_io_has_pickle_extension (path))
    {
      gesso_io_set_pickle_error (error, path);
      return FALSE;
    }
  st = gesso_safetensors_open (path, error);
  if (st == NULL)
    return FALSE;
  g_ptr_array_add (files->files, st);
  for (guint i = 0; i < gesso_safetensors_count (st); i++)
    {
      const GessoSafetensorsEntry *entry = gesso_safetensors_entry (st, i);
      gboolean control = g_str_has_prefix (entry->name, "control_model.");

      n_control += control;
      if (!add_tensor (files, control ? GESSO_COMPONENT_UNET : GESSO_COMPONENT_OTHER,
                       entry->name, entry, st, error))
        return FALSE;
    }
  if (n_control == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   _("'%s' is not a ControlNet: it has no control_model.* tensors (Gesso reads "
                   "ControlNets in lllyasviel's layout or as diffusers ControlNetModel folders)"),
                   shown);
      return FALSE;
    }
  return TRUE;
}

GessoModelFiles *
gesso_model_files_open_controlnet (const char *path, GError **error)
{
  g_autoptr (GessoModelFiles) files = NULL;
  gboolean folder;
  GStatBuf st;

  g_return_val_if_fail (path != NULL, NULL);
  if (g_stat (path, &st) != 0)
    {
      gesso_io_set_errno_error (error, errno, "open", path);
      return NULL;
    }
  folder = S_ISDIR (st.st_mode);
  files = model_files_alloc (path, folder ? GESSO_MODEL_LAYOUT_DIFFUSERS
                                          : GESSO_MODEL_LAYOUT_SINGLE_FILE);
  if (!(folder ? add_controlnet_folder (files, path, error)
               : add_controlnet_file (files, path, error)))
    return NULL;
  return g_steal_pointer (&files);
}
