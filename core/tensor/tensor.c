#include "tensor/tensor.h"

#include <stdlib.h>
#include <string.h>

#include "gesso.h"

int64_t
gesso_shape_numel (int ndim, const int64_t *shape)
{
  int64_t n = 1;

  for (int i = 0; i < ndim; i++)
    {
      if (shape[i] < 0)
        return -1;
      if (shape[i] != 0 && n > INT64_MAX / shape[i])
        return -1;
      n *= shape[i];
    }
  return n;
}

static gboolean
check_shape (int ndim, const int64_t *shape, int64_t *numel, GError **error)
{
  if (ndim < 0 || ndim > GESSO_TENSOR_MAX_DIMS)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "a tensor may have at most %d dimensions, not %d", GESSO_TENSOR_MAX_DIMS, ndim);
      return FALSE;
    }
  *numel = gesso_shape_numel (ndim, shape);
  if (*numel < 0 || (uint64_t) *numel > SIZE_MAX / sizeof (float))
    {
      g_autofree char *s = gesso_tensor_shape_string (ndim, shape);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "tensor shape %s is too large to allocate", s);
      return FALSE;
    }
  return TRUE;
}

static void
set_shape (GessoTensor *tensor, int ndim, const int64_t *shape)
{
  tensor->ndim = ndim;
  memset (tensor->shape, 0, sizeof tensor->shape);
  if (ndim > 0)
    memcpy (tensor->shape, shape, (size_t) ndim * sizeof *shape);
}

gboolean
gesso_tensor_new (GessoTensor *tensor, int ndim, const int64_t *shape, GError **error)
{
  int64_t numel;
  size_t bytes;

  memset (tensor, 0, sizeof *tensor);
  if (!check_shape (ndim, shape, &numel, error))
    return FALSE;
  bytes = gesso_arena_block_size ((size_t) numel * sizeof (float));
  tensor->data = aligned_alloc (GESSO_ARENA_ALIGN, bytes > 0 ? bytes : GESSO_ARENA_ALIGN);
  if (tensor->data == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "cannot allocate %.1f MiB for a tensor", (double) bytes / (1024.0 * 1024.0));
      return FALSE;
    }
  set_shape (tensor, ndim, shape);
  tensor->owns_data = TRUE;
  return TRUE;
}

gboolean
gesso_tensor_new_in (GessoTensor *tensor, GessoArena *arena, int ndim, const int64_t *shape,
                     GError **error)
{
  int64_t numel;

  memset (tensor, 0, sizeof *tensor);
  if (!check_shape (ndim, shape, &numel, error))
    return FALSE;
  tensor->data = gesso_arena_alloc_floats (arena, (size_t) numel);
  if (tensor->data == NULL)
    {
      g_autofree char *s = gesso_tensor_shape_string (ndim, shape);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "working memory exhausted: a %s tensor needs %zu bytes, %zu of %zu are left",
                   s, (size_t) numel * sizeof (float),
                   gesso_arena_capacity (arena) - gesso_arena_used (arena),
                   gesso_arena_capacity (arena));
      return FALSE;
    }
  set_shape (tensor, ndim, shape);
  return TRUE;
}

GessoTensor
gesso_tensor_view (float *data, int ndim, const int64_t *shape)
{
  GessoTensor t = { 0 };

  g_return_val_if_fail (ndim >= 0 && ndim <= GESSO_TENSOR_MAX_DIMS, t);
  t.data = data;
  set_shape (&t, ndim, shape);
  return t;
}

void
gesso_tensor_free (GessoTensor *tensor)
{
  if (tensor == NULL)
    return;
  g_return_if_fail (tensor->owns_data || tensor->data == NULL);
  free (tensor->data);
  memset (tensor, 0, sizeof *tensor);
}

int64_t
gesso_tensor_numel (const GessoTensor *tensor)
{
  return gesso_shape_numel (tensor->ndim, tensor->shape);
}

gboolean
gesso_tensor_same_shape (const GessoTensor *a, const GessoTensor *b)
{
  if (a->ndim != b->ndim)
    return FALSE;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return FALSE;
  return TRUE;
}

char *
gesso_tensor_shape_string (int ndim, const int64_t *shape)
{
  GString *s = g_string_new ("[");

  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}
