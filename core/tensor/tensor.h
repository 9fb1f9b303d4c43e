/* Float32 tensors, NCHW (or [rows, cols] for sequences), dense and row-major.
 *
 * A GessoTensor is a small value: a pointer and a shape. Who owns the data is part of how it
 * was made: gesso_tensor_new() allocates on the heap and gesso_tensor_free() releases it;
 * gesso_tensor_new_in() takes the data from an arena, which owns it (freeing the arena frees
 * it; such tensors are never passed to gesso_tensor_free); gesso_tensor_view() borrows memory
 * someone else owns.
 */
#ifndef GESSO_TENSOR_H
#define GESSO_TENSOR_H

#include <glib.h>
#include <stdint.h>

#include "tensor/arena.h"

G_BEGIN_DECLS

#define GESSO_TENSOR_MAX_DIMS 6

typedef struct
{
  float *data;
  int ndim;
  int64_t shape[GESSO_TENSOR_MAX_DIMS];
  gboolean owns_data;   /* TRUE only for gesso_tensor_new(): free with gesso_tensor_free() */
} GessoTensor;

/* Element count of SHAPE, or -1 when a dimension is negative or the product overflows. */
int64_t gesso_shape_numel (int ndim, const int64_t *shape);

gboolean gesso_tensor_new (GessoTensor *tensor, int ndim, const int64_t *shape, GError **error);
gboolean gesso_tensor_new_in (GessoTensor *tensor, GessoArena *arena, int ndim,
                              const int64_t *shape, GError **error);
GessoTensor gesso_tensor_view (float *data, int ndim, const int64_t *shape);
void gesso_tensor_free (GessoTensor *tensor);

int64_t gesso_tensor_numel (const GessoTensor *tensor);
gboolean gesso_tensor_same_shape (const GessoTensor *a, const GessoTensor *b);
/* "[2, 4, 32, 32]", for messages; caller frees. */
char *gesso_tensor_shape_string (int ndim, const int64_t *shape);

G_END_DECLS

#endif /* GESSO_TENSOR_H */
