/* diffusers Transformer2DModel with its BasicTransformerBlocks, as SD1/SD2 use them:
 *
 *   t = proj_in(GroupNorm(x))             as tokens [B, h*w, C]; eps 1e-6
 *   per block:  t += attn1(LayerNorm1(t))                  self-attention
 *               t += attn2(LayerNorm2(t), context)         cross-attention, K/V from the text
 *               t += ff(LayerNorm3(t))                     GEGLU(C -> 4C) then Linear(4C -> C)
 *   x += proj_out(t)                      back to [B, C, h, w]
 *
 * SD1 stores proj_in/proj_out as 1x1 convolutions, SD2 as Linear layers; on tokens both are
 * the same matrix product, so one path serves both. The NCHW <-> tokens transposes are folded
 * into those two GEMMs (transposed operands), and proj_out accumulates straight onto the
 * residual.
 */
#include "model/unet_private.h"

#include <math.h>

/* diffusers' fixed epsilons: Transformer2DModel's GroupNorm and the blocks' LayerNorms */
#define TRANSFORMER_GROUP_NORM_EPS 1e-6f
#define TRANSFORMER_LAYER_NORM_EPS 1e-5f

/* The feed-forward runs over at most this many tokens at a time: its 12*C-wide temporaries
 * would otherwise grow with the image (SD1.5 at 1024x1024: 1.5 GB), while GEMMs of this
 * height already run at full speed. */
#define FF_CHUNK_ROWS 4096

static gboolean
attention (UnetExec *x, const UnetTransformer *t, const UnetLayer *wq, const UnetLayer *wk,
           const UnetLayer *wv, const UnetLayer *wout, const float *tokens, float *hidden,
           float *normed, int64_t batch, int64_t hw, const float *kv_source, int64_t kv_len,
           int64_t kv_dim, GError **error)
{
  const int64_t c = t->channels, rows = batch * hw, kv_rows = batch * kv_len;
  size_t mark = unet_exec_mark (x);
  GessoAttentionShape shape = {
    .batch = batch, .heads = t->heads, .head_dim = c / t->heads,
    .q_len = hw, .kv_len = kv_len, .q_stride = c, .k_stride = c, .v_stride = c,
    .scale = (float) (1.0 / sqrt ((double) (c / t->heads))), .causal = FALSE,
  };
  float *q, *k, *v, *o;
  gboolean ok = FALSE;

  q = unet_exec_alloc (x, (size_t) (rows * c), error);
  k = q ? unet_exec_alloc (x, (size_t) (kv_rows * c), error) : NULL;
  v = k ? unet_exec_alloc (x, (size_t) (kv_rows * c), error) : NULL;
  o = v ? unet_exec_alloc (x, (size_t) (rows * c), error) : NULL;
  if (o == NULL)
    goto out;
  if (!unet_exec_computing (x))
    {
      unet_exec_scratch (x, gesso_attention_scratch_bytes (&shape));
      ok = TRUE;
      goto out;
    }
  /* self-attention reads its keys from the normed tokens, cross-attention from the text */
  if (kv_source == NULL)
    kv_source = tokens;
  gesso_linear_weight (tokens, rows, c, &wq->weight, wq->bias, c, q);
  gesso_linear_weight (kv_source, kv_rows, kv_dim, &wk->weight, wk->bias, c, k);
  gesso_linear_weight (kv_source, kv_rows, kv_dim, &wv->weight, wv->bias, c, v);
  if (!gesso_attention (&shape, q, k, v, o, x->arena, error))
    goto out;
  gesso_linear_weight (o, rows, c, &wout->weight, wout->bias, c, normed);
  gesso_add (hidden, normed, (size_t) (rows * c));
  ok = TRUE;

out:
  unet_exec_reset (x, mark);
  return ok;
}

static gboolean
feed_forward (UnetExec *x, const UnetTransformerBlock *blk, int64_t c, float *hidden,
              float *normed, int64_t rows, GError **error)
{
  const int64_t inner = 4 * c, chunk = MIN (rows, FF_CHUNK_ROWS);
  size_t mark = unet_exec_mark (x);
  float *proj, *gated;
  gboolean ok = FALSE;

  proj = unet_exec_alloc (x, (size_t) (chunk * 2 * inner), error);
  gated = proj ? unet_exec_alloc (x, (size_t) (chunk * inner), error) : NULL;
  if (gated == NULL)
    goto out;
  if (unet_exec_computing (x))
    {
      for (int64_t r0 = 0; r0 < rows; r0 += chunk)
        {
          int64_t n = MIN (chunk, rows - r0);

          gesso_linear_weight (normed + r0 * c, n, c, &blk->ff_in.weight, blk->ff_in.bias,
                               2 * inner, proj);
          gesso_geglu (proj, n, inner, gated);
          /* these rows of NORMED have been consumed: they take the block's output */
          gesso_linear_weight (gated, n, inner, &blk->ff_out.weight, blk->ff_out.bias, c,
                               normed + r0 * c);
        }
      gesso_add (hidden, normed, (size_t) (rows * c));
    }
  ok = TRUE;

out:
  unet_exec_reset (x, mark);
  return ok;
}

gboolean
unet_transformer_forward (UnetExec *x, const UnetGlobals *g, const UnetTransformer *t,
                          float *inout, int64_t batch, int64_t hw, const float *context,
                          int64_t context_len, GError **error)
{
  const int64_t c = t->channels, rows = batch * hw;
  size_t mark = unet_exec_mark (x);
  float *hidden, *normed;
  gboolean ok = FALSE;

  hidden = unet_exec_alloc (x, (size_t) (rows * c), error);
  normed = hidden ? unet_exec_alloc (x, (size_t) (rows * c), error) : NULL;
  if (normed == NULL)
    goto out;

  if (unet_exec_computing (x))
    {
      gesso_group_norm (inout, batch, c, hw, g->groups, TRANSFORMER_GROUP_NORM_EPS,
                        t->norm.gamma, t->norm.beta, normed);
      const float *w = gesso_weight_widened (&t->proj_in.weight, c * c);

      /* tokens[b] [hw, C] = normed[b]^T [hw, C] . W^T */
      for (int64_t b = 0; b < batch; b++)
        gesso_gemm (TRUE, TRUE, hw, c, c, 1.0f, normed + b * c * hw, hw, w, c, 0.0f,
                    hidden + b * hw * c, c);
      gesso_add_channel_bias (hidden, rows, c, 1, t->proj_in.bias);
    }

  for (int64_t d = 0; d < t->depth; d++)
    {
      const UnetTransformerBlock *blk = &t->blocks[d];

      if (unet_exec_computing (x))
        gesso_layer_norm (hidden, rows, c, TRANSFORMER_LAYER_NORM_EPS, blk->norm1.gamma,
                          blk->norm1.beta, normed);
      if (!attention (x, t, &blk->q1, &blk->k1, &blk->v1, &blk->out1, normed, hidden, normed,
                      batch, hw, NULL, hw, c, error))
        goto out;

      if (unet_exec_computing (x))
        gesso_layer_norm (hidden, rows, c, TRANSFORMER_LAYER_NORM_EPS, blk->norm2.gamma,
                          blk->norm2.beta, normed);
      if (!attention (x, t, &blk->q2, &blk->k2, &blk->v2, &blk->out2, normed, hidden, normed,
                      batch, hw, context, context_len, g->context_dim, error))
        goto out;

      if (unet_exec_computing (x))
        gesso_layer_norm (hidden, rows, c, TRANSFORMER_LAYER_NORM_EPS, blk->norm3.gamma,
                          blk->norm3.beta, normed);
      if (!feed_forward (x, blk, c, hidden, normed, rows, error))
        goto out;
    }

  if (unet_exec_computing (x))
    {
      const float *w = gesso_weight_widened (&t->proj_out.weight, c * c);

      /* inout[b] [C, hw] += W [C, C] . tokens[b]^T: the residual add is the GEMM's beta */
      for (int64_t b = 0; b < batch; b++)
        gesso_gemm (FALSE, TRUE, c, hw, c, 1.0f, w, c, hidden + b * hw * c, c, 1.0f,
                    inout + b * c * hw, hw);
      gesso_add_channel_bias (inout, batch, c, hw, t->proj_out.bias);
    }
  ok = TRUE;

out:
  unet_exec_reset (x, mark);
  return ok;
}
