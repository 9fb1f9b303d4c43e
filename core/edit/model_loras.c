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

gboolean
gesso_model_use_loras (GessoModel *model, const GessoLoraUse *uses, int n, GError **error)
{
  g_autofree char *set = describe_set (uses, n);
  g_autofree GessoLora **loras = NULL;
  g_autofree float *scales = NULL;
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
  scales = g_new0 (float, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      scales[i] = uses[i].weight;
      if (uses[i].weight != 0.0f && (loras[i] = bound_lora (model, uses[i].path, error)) == NULL)
        goto fail;
    }
  if (set != NULL
      && (model->lora_deltas = gesso_lora_set_deltas (loras, scales, n, model->weights,
                                                      &model->lora_text, error)) == NULL)
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
