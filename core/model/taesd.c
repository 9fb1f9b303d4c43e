/* TAESD: loading either layout and the two forward passes (see taesd.h).
 *
 * Each half is a list of steps read from its numbered layers. The forward runs twice through
 * the same code, as the VAE's does: once planning (each step records the size of its output
 * slot and its convolution scratch), once computing out of one arena of the planned size.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/io-private.h"
#include "io/safetensors.h"
#include "model/taesd.h"
#include "ops/ops.h"

#define N_SLOTS 3
/* As for the VAE: far beyond any edit, and far from overflow. */
#define MAX_SIDE 16384
/* nn.Sequential indices above this are not a TAESD (real ones stop at 19). */
#define MAX_LAYERS 256

typedef struct
{
  float *weight;                /* [out, in, k, k]; owned by GessoTaesd.buffers */
  float *bias;                  /* [out] or NULL */
  int64_t in, out, kernel;
} Conv;

typedef enum
{
  STEP_CONV,
  STEP_BLOCK,
} StepKind;

typedef struct
{
  StepKind kind;
  Conv conv;                    /* STEP_CONV */
  int stride;                   /* encoder: 2 for the bias-free downsampling convs */
  gboolean upsample_before;     /* decoder: the bias-free conv after nn.Upsample */
  gboolean relu_after;          /* decoder: the first conv */
  Conv block[3];                /* STEP_BLOCK: conv.0, conv.2, conv.4 */
  gboolean has_skip;
  Conv skip;
} Step;

typedef struct
{
  GArray *steps;                /* Step; NULL when this half is absent */
  int64_t in_channels, out_channels;
  int factor;
} Half;

struct GessoTaesd
{
  GessoTaesdLayout layout;
  Half encoder, decoder;
  GPtrArray *buffers;           /* every widened weight */
  guint64 parameters;
  int64_t width;
};

void
gesso_taesd_free (GessoTaesd *taesd)
{
  if (taesd == NULL)
    return;
  if (taesd->encoder.steps != NULL)
    g_array_unref (taesd->encoder.steps);
  if (taesd->decoder.steps != NULL)
    g_array_unref (taesd->decoder.steps);
  g_ptr_array_unref (taesd->buffers);
  g_free (taesd);
}

/* --- Reading one half's layers ---------------------------------------------------------- */

/* The weights of ST under PREFIX ("", "encoder.layers."), by their Sequential index. */
typedef struct
{
  const GessoSafetensors *st;
  const char *prefix;
  int index_offset;             /* diffusers' decoder numbers from the clamp's successor */
} Source;

static const GessoSafetensorsEntry *
lookup (const Source *src, int index, const char *suffix)
{
  g_autofree char *key = g_strdup_printf ("%s%d.%s", src->prefix, index - src->index_offset,
                                          suffix);

  return gesso_safetensors_lookup (src->st, key);
}

static gboolean
load_conv (GessoTaesd *taesd, const Source *src, int index, const char *name, gboolean with_bias,
           Conv *conv, GError **error)
{
  g_autofree char *wname = g_strconcat (name, "weight", NULL);
  g_autofree char *bname = g_strconcat (name, "bias", NULL);
  const GessoSafetensorsEntry *w = lookup (src, index, wname);
  const GessoSafetensorsEntry *b = with_bias ? lookup (src, index, bname) : NULL;
  float *data;

  if (w == NULL || w->ndim != 4 || w->shape[2] != w->shape[3] || w->shape[2] % 2 == 0)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s': TAESD layer %s%d.%s is %s; expected a square, odd convolution "
                   "kernel [out, in, k, k]", gesso_safetensors_path (src->st), src->prefix,
                   index - src->index_offset, wname, w == NULL ? "missing" : "misshapen");
      return FALSE;
    }
  conv->out = w->shape[0];
  conv->in = w->shape[1];
  conv->kernel = w->shape[2];
  if (with_bias && (b == NULL || b->ndim != 1 || b->shape[0] != conv->out))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s': TAESD layer %s%d.%s is %s; expected [%" G_GINT64_FORMAT "]",
                   gesso_safetensors_path (src->st), src->prefix, index - src->index_offset,
                   bname, b == NULL ? "missing" : "misshapen", conv->out);
      return FALSE;
    }
  data = g_try_new (float, w->numel);
  if (data == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY, "out of memory reading TAESD");
      return FALSE;
    }
  g_ptr_array_add (taesd->buffers, data);
  if (!gesso_safetensors_entry_to_f32 (w, data, error))
    return FALSE;
  conv->weight = data;
  taesd->parameters += (guint64) w->numel;
  taesd->width = MAX (taesd->width, conv->out);
  if (b != NULL)
    {
      conv->bias = g_new (float, b->numel);
      g_ptr_array_add (taesd->buffers, conv->bias);
      if (!gesso_safetensors_entry_to_f32 (b, conv->bias, error))
        return FALSE;
      taesd->parameters += (guint64) b->numel;
    }
  return TRUE;
}

static gboolean
load_block (GessoTaesd *taesd, const Source *src, int index, Step *step, GError **error)
{
  static const char *const names[3] = { "conv.0.", "conv.2.", "conv.4." };

  step->kind = STEP_BLOCK;
  for (int i = 0; i < 3; i++)
    if (!load_conv (taesd, src, index, names[i], TRUE, &step->block[i], error))
      return FALSE;
  step->has_skip = lookup (src, index, "skip.weight") != NULL;
  return !step->has_skip || load_conv (taesd, src, index, "skip.", FALSE, &step->skip, error);
}

/* Which Sequential indices of SRC hold weights, and whether each is a conv or a Block; a key
 * that is neither is refused (a file of another kind would otherwise half load). */
static gboolean
scan_indices (const Source *src, guint8 kinds[MAX_LAYERS], GError **error)
{
  const size_t plen = strlen (src->prefix);

  memset (kinds, 0, MAX_LAYERS);
  for (guint i = 0; i < gesso_safetensors_count (src->st); i++)
    {
      const char *key = gesso_safetensors_entry (src->st, i)->name;
      char *end;
      gint64 n;

      if (strncmp (key, src->prefix, plen) != 0)
        continue;
      n = g_ascii_strtoll (key + plen, &end, 10);
      n += src->index_offset;
      if (end == key + plen || *end != '.' || n < 0 || n >= MAX_LAYERS)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "'%s' is not a TAESD: tensor '%s' is not a numbered layer",
                       gesso_safetensors_path (src->st), key);
          return FALSE;
        }
      if (strcmp (end, ".weight") == 0 || strcmp (end, ".bias") == 0)
        kinds[n] |= 1;
      else if (g_str_has_prefix (end, ".conv.") || strcmp (end, ".skip.weight") == 0)
        kinds[n] |= 2;
      else
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                       "'%s' is not a TAESD: tensor '%s' belongs to no TAESD layer",
                       gesso_safetensors_path (src->st), key);
          return FALSE;
        }
    }
  return TRUE;
}

/* The channel chain must hold from the first layer to the last: a mismatch would otherwise
 * be found only when a convolution reads past its input. */
static gboolean
check_chain (const Source *src, const Half *half, GError **error)
{
  int64_t c = half->in_channels;

  for (guint i = 0; i < half->steps->len; i++)
    {
      const Step *s = &g_array_index (half->steps, Step, i);
      const Conv *first = s->kind == STEP_CONV ? &s->conv : &s->block[0];
      const int64_t out = s->kind == STEP_CONV ? s->conv.out : s->block[2].out;

      if (first->in != c
          || (s->kind == STEP_BLOCK
              && (s->block[1].in != s->block[0].out || s->block[2].in != s->block[1].out
                  || (!s->has_skip && out != c)
                  || (s->has_skip && (s->skip.in != c || s->skip.out != out)))))
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "'%s': TAESD layer %u reads %" G_GINT64_FORMAT " channels where the "
                       "layer before it makes %" G_GINT64_FORMAT,
                       gesso_safetensors_path (src->st), i, first->in, c);
          return FALSE;
        }
      c = out;
    }
  if (c != half->out_channels)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s': the TAESD %s ends with %" G_GINT64_FORMAT " channels, expected %"
                   G_GINT64_FORMAT, gesso_safetensors_path (src->st),
                   half->in_channels == 3 ? "encoder" : "decoder", c, half->out_channels);
      return FALSE;
    }
  return TRUE;
}

/* Reads one half. ENCODER: bias-free convs downsample (stride 2). Decoder: its first conv is
 * followed by a ReLU and every bias-free conv follows a nearest 2x upsample. */
static gboolean
load_half (GessoTaesd *taesd, const Source *src, gboolean encoder, Half *half, GError **error)
{
  guint8 kinds[MAX_LAYERS];
  int n_convs = 0, n_resample = 0;

  if (!scan_indices (src, kinds, error))
    return FALSE;
  half->steps = g_array_new (FALSE, TRUE, sizeof (Step));
  for (int i = 0; i < MAX_LAYERS; i++)
    {
      Step step = { 0 };

      if (kinds[i] == 0)
        continue;
      if (kinds[i] == 3)
        {
          g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                       "'%s': TAESD layer %s%d holds both a convolution and a block",
                       gesso_safetensors_path (src->st), src->prefix, i - src->index_offset);
          return FALSE;
        }
      if (kinds[i] == 2)
        {
          if (!load_block (taesd, src, i, &step, error))
            return FALSE;
        }
      else
        {
          const gboolean bias = lookup (src, i, "bias") != NULL;

          step.kind = STEP_CONV;
          if (!load_conv (taesd, src, i, "", bias, &step.conv, error))
            return FALSE;
          if (!bias)
            n_resample++;
          step.stride = encoder && !bias ? 2 : 1;
          step.upsample_before = !encoder && !bias;
          step.relu_after = !encoder && n_convs == 0;
          n_convs++;
        }
      g_array_append_val (half->steps, step);
    }
  if (half->steps->len < 2
      || g_array_index (half->steps, Step, 0).kind != STEP_CONV
      || g_array_index (half->steps, Step, half->steps->len - 1).kind != STEP_CONV)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "'%s': the TAESD %s must start and end with a convolution",
                   gesso_safetensors_path (src->st), encoder ? "encoder" : "decoder");
      return FALSE;
    }
  half->factor = 1 << n_resample;
  if (encoder)
    {
      half->in_channels = 3;
      half->out_channels = g_array_index (half->steps, Step, half->steps->len - 1).conv.out;
    }
  else
    {
      half->in_channels = g_array_index (half->steps, Step, 0).conv.in;
      half->out_channels = 3;
    }
  return check_chain (src, half, error);
}

/* --- Finding the files ------------------------------------------------------------------ */

static gboolean
has_prefix_key (const GessoSafetensors *st, const char *prefix)
{
  for (guint i = 0; i < gesso_safetensors_count (st); i++)
    if (g_str_has_prefix (gesso_safetensors_entry (st, i)->name, prefix))
      return TRUE;
  return FALSE;
}

/* madebyollin's halves share their key names; the encoder's first layer is a conv at 0, the
 * decoder's a weightless clamp. */
static gboolean
is_madebyollin_encoder (const GessoSafetensors *st)
{
  return gesso_safetensors_lookup (st, "0.weight") != NULL;
}

static gboolean
is_madebyollin (const GessoSafetensors *st)
{
  return gesso_safetensors_count (st) > 0
         && (gesso_safetensors_lookup (st, "0.weight") != NULL
             || gesso_safetensors_lookup (st, "1.weight") != NULL)
         && has_prefix_key (st, "1.") && g_ascii_isdigit (gesso_safetensors_entry (st, 0)->name[0]);
}

static GessoSafetensors *
open_weights (const char *path, GError **error)
{
  if (gesso_io_has_pickle_extension (path))
    {
      gesso_io_set_pickle_error (error, path);
      return NULL;
    }
  return gesso_safetensors_open (path, error);
}

static gboolean
add_madebyollin (GessoTaesd *taesd, const char *path, GError **error)
{
  g_autoptr (GessoSafetensors) st = open_weights (path, error);
  gboolean encoder;
  Source src = { .prefix = "" };

  if (st == NULL)
    return FALSE;
  if (!is_madebyollin (st))
    {
      g_autofree char *shown = gesso_io_display (path);

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "'%s' is not a TAESD: expected numbered layers (0.weight, 1.conv.0.weight, "
                   "...) as in taesd_encoder/taesd_decoder.safetensors", shown);
      return FALSE;
    }
  src.st = st;
  encoder = is_madebyollin_encoder (st);
  if ((encoder ? taesd->encoder.steps : taesd->decoder.steps) != NULL)
    {
      g_autofree char *shown = gesso_io_display (path);

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "'%s' and its partner are both TAESD %ss; name the encoder and the decoder",
                   shown, encoder ? "encoder" : "decoder");
      return FALSE;
    }
  return load_half (taesd, &src, encoder, encoder ? &taesd->encoder : &taesd->decoder, error);
}

static gboolean
add_diffusers_file (GessoTaesd *taesd, const char *path, GError **error)
{
  g_autoptr (GessoSafetensors) st = open_weights (path, error);
  const Source enc = { .st = st, .prefix = "encoder.layers." };
  const Source dec = { .st = st, .prefix = "decoder.layers.", .index_offset = 1 };

  if (st == NULL)
    return FALSE;
  taesd->layout = GESSO_TAESD_LAYOUT_DIFFUSERS;
  return (!has_prefix_key (st, enc.prefix)
          || load_half (taesd, &enc, TRUE, &taesd->encoder, error))
         && (!has_prefix_key (st, dec.prefix)
             || load_half (taesd, &dec, FALSE, &taesd->decoder, error));
}

/* BASE with its last "encoder" turned into "decoder" or the other way round; NULL when the
 * name has neither. */
static char *
partner_name (const char *base)
{
  const char *e = g_strrstr (base, "encoder"), *d = g_strrstr (base, "decoder");
  const char *at = e > d ? e : d;
  GString *s;

  if (at == NULL)
    return NULL;
  s = g_string_new_len (base, at - base);
  g_string_append (s, at == e ? "decoder" : "encoder");
  g_string_append (s, at + strlen ("encoder"));
  return g_string_free (s, FALSE);
}

static gboolean
add_madebyollin_pair (GessoTaesd *taesd, const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *other = partner_name (base);
  g_autofree char *other_path = other ? g_build_filename (dir, other, NULL) : NULL;

  taesd->layout = GESSO_TAESD_LAYOUT_MADEBYOLLIN;
  if (!add_madebyollin (taesd, path, error))
    return FALSE;
  if (other_path != NULL && g_file_test (other_path, G_FILE_TEST_IS_REGULAR))
    return add_madebyollin (taesd, other_path, error);
  return TRUE;
}

static char *
class_name_of_folder (const char *dir)
{
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  g_autoptr (JsonObject) config = NULL;

  if (!g_file_test (config_path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  config = gesso_config_load (config_path, NULL);
  if (config == NULL)
    return NULL;
  return g_strdup (json_object_get_string_member_with_default (config, "_class_name", ""));
}

/* A folder: diffusers' AutoencoderTiny (config.json and its weights), or one holding a
 * madebyollin pair (ComfyUI's vae_approx keeps taesd_*, taesdxl_*, ... side by side, so more
 * than one pair is ambiguous). */
static gboolean
add_folder (GessoTaesd *taesd, const char *dir, GError **error)
{
  static const char *const weights[] = { "diffusion_pytorch_model.safetensors",
                                         "diffusion_pytorch_model.fp16.safetensors" };
  g_autofree char *class_name = class_name_of_folder (dir);
  g_autofree char *shown = gesso_io_display (dir);
  g_autoptr (GPtrArray) encoders = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) d = NULL;
  const char *entry;

  if (g_strcmp0 (class_name, "AutoencoderTiny") == 0)
    {
      for (guint i = 0; i < G_N_ELEMENTS (weights); i++)
        {
          g_autofree char *p = g_build_filename (dir, weights[i], NULL);
          if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
            return add_diffusers_file (taesd, p, error);
        }
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "'%s' holds no TAESD weights: expected diffusion_pytorch_model.safetensors",
                   shown);
      return FALSE;
    }
  d = g_dir_open (dir, 0, error);
  if (d == NULL)
    return FALSE;
  while ((entry = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (entry, "_encoder.safetensors")
        || g_str_has_suffix (entry, "_decoder.safetensors"))
      {
        g_autofree char *other = partner_name (entry);
        /* a pair counts once: by its encoder, or by a decoder without one */
        g_autofree char *other_path = g_build_filename (dir, other, NULL);
        if (g_str_has_suffix (entry, "_encoder.safetensors")
            || !g_file_test (other_path, G_FILE_TEST_IS_REGULAR))
          g_ptr_array_add (encoders, g_build_filename (dir, entry, NULL));
      }
  if (encoders->len != 1)
    {
      g_set_error (error, GESSO_ERROR, encoders->len == 0 ? GESSO_ERROR_MISSING
                                                          : GESSO_ERROR_INVALID_ARGUMENT,
                   encoders->len == 0
                     ? "'%s' is neither a diffusers AutoencoderTiny folder nor holds a "
                       "taesd_encoder/taesd_decoder.safetensors pair"
                     : "'%s' holds several TAESD models; name one file (such as "
                       "taesd_decoder.safetensors)", shown);
      return FALSE;
    }
  return add_madebyollin_pair (taesd, encoders->pdata[0], error);
}

gboolean
gesso_taesd_detect (const char *path)
{
  g_autoptr (GessoSafetensors) st = NULL;
  g_autofree char *class_name = NULL;

  if (path == NULL)
    return FALSE;
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *enc = g_build_filename (path, "taesd_encoder.safetensors", NULL);
      g_autofree char *dec = g_build_filename (path, "taesd_decoder.safetensors", NULL);

      class_name = class_name_of_folder (path);
      return g_strcmp0 (class_name, "AutoencoderTiny") == 0
             || (class_name == NULL
                 && (g_file_test (enc, G_FILE_TEST_IS_REGULAR)
                     || g_file_test (dec, G_FILE_TEST_IS_REGULAR)));
    }
  if (gesso_io_has_pickle_extension (path))
    return FALSE;
  st = gesso_safetensors_open (path, NULL);
  return st != NULL
         && (is_madebyollin (st) || has_prefix_key (st, "encoder.layers.")
             || has_prefix_key (st, "decoder.layers."));
}

GessoTaesd *
gesso_taesd_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (GessoTaesd) taesd = g_new0 (GessoTaesd, 1);
  gboolean ok;

  taesd->buffers = g_ptr_array_new_with_free_func (g_free);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    ok = add_folder (taesd, path, error);
  else
    {
      g_autoptr (GessoSafetensors) st = open_weights (path, error);

      if (st == NULL)
        return NULL;
      ok = has_prefix_key (st, "encoder.layers.") || has_prefix_key (st, "decoder.layers.")
             ? add_diffusers_file (taesd, path, error)
             : add_madebyollin_pair (taesd, path, error);
    }
  if (!ok)
    return NULL;
  if (taesd->encoder.steps == NULL && taesd->decoder.steps == NULL)
    {
      g_autofree char *shown = gesso_io_display (path);

      g_set_error (error, GESSO_ERROR, GESSO_ERROR_UNSUPPORTED,
                   "'%s' is not a TAESD: it holds neither encoder.layers.* nor "
                   "decoder.layers.* tensors", shown);
      return NULL;
    }
  if (taesd->encoder.steps != NULL && taesd->decoder.steps != NULL
      && (taesd->encoder.factor != taesd->decoder.factor
          || taesd->encoder.out_channels != taesd->decoder.in_channels))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_CORRUPT,
                   "the TAESD encoder (%d x, %" G_GINT64_FORMAT " latent channels) and decoder "
                   "(%d x, %" G_GINT64_FORMAT ") do not belong together",
                   taesd->encoder.factor, taesd->encoder.out_channels, taesd->decoder.factor,
                   taesd->decoder.in_channels);
      return NULL;
    }
  return g_steal_pointer (&taesd);
}

GessoTaesdLayout
gesso_taesd_layout (const GessoTaesd *taesd)
{
  return taesd->layout;
}

const char *
gesso_taesd_layout_name (GessoTaesdLayout layout)
{
  return layout == GESSO_TAESD_LAYOUT_DIFFUSERS ? "diffusers AutoencoderTiny"
                                                : "madebyollin taesd_encoder/taesd_decoder";
}

gboolean
gesso_taesd_has_encoder (const GessoTaesd *taesd)
{
  return taesd->encoder.steps != NULL;
}

gboolean
gesso_taesd_has_decoder (const GessoTaesd *taesd)
{
  return taesd->decoder.steps != NULL;
}

int
gesso_taesd_latent_channels (const GessoTaesd *taesd)
{
  return (int) (taesd->decoder.steps != NULL ? taesd->decoder.in_channels
                                              : taesd->encoder.out_channels);
}

int
gesso_taesd_latent_factor (const GessoTaesd *taesd)
{
  return taesd->decoder.steps != NULL ? taesd->decoder.factor : taesd->encoder.factor;
}

int
gesso_taesd_width (const GessoTaesd *taesd)
{
  return (int) taesd->width;
}

guint64
gesso_taesd_parameters (const GessoTaesd *taesd)
{
  return taesd->parameters;
}

/* --- Running: plan, then compute --------------------------------------------------------- */

typedef struct
{
  gboolean planning;
  size_t slot_floats[N_SLOTS];
  size_t kernel_bytes;
  float *slot[N_SLOTS];
  GessoArena *arena;
} Run;

typedef struct
{
  int slot;                     /* < 0: EXTERNAL */
  float *external;
  int64_t c, h, w;
} Act;

static size_t
act_numel (const Act *a)
{
  return (size_t) a->c * (size_t) a->h * (size_t) a->w;
}

static float *
act_data (const Run *run, const Act *a)
{
  return a->slot < 0 ? a->external : run->slot[a->slot];
}

static Act
slot_after (const Act *x, int k)
{
  return (Act) { .slot = (x->slot + k) % N_SLOTS };
}

static void
plan_act (Run *run, const Act *a)
{
  if (run->planning && a->slot >= 0)
    run->slot_floats[a->slot] = MAX (run->slot_floats[a->slot], act_numel (a));
}

static gboolean
run_conv (Run *run, const Conv *cv, const Act *in, int stride, Act *out, GError **error)
{
  const GessoConv2dShape shape = {
    .batch = 1, .in_channels = in->c, .in_height = in->h, .in_width = in->w,
    .out_channels = cv->out, .kernel_h = cv->kernel, .kernel_w = cv->kernel,
    .stride = stride, .padding = cv->kernel / 2,
  };

  out->c = cv->out;
  out->h = gesso_conv2d_out_height (&shape);
  out->w = gesso_conv2d_out_width (&shape);
  plan_act (run, out);
  if (run->planning)
    {
      run->kernel_bytes = MAX (run->kernel_bytes, gesso_conv2d_scratch_bytes (&shape));
      return TRUE;
    }
  return gesso_conv2d (&shape, act_data (run, in), cv->weight, cv->bias, act_data (run, out),
                       run->arena, error);
}

static void
relu (Run *run, const Act *a)
{
  float *x = act_data (run, a);
  const size_t n = act_numel (a);

  if (run->planning)
    return;
  for (size_t i = 0; i < n; i++)
    x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* relu(conv4(relu(conv2(relu(conv0(x))))) + skip(x)); three slots: X's and two others. */
static gboolean
block (Run *run, const Step *s, Act *x, GError **error)
{
  Act a = slot_after (x, 1), b = slot_after (x, 2);

  if (!run_conv (run, &s->block[0], x, 1, &a, error))
    return FALSE;
  relu (run, &a);
  if (!run_conv (run, &s->block[1], &a, 1, &b, error))
    return FALSE;
  relu (run, &b);
  if (!run_conv (run, &s->block[2], &b, 1, &a, error))
    return FALSE;
  if (s->has_skip && !run_conv (run, &s->skip, x, 1, &b, error))
    return FALSE;
  if (!run->planning)
    gesso_add (act_data (run, &a), act_data (run, s->has_skip ? &b : x), act_numel (&a));
  relu (run, &a);
  *x = a;
  return TRUE;
}

static gboolean
conv_step (Run *run, const Step *s, Act *x, Act *out, GError **error)
{
  if (s->upsample_before)
    {
      Act up = slot_after (x, 1);

      up.c = x->c;
      up.h = 2 * x->h;
      up.w = 2 * x->w;
      plan_act (run, &up);
      if (!run->planning)
        gesso_upsample_nearest2x (act_data (run, x), x->c, x->h, x->w, act_data (run, &up));
      *x = up;
    }
  if (!run_conv (run, &s->conv, x, s->stride, out, error))
    return FALSE;
  if (s->relu_after)
    relu (run, out);
  return TRUE;
}

/* INPUT has been mapped into slot 0 by the caller; the last conv writes OUTPUT. */
static gboolean
forward (Run *run, const Half *half, Act x, float *output, GError **error)
{
  for (guint i = 0; i < half->steps->len; i++)
    {
      const Step *s = &g_array_index (half->steps, Step, i);
      const gboolean last = i + 1 == half->steps->len;
      Act out = last ? (Act) { .slot = -1, .external = output } : slot_after (&x, 2);

      if (s->kind == STEP_BLOCK)
        {
          if (!block (run, s, &x, error))
            return FALSE;
        }
      else
        {
          if (!conv_step (run, s, &x, &out, error))
            return FALSE;
          x = out;
        }
    }
  return TRUE;
}

typedef enum
{
  ENCODE,
  DECODE,
} Direction;

/* The input in slot 0, in the network's own convention: the encoder sees [0, 1] images
 * (image / 2 + 0.5), the decoder tanh(z / 3) * 3. */
static Act
stage_input (Run *run, Direction dir, const Half *half, const float *input, int64_t h,
             int64_t w)
{
  Act x = { .slot = 0, .c = half->in_channels, .h = h, .w = w };
  const size_t n = act_numel (&x);

  plan_act (run, &x);
  if (!run->planning)
    {
      float *dst = act_data (run, &x);

      if (dir == ENCODE)
        for (size_t i = 0; i < n; i++)
          dst[i] = 0.5f * input[i] + 0.5f;
      else
        for (size_t i = 0; i < n; i++)
          dst[i] = tanhf (input[i] / 3.0f) * 3.0f;
    }
  return x;
}

static gboolean
check_half (const GessoTaesd *taesd, Direction dir, int64_t h, int64_t w, GError **error)
{
  const Half *half = dir == ENCODE ? &taesd->encoder : &taesd->decoder;
  const int f = gesso_taesd_latent_factor (taesd);

  if (half->steps == NULL)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_MISSING,
                   "this TAESD has no %s: put %s beside the %s file",
                   dir == ENCODE ? "encoder" : "decoder",
                   dir == ENCODE ? "taesd_encoder.safetensors" : "taesd_decoder.safetensors",
                   dir == ENCODE ? "decoder" : "encoder");
      return FALSE;
    }
  if (h <= 0 || w <= 0 || h > MAX_SIDE || w > MAX_SIDE
      || (dir == ENCODE && (h % f != 0 || w % f != 0))
      || (dir == DECODE && (h > MAX_SIDE / f || w > MAX_SIDE / f)))
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   "TAESD cannot %s a %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " %s; sides must "
                   "be positive%s, at most %d pixels", dir == ENCODE ? "encode" : "decode",
                   w, h, dir == ENCODE ? "image" : "latent",
                   dir == ENCODE ? " multiples of the latent factor" : "", MAX_SIDE);
      return FALSE;
    }
  return TRUE;
}

static size_t
plan (const GessoTaesd *taesd, Direction dir, int64_t h, int64_t w, Run *run)
{
  const Half *half = dir == ENCODE ? &taesd->encoder : &taesd->decoder;
  size_t total = 0;
  GError *never = NULL;

  memset (run, 0, sizeof *run);
  run->planning = TRUE;
  forward (run, half, stage_input (run, dir, half, NULL, h, w), NULL, &never);
  g_assert (never == NULL);
  for (int i = 0; i < N_SLOTS; i++)
    total += gesso_arena_block_size (run->slot_floats[i] * sizeof (float));
  return total + run->kernel_bytes;
}

static gboolean
execute (const GessoTaesd *taesd, Direction dir, const float *input, int64_t h, int64_t w,
         float *output, GessoArena *scratch, GError **error)
{
  const Half *half = dir == ENCODE ? &taesd->encoder : &taesd->decoder;
  g_autoptr (GessoArena) own = NULL;
  Run run;
  const size_t need = plan (taesd, dir, h, w, &run);
  size_t mark;
  gboolean ok;

  if (scratch == NULL)
    {
      own = gesso_arena_new (need, error);
      if (own == NULL)
        return FALSE;
      scratch = own;
    }
  else if (gesso_arena_capacity (scratch) - gesso_arena_used (scratch) < need)
    {
      g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
                   "TAESD needs %zu bytes of scratch but its arena has %zu free", need,
                   gesso_arena_capacity (scratch) - gesso_arena_used (scratch));
      return FALSE;
    }
  mark = gesso_arena_mark (scratch);
  run.planning = FALSE;
  run.arena = scratch;
  for (int i = 0; i < N_SLOTS; i++)
    run.slot[i] = gesso_arena_alloc_floats (scratch, run.slot_floats[i]);
  ok = forward (&run, half, stage_input (&run, dir, half, input, h, w), output, error);
  gesso_arena_reset (scratch, mark);
  if (ok && dir == DECODE)
    {
      const size_t n = (size_t) half->out_channels * (size_t) (h * half->factor)
                       * (size_t) (w * half->factor);

      /* madebyollin's decoder makes [0, 1] pixels; diffusers' convention is [-1, 1] */
      for (size_t i = 0; i < n; i++)
        output[i] = 2.0f * output[i] - 1.0f;
    }
  return ok;
}

gboolean
gesso_taesd_encode_scratch_bytes (const GessoTaesd *taesd, int64_t height, int64_t width,
                                  size_t *bytes, GError **error)
{
  Run run;

  g_return_val_if_fail (taesd != NULL && bytes != NULL, FALSE);
  if (!check_half (taesd, ENCODE, height, width, error))
    return FALSE;
  *bytes = plan (taesd, ENCODE, height, width, &run);
  return TRUE;
}

gboolean
gesso_taesd_decode_scratch_bytes (const GessoTaesd *taesd, int64_t latent_h, int64_t latent_w,
                                  size_t *bytes, GError **error)
{
  Run run;

  g_return_val_if_fail (taesd != NULL && bytes != NULL, FALSE);
  if (!check_half (taesd, DECODE, latent_h, latent_w, error))
    return FALSE;
  *bytes = plan (taesd, DECODE, latent_h, latent_w, &run);
  return TRUE;
}

gboolean
gesso_taesd_encode (const GessoTaesd *taesd, const float *image, int64_t height, int64_t width,
                    float *latent, GessoArena *scratch, GError **error)
{
  g_return_val_if_fail (taesd != NULL && image != NULL && latent != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return check_half (taesd, ENCODE, height, width, error)
         && execute (taesd, ENCODE, image, height, width, latent, scratch, error);
}

gboolean
gesso_taesd_decode (const GessoTaesd *taesd, const float *latent, int64_t latent_h,
                    int64_t latent_w, float *image, GessoArena *scratch, GError **error)
{
  g_return_val_if_fail (taesd != NULL && latent != NULL && image != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return check_half (taesd, DECODE, latent_h, latent_w, error)
         && execute (taesd, DECODE, latent, latent_h, latent_w, image, scratch, error);
}

gboolean
gesso_taesd_probe (const char *path, GessoTaesdInfo *info, GError **error)
{
  g_autoptr (GessoTaesd) taesd = NULL;
  int latent;

  g_return_val_if_fail (path != NULL && info != NULL, FALSE);
  taesd = gesso_taesd_open (path, error);
  if (taesd == NULL)
    return FALSE;
  latent = gesso_taesd_latent_channels (taesd);
  *info = (GessoTaesdInfo) {
    .layout = gesso_taesd_layout_name (taesd->layout),
    .has_encoder = gesso_taesd_has_encoder (taesd),
    .has_decoder = gesso_taesd_has_decoder (taesd),
    .latent_channels = latent,
    .latent_factor = gesso_taesd_latent_factor (taesd),
    .width = gesso_taesd_width (taesd),
    .parameters = taesd->parameters,
    /* taesd and taesdxl have the same shapes: only their training tells them apart */
    .fits = latent == 4 ? "SD 1.x/2.x (taesd) or SDXL (taesdxl); the weights do not say which"
            : latent == 16 ? "SD 3 or Flux (taesd3, taef1), which Gesso does not run"
                           : "no model family Gesso knows",
  };
  return TRUE;
}
