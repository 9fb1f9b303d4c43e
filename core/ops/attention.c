/* Scaled dot-product attention, tiled, with an online softmax.
 *
 * For one (image, head) and a tile of TILE_Q query rows, the keys are visited in tiles of
 * TILE_KV rows:
 *   S = scale * Q K^T                      (GEMM, TILE_Q x TILE_KV, stored transposed)
 *   m' = max(m, rowmax S);  P = e^(S - m')
 *   l = l e^(m - m') + rowsum P;  O = O e^(m - m') + P V   (GEMM)
 * and at the end out = O / l (Milakov and Gimelshein 2018, "Online normalizer calculation for
 * softmax"; Dao et al. 2022, FlashAttention). Memory is the tiles, O(TILE_Q * TILE_KV) per
 * thread, never q_len * kv_len: 4096 tokens at SD's 64x64 latent would need 64 MiB per head.
 *
 * Threads take whole (image, head, query tile) items; the keys, the reduction, are walked in
 * the same order by whoever takes the item, so the result does not depend on the thread
 * count. Tiles are multiplied with the provider's single-threaded GEMM inside our parallel
 * region: all heads and tiles of a call are one region, so small problems (8x8 latents,
 * cross-attention over 77 tokens) do not pay a fork/join per head.
 */
#include <math.h>
#include <omp.h>

#include "gesso.h"
#include "ops/fastmath.h"
#include "ops/ops.h"

/* Query rows per item and keys per tile. With head_dim 40 a 4096-token call gives 2 x 8 x 32
 * items, plenty for any core count; the score tile (64 KiB) stays in L2 between the two GEMMs
 * and the softmax passes over it. Measured with one thread at 4096 tokens: every pair of
 * sizes from 64 to 512 is within 10%, 128 x 128 among the best. */
#define TILE_Q 128
#define TILE_KV 128

/* Below this many flops (tens of microseconds of work) one thread does it all. */
#define PARALLEL_MIN_FLOPS 2.0e6

typedef struct
{
  int64_t tile_q, tile_kv;      /* tile sizes, clipped to the problem */
  size_t thread_bytes;          /* scratch per thread, a multiple of GESSO_ARENA_ALIGN */
} Plan;

static Plan
make_plan (const GessoAttentionShape *shape)
{
  Plan plan;
  size_t floats;

  plan.tile_q = MIN (TILE_Q, shape->q_len);
  plan.tile_kv = MIN (TILE_KV, shape->kv_len);
  /* scores, the output accumulator, running max, running sum, corrections */
  floats = (size_t) (plan.tile_q * plan.tile_kv + plan.tile_q * shape->head_dim
                     + 3 * plan.tile_q);
  plan.thread_bytes = gesso_arena_block_size (floats * sizeof (float));
  return plan;
}

static int64_t
n_items (const GessoAttentionShape *shape, const Plan *plan)
{
  return shape->batch * shape->heads * ((shape->q_len + plan->tile_q - 1) / plan->tile_q);
}

/* Threads worth using: one when the whole call is small, never more than there are items. */
static int
wanted_threads (const GessoAttentionShape *shape, const Plan *plan)
{
  double flops = 2.0 * (double) shape->batch * (double) shape->heads * (double) shape->q_len
                 * (double) shape->kv_len * (double) shape->head_dim;
  int64_t items = n_items (shape, plan);
  int n = gesso_ops_get_threads ();

  if (flops < PARALLEL_MIN_FLOPS)
    return 1;
  return (int) MIN ((int64_t) n, items);
}

static gboolean
shape_is_valid (const GessoAttentionShape *shape)
{
  int64_t width = shape->heads * shape->head_dim;

  return shape->batch >= 0 && shape->heads >= 0 && shape->head_dim >= 0
         && shape->q_len >= 0 && shape->kv_len >= 0
         && shape->q_stride >= width && shape->k_stride >= width && shape->v_stride >= width;
}

static gboolean
shape_is_empty (const GessoAttentionShape *shape)
{
  return shape->batch == 0 || shape->heads == 0 || shape->head_dim == 0 || shape->q_len == 0;
}

size_t
gesso_attention_scratch_bytes (const GessoAttentionShape *shape)
{
  Plan plan;

  g_return_val_if_fail (shape != NULL && shape_is_valid (shape), 0);
  if (shape_is_empty (shape) || shape->kv_len == 0)
    return 0;
  plan = make_plan (shape);
  return (size_t) wanted_threads (shape, &plan) * plan.thread_bytes;
}

/* The online-softmax update of one tile, on the scores transposed: ST[j * nq + i] is the score
 * of query i against key j. Walking keys in the outer loop and queries in the inner one, the
 * per-query maximum and sum are element-wise vector operations across queries, with no
 * horizontal reduction (which costs more than the exps themselves on rows of a few hundred
 * keys), and every query's sum is taken in key order, so the bits do not depend on the
 * vector width either. Masked scores must already be -inf.
 *
 * On return ST holds P = e^(S - m_new), M and L have moved on, and CORRECTION[i] is the factor
 * e^(m_old - m_new) by which query i's output accumulator must be scaled. */
__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
softmax_update_tile (float *st, int64_t nk, int64_t nq, float *m, float *l, float *correction)
{
  float *max = correction;      /* the tile's maxima live where the corrections will */

  for (int64_t i = 0; i < nq; i++)
    max[i] = m[i];
  for (int64_t j = 0; j < nk; j++)
    {
      const float *row = st + j * nq;

#pragma omp simd
      for (int64_t i = 0; i < nq; i++)
        max[i] = row[i] > max[i] ? row[i] : max[i];
    }

  /* The new maximum replaces the old one: the first tile's old maximum is -inf and its
   * correction 0, which the caller never applies. */
#pragma omp simd
  for (int64_t i = 0; i < nq; i++)
    {
      float old = m[i];

      m[i] = max[i];
      correction[i] = ops_expf (old - max[i]);
      l[i] *= correction[i];
    }

  for (int64_t j = 0; j < nk; j++)
    {
      float *row = st + j * nq;

#pragma omp simd
      for (int64_t i = 0; i < nq; i++)
        {
          float e = ops_expf (row[i] - m[i]);

          row[i] = e;
          l[i] += e;
        }
    }
}

__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
scale_row (float *x, int64_t n, float factor)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    x[i] *= factor;
}

__attribute__ ((target_clones ("avx512f", "avx2", "default")))
static void
scale_row_to (const float *x, int64_t n, float factor, float *out)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    out[i] = x[i] * factor;
}

/* One item: query rows [q0, q0 + nq) of head H of image B. */
static void
attend_tile (const GessoAttentionShape *shape, const Plan *plan, const float *q,
             const float *k, const float *v, float *out, int64_t b, int64_t h, int64_t q0,
             int64_t nq, float *work)
{
  const int64_t d = shape->head_dim, width = shape->heads * d;
  const float *qt = q + (b * shape->q_len + q0) * shape->q_stride + h * d;
  const float *kb = k + b * shape->kv_len * shape->k_stride + h * d;
  const float *vb = v + b * shape->kv_len * shape->v_stride + h * d;
  float *ot = out + (b * shape->q_len + q0) * width + h * d;
  float *st = work;
  float *acc = st + plan->tile_q * plan->tile_kv;
  float *m = acc + plan->tile_q * d;
  float *l = m + plan->tile_q;
  float *correction = l + plan->tile_q;
  int64_t kv_end = shape->kv_len;

  /* Causal: query q0 + i sees keys 0..q0 + i, so no key past the tile's last query counts. */
  if (shape->causal)
    kv_end = MIN (kv_end, q0 + nq);

  for (int64_t i = 0; i < nq; i++)
    {
      m[i] = -INFINITY;
      l[i] = 0.0f;
    }

  for (int64_t j0 = 0; j0 < kv_end; j0 += plan->tile_kv)
    {
      int64_t nk = MIN (plan->tile_kv, kv_end - j0);
      gboolean first = j0 == 0;

      /* ST = scale K Q^T: keys down, queries across */
      gesso_gemm_serial (FALSE, TRUE, nk, nq, d, shape->scale, kb + j0 * shape->k_stride,
                         shape->k_stride, qt, shape->q_stride, 0.0f, st, nq);

      /* Key j0 + j is in the future of queries q0 + i < j0 + j. Every query sees key 0, so
       * no query's maximum is -inf after the first tile. */
      if (shape->causal && j0 + nk - 1 > q0)
        for (int64_t j = MAX (0, q0 + 1 - j0); j < nk; j++)
          for (int64_t i = 0; i < MIN (nq, j0 + j - q0); i++)
            st[j * nq + i] = -INFINITY;

      softmax_update_tile (st, nk, nq, m, l, correction);
      if (!first)
        for (int64_t i = 0; i < nq; i++)
          if (correction[i] != 1.0f)
            scale_row (acc + i * d, d, correction[i]);

      /* O += P V, P = ST^T. The first tile overwrites the accumulator (beta = 0). */
      gesso_gemm_serial (TRUE, FALSE, nq, d, nk, 1.0f, st, nq, vb + j0 * shape->v_stride,
                         shape->v_stride, first ? 0.0f : 1.0f, acc, d);
    }

  /* l >= 1: each query's largest term is e^0. */
  for (int64_t i = 0; i < nq; i++)
    scale_row_to (acc + i * d, d, 1.0f / l[i], ot + i * width);
}

gboolean
gesso_attention (const GessoAttentionShape *shape, const float *q, const float *k,
                 const float *v, float *out, GessoArena *scratch, GError **error)
{
  const int64_t d = shape != NULL ? shape->head_dim : 0;
  Plan plan;
  int64_t items, tiles_per_head;
  size_t mark, available;
  int n_threads;
  float *work;

  g_return_val_if_fail (shape != NULL && shape_is_valid (shape), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (shape_is_empty (shape))
    return TRUE;
  g_return_val_if_fail (q != NULL && k != NULL && v != NULL && out != NULL, FALSE);

  if (shape->kv_len == 0)
    {
      /* softmax over no keys is undefined; PyTorch returns zeros for an empty key set */
      for (int64_t r = 0; r < shape->batch * shape->q_len; r++)
        for (int64_t c = 0; c < shape->heads * d; c++)
          out[r * shape->heads * d + c] = 0.0f;
      return TRUE;
    }
  g_return_val_if_fail (scratch != NULL, FALSE);

  plan = make_plan (shape);
  items = n_items (shape, &plan);
  tiles_per_head = (shape->q_len + plan.tile_q - 1) / plan.tile_q;
  n_threads = wanted_threads (shape, &plan);

  /* If the arena was planned for fewer threads than are configured now, use fewer: the
   * result is the same, only slower. */
  available = gesso_arena_capacity (scratch) - gesso_arena_used (scratch);
  if ((size_t) n_threads * plan.thread_bytes > available)
    n_threads = (int) (available / plan.thread_bytes);
  if (n_threads < 1)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "attention needs %zu bytes of scratch memory, %zu are free",
                   plan.thread_bytes, available);
      return FALSE;
    }

  mark = gesso_arena_mark (scratch);
  work = gesso_arena_alloc (scratch, (size_t) n_threads * plan.thread_bytes);
  g_assert (work != NULL);

#pragma omp parallel num_threads (n_threads) if (n_threads > 1)
  {
    float *mine = work + (size_t) omp_get_thread_num () * (plan.thread_bytes / sizeof (float));

    /* Items differ in cost only under the causal mask; dynamic scheduling evens that out
     * and changes nothing in the result. */
#pragma omp for schedule (dynamic, 1)
    for (int64_t it = 0; it < items; it++)
      {
        int64_t bh = it / tiles_per_head;
        int64_t q0 = (it % tiles_per_head) * plan.tile_q;

        attend_tile (shape, &plan, q, k, v, out, bh / shape->heads, bh % shape->heads, q0,
                     MIN (plan.tile_q, shape->q_len - q0), mine);
      }
  }

  gesso_arena_reset (scratch, mark);
  return TRUE;
}
