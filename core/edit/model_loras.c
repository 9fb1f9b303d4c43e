/* The LoRAs an opened model runs with (see model-private.h, gesso.h's GessoLoraUse).
 *
 * A LoRA is applied where a weight is widened for its products (ops/weight.c): nothing is
 * merged into the model's weights, so switching LoRAs between two edits reads no model weight
 * again, and memory grows by the LoRA files' factors only (kept as stored, 16-bit when the
 * file is). Each file is opened and matched to the model once; the deltas are rebuilt when
 * the set of files or weights changes.
 */
#include <math.h>
#include <string.h>

#include "edit/model-private.h"
#include "model/lora.h"

void
gesso_model_free_loras (GessoModel *model)
{
  if (model->weights != NULL && model->lora_deltas != NULL)
    gesso_weights_clear_deltas (model->weights);
  g_clear_pointer (&model->lora_deltas, g_free);
  g_clear_pointer (&model->lora_set, g_free);
  g_clear_pointer (&model->loras, g_hash_table_unref);
  model->lora_lcm = FALSE;
}

gboolean
gesso_model_uses_lcm_lora (const GessoModel *model)
{
  return model->lora_lcm;
}

/* "path\tweight\n" per use that changes anything, in order; NULL when none does. */
static char *
describe_set (const GessoLoraUse *uses, int n)
{
  GString *s = g_string_new (NULL);

  for (int i = 0; i < n; i++)
    if (uses[i].weight != 0.0f)
      g_string_append_printf (s, "%s\t%.9g\n", uses[i].path, (double) uses[i].weight);
  if (s->len == 0)
    {
      g_string_free (s, TRUE);
      return NULL;
    }
  return g_string_free (s, FALSE);
}

static GessoLora *
bound_lora (GessoModel *model, const char *path, GError **error)
{
  GessoLora *lora;

  if (model->loras == NULL)
    model->loras = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) gesso_lora_free);
  lora = g_hash_table_lookup (model->loras, path);
  if (lora != NULL)
    return lora;
  lora = gesso_lora_open (path, error);
  if (lora == NULL)
    return NULL;
  if (!gesso_lora_bind (lora, model->weights, error))
    {
      gesso_lora_free (lora);
      return NULL;
    }
  g_hash_table_insert (model->loras, g_strdup (path), lora);
  return lora;
}

/* One delta per module of every use, chained per weight (several LoRAs on one layer add up),
 * set on the weights. */
static gboolean
set_deltas (GessoModel *model, GessoLora **loras, const GessoLoraUse *uses, int n,
            GError **error)
{
  g_autoptr (GHashTable) heads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint total = 0, k = 0;

  for (int i = 0; i < n; i++)
    total += loras[i] ? gesso_lora_count (loras[i]) : 0;
  model->lora_deltas = g_new0 (GessoWeightDelta, MAX (total, 1));
  for (int i = 0; i < n; i++)
    for (guint j = 0; loras[i] != NULL && j < gesso_lora_count (loras[i]); j++)
      {
        const GessoLoraModule *m = gesso_lora_module (loras[i], j);
        GessoWeightDelta *d = &model->lora_deltas[k++];
        g_autofree char *key = g_strdup_printf ("%d:%s", m->component, m->name);

        *d = (GessoWeightDelta) { .up = m->up, .down = m->down, .up_dtype = m->up_dtype,
                                  .down_dtype = m->down_dtype, .rows = m->out_features,
                                  .rank = m->rank, .cols = m->in_features,
                                  .scale = m->scale * uses[i].weight,
                                  .next = g_hash_table_lookup (heads, key) };
        g_hash_table_insert (heads, g_steal_pointer (&key), d);
        model->lora_text |= m->component == GESSO_COMPONENT_TEXT_ENCODER
                            || m->component == GESSO_COMPONENT_TEXT_ENCODER_2;
        if (!gesso_weights_set_delta (model->weights, m->component, m->name, d, error))
          return FALSE;
      }
  return TRUE;
}

gboolean
gesso_model_use_loras (GessoModel *model, const GessoLoraUse *uses, int n, GError **error)
{
  g_autofree char *set = describe_set (uses, n);
  g_autofree GessoLora **loras = NULL;
  gboolean text_before;

  g_return_val_if_fail (model != NULL && n >= 0 && (n == 0 || uses != NULL), FALSE);
  if (g_strcmp0 (set, model->lora_set) == 0)
    return TRUE;
  for (int i = 0; i < n; i++)
    if (!isfinite (uses[i].weight) || uses[i].path == NULL)
      {
        g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                     "LoRA %d has %s", i + 1, uses[i].path == NULL ? "no file" : "no weight");
        return FALSE;
      }

  text_before = model->lora_text;
  model->lora_text = FALSE;
  model->lora_lcm = FALSE;
  if (model->lora_deltas != NULL)
    gesso_weights_clear_deltas (model->weights);
  g_clear_pointer (&model->lora_deltas, g_free);
  g_clear_pointer (&model->lora_set, g_free);

  loras = g_new0 (GessoLora *, MAX (n, 1));
  for (int i = 0; i < n; i++)
    if (uses[i].weight != 0.0f && (loras[i] = bound_lora (model, uses[i].path, error)) == NULL)
      goto fail;
  if (set != NULL && !set_deltas (model, loras, uses, n, error))
    goto fail;
  for (int i = 0; i < n; i++)
    model->lora_lcm |= loras[i] != NULL && gesso_lora_is_lcm (loras[i]);
  model->lora_set = g_steal_pointer (&set);
  /* the cached embeddings were made with the text encoders' weights as they were */
  if (text_before || model->lora_text)
    gesso_prompt_cache_clear (model->prompts);
  return TRUE;

fail:
  if (model->lora_deltas != NULL)
    gesso_weights_clear_deltas (model->weights);
  g_clear_pointer (&model->lora_deltas, g_free);
  model->lora_text = FALSE;
  if (text_before)
    gesso_prompt_cache_clear (model->prompts);
  return FALSE;
}
