#include "tensor/arena.h"

#include <stdlib.h>

#include "gesso.h"

struct GessoArena
{
  guint8 *base;
  size_t capacity;
  size_t used;
  size_t peak;
};

size_t
gesso_arena_block_size (size_t bytes)
{
  return (bytes + GESSO_ARENA_ALIGN - 1) & ~(size_t) (GESSO_ARENA_ALIGN - 1);
}

GessoArena *
gesso_arena_new (size_t capacity, GError **error)
{
  GessoArena *arena = g_new0 (GessoArena, 1);

  arena->capacity = gesso_arena_block_size (capacity);
  if (arena->capacity > 0)
    {
      arena->base = aligned_alloc (GESSO_ARENA_ALIGN, arena->capacity);
      if (arena->base == NULL)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                       "cannot reserve %.1f MiB of working memory",
                       (double) arena->capacity / (1024.0 * 1024.0));
          g_free (arena);
          return NULL;
        }
    }
  return arena;
}

void
gesso_arena_free (GessoArena *arena)
{
  if (arena == NULL)
    return;
  free (arena->base);
  g_free (arena);
}

void *
gesso_arena_alloc (GessoArena *arena, size_t bytes)
{
  size_t block;
  void *p;

  g_return_val_if_fail (arena != NULL, NULL);
  block = gesso_arena_block_size (bytes);
  if (block < bytes || block > arena->capacity - arena->used)
    return NULL;
  p = arena->base + arena->used;
  arena->used += block;
  if (arena->used > arena->peak)
    arena->peak = arena->used;
  return p;
}

float *
gesso_arena_alloc_floats (GessoArena *arena, size_t count)
{
  if (count > SIZE_MAX / sizeof (float))
    return NULL;
  return gesso_arena_alloc (arena, count * sizeof (float));
}

size_t
gesso_arena_mark (const GessoArena *arena)
{
  return arena->used;
}

void
gesso_arena_reset (GessoArena *arena, size_t mark)
{
  g_return_if_fail (mark <= arena->used);
  arena->used = mark;
}

size_t
gesso_arena_capacity (const GessoArena *arena)
{
  return arena->capacity;
}

size_t
gesso_arena_used (const GessoArena *arena)
{
  return arena->used;
}

size_t
gesso_arena_peak (const GessoArena *arena)
{
  return arena->peak;
}
