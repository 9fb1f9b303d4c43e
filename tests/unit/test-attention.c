/* Tiled attention against a plain double-precision softmax(scale Q K^T) V.
 *
 * Inputs are uniform in [-1, 1) and the output is a convex combination of rows of V, so
 * errors are stated in absolute terms; the bound is in each test path. */
#include <math.h>
#include <string.h>

#include "gesso.h"
#include "ops/ops.h"
#include "ops-testutil.h"

#define ATOL 5e-7

/* Q, K, V and the output for one shape, with Q/K/V either separate tensors or slices of one
 * fused [batch, tokens, 3 * heads * head_dim] projection (q_len == kv_len then). */
typedef struct
{
  GessoAttentionShape shape;
  float *q, *k, *v;
  float *fused;                 /* owns q, k and v when set */
  float *out;
} Problem;

static void
problem_init (Problem *p, int64_t batch, int64_t heads, int64_t head_dim, int64_t q_len,
              int64_t kv_len, gboolean causal, gboolean fused, guint64 seed)
{
  TestRng rng = { seed };
  int64_t width = heads * head_dim;

  memset (p, 0, sizeof *p);
  p->shape.batch = batch;
  p->shape.heads = heads;
  p->shape.head_dim = head_dim;
  p->shape.q_len = q_len;
  p->shape.kv_len = kv_len;
  p->shape.scale = (float) (1.0 / sqrt ((double) head_dim));
  p->shape.causal = causal;
  if (fused)
    {
      g_assert_cmpint (q_len, ==, kv_len);
      p->fused = test_floats_uniform (&rng, (size_t) (batch * q_len * 3 * width), -1.0f, 1.0f);
      p->q = p->fused;
      p->k = p->fused + width;
      p->v = p->fused + 2 * width;
      p->shape.q_stride = p->shape.k_stride = p->shape.v_stride = 3 * width;
    }
  else
    {
      p->q = test_floats_uniform (&rng, (size_t) (batch * q_len * width), -1.0f, 1.0f);
      p->k = test_floats_uniform (&rng, (size_t) (batch * kv_len * width), -1.0f, 1.0f);
      p->v = test_floats_uniform (&rng, (size_t) (batch * kv_len * width), -1.0f, 1.0f);
      p->shape.q_stride = p->shape.k_stride = p->shape.v_stride = width;
    }
  p->out = g_new (float, (size_t) (batch * q_len * width) + 1);
  for (size_t i = 0; i < (size_t) (batch * q_len * width); i++)
    p->out[i] = NAN;            /* every output must be written */
}

static void
problem_clear (Problem *p)
{
  if (p->fused != NULL)
    g_free (p->fused);
  else
    {
      g_free (p->q);
      g_free (p->k);
      g_free (p->v);
    }
  g_free (p->out);
}

static void
problem_run (Problem *p)
{
  g_autoptr (GError) error = NULL;
  size_t bytes = gesso_attention_scratch_bytes (&p->shape);
  g_autoptr (GessoArena) arena = gesso_arena_new (bytes, &error);

  g_assert_no_error (error);
  g_assert_true (gesso_attention (&p->shape, p->q, p->k, p->v, p->out, arena, &error));
  g_assert_no_error (error);
  /* the arena is handed back as it was, and the plan was an upper bound */
  g_assert_cmpuint (gesso_arena_used (arena), ==, 0);
  g_assert_cmpuint (gesso_arena_peak (arena), <=, bytes);
}

/* The reference for query row I of head H of image B, into WANT[head_dim]. */
static void
reference_row (const Problem *p, int64_t b, int64_t h, int64_t i, double *want)
{
  const GessoAttentionShape *s = &p->shape;
  const int64_t d = s->head_dim;
  const float *qi = p->q + (b * s->q_len + i) * s->q_stride + h * d;
  int64_t n = s->causal ? MIN (s->kv_len, i + 1) : s->kv_len;
  g_autofree double *score = g_new (double, n);
  double max = -INFINITY, sum = 0.0;

  for (int64_t j = 0; j < n; j++)
    {
      const float *kj = p->k + (b * s->kv_len + j) * s->k_stride + h * d;
      double dot = 0.0;

      for (int64_t c = 0; c < d; c++)
        dot += (double) qi[c] * kj[c];
      score[j] = (double) s->scale * dot;
      max = MAX (max, score[j]);
    }
  for (int64_t j = 0; j < n; j++)
    {
      score[j] = exp (score[j] - max);
      sum += score[j];
    }
  for (int64_t c = 0; c < d; c++)
    want[c] = 0.0;
  for (int64_t j = 0; j < n; j++)
    {
      const float *vj = p->v + (b * s->kv_len + j) * s->v_stride + h * d;

      for (int64_t c = 0; c < d; c++)
        want[c] += score[j] / sum * vj[c];
    }
}

/* Compares every ROW_STEP-th query row (all of them for 1) of every image and head. */
static void
problem_check (const Problem *p, int64_t row_step, double atol)
{
  const GessoAttentionShape *s = &p->shape;
  const int64_t d = s->head_dim, width = s->heads * d;
  g_autofree double *want = g_new (double, d);

  for (int64_t b = 0; b < s->batch; b++)
    for (int64_t h = 0; h < s->heads; h++)
      for (int64_t i = 0; i < s->q_len; i += (i + row_step < s->q_len ? row_step : 1))
        {
          char what[128];

          reference_row (p, b, h, i, want);
          g_snprintf (what, sizeof what, "attention b%" G_GINT64_FORMAT " h%" G_GINT64_FORMAT
                      " row %" G_GINT64_FORMAT, b, h, i);
          test_check_close (what, p->out + (b * s->q_len + i) * width + h * d, want,
                            (size_t) d, atol, 0.0);
        }
}

static void
check_case (int64_t batch, int64_t heads, int64_t head_dim, int64_t q_len, int64_t kv_len,
            gboolean causal, gboolean fused)
{
  Problem p;

  problem_init (&p, batch, heads, head_dim, q_len, kv_len, causal, fused,
                (guint64) (q_len * 1000003 + kv_len * 101 + head_dim));
  problem_run (&p);
  problem_check (&p, 1, ATOL);
  problem_clear (&p);
}

/* Lengths around the tile size (128) and its multiples, and around other plausible tile sizes. */
static void
test_tile_boundaries (void)
{
  const int64_t lengths[] = { 1, 2, 63, 64, 65, 127, 128, 129, 255, 256, 257, 513 };

  for (size_t i = 0; i < G_N_ELEMENTS (lengths); i++)
    for (size_t j = 0; j < G_N_ELEMENTS (lengths); j += 3)
      check_case (1, 2, 8, lengths[i], lengths[(i + j) % G_N_ELEMENTS (lengths)], FALSE,
                  FALSE);
}

static void
test_head_dims (void)
{
  const int64_t dims[] = { 1, 2, 3, 4, 7, 8, 16, 17, 40, 64, 80, 129, 160 };

  for (size_t i = 0; i < G_N_ELEMENTS (dims); i++)
    check_case (2, 3, dims[i], 70, 45, FALSE, FALSE);
}

/* The shapes of SD 1.5 and CLIP, at reduced batch and heads where the reference is slow. */
static void
test_sd_shapes (void)
{
  check_case (2, 8, 40, 256, 77, FALSE, FALSE);         /* cross-attention */
  check_case (1, 2, 80, 1024, 1024, FALSE, TRUE);
  check_case (2, 8, 160, 256, 256, FALSE, TRUE);
  check_case (2, 8, 160, 64, 64, FALSE, TRUE);
  check_case (2, 8, 160, 64, 77, FALSE, FALSE);
  check_case (1, 12, 64, 77, 77, TRUE, TRUE);           /* CLIP ViT-L text encoder */
}

static void
test_causal (void)
{
  const int64_t lengths[][2] = { { 1, 1 }, { 5, 5 }, { 77, 77 }, { 129, 129 }, { 300, 300 },
                                 { 64, 200 }, { 200, 64 }, { 129, 513 } };

  for (size_t i = 0; i < G_N_ELEMENTS (lengths); i++)
    {
      check_case (2, 2, 16, lengths[i][0], lengths[i][1], TRUE, FALSE);
      if (lengths[i][0] == lengths[i][1])
        check_case (1, 3, 12, lengths[i][0], lengths[i][1], TRUE, TRUE);
    }
}

/* 4096 x 4096, one head of SD 1.5's 64x64 self-attention, every 29th query row checked. */
static void
test_4096 (void)
{
  Problem p;

  problem_init (&p, 1, 1, 40, 4096, 4096, FALSE, TRUE, 4096);
  problem_run (&p);
  problem_check (&p, 29, ATOL);
  problem_clear (&p);
}

/* Scores up to +-300: the running maximum must be rescaled across tiles without overflow.
 * A float score of 300 carries an absolute rounding error of 1e-5, which moves its weight by
 * as much, hence the wider bound (measured 1.4e-6). */
static void
test_large_scores (void)
{
  Problem p;

  problem_init (&p, 1, 2, 16, 100, 600, FALSE, FALSE, 77);
  p.shape.scale = 20.0f;
  problem_run (&p);
  problem_check (&p, 1, 2e-5);
  problem_clear (&p);
}

static void
test_memory (void)
{
  GessoAttentionShape shape = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoArena) arena = NULL;
  size_t bytes, one_thread;
  float x[16] = { 0 }, out[16];

  /* SD 1.5 64x64 self-attention with guidance: the full score matrix of one head alone is
   * 64 MiB; the tiles of all threads must stay far below it. */
  shape.batch = 2;
  shape.heads = 8;
  shape.head_dim = 40;
  shape.q_len = shape.kv_len = 4096;
  shape.q_stride = shape.k_stride = shape.v_stride = 320;
  shape.scale = 1.0f / sqrtf (40.0f);

  bytes = gesso_attention_scratch_bytes (&shape);
  gesso_ops_set_threads (1);
  one_thread = gesso_attention_scratch_bytes (&shape);
  gesso_ops_set_threads (0);
  g_test_message ("scratch for 4096x4096: %zu bytes per thread, %zu with %d threads",
                  one_thread, bytes, gesso_ops_get_threads ());
  g_assert_cmpuint (bytes, <=, one_thread * (size_t) gesso_ops_get_threads ());
  /* even 64 threads' tiles stay far below one head's score matrix */
  g_assert_cmpuint (one_thread * 64, <, (size_t) 4096 * 4096 * 4 / 8);

  /* An arena too small for even one thread's tiles is refused with NO_MEMORY. */
  shape.batch = shape.heads = 1;
  shape.head_dim = 4;
  shape.q_len = shape.kv_len = 4;
  shape.q_stride = shape.k_stride = shape.v_stride = 4;
  arena = gesso_arena_new (gesso_attention_scratch_bytes (&shape) - 64, &error);
  g_assert_false (gesso_attention (&shape, x, x, x, out, arena, &error));
  g_assert_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY);
  g_assert_cmpuint (gesso_arena_used (arena), ==, 0);
}

/* An arena planned for one thread, run with two configured: it must still work. */
static void
test_fewer_threads_than_configured (void)
{
  Problem p;
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoArena) arena = NULL;

  problem_init (&p, 1, 4, 32, 300, 300, FALSE, FALSE, 5);
  gesso_ops_set_threads (1);
  arena = gesso_arena_new (gesso_attention_scratch_bytes (&p.shape), &error);
  gesso_ops_set_threads (2);
  g_assert_true (gesso_attention (&p.shape, p.q, p.k, p.v, p.out, arena, &error));
  gesso_ops_set_threads (0);
  problem_check (&p, 1, ATOL);
  problem_clear (&p);
}

static void
test_thread_determinism (void)
{
  const gboolean causal[] = { FALSE, TRUE };

  for (size_t c = 0; c < G_N_ELEMENTS (causal); c++)
    {
      Problem p;
      size_t n;
      g_autofree float *one = NULL;

      problem_init (&p, 2, 4, 40, 700, 700, causal[c], TRUE, 11);
      n = (size_t) (2 * 700 * 4 * 40);
      gesso_ops_set_threads (1);
      problem_run (&p);
      one = test_floats_dup (p.out, n);
      gesso_ops_set_threads (2);
      problem_run (&p);
      gesso_ops_set_threads (0);
      g_assert_cmpmem (one, n * sizeof (float), p.out, n * sizeof (float));
      problem_clear (&p);
    }
}

static void
test_empty (void)
{
  GessoAttentionShape shape = { 1, 2, 4, 3, 0, 8, 8, 8, 0.5f, FALSE };
  g_autoptr (GError) error = NULL;
  g_autoptr (GessoArena) arena = gesso_arena_new (0, &error);
  float x[8] = { 0 }, out[24];

  /* no keys: zeros, as PyTorch's scaled_dot_product_attention gives */
  g_assert_true (gesso_attention (&shape, x, x, x, out, arena, &error));
  for (size_t i = 0; i < G_N_ELEMENTS (out); i++)
    g_assert_cmpfloat (out[i], ==, 0.0f);
  shape.q_len = 0;
  shape.kv_len = 5;
  g_assert_true (gesso_attention (&shape, x, x, x, out, arena, &error));
  g_assert_no_error (error);
}

/* SD 1.5 64x64 self-attention with guidance: 2 x 8 heads x 4096 tokens x head_dim 40. */
static void
test_benchmark (void)
{
  Problem p;
  g_autoptr (GTimer) timer = g_timer_new ();
  double best = G_MAXDOUBLE, flops;
  const int runs = 3;

  problem_init (&p, 2, 8, 40, 4096, 4096, FALSE, TRUE, 1);
  flops = 4.0 * 4096.0 * 4096.0 * 40.0 * 8.0 * 2.0;
  for (int r = 0; r < runs; r++)
    {
      g_timer_start (timer);
      problem_run (&p);
      best = MIN (best, g_timer_elapsed (timer, NULL));
    }
  g_test_message ("attention 2x8x4096x4096 d40, %d threads: %.3f s, %.1f GFLOP/s",
                  gesso_ops_get_threads (), best, flops / best * 1e-9);
  g_printerr ("attention 2x8x4096x4096 d40, %d threads: %.3f s, %.1f GFLOP/s\n",
              gesso_ops_get_threads (), best, flops / best * 1e-9);
  problem_check (&p, 997, ATOL);
  problem_clear (&p);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/core/ops/attention/tile-boundaries-atol5e-7", test_tile_boundaries);
  g_test_add_func ("/core/ops/attention/head-dims-1-to-160-atol5e-7", test_head_dims);
  g_test_add_func ("/core/ops/attention/sd-clip-shapes-fused-atol5e-7", test_sd_shapes);
  g_test_add_func ("/core/ops/attention/causal-atol5e-7", test_causal);
  g_test_add_func ("/core/ops/attention/4096-fused-atol5e-7", test_4096);
  g_test_add_func ("/core/ops/attention/large-scores-atol2e-5", test_large_scores);
  g_test_add_func ("/core/ops/attention/memory-4096-bounded", test_memory);
  g_test_add_func ("/core/ops/attention/arena-for-fewer-threads-atol5e-7",
                   test_fewer_threads_than_configured);
  g_test_add_func ("/core/ops/attention/threads-1-2-bitwise", test_thread_determinism);
  g_test_add_func ("/core/ops/attention/empty", test_empty);
  if (g_test_slow ())
    g_test_add_func ("/core/ops/attention/bench-4096-d40-8h-b2", test_benchmark);

  return g_test_run ();
}
