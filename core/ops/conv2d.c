/* 2-D convolution, NCHW, as matrix products: per image, out [Cout, OH*OW] = W [Cout, K] x
 * B [K, OH*OW] with K = Cin*kh*kw. What decides the speed is how B is made and how the
 * products are shared among threads. Numbers below: the development box (2-vCPU Sapphire
 * Rapids VM, Debian's OpenBLAS 0.3.21 pthread running its SkylakeX kernels), SD 1.5 UNet 3x3
 * shapes at batch 2, as a fraction of cblas_sgemm on the same [M, N = batch*OH*OW, K] timed in
 * the same run; 2 threads (run at real-time priority, as the box was never quiet), or 1 thread
 * on process CPU time where marked.
 *
 * - Shifted GEMM for stride 1, images >= 32 wide, >= 32 input channels. With the input padded
 *   to [Cin, Hp, Wp], tap (i, j)'s B operand is the padded input itself seen from offset
 *   i * Wp + j, so the convolution is kh*kw products with K = Cin accumulated into
 *   [Cout, OH*Wp], of which the kw - 1 padding columns per row are dropped (3% extra work at
 *   64 wide, 6% at 32). Nothing is unfolded and B is 9x smaller, so it stays in cache:
 *   64x64x320 ran at 108% of sgemm (whose 47 MB B streams from memory), whole-image im2col at
 *   89%, im2col in 1024-column tiles at 79% (1 thread); 32x32x640 at 94% vs 90%. Its costs:
 *   regrouping the weights to [taps, Cout, Cin] on every call (a tap's A needs unit stride
 *   along Cin), which only pays when batch * OH * OW >= Cout (16x16x1280, 1 thread: 75% vs
 *   96% for im2col), and products with K = Cin, which stop paying below 32 input channels
 *   (128x128 images, 1 thread: 136% of sgemm at Cin 64, 98% at 32, 69% at 16, 51% at 8).
 * - im2col otherwise (the 16x16 and 8x8 levels, stride 2, few input channels): whole images
 *   while they fit BLOCK_FLOATS, else blocks of columns. A 'same' convolution's unfolded row
 *   is one long copy of the shifted plane and a few zeros, not a copy per image row (1.6x
 *   faster on 64-wide images, 2.7x on 16-wide, 3x on 8-wide). Small images of a batch go
 *   side by side into one wider product: 8x8x1280 ran at 98% of sgemm, 82% one image at a
 *   time; 16x16x1280 at 93% vs 88%.
 * - Threads: one OpenMP region per call, in which each thread runs single-threaded OpenBLAS
 *   products on its own work items (OpenBLAS's own pool is off everywhere: see gemm.c; an
 *   sgemm started right after an OpenMP region took 13% longer with it on). The items are a
 *   function of the shape and of the processor count, never of the thread count: OpenBLAS
 *   does not sum a slice of a product the way it sums the whole (its small-matrix kernel
 *   takes over on small slices), so slices that moved with the thread count would move
 *   bits. There are as
 *   few as there are processors, because OpenBLAS packs all of A for each column slice and
 *   all of B for each row slice (2 threads, 4 items instead of 2: 64x64 -4%, 32x32 -5%,
 *   16x16 -3 to -8%); the batch is split by image first, then the grid that packs least.
 */
#include <string.h>

#include <omp.h>

#include "gesso.h"
#include "ops/ops.h"

typedef enum
{
  METHOD_FILL,        /* no input channels (or no output): the output is the bias */
  METHOD_GEMM,        /* 1x1, stride 1, no padding: each image already is the B operand */
  METHOD_IM2COL,      /* unfold a block of output columns into [K, cols], then multiply */
  METHOD_SHIFTED,     /* stride 1: kh*kw products over shifted views of a zero-padded input */
} Method;

/* Everything about how a shape is computed; a pure function of the shape and the machine's
 * processor count, so gesso_conv2d_scratch_bytes() and gesso_conv2d() always agree and the
 * thread count never changes which products are computed.
 *
 * The work goes in blocks of IMAGES whole images, or, when one image is too big for the
 * scratch budget, of BLOCK output columns (im2col) or rows (shifted) of one image. A block
 * is cut into work items, one serial product each: by image, then M_SPLIT output channels by
 * N_SPLIT columns of that image, or, with CONCAT, over the columns of all the block's images
 * side by side (one wider product for small images, which OpenBLAS runs faster). */
typedef struct
{
  Method method;
  int64_t out_h, out_w;
  int64_t taps;               /* kernel_h * kernel_w */
  int64_t k;                  /* in_channels * taps: the reduction length */
  int64_t images, block;
  gboolean concat;
  int64_t m_split, n_split;
  size_t col_floats;          /* im2col: the unfolded block, [K, images, block] */
  size_t out_floats;          /* concat: its product; shifted: per-image products */
  size_t wr_floats;           /* shifted: weights regrouped by tap */
  size_t pad_floats;          /* shifted: per-image rows of zero-padded input */
  size_t bytes;
} Plan;

/* Unfolded or padded input and products of one block, in floats (48 MiB): enough for every
 * SD 1.5 UNet convolution to take both guidance images in one block (the most, 47 MB, for
 * 16x16 2560->1280 unfolded). Bigger images, the VAE's, go in blocks of columns or rows.
 * The shifted method's regrouped weights come on top (44 MB for 32x32 1920->640, the
 * UNet's largest scratch at 64 MB). */
#define BLOCK_FLOATS ((int64_t) 12 << 20)

static gboolean
shape_ok (const GessoConv2dShape *s)
{
  return s != NULL && s->batch >= 0 && s->in_channels >= 0 && s->in_height >= 0
         && s->in_width >= 0 && s->out_channels >= 0 && s->kernel_h > 0 && s->kernel_w > 0
         && s->stride > 0 && s->padding >= 0;
}

int64_t
gesso_conv2d_out_height (const GessoConv2dShape *shape)
{
  g_return_val_if_fail (shape_ok (shape), 0);
  int64_t span = shape->in_height + 2 * shape->padding - shape->kernel_h;
  return span < 0 ? 0 : span / shape->stride + 1;
}

int64_t
gesso_conv2d_out_width (const GessoConv2dShape *shape)
{
  g_return_val_if_fail (shape_ok (shape), 0);
  int64_t span = shape->in_width + 2 * shape->padding - shape->kernel_w;
  return span < 0 ? 0 : span / shape->stride + 1;
}

static int64_t
round_up (int64_t v, int64_t to)
{
  return (v + to - 1) / to * to;
}

static int64_t
gcd (int64_t a, int64_t b)
{
  while (b != 0)
    {
      int64_t t = a % b;
      a = b;
      b = t;
    }
  return a;
}

/* How many work items a block should have. Each item is a serial product, and OpenBLAS packs
 * all of A for every column slice and all of B for every row slice, so fewer items are
 * cheaper; one per processor keeps every core busy. It depends on the machine, never on
 * gesso_ops_set_threads(), so the thread count cannot change the bits of the result. */
static int64_t
item_target (void)
{
  return CLAMP (omp_get_num_procs (), 1, 64);
}

/* The cheapest grid for IMAGES products of [M, N] (concatenated into one [M, IMAGES * N]
 * product when CONCAT) with a whole multiple of TARGET items: cost counts the rows and
 * columns OpenBLAS packs. Column slices are multiples of N_UNIT. Returns the cost. */
static int64_t
best_grid (int64_t m, int64_t n, int64_t images, gboolean concat, int64_t n_unit,
           int64_t target, int64_t *m_split, int64_t *n_split)
{
  const int64_t cols = concat ? images * n : n;
  const int64_t products = concat ? 1 : images;
  /* items per product so that all products together come to a multiple of TARGET */
  const int64_t per_product = target / gcd (products, target);
  int64_t best = INT64_MAX;

  *m_split = m;
  *n_split = cols;
  for (int64_t mp = 1; mp <= per_product; mp++)
    {
      if (per_product % mp != 0)
        continue;
      int64_t np = per_product / mp;
      int64_t ms = round_up ((m + mp - 1) / mp, 16), ns = round_up ((cols + np - 1) / np, n_unit);
      /* slices too thin to be worth a product, or rounding that leaves an item empty */
      if ((mp > 1 && (ms < 16 || (mp - 1) * ms >= m))
          || (np > 1 && (ns < MAX (n_unit, 16) || (np - 1) * ns >= cols)))
        continue;
      int64_t cost = products * (np * m + mp * cols);
      if (cost < best)
        {
          best = cost;
          *m_split = MIN (ms, m);
          *n_split = MIN (ns, cols);
        }
    }
  /* no grid fits: one item per product */
  return best != INT64_MAX ? best : products * (m + cols);
}

static size_t
floats_bytes (size_t count)
{
  return count == 0 ? 0 : gesso_arena_block_size (count * sizeof (float));
}

static void
make_plan (const GessoConv2dShape *s, Plan *plan)
{
  memset (plan, 0, sizeof *plan);
  plan->out_h = gesso_conv2d_out_height (s);
  plan->out_w = gesso_conv2d_out_width (s);
  plan->taps = s->kernel_h * s->kernel_w;
  plan->k = s->in_channels * plan->taps;

  const int64_t n = plan->out_h * plan->out_w, cout = s->out_channels;
  const int64_t wp = s->in_width + 2 * s->padding;
  const int64_t target = item_target ();

  if (s->batch == 0 || cout == 0 || n == 0 || s->in_channels == 0)
    plan->method = METHOD_FILL;
  else if (s->kernel_h == 1 && s->kernel_w == 1 && s->stride == 1 && s->padding == 0)
    plan->method = METHOD_GEMM;
  else if (s->stride == 1 && s->in_channels >= 32 && plan->out_w >= 16 * (s->kernel_w - 1)
           && s->batch * n >= cout)
    plan->method = METHOD_SHIFTED;
  else
    plan->method = METHOD_IM2COL;

  switch (plan->method)
    {
    case METHOD_FILL:
      return;

    case METHOD_GEMM:
      plan->images = s->batch;
      plan->block = n;
      best_grid (cout, n, plan->images, FALSE, 16, target, &plan->m_split, &plan->n_split);
      break;

    case METHOD_IM2COL:
      {
        int64_t m_split, n_split, cost;

        plan->images = CLAMP (BLOCK_FLOATS / (plan->k * n), 1, s->batch);
        plan->block = plan->images > 1 ? n : MIN (n, MAX (BLOCK_FLOATS / plan->k / 16 * 16, 256));
        cost = best_grid (cout, plan->block, plan->images, FALSE, 16, target, &plan->m_split,
                          &plan->n_split);
        if (plan->images > 1
            && best_grid (cout, n, plan->images, TRUE, 16, target, &m_split, &n_split) < cost)
          {
            plan->concat = TRUE;
            plan->m_split = m_split;
            plan->n_split = n_split;
            plan->out_floats = (size_t) (cout * plan->images * n);
          }
        plan->col_floats = (size_t) (plan->k * plan->images * plan->block);
      }
      break;

    case METHOD_SHIFTED:
      {
        /* per image: padded input rows + product rows, both Wp wide */
        const int64_t image_floats = (s->in_channels * (plan->out_h + s->kernel_h - 1)
                                      + cout * plan->out_h) * wp;
        const int64_t row_floats = (s->in_channels + cout) * wp;

        plan->images = CLAMP (BLOCK_FLOATS / image_floats, 1, s->batch);
        plan->block = plan->images > 1 ? plan->out_h
                                       : CLAMP (BLOCK_FLOATS / row_floats, 1, plan->out_h);
        plan->wr_floats = (size_t) (plan->k * cout);
        plan->pad_floats = (size_t) (plan->images * s->in_channels
                                     * (plan->block + s->kernel_h - 1) * wp);
        plan->out_floats = (size_t) (plan->images * cout * plan->block * wp);
        /* whole rows per item, so dropping the padding columns afterwards stays simple */
        best_grid (cout, plan->block * wp, plan->images, FALSE, wp, target, &plan->m_split,
                   &plan->n_split);
      }
      break;
    }
  plan->bytes = floats_bytes (plan->col_floats) + floats_bytes (plan->out_floats)
                + floats_bytes (plan->wr_floats) + floats_bytes (plan->pad_floats);
}

size_t
gesso_conv2d_scratch_bytes (const GessoConv2dShape *shape)
{
  Plan plan;

  g_return_val_if_fail (shape_ok (shape), 0);
  make_plan (shape, &plan);
  return plan.bytes;
}

/* c[m0:m1, j0:j1] = bias (or 0), so the product can accumulate with beta = 1 */
static void
fill_bias (float *c, int64_t ldc, int64_t m0, int64_t m1, int64_t j0, int64_t j1,
           const float *bias)
{
  for (int64_t m = m0; m < m1; m++)
    {
      float *row = c + m * ldc;
      float v = bias != NULL ? bias[m] : 0.0f;
      for (int64_t j = j0; j < j1; j++)
        row[j] = v;
    }
}

/* Row R = (channel, ky, kx) of the unfolded image X ([C, H, W]) over its output columns
 * [n0, n0 + nt): dst[j] = x[c, oy * stride - pad + ky, ox * stride - pad + kx], 0 outside. */
static void
im2col_row (const GessoConv2dShape *s, const Plan *plan, const float *x, int64_t r, int64_t n0,
            int64_t nt, float *dst)
{
  const int64_t h = s->in_height, w = s->in_width, ow = plan->out_w;
  const int64_t st = s->stride, pad = s->padding, kw = s->kernel_w;
  const int64_t ky = r % plan->taps / kw, kx = r % kw;
  const float *plane = x + r / plan->taps * h * w;

  if (st == 1 && ow == w)
    {
      /* A 'same' convolution: the row is the plane shifted by one offset, so one long copy,
       * then zeros for the rows off the top and bottom edge and for the columns that
       * wrapped around from the neighbouring image row. Much faster than a copy per image
       * row on the 8- to 32-wide images of the UNet's lower levels. */
      const int64_t off = (ky - pad) * w + (kx - pad);
      /* columns whose source row is inside the image, and whose source index is inside the
       * plane (the two differ only by wrapped columns, which are zeroed below) */
      const int64_t lo = CLAMP (MAX ((pad - ky) * w, -off), n0, n0 + nt);
      const int64_t hi = CLAMP (MIN ((h + pad - ky) * w, h * w - off), lo, n0 + nt);

      memset (dst, 0, (size_t) (lo - n0) * sizeof (float));
      if (hi > lo)
        memcpy (dst + (lo - n0), plane + lo + off, (size_t) (hi - lo) * sizeof (float));
      memset (dst + (hi - n0), 0, (size_t) (n0 + nt - hi) * sizeof (float));
      if (kx != pad)
        {
          const int64_t c0 = kx < pad ? 0 : w - (kx - pad), c1 = kx < pad ? pad - kx : w;
          for (int64_t row = n0 - n0 % w; row < n0 + nt; row += w)
            for (int64_t c = MAX (row + c0, n0); c < MIN (row + c1, n0 + nt); c++)
              dst[c - n0] = 0.0f;
        }
      return;
    }

  /* the output columns ox whose input column ox * st - pad + kx lies inside [0, w) */
  int64_t lo = pad > kx ? (pad - kx + st - 1) / st : 0;
  int64_t hi = w - 1 + pad - kx >= 0 ? (w - 1 + pad - kx) / st + 1 : 0;
  lo = MIN (lo, ow);
  hi = MIN (hi, ow);
  for (int64_t j = 0, n = n0; j < nt;)
    {
      const int64_t oy = n / ow, ox = n % ow;
      const int64_t run = MIN (ow - ox, nt - j);
      const int64_t iy = oy * st - pad + ky;
      const int64_t a = CLAMP (lo, ox, ox + run);
      int64_t b = CLAMP (hi, a, ox + run);
      float *d = dst + j;                 /* d[q - ox] is output column q */

      if (iy < 0 || iy >= h)
        b = a;
      memset (d, 0, (size_t) (a - ox) * sizeof (float));
      if (b > a)
        {
          const float *src = plane + iy * w;
          if (st == 1)
            memcpy (d + (a - ox), src + (a - pad + kx), (size_t) (b - a) * sizeof (float));
          else
            for (int64_t q = a; q < b; q++)
              d[q - ox] = src[q * st - pad + kx];
        }
      memset (d + (b - ox), 0, (size_t) (ox + run - b) * sizeof (float));
      j += run;
      n += run;
    }
}

/* Enough work to wake the other threads for (about 1 MFLOP). */
static gboolean
worth_threads (const GessoConv2dShape *s, const Plan *plan)
{
  return (double) s->batch * s->out_channels * plan->k * plan->out_h * plan->out_w > 5e5;
}

/* The bias (or 0) and the product of one item's slice of OUT_BLOCK, a concatenated product
 * with COLS columns that start at image B, moved to the images' own outputs. */
static void
scatter_item (const GessoConv2dShape *s, const Plan *plan, const float *out_block, int64_t cols,
              int64_t nt, int64_t b, int64_t m0, int64_t mt, int64_t j0, int64_t jt,
              const float *bias, float *output)
{
  const int64_t cout = s->out_channels, n = plan->out_h * plan->out_w;

  for (int64_t co = m0; co < m0 + mt; co++)
    {
      const float bv = bias != NULL ? bias[co] : 0.0f;
      for (int64_t j = j0; j < j0 + jt;)
        {
          const int64_t image = j / nt, run = MIN (j0 + jt, (image + 1) * nt) - j;
          const float *src = out_block + co * cols + j;
          float *dst = output + ((b + image) * cout + co) * n + j % nt;
          for (int64_t q = 0; q < run; q++)
            dst[q] = src[q] + bv;
          j += run;
        }
    }
}

/* METHOD_GEMM and METHOD_IM2COL. */
static void
conv_unfolded (const GessoConv2dShape *s, const Plan *plan, const float *input,
               const float *weight, const float *bias, float *output, float *col,
               float *out_block)
{
  const int64_t cout = s->out_channels, k = plan->k, n = plan->out_h * plan->out_w;
  const int64_t in_image = s->in_channels * s->in_height * s->in_width;
  const int64_t m_items = (cout + plan->m_split - 1) / plan->m_split;

#pragma omp parallel if (worth_threads (s, plan))
  for (int64_t b = 0; b < s->batch; b += plan->images)
    for (int64_t n0 = 0; n0 < n; n0 += plan->block)
      {
        const int64_t images = MIN (plan->images, s->batch - b);
        const int64_t nt = MIN (plan->block, n - n0), cols = images * nt;
        const int64_t products = plan->concat ? 1 : images;
        const int64_t n_items = ((plan->concat ? cols : nt) + plan->n_split - 1) / plan->n_split;

        if (plan->method == METHOD_IM2COL)
          {
            /* [K, images, nt]: image i's columns follow image i - 1's in each row */
#pragma omp for schedule(static)
            for (int64_t r = 0; r < images * k; r++)
              im2col_row (s, plan, input + (b + r / k) * in_image, r % k, n0, nt,
                          col + r % k * cols + r / k * nt);
          }

#pragma omp for schedule(static)
        for (int64_t item = 0; item < products * m_items * n_items; item++)
          {
            const int64_t p = item / (m_items * n_items), tile = item % (m_items * n_items);
            const int64_t m0 = tile / n_items * plan->m_split;
            const int64_t j0 = tile % n_items * plan->n_split;
            const int64_t mt = MIN (plan->m_split, cout - m0);
            const int64_t jt = MIN (plan->n_split, (plan->concat ? cols : nt) - j0);
            const float *a = weight + m0 * k;

            if (plan->concat)
              {
                gesso_gemm_serial (FALSE, FALSE, mt, jt, k, 1.0f, a, k, col + j0, cols, 0.0f,
                                   out_block + m0 * cols + j0, cols);
                scatter_item (s, plan, out_block, cols, nt, b, m0, mt, j0, jt, bias, output);
                continue;
              }

            float *out = output + (b + p) * cout * n + n0;
            const float *bmat = plan->method == METHOD_IM2COL ? col + p * nt
                                                               : input + (b + p) * in_image + n0;
            fill_bias (out, n, m0, m0 + mt, j0, j0 + jt, bias);
            gesso_gemm_serial (FALSE, FALSE, mt, jt, k, 1.0f, a, k, bmat + j0,
                               plan->method == METHOD_IM2COL ? cols : n, 1.0f,
                               out + m0 * n + j0, n);
          }
      }
}

/* METHOD_SHIFTED. With the input zero-padded to [C, Hp, Wp], output pixel (y, x) computed on
 * the padded width is column y * Wp + x of every tap's B operand, and tap (i, j)'s operand is
 * the padded input itself, viewed from offset i * Wp + j with row stride Hp * Wp. So the
 * convolution is kh * kw products with K = C accumulated into one [Cout, rows * Wp] result,
 * of which the last kw - 1 columns of every row are thrown away. No unfolding at all. */
static void
conv_shifted (const GessoConv2dShape *s, const Plan *plan, const float *input,
              const float *weight, const float *bias, float *output, float *wr, float *xp,
              float *out_block)
{
  const int64_t cin = s->in_channels, cout = s->out_channels, taps = plan->taps;
  const int64_t h = s->in_height, w = s->in_width, pad = s->padding;
  const int64_t kh = s->kernel_h, kw = s->kernel_w;
  const int64_t wp = w + 2 * pad, oh = plan->out_h, ow = plan->out_w;
  const int64_t m_items = (cout + plan->m_split - 1) / plan->m_split;
  const int64_t item_rows = plan->n_split / wp;
  const int64_t xp_image = cin * (plan->block + kh - 1) * wp, c_image = cout * plan->block * wp;

#pragma omp parallel if (worth_threads (s, plan))
  {
    /* [Cout, Cin, taps] -> [taps, Cout, Cin]: a tap's A needs unit stride along Cin */
#pragma omp for schedule(static)
    for (int64_t co = 0; co < cout; co++)
      for (int64_t ci = 0; ci < cin; ci++)
        for (int64_t t = 0; t < taps; t++)
          wr[(t * cout + co) * cin + ci] = weight[(co * cin + ci) * taps + t];

    for (int64_t b = 0; b < s->batch; b += plan->images)
      for (int64_t y0 = 0; y0 < oh; y0 += plan->block)
        {
          const int64_t images = MIN (plan->images, s->batch - b);
          const int64_t rows = MIN (plan->block, oh - y0), prows = rows + kh - 1;
          const int64_t n_items = (rows + item_rows - 1) / item_rows;

          /* [images][Cin, prows, Wp] */
#pragma omp for schedule(static)
          for (int64_t i = 0; i < images * cin * prows; i++)
            {
              const int64_t image = i / (cin * prows), ci = i / prows % cin;
              const int64_t iy = y0 + i % prows - pad;
              float *d = xp + image * xp_image + (ci * prows + i % prows) * wp;

              if (iy < 0 || iy >= h)
                {
                  memset (d, 0, (size_t) wp * sizeof (float));
                  continue;
                }
              memset (d, 0, (size_t) pad * sizeof (float));
              memcpy (d + pad, input + (((b + image) * cin + ci) * h + iy) * w,
                      (size_t) w * sizeof (float));
              memset (d + pad + w, 0, (size_t) pad * sizeof (float));
            }

#pragma omp for schedule(static)
          for (int64_t item = 0; item < images * m_items * n_items; item++)
            {
              const int64_t p = item / (m_items * n_items), tile = item % (m_items * n_items);
              const int64_t m0 = tile / n_items * plan->m_split;
              const int64_t r0 = tile % n_items * item_rows;
              const int64_t mt = MIN (plan->m_split, cout - m0);
              const int64_t rt = MIN (item_rows, rows - r0);
              /* the last row's kw - 1 dropped columns would read past the padded block */
              const int64_t jt = rt * wp - (r0 + rt == rows ? kw - 1 : 0);
              const float *x = xp + p * xp_image;
              float *c = out_block + p * c_image;

              for (int64_t t = 0; t < taps; t++)
                gesso_gemm_serial (FALSE, FALSE, mt, jt, cin, 1.0f, wr + (t * cout + m0) * cin,
                                   cin, x + (r0 + t / kw) * wp + t % kw, prows * wp,
                                   t == 0 ? 0.0f : 1.0f, c + m0 * rows * wp + r0 * wp,
                                   rows * wp);

              for (int64_t co = m0; co < m0 + mt; co++)
                {
                  const float bv = bias != NULL ? bias[co] : 0.0f;
                  for (int64_t y = r0; y < r0 + rt; y++)
                    {
                      const float *src = c + (co * rows + y) * wp;
                      float *dst = output + (((b + p) * cout + co) * oh + y0 + y) * ow;
                      for (int64_t q = 0; q < ow; q++)
                        dst[q] = src[q] + bv;
                    }
                }
            }
        }
  }
}

gboolean
gesso_conv2d (const GessoConv2dShape *shape, const float *input, const float *weight,
              const float *bias, float *output, GessoArena *scratch, GError **error)
{
  Plan plan;
  float *col = NULL, *out_block = NULL, *wr = NULL, *xp = NULL;

  g_return_val_if_fail (shape_ok (shape), FALSE);
  g_return_val_if_fail (scratch != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  make_plan (shape, &plan);
  /* empty tensors may come without memory */
  g_return_val_if_fail (plan.method == METHOD_FILL || (input != NULL && weight != NULL), FALSE);
  g_return_val_if_fail (output != NULL || plan.out_h * plan.out_w * shape->batch
                                          * shape->out_channels == 0, FALSE);
  const size_t mark = gesso_arena_mark (scratch);
  if ((plan.col_floats > 0 && !(col = gesso_arena_alloc_floats (scratch, plan.col_floats)))
      || (plan.out_floats > 0
          && !(out_block = gesso_arena_alloc_floats (scratch, plan.out_floats)))
      || (plan.wr_floats > 0 && !(wr = gesso_arena_alloc_floats (scratch, plan.wr_floats)))
      || (plan.pad_floats > 0 && !(xp = gesso_arena_alloc_floats (scratch, plan.pad_floats))))
    {
      gesso_arena_reset (scratch, mark);
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "a convolution needs %.1f MiB of working memory, but only %.1f MiB were "
                   "planned for it", (double) plan.bytes / (1024.0 * 1024.0),
                   (double) (gesso_arena_capacity (scratch) - mark) / (1024.0 * 1024.0));
      return FALSE;
    }

  switch (plan.method)
    {
    case METHOD_FILL:
      {
        const int64_t n = plan.out_h * plan.out_w;
        for (int64_t b = 0; b < shape->batch; b++)
          fill_bias (output + b * shape->out_channels * n, n, 0, shape->out_channels, 0, n,
                     bias);
      }
      break;
    case METHOD_GEMM:
    case METHOD_IM2COL:
      conv_unfolded (shape, &plan, input, weight, bias, output, col, out_block);
      break;
    case METHOD_SHIFTED:
      conv_shifted (shape, &plan, input, weight, bias, output, wr, xp, out_block);
      break;
    }

  gesso_arena_reset (scratch, mark);
  return TRUE;
}

gboolean
gesso_conv2d_weight (const GessoConv2dShape *shape, const float *input, const GessoWeight *weight,
                     const float *bias, float *output, GessoArena *scratch, GError **error)
{
  g_return_val_if_fail (shape_ok (shape) && weight != NULL, FALSE);
  return gesso_conv2d (shape, input,
                       gesso_weight_widened (weight, shape->out_channels * shape->in_channels
                                                     * shape->kernel_h * shape->kernel_w),
                       bias, output, scratch, error);
}
