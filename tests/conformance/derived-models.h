/* Models a case derives from a conformance model by a fixed rule (derived-models.c). */
#ifndef GESSO_CONFORMANCE_DERIVED_MODELS_H
#define GESSO_CONFORMANCE_DERIVED_MODELS_H

#include "harness.h"

/* The variants of the model SPEC (the manifest's "derived_model") describes, built in a new
 * folder *TMPDIR that the caller removes (conformance_remove_derived); NULL and ERROR when the
 * source model is missing or the rule unknown. */
GPtrArray *conformance_derived_variants (const ConformanceCase *c, JsonObject *spec,
                                         char **tmpdir, GError **error);
void conformance_remove_derived (char *tmpdir);

#endif
