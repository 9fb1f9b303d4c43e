/* Process-independent facts about the engine: its error domain, version and enum names. */
#include "gesso-config.h"
#include "gesso.h"

G_DEFINE_QUARK (gesso-error-quark, gesso_error)

const char *
gesso_version (void)
{
  return GESSO_VERSION;
}

const char *
gesso_dtype_name (GessoDType dtype)
{
  static const char *const names[GESSO_DTYPE_COUNT] = {
    [GESSO_DTYPE_F32] = "F32",    [GESSO_DTYPE_F16] = "F16",   [GESSO_DTYPE_BF16] = "BF16",
    [GESSO_DTYPE_F64] = "F64",    [GESSO_DTYPE_I64] = "I64",   [GESSO_DTYPE_I32] = "I32",
    [GESSO_DTYPE_I16] = "I16",    [GESSO_DTYPE_I8] = "I8",     [GESSO_DTYPE_U64] = "U64",
    [GESSO_DTYPE_U32] = "U32",    [GESSO_DTYPE_U16] = "U16",   [GESSO_DTYPE_U8] = "U8",
    [GESSO_DTYPE_BOOL] = "BOOL",  [GESSO_DTYPE_F8_E4M3] = "F8_E4M3",
    [GESSO_DTYPE_F8_E5M2] = "F8_E5M2",
  };
  g_return_val_if_fail (dtype < GESSO_DTYPE_COUNT, "?");
  return names[dtype];
}

const char *
gesso_component_name (GessoComponent component)
{
  static const char *const names[GESSO_COMPONENT_COUNT] = {
    [GESSO_COMPONENT_UNET] = "unet",
    [GESSO_COMPONENT_VAE] = "vae",
    [GESSO_COMPONENT_TEXT_ENCODER] = "text_encoder",
    [GESSO_COMPONENT_TEXT_ENCODER_2] = "text_encoder_2",
    [GESSO_COMPONENT_OTHER] = "other",
  };
  g_return_val_if_fail (component < GESSO_COMPONENT_COUNT, "?");
  return names[component];
}
