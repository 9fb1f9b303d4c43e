/* The conformance harness: runs every case manifest under the conformance directory
 * ($GESSO_CONFORMANCE_DIR, else ../shared/conformance beside the source root) against the
 * engine and prints one line per result:
 *   PASS|FAIL|SKIP <case>[ <variant>] max_abs=<x> tol=<t>[ (<detail>)]
 * and a summary "conformance: N passed, M failed, K skipped". Every manifest yields at least
 * one result; a family nobody handles is a FAIL.
 *
 * A family handler (one file per family: family-<name>.c) gets the parsed manifest and the
 * case's tensors and reports one result per thing it checked, usually one per model file
 * variant (diffusers folder, single file, fp16, bf16).
 */
#ifndef GESSO_CONFORMANCE_HARNESS_H
#define GESSO_CONFORMANCE_HARNESS_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "io/safetensors.h"
#include "model/lora.h"
#include "model/weights.h"
#include "tensor/tensor.h"

typedef struct ConformanceRun ConformanceRun;

typedef struct
{
  const char *dir;              /* the conformance directory, where models/ is */
  const char *family;           /* the sub-directory: "tokenizer", "unet", ... */
  const char *name;             /* manifest file name without ".json" */
  const char *manifest_path;
  JsonObject *manifest;
  GessoSafetensors *tensors;    /* <name>.safetensors, or NULL when the case has none */
} ConformanceCase;

typedef enum
{
  CONFORMANCE_PASS,
  CONFORMANCE_FAIL,
  CONFORMANCE_SKIP,
} ConformanceOutcome;

typedef void (*ConformanceHandler) (ConformanceRun *run, const ConformanceCase *c);

/* VARIANT (may be NULL) tells which model file the result is for. MAX_ABS / TOL may be NAN
 * when not meaningful (exact comparisons print max_abs=0 tol=0). DETAIL is printf-style, NULL ok. */
void conformance_report (ConformanceRun *run, const ConformanceCase *c, ConformanceOutcome outcome,
                         const char *variant, double max_abs, double tol, const char *detail, ...)
  G_GNUC_PRINTF (7, 8);

/* Reports PASS when max_abs <= tol (and max_abs is not NaN), FAIL otherwise. */
void conformance_report_compare (ConformanceRun *run, const ConformanceCase *c,
                                 const char *variant, double max_abs, double tol);

/* Reports ERROR as SKIP when the engine says the thing is not supported yet
 * (GESSO_ERROR_UNSUPPORTED: a model family or kind it does not run), as FAIL otherwise. */
void conformance_report_error (ConformanceRun *run, const ConformanceCase *c,
                               const char *variant, double tol, const GError *error);

/* NULL when the engine can open some file of MODEL; otherwise the engine's own reason for
 * refusing it as not supported yet. Each model is probed once per run. */
const char *conformance_model_unsupported (ConformanceRun *run, const ConformanceCase *c,
                                           const char *model);

/* <dir>/models/<model>. */
char *conformance_model_dir (const ConformanceCase *c, const char *model);
/* The loadable files of a model: its diffusers folder and every single .safetensors file
 * in <dir>/models/<model>/, in a stable order; each with a short variant label
 * ("diffusers", "tiny-sd1-fp16.safetensors"). Free with g_ptr_array_unref. */
typedef struct
{
  char *label;
  char *path;
  char *diffusers_dir;          /* the model's diffusers folder, for configs a single file lacks */
} ConformanceVariant;
GPtrArray *conformance_model_variants (const ConformanceCase *c, const char *model);
void conformance_variant_free (gpointer variant);

/* The LoRAs a case applies (its "loras": [{"file": path relative to the case's folder,
 * "weight": w}]), set on a model's weights for one variant (conformance_apply_loras). */
typedef struct
{
  GPtrArray *loras;             /* of GessoLora */
  GessoWeightDelta *deltas;
  GessoWeights *weights;        /* borrowed: the deltas are cleared from it */
} ConformanceLoras;

/* Opens the case's LoRAs, binds them to WEIGHTS and sets their deltas (none: nothing to do).
 * Clear LORAS before WEIGHTS goes. */
gboolean conformance_apply_loras (const ConformanceCase *c, GessoWeights *weights,
                                  ConformanceLoras *loras, GError **error);
void conformance_loras_clear (ConformanceLoras *loras);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ConformanceLoras, conformance_loras_clear)

/* manifest["tolerance"]["max_abs"]; FALSE if absent. */
gboolean conformance_tolerance (const ConformanceCase *c, double *tol);
/* A string member of the manifest (top level, then "parameters"/"inputs" objects); NULL if absent. */
const char *conformance_manifest_string (const ConformanceCase *c, const char *key);

/* Reads tensor NAME of the case's .safetensors into a newly allocated float32 tensor
 * (free with gesso_tensor_free). */
gboolean conformance_case_tensor (const ConformanceCase *c, const char *name, GessoTensor *out,
                                  GError **error);
/* Integer tensor (token ids): *OUT newly allocated (g_free), *N its element count. */
gboolean conformance_case_tensor_i64 (const ConformanceCase *c, const char *name, int64_t **out,
                                      size_t *n, GError **error);

double conformance_max_abs_diff (const float *a, const float *b, size_t n);

#endif /* GESSO_CONFORMANCE_HARNESS_H */
