/* Model weights by their diffusers names, whatever file layout they came from.
 *
 * Opening a model maps single-file (CompVis/LDM, OpenCLIP) keys onto the diffusers names
 * once; every layer then asks for "down_blocks.0.resnets.0.conv1.weight" of the UNet, or
 * "text_model.encoder.layers.0.self_attn.q_proj.weight" of the text encoder, and gets float32
 * data of the shape it expects. Fused OpenCLIP in_proj weights are served as the q/k/v slices
 * diffusers names, 1x1 conv weights [C,C,1,1] as linear [C,C] where a layer wants that.
 * The returned pointers stay valid for the life of the GessoWeights (F32 data may point into
 * the mapped file; F16/BF16 are widened once and kept).
 */
#ifndef GESSO_WEIGHTS_H
#define GESSO_WEIGHTS_H

#include <glib.h>

#include "gesso.h"
#include "io/model_files.h"

G_BEGIN_DECLS

typedef struct GessoWeights GessoWeights;

/* Borrows FILES, which must outlive the result. */
GessoWeights *gesso_weights_new (GessoModelFiles *files, GError **error);
void gesso_weights_free (GessoWeights *weights);

gboolean gesso_weights_has (const GessoWeights *weights, GessoComponent component,
                            const char *name);
/* Number of dims and shape as the diffusers layout has them; FALSE when absent. */
gboolean gesso_weights_shape (const GessoWeights *weights, GessoComponent component,
                              const char *name, int *ndim, int64_t shape[8]);
/* Float32 data of NAME checked against the expected shape (NDIM dims of SHAPE; a stored
 * shape with the same element count that differs only by trailing 1s, such as a 1x1 conv
 * kernel for a linear layer, is accepted). On failure: "unet weight 'x' has shape [..], expected [..]"
 * or "unet weight 'x' is missing". */
const float *gesso_weights_get (GessoWeights *weights, GessoComponent component,
                                const char *name, int ndim, const int64_t *shape,
                                GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoWeights, gesso_weights_free)

G_END_DECLS

#endif /* GESSO_WEIGHTS_H */
