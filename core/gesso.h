/* Gesso: a CPU engine for diffusion-model image edits.
 *
 * The one public header of the engine. Fallible functions return gboolean (or a pointer,
 * NULL on failure) and take GError **error last; errors are in the GESSO_ERROR domain with
 * messages a user can act on. Nothing here depends on GIMP or GTK.
 */
#ifndef GESSO_H
#define GESSO_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define GESSO_ERROR (gesso_error_quark ())

typedef enum
{
  GESSO_ERROR_FAILED,            /* anything that fits no better code */
  GESSO_ERROR_INVALID_ARGUMENT,  /* a parameter out of range, NaN, empty */
  GESSO_ERROR_IO,                /* a file could not be opened, read or mapped */
  GESSO_ERROR_CORRUPT,           /* a file is truncated or malformed */
  GESSO_ERROR_UNSUPPORTED,       /* valid, but not something Gesso handles (yet) */
  GESSO_ERROR_UNSAFE,            /* refused on purpose: pickle checkpoints can run code */
  GESSO_ERROR_MISSING,           /* a file or tensor that must be there is not */
  GESSO_ERROR_NO_MEMORY,         /* an allocation the job needs could not be made */
  GESSO_ERROR_CANCELLED,         /* the job was stopped by its caller */
} GessoErrorCode;

GQuark gesso_error_quark (void);
const char *gesso_version (void);

/* --- Model inspection (what `gesso info` prints) --------------------------------------- */

typedef enum
{
  GESSO_MODEL_LAYOUT_SINGLE_FILE,     /* one .safetensors checkpoint */
  GESSO_MODEL_LAYOUT_DIFFUSERS,       /* a diffusers folder with model_index.json */
} GessoModelLayout;

typedef enum
{
  GESSO_COMPONENT_UNET,
  GESSO_COMPONENT_VAE,
  GESSO_COMPONENT_TEXT_ENCODER,
  GESSO_COMPONENT_OTHER,              /* schedule buffers, EMA counters, unknown keys */
  GESSO_COMPONENT_COUNT,
} GessoComponent;

/* Storage types a model file may use; only F32, F16 and BF16 hold weights Gesso computes with. */
typedef enum
{
  GESSO_DTYPE_F32,
  GESSO_DTYPE_F16,
  GESSO_DTYPE_BF16,
  GESSO_DTYPE_F64,
  GESSO_DTYPE_I64,
  GESSO_DTYPE_I32,
  GESSO_DTYPE_I16,
  GESSO_DTYPE_I8,
  GESSO_DTYPE_U64,
  GESSO_DTYPE_U32,
  GESSO_DTYPE_U16,
  GESSO_DTYPE_U8,
  GESSO_DTYPE_BOOL,
  GESSO_DTYPE_F8_E4M3,
  GESSO_DTYPE_F8_E5M2,
  GESSO_DTYPE_COUNT,
} GessoDType;

const char *gesso_dtype_name (GessoDType dtype);
const char *gesso_component_name (GessoComponent component);

typedef struct
{
  guint n_tensors;
  guint64 n_params;
  guint n_tensors_by_dtype[GESSO_DTYPE_COUNT];
} GessoComponentSummary;

typedef struct
{
  char *path;
  GessoModelLayout layout;
  guint n_files;                      /* safetensors files read (shards count separately) */
  guint n_tensors;
  guint64 n_params;
  GessoComponentSummary components[GESSO_COMPONENT_COUNT];
  char *architecture;                 /* best-effort guess, e.g. "Stable Diffusion 1.x" */
} GessoModelSummary;

/* Opens PATH (a .safetensors file or a diffusers folder), validates every tensor entry and
 * counts what it holds. Pickle checkpoints (.ckpt, .pt, .pth, .bin) are refused. */
GessoModelSummary *gesso_model_summary_new (const char *path, GError **error);
void gesso_model_summary_free (GessoModelSummary *summary);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GessoModelSummary, gesso_model_summary_free)

G_END_DECLS

#endif /* GESSO_H */
