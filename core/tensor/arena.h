/* A bump allocator for the temporaries of one computation.
 *
 * Its capacity is fixed when it is made: callers plan how much scratch a computation needs
 * before they start it, so nothing allocates inside a loop and running out is a planning
 * error caught by tests, not an out-of-memory at step 37. Freeing the arena frees everything
 * taken from it. Every block is 64-byte aligned (one cache line, one AVX-512 register).
 */
#ifndef GESSO_ARENA_H
#define GESSO_ARENA_H

#include <glib.h>
#include <stddef.h>

G_BEGIN_DECLS

#define GESSO_ARENA_ALIGN 64

typedef struct GessoArena GessoArena;

GessoArena *gesso_arena_new (size_t capacity, GError **error);
void gesso_arena_free (GessoArena *arena);

/* NULL when the arena has less than BYTES left (a planning bug: callers size arenas). */
void *gesso_arena_alloc (GessoArena *arena, size_t bytes);
float *gesso_arena_alloc_floats (GessoArena *arena, size_t count);

/* A mark remembers how full the arena is; resetting to it releases everything after it. */
size_t gesso_arena_mark (const GessoArena *arena);
void gesso_arena_reset (GessoArena *arena, size_t mark);

size_t gesso_arena_capacity (const GessoArena *arena);
size_t gesso_arena_used (const GessoArena *arena);
size_t gesso_arena_peak (const GessoArena *arena);

/* Bytes that gesso_arena_alloc (BYTES) consumes, alignment included: use it when planning. */
size_t gesso_arena_block_size (size_t bytes);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoArena, gesso_arena_free)

G_END_DECLS

#endif /* GESSO_ARENA_H */
