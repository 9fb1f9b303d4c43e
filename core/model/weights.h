/* Model weights by their diffusers names, whatever file layout they came from.
 *
 * Opening a model maps single-file (CompVis/LDM, OpenCLIP) keys onto the diffusers names
 * once; every layer then asks for "down_blocks.0.resnets.0.conv1.weight" of the UNet, or
 * "text_model.encoder.layers.0.self_attn.q_proj.weight" of the text encoder, and gets float32
 * data of the shape it expects. Fused OpenCLIP in_proj weights are served as the q/k/v slices
 * diffusers names, 1x1 conv weights [C,C,1,1] as linear [C,C] where a layer wants that.
 * The returned pointers stay valid for the life of the GessoWeights: every weight is read
 * into memory it owns once, and never points into the user's file. gesso_weights_get widens
 * F16/BF16 to float32 (norms, biases, embeddings); gesso_weights_get_stored keeps them 16-bit
 * (the weight matrices, widened by the kernels as they use them).
 */
#ifndef GESSO_WEIGHTS_H
#define GESSO_WEIGHTS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gesso.h"
#include "io/model_files.h"
#include "ops/ops.h"

G_BEGIN_DECLS

typedef struct GessoWeights GessoWeights;

/* How the text encoder's tensors were named where they came from. OpenCLIP (SD2 single files)
 * matters beyond names: by the SD2 convention its last block is stored but not used. */
typedef enum
{
  GESSO_TEXT_KEYS_NONE,         /* no text encoder */
  GESSO_TEXT_KEYS_HF,           /* transformers CLIPTextModel (SD1 files, diffusers folders) */
  GESSO_TEXT_KEYS_OPENCLIP,     /* OpenCLIP resblocks (SD2 single files) */
} GessoTextKeys;

/* Borrows FILES, which must outlive the result. Maps single-file keys onto diffusers names
 * (core/model/keymap.h); reads no tensor data. An SDXL refiner is refused here, by its key
 * names (UNSUPPORTED, "... is an SDXL refiner ..."). Not thread-safe: weights are widened
 * on first use, so one job at a time uses a GessoWeights. */
GessoWeights *gesso_weights_new (GessoModelFiles *files, GError **error);
void gesso_weights_free (GessoWeights *weights);

GessoModelLayout gesso_weights_layout (const GessoWeights *weights);
const char *gesso_weights_path (const GessoWeights *weights);
/* How the first text encoder was stored (SDXL's second is OpenCLIP's or transformers'). */
GessoTextKeys gesso_weights_text_keys (const GessoWeights *weights);
/* An SDXL model: a conditioner, a second text encoder or an added UNet embedding. */
gboolean gesso_weights_is_sdxl (const GessoWeights *weights);

/* The diffusers names of a component, in file order (for inferring structure from names). */
guint gesso_weights_count (const GessoWeights *weights, GessoComponent component);
const char *gesso_weights_name (const GessoWeights *weights, GessoComponent component,
                                guint index);

gboolean gesso_weights_has (const GessoWeights *weights, GessoComponent component,
                            const char *name);
/* The MISSING error gesso_weights_get sets for NAME, for callers that find a weight absent by
 * other means (gesso_weights_has, gesso_weights_shape). */
void gesso_weights_set_missing_error (const GessoWeights *weights, GessoComponent component,
                                      const char *name, GError **error);
/* The MISSING error for a model without a whole part: PART is "UNet", "VAE", "text encoder". */
void gesso_weights_set_absent_error (const GessoWeights *weights, const char *part,
                                     GError **error);
/* Whether the block PREFIX ("down_blocks.1") of COMPONENT is in the model, as its weight
 * PREFIX.KEY says. A structure is counted by such probes, so a probe absent from a block whose
 * other weights are there is a hole in the file: a MISSING error naming it, not a smaller
 * model that would then fail (or run) for a reason no message could give. */
gboolean gesso_weights_probe (const GessoWeights *weights, GessoComponent component,
                              const char *prefix, const char *key, gboolean *present,
                              GError **error);
/* How many of the blocks STEM.0, STEM.1, ... of COMPONENT are there, each probed by its weight
 * KEY as above; LIMIT + 1 means more than LIMIT. */
gboolean gesso_weights_count_blocks (const GessoWeights *weights, GessoComponent component,
                                     const char *stem, int limit, const char *key, int *count,
                                     GError **error);
/* Number of dims and shape as the diffusers layout has them; FALSE when absent. */
gboolean gesso_weights_shape (const GessoWeights *weights, GessoComponent component,
                              const char *name, int *ndim, int64_t shape[8]);
/* Float32 data of NAME checked against the expected shape (NDIM dims of SHAPE; a stored
 * shape with the same element count that differs only by trailing 1s, such as a 1x1 conv
 * kernel for a linear layer, is accepted). On failure: "unet weight 'x' has shape [..], expected
 * [..]; ..." (CORRUPT), "unet weight 'x' is missing from 'path'; ..." (MISSING) or "... is
 * stored as I32; ..." (UNSUPPORTED: only F32, F16 and BF16 are weights). PATH is the component's
 * folder of a diffusers model, else the model's file. */
const float *gesso_weights_get (GessoWeights *weights, GessoComponent component,
                                const char *name, int ndim, const int64_t *shape,
                                GError **error);

/* NAME checked as gesso_weights_get checks it, as stored: F16 and BF16 stay 16-bit (read
 * once into memory the GessoWeights owns, checked for infinities and NaNs), F32 is float32.
 * For the weight matrices of linear and convolution layers, which the kernels widen just
 * before their products (gesso_weight_widened): half the memory of a widened copy. */
gboolean gesso_weights_get_stored (GessoWeights *weights, GessoComponent component,
                                   const char *name, int ndim, const int64_t *shape,
                                   GessoWeight *out, GError **error);

/* Sets the low-rank deltas (a chain; NULL: none) added to NAME wherever it is widened
 * (gesso_weight_widened): the layers holding it see W + the deltas from their next product on,
 * and the stored weight never changes. DELTA is borrowed until replaced or cleared; each link
 * must cover NAME's elements (rows * cols = numel). Only weights served by
 * gesso_weights_get_stored take deltas: a float32 copy from gesso_weights_get does not. */
gboolean gesso_weights_set_delta (GessoWeights *weights, GessoComponent component,
                                  const char *name, const GessoWeightDelta *delta,
                                  GError **error);
void gesso_weights_clear_deltas (GessoWeights *weights);

/* Rows ROWS[0..N_ROWS) of the 2-D weight NAME ([SHAPE[0], SHAPE[1]], checked as above) as
 * float32 into DST (N_ROWS * SHAPE[1] floats), widened on the fly and not cached: for
 * embedding tables, where a prompt needs 77 rows of 49408 and widening the whole table would
 * cost 150 MB. A row index outside [0, SHAPE[0]) is an INVALID_ARGUMENT error. */
gboolean gesso_weights_gather_rows (GessoWeights *weights, GessoComponent component,
                                    const char *name, const int64_t shape[2],
                                    const int64_t *rows, size_t n_rows, float *dst,
                                    GError **error);

/* Widens (or realigns) every float weight of COMPONENT now rather than on first use, so the
 * first step of a job pays nothing; GESSO_COMPONENT_COUNT means all components. Weights
 * widened so are what gesso_weights_get_stored serves too (float32, 4 bytes a parameter). */
gboolean gesso_weights_preload (GessoWeights *weights, GessoComponent component,
                                GError **error);

/* Frees the data read for COMPONENT's weights (they are read again on their next use): every
 * pointer and GessoWeight served for COMPONENT before is invalid after this. */
void gesso_weights_release (GessoWeights *weights, GessoComponent component);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoWeights, gesso_weights_free)

G_END_DECLS

#endif /* GESSO_WEIGHTS_H */
