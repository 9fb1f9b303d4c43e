/* Shared by vae.c and vae_config.c only. */
#ifndef GESSO_VAE_PRIVATE_H
#define GESSO_VAE_PRIVATE_H

#include "model/vae.h"

/* What the weights' shapes say about the architecture, without gesso_vae_config_infer's
 * validity check: the builder compares it with a config whose group count may differ from
 * the 32 that inference assumes. */
gboolean vae_config_infer_shapes (GessoVaeConfig *config, const GessoWeights *weights,
                                  GError **error);

#endif /* GESSO_VAE_PRIVATE_H */
