/* IEEE half (F16) and bfloat16 (BF16) to float32.
 *
 * Both conversions are exact: every finite F16/BF16 value, subnormals included, is a float32
 * value; infinities stay infinite and NaNs stay NaN. Model weights stay in their file dtype
 * in memory and are widened with these where a kernel needs float32.
 */
#ifndef GESSO_HALF_H
#define GESSO_HALF_H

#include <stddef.h>
#include <stdint.h>

float gesso_f16_to_f32 (uint16_t h);
float gesso_bf16_to_f32 (uint16_t b);
uint16_t gesso_f32_to_f16 (float f);    /* round to nearest even; for tests and export */
uint16_t gesso_f32_to_bf16 (float f);   /* round to nearest even, NaN kept NaN */

/* SRC may be unaligned (it usually points into a memory-mapped file). */
void gesso_f16_to_f32_array (const void *src, float *dst, size_t n);
void gesso_bf16_to_f32_array (const void *src, float *dst, size_t n);

#endif /* GESSO_HALF_H */
