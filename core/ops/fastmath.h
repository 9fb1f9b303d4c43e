/* Vectorisable exp and GELU for the kernels in core/ops (private to core/ops and its tests).
 *
 * libm's expf and erff are a function call per value, which stops the compiler from
 * vectorising the loops that need them most: softmax inside attention runs one exp per score,
 * about 1.4 billion per UNet evaluation at 512x512, and the GEGLU feed-forwards about 90
 * million erfs (erff alone costs ~7 ns). These are branch-free straight-line code, so a loop
 * under `#pragma omp simd` turns into vector code on any ISA, and they give the same bits
 * whatever the vector width (element-wise operations only; clang, unlike GCC in ISO C mode,
 * may fuse a multiply-add in the clones whose ISA has FMA).
 *
 * Accuracy, checked over dense sweeps of the float line in tests/unit/test-ops.c:
 * ops_expf is within 2 ulp of e^x for all x (measured 1.01), gradual underflow included, +inf
 * above 88.72, 0 below -103.9; ops_gelu_erff is within 4e-7 relative of x Phi(x) (see there).
 * NaN stays NaN in both.
 */
#ifndef GESSO_OPS_FASTMATH_H
#define GESSO_OPS_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Forced: these must be inlined into the loops that use them or those loops do not vectorise,
 * and GCC's size heuristics at -O2 decline ops_gelu_erff otherwise. */
#define OPS_INLINE static inline __attribute__ ((always_inline))

OPS_INLINE uint32_t
ops_float_bits (float f)
{
  uint32_t u;

  memcpy (&u, &f, sizeof u);
  return u;
}

OPS_INLINE float
ops_bits_float (uint32_t u)
{
  float f;

  memcpy (&f, &u, sizeof f);
  return f;
}

/* C ? A : B without a branch. Written with a ternary, GCC threads the jumps of two clamps
 * in a row before the vectoriser sees them and then refuses the loop ("control flow in
 * loop") for every ISA without mask registers; a mask of all-ones or all-zeros keeps the
 * select in data flow, which every vector ISA does in one or two instructions. */
OPS_INLINE float
ops_select (int c, float a, float b)
{
  uint32_t mask = (uint32_t) 0 - (uint32_t) c;

  return ops_bits_float ((ops_float_bits (a) & mask) | (ops_float_bits (b) & ~mask));
}

/* e^x = 2^n e^r with n = round(x / ln2) and |r| <= ln2/2.
 * - n comes from the 1.5*2^23 trick: adding it rounds x/ln2 to an integer held in the low
 *   mantissa bits of T, so no float->int conversion (undefined for NaN) is needed.
 * - ln2 is split in two (Cody and Waite): LN2_HI has 9 significant bits, so n * LN2_HI is
 *   exact for |n| <= 150 and r keeps its low bits.
 * - e^r = 1 + r + r^2 q(r), q a degree-4 Chebyshev fit of (e^r - 1 - r) / r^2 on [-ln2/2, ln2/2]
 *   (mpmath chebyfit, relative error 8e-9, far below float rounding).
 * - 2^n is applied as two factors 2^(n/2) and 2^(n - n/2), each a normal float for every n in
 *   [-150, 128], so results in the subnormal range round once, correctly, and overflow to inf
 *   happens in the last multiply exactly where e^x exceeds FLT_MAX. */
#define OPS_LOG2E 1.44269504f
#define OPS_LN2_HI 0.693359375f
#define OPS_LN2_LO -2.12194440e-4f
#define OPS_ROUND_SHIFT 0x1.8p23f

/* e^r 2^n, with n held in the low bits of T = n + OPS_ROUND_SHIFT. */
OPS_INLINE float
ops_exp_finish (float r, float t)
{
  float r2 = r * r, q, p;
  int32_t ni, n1, n2;

  q = 0.00139261759f;
  q = q * r + 0.00836317334f;
  q = q * r + 0.0416665562f;
  q = q * r + 0.166665778f;
  q = q * r + 0.5f;
  p = 1.0f + (r + r2 * q);
  ni = (int32_t) (ops_float_bits (t) - 0x4b400000u);
  n1 = ni >> 1;
  n2 = ni - n1;
  p = p * ops_bits_float ((uint32_t) (n1 + 127) << 23);
  return p * ops_bits_float ((uint32_t) (n2 + 127) << 23);
}

OPS_INLINE float
ops_expf (float x)
{
  float xc, t, n, r;

  xc = ops_select (x > 89.0f, 89.0f, x);        /* NaN fails both tests and stays NaN */
  xc = ops_select (xc < -104.0f, -104.0f, xc);
  t = xc * OPS_LOG2E + OPS_ROUND_SHIFT;
  n = t - OPS_ROUND_SHIFT;
  r = xc - n * OPS_LN2_HI;
  r = r - n * OPS_LN2_LO;
  return ops_exp_finish (r, t);
}

/* e^(hi + lo) for an argument carried in two floats, |lo| < 2^-8 |hi|, hi + lo in [-104, 88]
 * (not clamped). hi - n ln2_hi is exact, so lo joins the reduced argument at full precision:
 * for arguments such as -x^2/2, whose rounding to one float alone would cost |x^2/2| 2^-24
 * of relative error in the result. */
OPS_INLINE float
ops_expf_sum (float hi, float lo)
{
  float t, n, r;

  t = (hi + lo) * OPS_LOG2E + OPS_ROUND_SHIFT;
  n = t - OPS_ROUND_SHIFT;
  r = (hi - n * OPS_LN2_HI) + lo;
  r = r - n * OPS_LN2_LO;
  return ops_exp_finish (r, t);
}

/* GELU, exact erf form: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, without calling erf.
 *
 * |x| < 1:  x Phi(x) = x/2 + x^2 S(x^2), S(z) = erf(sqrt(z/2)) / (2 sqrt z), a degree-5
 *           Chebyshev fit on [0, 1] (error 3e-10).
 * |x| >= 1: x Phi(x) = relu(x) - |x| Phi(-|x|) = relu(x) - e^(-x^2/2) K(|x|), where
 *           K(y) = y Phi(-y) e^(y^2/2) rises smoothly from 0.24 to 1/sqrt(2 pi). In
 *           t = 1 / (1 + y/4) it is nearly polynomial: degree 8 in t - 0.5143 on y in [1, 13.5]
 *           (relative error 6e-9). Clamping y at 14.5 makes e^(-y^2/2) round to 0 beyond it,
 *           where the result is x or 0; in [13.5, 14.5] it is below 1e-39, subnormal.
 * The negative tail keeps full relative precision: no 1 + erf(...) cancels, and x^2/2 enters
 * the exp exactly (x split into 12 + 12 significant bits, so the high square is exact), where
 * a rounded x^2 would cost up to 1e-5. Coefficients from mpmath chebyfit. For x = -inf this
 * gives -0, where x * Phi(x) evaluated literally is NaN. */
OPS_INLINE float
ops_gelu_erff (float x)
{
  float ax = fabsf (x);
  float z, s, near, y, yh, yl, e, u, k, far;

  z = x * x;
  s = -7.66053836e-06f;
  s = s * z + 0.000113502298f;
  s = s * z - 0.00118634396f;
  s = s * z + 0.00997332856f;
  s = s * z - 0.0664903596f;
  s = s * z + 0.398942292f;
  near = 0.5f * x + z * s;

  y = ops_select (ax > 14.5f, 14.5f, ax);
  yh = ops_bits_float (ops_float_bits (y) & 0xfffff000u);
  yl = y - yh;
  e = ops_expf_sum (-0.5f * (yh * yh), -0.5f * (yl * (y + yh)));
  /* u = t - 0.5142857, over one common denominator: 1 + y/4 rounds away the low bits of y
   * near y = 1, and forming t first would pass that loss to K, five times magnified */
  u = (0.485714257f - 0.128571436f * y) / (1.0f + 0.25f * y);
  k = 0.206811339f;
  k = k * u + 0.145230293f;
  k = k * u - 0.338245451f;
  k = k * u - 0.875433981f;
  k = k * u - 1.07050478f;
  k = k * u - 0.861864805f;
  k = k * u - 0.47717002f;
  k = k * u - 0.160506576f;
  k = k * u + 0.375444531f;
  far = ops_select (x > 0.0f, x, 0.0f) - e * k;

  return ops_select (ax < 1.0f, near, far);
}

#endif /* GESSO_OPS_FASTMATH_H */
