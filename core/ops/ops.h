/* The numeric kernels. Float32, dense, row-major; images NCHW, sequences [rows, features].
 *
 * OpenMP lives in these files and nowhere else: everything above core/ops is single-threaded.
 * Work is split by output element ranges, never along a reduction, so results do not depend
 * on the number of threads. Kernels never allocate: the ones that need scratch take an arena
 * and say how much they need (gesso_*_scratch_bytes) so callers can plan it.
 */
#ifndef GESSO_OPS_H
#define GESSO_OPS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gesso.h"
#include "tensor/arena.h"

G_BEGIN_DECLS

/* --- Weights as the model file stored them ----------------------------------------------- */

/* A layer's weight matrix: its elements in the dtype the file holds (F32, F16 or BF16), in
 * memory GessoWeights owns, so a 16-bit model costs 2 bytes per parameter. Kernels that take
 * one widen it to float32 just before their products (gesso_weight_widened), into the same
 * numbers the products saw when every weight was widened at load: results are bit-identical.
 *
 * gesso_weight_widened is the one place a weight becomes float32, and where a low-rank delta
 * (LoRA: W + scale * up * down) is added to it: every layer and kernel stays as it is, the
 * stored weight is never changed, and a weight without a delta is widened exactly as before. */
/* A low-rank change to a weight matrix seen as [ROWS, COLS]: W + SCALE * up * down, with UP
 * [ROWS, RANK] and DOWN [RANK, COLS] as their file stores them (F32, F16 or BF16); NEXT chains
 * several (LoRAs used together). The owner of the factors keeps them alive while set. */
typedef struct GessoWeightDelta
{
  const void *up, *down;
  GessoDType up_dtype, down_dtype;
  int64_t rows, rank, cols;
  float scale;
  const struct GessoWeightDelta *next;
} GessoWeightDelta;

typedef struct
{
  const void *data;             /* NULL: no weight (an empty tensor) */
  GessoDType dtype;
  /* where the weight's owner keeps the deltas set on it now (NULL: none can be): read at each
   * widening, so setting them takes effect without rebuilding the layers that hold this */
  const GessoWeightDelta *const *delta;
} GessoWeight;

static inline GessoWeight
gesso_weight_f32 (const float *data)
{
  return (GessoWeight) { .data = data, .dtype = GESSO_DTYPE_F32 };
}

/* W's NUMEL elements as float32, with W's deltas added: W's own data when it is F32 without
 * deltas, else widened into a buffer of the calling thread (by all threads when called outside
 * a parallel region). Valid until the
 * thread's next call; the buffer lives as long as the thread and grows to the largest weight
 * it widened (one per thread, so jobs on different threads never share it). */
const float *gesso_weight_widened (const GessoWeight *w, int64_t numel);
/* Frees the calling thread's widening buffer, for a caller done with the network whose
 * weights grew it (a UNet's biggest weight takes 113 MiB widened; the VAE's 9). */
void gesso_weight_release_buffer (void);

/* --- Threads ------------------------------------------------------------------------- */

/* 0 = all cores. Applies to OpenMP regions, GEMMs included (the provider's own threading is
 * off: see gemm.c). Also lifts the limit below. */
void gesso_ops_set_threads (int n_threads);
/* The threads used now: the configured count, or fewer while the load limits them. */
int gesso_ops_get_threads (void);
int gesso_ops_get_configured_threads (void);
/* At most N_THREADS (0: no limit) until the next gesso_ops_set_threads. */
void gesso_ops_limit_threads (int n_threads);

/* Limits the threads to the cores other programs left free since the last call (busy_cores.c):
 * for callers between two long pieces of work, such as UNet evaluations. The first call only
 * starts measuring; a system without /proc/stat keeps every thread. */
void gesso_ops_fit_threads_to_load (void);
/* The rule it applies: WANTED threads, less the cores of N_CPUS that others kept busy (each
 * more than half used counts), at least 1. */
int gesso_ops_threads_for_load (int wanted, int n_cpus, double others_busy_cores);

/* --- GEMM: the one seam between the model code and the matrix-multiply provider -------- */

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major, leading dimensions in
 * elements. op(X) is X or X^T as TRANS_X says. */
void gesso_gemm (gboolean trans_a, gboolean trans_b, int64_t m, int64_t n, int64_t k,
                 float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                 float beta, float *c, int64_t ldc);

/* The same on the calling thread only: for kernels that split work across OpenMP threads
 * themselves (attention tiles, convolution blocks). gesso_gemm itself runs serially when
 * called inside a parallel region. */
void gesso_gemm_serial (gboolean trans_a, gboolean trans_b, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float beta, float *c, int64_t ldc);

/* --- Linear layer: out[rows, out_features] = x[rows, in_features] W^T + bias ------------- */
/* WEIGHT is [out_features, in_features] as PyTorch stores it; BIAS may be NULL. */
void gesso_linear (const float *x, int64_t rows, int64_t in_features, const float *weight,
                   const float *bias, int64_t out_features, float *out);
/* The same with a weight as stored (widened by gesso_weight_widened). */
void gesso_linear_weight (const float *x, int64_t rows, int64_t in_features,
                          const GessoWeight *weight, const float *bias, int64_t out_features,
                          float *out);

/* --- 2-D convolution ------------------------------------------------------------------ */

typedef struct
{
  int64_t batch, in_channels, in_height, in_width;
  int64_t out_channels, kernel_h, kernel_w;
  int64_t stride, padding;               /* same in both directions, zero padding */
} GessoConv2dShape;

int64_t gesso_conv2d_out_height (const GessoConv2dShape *shape);
int64_t gesso_conv2d_out_width (const GessoConv2dShape *shape);
size_t gesso_conv2d_scratch_bytes (const GessoConv2dShape *shape);

/* INPUT [batch, in_channels, in_height, in_width]; WEIGHT [out_channels, in_channels, kh, kw];
 * BIAS [out_channels] or NULL; OUTPUT [batch, out_channels, out_h, out_w]. SCRATCH must have
 * gesso_conv2d_scratch_bytes() free; it is returned to its mark on exit. FALSE (with ERROR)
 * only when the arena is too small. */
gboolean gesso_conv2d (const GessoConv2dShape *shape, const float *input, const float *weight,
                       const float *bias, float *output, GessoArena *scratch, GError **error);
/* The same with a weight as stored (widened by gesso_weight_widened). */
gboolean gesso_conv2d_weight (const GessoConv2dShape *shape, const float *input,
                              const GessoWeight *weight, const float *bias, float *output,
                              GessoArena *scratch, GError **error);

/* --- Normalisation ---------------------------------------------------------------------- */

/* x [batch, channels, spatial] -> out (may alias x); GAMMA/BETA [channels] or NULL.
 * Statistics per (batch, group) over channels/groups * spatial values, biased variance. */
void gesso_group_norm (const float *x, int64_t batch, int64_t channels, int64_t spatial,
                       int64_t groups, float eps, const float *gamma, const float *beta,
                       float *out);

/* x [rows, dim] -> out (may alias x), per-row mean/variance; GAMMA/BETA [dim] or NULL. */
void gesso_layer_norm (const float *x, int64_t rows, int64_t dim, float eps,
                       const float *gamma, const float *beta, float *out);

/* --- Element-wise activations, in place over N values ------------------------------------ */

void gesso_silu (float *x, size_t n);
void gesso_gelu_erf (float *x, size_t n);     /* x * Phi(x), exact erf form */
void gesso_gelu_tanh (float *x, size_t n);    /* tanh approximation */
void gesso_quick_gelu (float *x, size_t n);   /* x * sigmoid(1.702 x), CLIP ViT-L */

/* GEGLU: x [rows, 2*dim] = [a | gate] -> out [rows, dim] = a * gelu_erf(gate). */
void gesso_geglu (const float *x, int64_t rows, int64_t dim, float *out);

/* --- Softmax over the last axis, in place: x [rows, cols] --------------------------------- */
void gesso_softmax (float *x, int64_t rows, int64_t cols);

/* --- Scaled dot-product attention ------------------------------------------------------- */

/* Multi-head attention over sequences laid out as [batch, tokens, heads * head_dim] with a
 * row stride (so Q, K and V may be slices of one fused projection):
 *   out[b, i, h*d:(h+1)*d] = softmax(scale * q_i . k_j  over j) . v_j
 * computed in tiles with an online softmax, so memory does not grow with q_len * kv_len.
 * CAUSAL masks j > i (CLIP text encoder). OUT has row stride heads * head_dim. */
typedef struct
{
  int64_t batch, heads, head_dim;
  int64_t q_len, kv_len;
  int64_t q_stride, k_stride, v_stride;  /* elements between consecutive tokens */
  float scale;
  gboolean causal;
} GessoAttentionShape;

size_t gesso_attention_scratch_bytes (const GessoAttentionShape *shape);
gboolean gesso_attention (const GessoAttentionShape *shape, const float *q, const float *k,
                          const float *v, float *out, GessoArena *scratch, GError **error);

/* --- Resampling ------------------------------------------------------------------------- */

/* x [planes, h, w] -> out [planes, 2h, 2w], each value repeated 2x2 (nearest). */
void gesso_upsample_nearest2x (const float *x, int64_t planes, int64_t h, int64_t w, float *out);

/* --- Small helpers ---------------------------------------------------------------------- */

void gesso_add (float *dst, const float *src, size_t n);                       /* dst += src */
/* x [batch, channels, spatial] += bias[channels] (broadcast over spatial) */
void gesso_add_channel_bias (float *x, int64_t batch, int64_t channels, int64_t spatial,
                             const float *bias);

G_END_DECLS

#endif /* GESSO_OPS_H */
