/* `gesso generate | inpaint | sdedit | restyle`: the four edits from a terminal.
 *
 *   gesso generate --model M [--vae V] --prompt P [--negative-prompt N] [--width W --height H]
 *                  --out OUT
 *   gesso inpaint  --model M --image IN --mask MASK --prompt P --out OUT
 *   gesso sdedit   --model M --image IN --strength S [--mask MASK] --prompt P --out OUT
 *   gesso restyle  --model M --image IN --source-prompt S --prompt P --strength S --out OUT
 *
 * Any of them follows ControlNets: --control MODEL:IMAGE[:SCALE] (repeatable), with
 * --control-preprocess none|scribble|lineart|canny|inpaint applied to each IMAGE and
 * --control-start/--control-end, the fraction of the steps they act in.
 *
 * and every command takes --steps, --guidance, --seed, --sampler, --threads, --jump-length,
 * --resample, --mask-grow, --mask-feather, --context-margin and --clip-skip (plus a few
 * finer knobs: --guidance-rescale, --eta, --pixel-budget, --prediction, --config-dir). A
 * value left out takes the method's default (gesso_edit_params_init). Masks are images:
 * white = regenerate, black = keep, grey = soft. OUT is PNG or JPEG by its extension; edits
 * write the whole input image with the edited region laid over it.
 *
 * Without --seed a random seed is used; without --model the bundled demo model (else the first
 * checkpoint in the model folders). A progress bar goes to stderr when it is a terminal,
 * nothing otherwise; Ctrl-C stops the job cleanly. The exit status is 0 only when OUT was
 * written, and then stdout says which model and seed made it and "wrote OUT"; errors are one
 * line on stderr and nothing on stdout. --sampler takes the plug-in's names (euler-a) and the
 * engine's (euler_a) alike, and auto; each command takes only the options it uses.
 */
#include "gesso-config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/control-options.h"
#include "cli/lora-options.h"
#include "cli/image-io.h"
#include "cli/parameters.h"
#include "gesso.h"

#define UNSET_INT INT_MIN
#define THREADS_PER_CORE 4

typedef struct
{
  char *model;
  char *vae;
  char *config_dir;
  char *prediction;
  char *prompt;
  char *negative_prompt;
  char *source_prompt;
  char *image;
  char *mask;
  char *out;
  char *sampler;
  char *timestep_spacing;
  char *seed;
  int width, height;
  int steps;
  int threads;
  int jump_length;
  int resample;
  int context_margin;
  int clip_skip;
  int pixel_budget;
  /* numbers with a fraction are read here, so that "nan" is an error, not "unset" */
  char *guidance;
  char *guidance_rescale;
  char *strength;
  char *eta;
  char *mask_grow;
  char *mask_feather;
  char **controls;
  char **embeddings;
  char **embedding_dirs;
  GStrv embedding_paths;        /* the files, then the folders: what the model takes */
  char *control_preprocess;
  char *control_start;
  char *control_end;
  char **loras;
  char **lora_dirs;
} Options;

static volatile sig_atomic_t interrupted;

/* what stops a job: Ctrl-C, kill's default, a closed terminal */
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

static void
on_interrupt (int signum)
{
  interrupted = 1;
}

typedef struct
{
  gboolean tty;
  gint64 start;
} ProgressBar;

static gboolean
on_progress (int step, int total, const GessoImage *preview, gpointer data)
{
  ProgressBar *bar = data;
  const int width = 30;

  if (bar->tty)
    {
      int filled = total > 0 ? step * width / total : width;
      double elapsed = (double) (g_get_monotonic_time () - bar->start) / 1e6;
      char cells[64];

      memset (cells, '#', (size_t) filled);
      memset (cells + filled, '.', (size_t) (width - filled));
      cells[width] = '\0';
      fprintf (stderr, "\r[%s] %d/%d  %.1f s/step ", cells, step, total, elapsed / step);
      if (step == total)
        fputc ('\n', stderr);
      fflush (stderr);
    }
  return !interrupted;
}

static void
options_clear (Options *o)
{
  g_free (o->model);
  g_free (o->vae);
  g_free (o->config_dir);
  g_free (o->prediction);
  g_free (o->prompt);
  g_free (o->negative_prompt);
  g_free (o->source_prompt);
  g_free (o->image);
  g_free (o->mask);
  g_free (o->out);
  g_free (o->sampler);
  g_free (o->timestep_spacing);
  g_free (o->seed);
  g_free (o->guidance);
  g_free (o->guidance_rescale);
  g_free (o->strength);
  g_free (o->eta);
  g_free (o->mask_grow);
  g_free (o->mask_feather);
  g_strfreev (o->controls);
  g_strfreev (o->embeddings);
  g_strfreev (o->embedding_dirs);
  g_strfreev (o->embedding_paths);
  g_free (o->control_preprocess);
  g_free (o->control_start);
  g_free (o->control_end);
  g_strfreev (o->loras);
  g_strfreev (o->lora_dirs);
}

/* TEXT of option NAME (NULL: not given) into *OUT; FALSE (error printed) when it is not a
 * number. Range checks are the engine's. */
static gboolean
read_number (const char *name, const char *text, float *out)
{
  char *end = NULL;
  double v;

  if (text == NULL)
    return TRUE;
  v = g_ascii_strtod (text, &end);
  if (end == text || *end != '\0')
    {
      gesso_cli_error (_("--%s wants a number, not '%s'"), name, text);
      return FALSE;
    }
  *out = (float) v;
  return TRUE;
}

static gboolean
output_format_ok (const char *path)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);

  return g_str_has_suffix (lower, ".png") || g_str_has_suffix (lower, ".jpg")
         || g_str_has_suffix (lower, ".jpeg");
}

/* An --out that exists must be a file the result can replace: a folder or a FIFO is refused
 * now rather than after the whole run (and a FIFO would have blocked the write). */
static gboolean
output_kind_ok (const char *path)
{
  struct stat st;

  return stat (path, &st) != 0 || S_ISREG (st.st_mode);
}

static gboolean
output_dir_ok (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);

  return g_file_test (dir, G_FILE_TEST_IS_DIR);
}

/* The text option NAME in *VALUE (NULL: not given), read as raw bytes, made UTF-8: converted
 * from the locale's encoding, or checked when that is UTF-8. GOption would do it itself but
 * fail with "Invalid byte sequence in conversion input", naming no option. */
static gboolean
text_option (const char *name, char **value)
{
  const char *charset;
  const char *end;
  char *converted;

  if (*value == NULL)
    return TRUE;
  if (g_get_charset (&charset))
    {
      if (g_utf8_validate (*value, -1, &end))
        return TRUE;
      gesso_cli_error (_("--%s is not valid UTF-8 text (byte 0x%02X at position %d); give it "
                         "in UTF-8"), name, (guint) (guchar) *end, (int) (end - *value) + 1);
      return FALSE;
    }
  converted = g_locale_to_utf8 (*value, -1, NULL, NULL, NULL);
  if (converted == NULL)
    {
      gesso_cli_error (_("--%s is not valid text in this locale's encoding (%s)"), name,
                       charset);
      return FALSE;
    }
  g_free (*value);
  *value = converted;
  return TRUE;
}

static gboolean
text_options (Options *o)
{
  return text_option ("prompt", &o->prompt)
         && text_option ("negative-prompt", &o->negative_prompt)
         && text_option ("source-prompt", &o->source_prompt);
}

/* The options' values over the kind's defaults; FALSE (usage error printed) when they make
 * no sense on their face. The engine checks ranges. */
static gboolean
apply_options (const Options *o, GessoEditKind kind, GessoEditParams *p)
{
  gesso_edit_params_init (p, kind);
  p->prompt = o->prompt;
  if (o->negative_prompt != NULL)
    p->negative_prompt = o->negative_prompt;
  p->source_prompt = o->source_prompt;
  /* "auto": the method's own choice (run_edit has spelt the name the engine's way) */
  p->sampler = o->sampler == NULL || strcmp (o->sampler, "auto") == 0 ? NULL : o->sampler;
  p->timestep_spacing = o->timestep_spacing;
  if (o->steps != UNSET_INT)
    p->steps = o->steps;
  if (o->width != UNSET_INT)
    p->width = o->width;
  if (o->height != UNSET_INT)
    p->height = o->height;
  if (o->jump_length != UNSET_INT)
    p->jump_length = o->jump_length;
  if (o->resample != UNSET_INT)
    p->resample_count = o->resample;
  if (o->context_margin != UNSET_INT)
    p->context_margin = o->context_margin;
  if (o->clip_skip != UNSET_INT)
    p->clip_skip = o->clip_skip;
  if (o->pixel_budget != UNSET_INT)
    p->pixel_budget = o->pixel_budget;
  if (!read_number ("guidance", o->guidance, &p->guidance)
      || !read_number ("guidance-rescale", o->guidance_rescale, &p->guidance_rescale)
      || !read_number ("strength", o->strength, &p->strength)
      || !read_number ("eta", o->eta, &p->eta)
      || !read_number ("mask-grow", o->mask_grow, &p->mask_grow)
      || !read_number ("mask-feather", o->mask_feather, &p->mask_feather)
      || !read_number ("control-start", o->control_start, &p->control_start)
      || !read_number ("control-end", o->control_end, &p->control_end))
    return FALSE;
  if (o->seed != NULL)
    {
      guint64 seed;

      if (!g_ascii_string_to_unsigned (o->seed, 10, 0, G_MAXUINT64, &seed, NULL))
        {
          /* the bound as text: xgettext cannot read a msgid built with G_GUINT64_FORMAT */
          g_autofree char *max = g_strdup_printf ("%" G_GUINT64_FORMAT, G_MAXUINT64);

          gesso_cli_error (_("--seed wants a whole number from 0 to %s, not '%s'"), max,
                           o->seed);
          return FALSE;
        }
      p->seed = seed;
    }
  else
    p->seed = ((guint64) g_random_int () << 32) | g_random_int ();
  return TRUE;
}

/* --embedding names files, --embedding-dir folders; the model takes the files first, so a file
 * named on the command line wins over a folder's file of the same name. */
static gboolean
embedding_options (Options *o)
{
  g_autoptr (GStrvBuilder) paths = g_strv_builder_new ();

  for (guint i = 0; o->embeddings != NULL && o->embeddings[i] != NULL; i++)
    {
      if (g_file_test (o->embeddings[i], G_FILE_TEST_IS_DIR))
        {
          gesso_cli_error (_("--embedding '%s' is a folder; name it with --embedding-dir"),
                           o->embeddings[i]);
          return FALSE;
        }
      g_strv_builder_add (paths, o->embeddings[i]);
    }
  for (guint i = 0; o->embedding_dirs != NULL && o->embedding_dirs[i] != NULL; i++)
    {
      if (!g_file_test (o->embedding_dirs[i], G_FILE_TEST_IS_DIR))
        {
          gesso_cli_error (_("--embedding-dir '%s' is not a folder"), o->embedding_dirs[i]);
          return FALSE;
        }
      g_strv_builder_add (paths, o->embedding_dirs[i]);
    }
  o->embedding_paths = g_strv_builder_end (paths);
  return TRUE;
}

static gboolean
model_params (const Options *o, GessoModelParams *mp)
{
  gesso_model_params_init (mp);
  mp->path = o->model;
  mp->vae = o->vae;
  mp->embeddings = (const char *const *) o->embedding_paths;
  mp->config_dir = o->config_dir;
  /* one job per run: no network is needed again once the job is done with it */
  mp->release_weights = TRUE;
  mp->n_threads = o->threads == UNSET_INT ? 0 : o->threads;
  /* more threads than cores only make them wait on each other (and OpenMP reserves a stack
   * for each): past a few per core, use that many and say so */
  if (mp->n_threads > THREADS_PER_CORE * (int) g_get_num_processors ())
    {
      int cap = THREADS_PER_CORE * (int) g_get_num_processors ();

      g_printerr (_("gesso: warning: --threads %d is more than %d per core on this machine's %u "
                    "cores; using %d\n"), mp->n_threads, THREADS_PER_CORE,
                  g_get_num_processors (), cap);
      mp->n_threads = cap;
    }
  return gesso_cli_parse_prediction (o->prediction, &mp->prediction);
}

/* Bytes the command itself holds per pixel of the image beyond the engine's estimate: the
 * input as float RGBA (16) and the composite it writes (16) for an edit, the 8-bit copy
 * gdk-pixbuf encodes from (4) and the encoded file, at most about as large (4). */
static guint64
cli_bytes (GessoEditKind kind, int width, int height)
{
  guint64 pixels = (guint64) MAX (width, 0) * (guint64) MAX (height, 0);

  return pixels * (kind == GESSO_EDIT_GENERATE ? 4 + 4 : 16 + 16 + 4 + 4);
}

/* Refuses an image whose own buffers cannot fit, whatever the model: what a 74-byte PNG that
 * claims 60000 x 60000 pixels must meet before anything is allocated for it. */
static gboolean
check_image_memory (const char *path, int width, int height, GError **error)
{
  /* the command's own buffers and the engine's at image size (result crop and blend mask) */
  guint64 need = cli_bytes (GESSO_EDIT_INPAINT, width, height)
                 + (guint64) width * (guint64) height * (16 + 4);
  guint64 available = gesso_memory_available ();

  if (need <= available)
    return TRUE;
  g_set_error (error, GESSO_ERROR, GESSO_ERROR_NO_MEMORY,
               _("image '%s' is %d x %d: editing it needs at least %.1f GiB of memory but "
                 "%.1f GiB is available; scale it down first"), path, width, height,
               (double) need / (1024.0 * 1024.0 * 1024.0),
               (double) available / (1024.0 * 1024.0 * 1024.0));
  return FALSE;
}

/* Far above the native area a model repeats and garbles what it draws, and every step costs
 * more than the area says (attention grows with its square): worth a word before it runs. */
static void
warn_pixel_budget (const GessoModel *model, const GessoEditParams *p)
{
  int native = gesso_model_get_native_size (model);
  double ratio = (double) p->pixel_budget / ((double) native * native);

  if (p->pixel_budget > 0 && ratio > 4.0)
    g_printerr (_("gesso: warning: --pixel-budget %d is %.0f times the model's native area "
                  "(%d x %d); it makes poor images that far from its native size, and runs "
                  "much slower\n"), p->pixel_budget, ratio, native, native);
}

/* Loads the inputs, opens the model, runs the edit and writes the result. */
/* The prompt as the user gave it, with a <lora:STEM:WEIGHT> tag for each --lora file, as
 * AUTOMATIC1111 records its LoRAs in an image's parameters: pasted back there, it asks for
 * them again. */
static char *
prompt_as_given (const Options *o)
{
  GString *s = g_string_new (o->prompt);

  for (int i = 0; o->loras != NULL && o->loras[i] != NULL; i++)
    {
      const char *colon = strrchr (o->loras[i], ':');
      char *end = NULL;
      double w = colon ? g_ascii_strtod (colon + 1, &end) : 1.0;
      gboolean weighted = colon != NULL && end != colon + 1 && *end == '\0';
      g_autofree char *path = weighted ? g_strndup (o->loras[i], (gsize) (colon - o->loras[i]))
                                       : g_strdup (o->loras[i]);
      g_autofree char *base = g_path_get_basename (path);
      char *dot = strrchr (base, '.');
      char number[G_ASCII_DTOSTR_BUF_SIZE];

      if (dot != NULL)
        *dot = '\0';
      g_string_append_printf (s, " <lora:%s:%s>", base,
                              g_ascii_formatd (number, sizeof number, "%g", weighted ? w : 1.0));
    }
  return g_string_free (s, FALSE);
}

static int
run_job (GessoEditKind kind, const Options *o, const GessoModelParams *mp, GessoEditParams *p,
         GessoCliControls *controls)
{
  GessoModel *model = NULL;
  GError *error = NULL;
  GessoImage input = { 0 }, composite = { 0 };
  GessoMask mask = { 0 };
  GessoEditResult result = { 0 };
  ProgressBar bar = { .tty = isatty (STDERR_FILENO) };
  struct sigaction action = { 0 }, previous[G_N_ELEMENTS (stop_signals)];
  int width = 0, height = 0, mask_w = 0, mask_h = 0;
  GessoModelCache *cache = NULL;
  const GessoImage *saved;
  char *autov2 = NULL;
  char *vae_autov2 = NULL;
  char *parameters = NULL;
  gboolean ran;
  int status = GESSO_CLI_EXIT_FAILURE;

  /* Ctrl-C (and a plain kill or a closed terminal) stop the job cleanly from here until the
   * result is renamed into place: the output file is then either untouched or complete */
  action.sa_handler = on_interrupt;
  sigemptyset (&action.sa_mask);
  for (guint i = 0; i < G_N_ELEMENTS (stop_signals); i++)
    sigaction (stop_signals[i], &action, &previous[i]);

  /* what cannot fit in memory is refused from the image's header, before it is decoded or
   * the model is loaded */
  if (kind != GESSO_EDIT_GENERATE
      && (!gesso_cli_image_size (o->image, &width, &height, &error)
          || (o->mask != NULL && !gesso_cli_image_size (o->mask, &mask_w, &mask_h, &error))
          || !check_image_memory (o->image, width, height, &error)))
    goto out;
  if (kind == GESSO_EDIT_GENERATE)
    {
      width = p->width > 0 ? p->width : 0;
      height = p->height > 0 ? p->height : 0;
    }
  model = gesso_model_open (mp, &error);
  if (model == NULL)
    goto out;
  warn_pixel_budget (model, p);
  if (!gesso_edit_check_memory (model, p, width, height, o->mask != NULL,
                                cli_bytes (kind, width, height), &error))
    goto out;
  if (kind != GESSO_EDIT_GENERATE && !gesso_cli_image_load (o->image, &input, &error))
    goto out;
  if (o->mask != NULL && kind != GESSO_EDIT_GENERATE
      && !gesso_cli_mask_load (o->mask, &mask, &error))
    goto out;
  if (mask.values != NULL && (mask.width != input.width || mask.height != input.height))
    {
      g_set_error (&error, GESSO_ERROR, GESSO_ERROR_INVALID_ARGUMENT,
                   _("the mask '%s' is %d x %d but the image '%s' is %d x %d; they must match"),
                   o->mask, mask.width, mask.height, o->image, input.width, input.height);
      goto out;
    }
  if (!gesso_cli_controls_load (controls,
                                kind == GESSO_EDIT_GENERATE
                                  ? (p->width > 0 ? p->width
                                                  : gesso_model_get_native_size (model))
                                  : input.width,
                                kind == GESSO_EDIT_GENERATE
                                  ? (p->height > 0 ? p->height
                                                   : gesso_model_get_native_size (model))
                                  : input.height, &error))
    goto out;
  p->controls = controls->controls;
  p->n_controls = controls->n;
  if (bar.tty)
    fprintf (stderr, "%s, seed %" G_GUINT64_FORMAT "\n", gesso_model_get_architecture (model),
             p->seed);

  p->progress = on_progress;
  p->progress_data = &bar;
  bar.start = g_get_monotonic_time ();
  ran = !interrupted && gesso_edit_run (model, p, kind == GESSO_EDIT_GENERATE ? NULL : &input,
                                        mask.values != NULL ? &mask : NULL, &result, &error);
  if (!ran && error == NULL)
    g_set_error (&error, GESSO_ERROR, GESSO_ERROR_CANCELLED, "cancelled before the first step");
  if (!ran)
    {
      if (bar.tty)
        fputc ('\n', stderr);
      goto out;
    }
  if (kind != GESSO_EDIT_GENERATE
      && !gesso_edit_result_compose (&input, &result, &composite, &error))
    goto out;
  saved = kind == GESSO_EDIT_GENERATE ? &result.image : &composite;
  /* the model's hash, as A1111 writes it (read once per file, then from the cache) */
  cache = gesso_cli_model_cache_new ();
  autov2 = gesso_cli_model_autov2 (mp->path, cache);
  vae_autov2 = mp->vae != NULL ? gesso_cli_model_autov2 (mp->vae, cache) : NULL;
  {
    GessoEditParams shown = *p;
    g_autofree char *prompt = prompt_as_given (o);

    shown.prompt = prompt;
    parameters = gesso_cli_parameters_format (&shown, model, saved->width, saved->height,
                                              mp->path, autov2, mp->vae, vae_autov2);
  }
  if (!gesso_cli_image_save_full (saved, o->out, parameters, &interrupted, &error))
    goto out;
  /* what makes the picture again, whatever stderr is; nothing on stdout before success, so a
   * failure stays one line on stderr */
  {
    /* the number as text: xgettext cannot read a msgid built with G_GUINT64_FORMAT */
    g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, p->seed);

    g_print (_("model %s (%s), seed %s\n"), mp->path, gesso_model_get_architecture (model),
             seed);
    g_print (_("wrote %s\n"), o->out);
  }
  status = GESSO_CLI_EXIT_OK;

out:
  for (guint i = 0; i < G_N_ELEMENTS (stop_signals); i++)
    sigaction (stop_signals[i], &previous[i], NULL);
  if (error != NULL)
    gesso_cli_error ("%s", error->message);
  g_clear_error (&error);
  gesso_edit_result_clear (&result);
  gesso_image_clear (&composite);
  gesso_image_clear (&input);
  gesso_mask_clear (&mask);
  gesso_model_free (model);
  gesso_model_cache_free (cache);
  g_free (autov2);
  g_free (vae_autov2);
  g_free (parameters);
  return status;
}

/* Whether option NAME means something to the KIND of edit. */
static gboolean
option_applies (const char *name, GessoEditKind kind)
{
  static const char *const generate_only[] = { "width", "height", NULL };
  static const char *const with_input[] = { "image", "mask", "strength", "mask-grow",
                                            "mask-feather", "context-margin", NULL };
  static const char *const repaint[] = { "jump-length", "resample", NULL };

  if (g_strv_contains (generate_only, name))
    return kind == GESSO_EDIT_GENERATE;
  if (g_strv_contains (with_input, name))
    return kind != GESSO_EDIT_GENERATE;
  if (g_strv_contains (repaint, name))
    return kind == GESSO_EDIT_INPAINT;
  if (strcmp (name, "source-prompt") == 0 || strcmp (name, "full-inversion") == 0)
    return kind == GESSO_EDIT_RESTYLE;
  return TRUE;
}

/* The engine's default for option NAME in this kind of edit (D), as text; NULL when the
 * option's own description says it. */
static char *
option_default (const char *name, const GessoEditParams *d)
{
  static const struct
  {
    const char *name;
    size_t offset;
  } ints[] = {
    { "steps", G_STRUCT_OFFSET (GessoEditParams, steps) },
    { "jump-length", G_STRUCT_OFFSET (GessoEditParams, jump_length) },
    { "resample", G_STRUCT_OFFSET (GessoEditParams, resample_count) },
    { "context-margin", G_STRUCT_OFFSET (GessoEditParams, context_margin) },
    { "clip-skip", G_STRUCT_OFFSET (GessoEditParams, clip_skip) },
  }, floats[] = {
    { "guidance", G_STRUCT_OFFSET (GessoEditParams, guidance) },
    { "guidance-rescale", G_STRUCT_OFFSET (GessoEditParams, guidance_rescale) },
    { "strength", G_STRUCT_OFFSET (GessoEditParams, strength) },
    { "eta", G_STRUCT_OFFSET (GessoEditParams, eta) },
    { "mask-grow", G_STRUCT_OFFSET (GessoEditParams, mask_grow) },
    { "mask-feather", G_STRUCT_OFFSET (GessoEditParams, mask_feather) },
  };
  char number[G_ASCII_DTOSTR_BUF_SIZE];

  for (gsize i = 0; i < G_N_ELEMENTS (ints); i++)
    if (strcmp (name, ints[i].name) == 0)
      return g_strdup_printf ("%d", G_STRUCT_MEMBER (int, d, ints[i].offset));
  for (gsize i = 0; i < G_N_ELEMENTS (floats); i++)
    if (strcmp (name, floats[i].name) == 0)
      return g_strdup (g_ascii_formatd (number, sizeof number, "%g",
                                        G_STRUCT_MEMBER (float, d, floats[i].offset)));
  if (strcmp (name, "sampler") == 0)
    return g_strdup ("auto");
  if (strcmp (name, "timestep-spacing") == 0)
    return g_strdup (_("the model's scheduler config"));
  if (strcmp (name, "width") == 0 || strcmp (name, "height") == 0)
    return g_strdup (_("the model's native size"));
  if (strcmp (name, "model") == 0)
    return g_strdup (_("the bundled demo model"));
  return NULL;
}

static int
run_edit (GessoEditKind kind, const char *command, const char *summary, int argc, char **argv)
{
  Options o = { .width = UNSET_INT, .height = UNSET_INT, .steps = UNSET_INT,
                .threads = UNSET_INT, .jump_length = UNSET_INT, .resample = UNSET_INT,
                .context_margin = UNSET_INT, .clip_skip = UNSET_INT,
                .pixel_budget = UNSET_INT };
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &o.model,
      N_("The model: a .safetensors file or a diffusers folder"), N_("PATH") },
    { "vae", 0, 0, G_OPTION_ARG_FILENAME, &o.vae,
      N_("A separate VAE in place of the model's own: a .safetensors file or a diffusers "
         "vae/ folder; or a TAESD (taesd_decoder.safetensors, its folder), fast and "
         "approximate"), N_("PATH") },
    { "prompt", 0, 0, G_OPTION_ARG_FILENAME, &o.prompt, N_("What the result should show"),
      N_("TEXT") },
    { "negative-prompt", 0, 0, G_OPTION_ARG_FILENAME, &o.negative_prompt,
      N_("What it should not show"), N_("TEXT") },
    { "source-prompt", 0, 0, G_OPTION_ARG_FILENAME, &o.source_prompt,
      N_("restyle: what the image shows now"), N_("TEXT") },
    { "image", 0, 0, G_OPTION_ARG_FILENAME, &o.image, N_("The input image (PNG, JPEG)"),
      N_("FILE") },
    { "mask", 0, 0, G_OPTION_ARG_FILENAME, &o.mask,
      N_("Where to edit: white = regenerate, black = keep, grey = soft"), N_("FILE") },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &o.out, N_("Where to write the result (.png, .jpg)"),
      N_("FILE") },
    { "width", 0, 0, G_OPTION_ARG_INT, &o.width, N_("generate: width in pixels"), N_("W") },
    { "height", 0, 0, G_OPTION_ARG_INT, &o.height, N_("generate: height in pixels"), N_("H") },
    { "strength", 0, 0, G_OPTION_ARG_STRING, &o.strength,
      N_("How far into the noise schedule to go, 0 to 1"), N_("S") },
    { "steps", 0, 0, G_OPTION_ARG_INT, &o.steps, N_("Sampling steps"), N_("N") },
    { "guidance", 0, 0, G_OPTION_ARG_STRING, &o.guidance,
      N_("Classifier-free guidance scale (1 = none)"), N_("W") },
    { "guidance-rescale", 0, 0, G_OPTION_ARG_STRING, &o.guidance_rescale,
      N_("Guidance rescale, 0 (off) to 1"), N_("PHI") },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &o.seed, N_("Random seed (default: a random one)"),
      N_("N") },
    { "sampler", 0, 0, G_OPTION_ARG_STRING, &o.sampler,
      N_("auto, ddim, euler, euler-a, dpmpp-2m, dpmpp-2m-karras, ddpm, lms, lcm; inpaint adds "
         "repaint"),
      N_("NAME") },
    { "timestep-spacing", 0, 0, G_OPTION_ARG_STRING, &o.timestep_spacing,
      N_("leading, trailing (SDXL-Turbo, Lightning) or linspace"), N_("NAME") },
    { "eta", 0, 0, G_OPTION_ARG_STRING, &o.eta, N_("DDIM / RePaint stochasticity, 0 to 1"),
      N_("ETA") },
    { "threads", 0, 0, G_OPTION_ARG_INT, &o.threads, N_("Threads (default: all cores)"),
      N_("N") },
    { "jump-length", 0, 0, G_OPTION_ARG_INT, &o.jump_length, N_("RePaint jump length"),
      N_("J") },
    { "resample", 0, 0, G_OPTION_ARG_INT, &o.resample,
      N_("RePaint resample count (1 = none)"), N_("R") },
    { "mask-grow", 0, 0, G_OPTION_ARG_STRING, &o.mask_grow, N_("Pixels to grow the mask by: the edit then reaches that far outside it"),
      N_("PX") },
    { "mask-feather", 0, 0, G_OPTION_ARG_STRING, &o.mask_feather,
      N_("Pixels of soft edge inside the mask (nothing outside it changes)"), N_("PX") },
    { "context-margin", 0, 0, G_OPTION_ARG_INT, &o.context_margin,
      N_("Pixels of surroundings the model sees around the mask"), N_("PX") },
    { "clip-skip", 0, 0, G_OPTION_ARG_INT, &o.clip_skip,
      N_("Text encoder layers to skip (1 = penultimate)"), N_("N") },
    { "pixel-budget", 0, 0, G_OPTION_ARG_INT, &o.pixel_budget,
      N_("Working area in pixels (default: the model's native area)"), N_("N") },
    { "prediction", 0, 0, G_OPTION_ARG_STRING, &o.prediction,
      N_("What the model predicts: auto, epsilon or v"), N_("TYPE") },
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &o.config_dir,
      N_("A diffusers folder with the configs of a single-file model"), N_("DIR") },
    { "embedding", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.embeddings,
      N_("A textual-inversion embedding (.safetensors), called up in the prompt by its file "
         "name (or its stored token); repeatable"), N_("FILE") },
    { "embedding-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.embedding_dirs,
      N_("A folder of embeddings, each usable in the prompt by its file name; repeatable"),
      N_("DIR") },
    { "control", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.controls,
      N_("A ControlNet and the picture it follows, with its scale (default 1); repeatable"),
      N_("MODEL:IMAGE[:SCALE]") },
    { "control-preprocess", 0, 0, G_OPTION_ARG_STRING, &o.control_preprocess,
      N_("How the control pictures are read: none, scribble, lineart, canny, inpaint"),
      N_("KIND") },
    { "control-start", 0, 0, G_OPTION_ARG_STRING, &o.control_start,
      N_("Fraction of the steps after which the ControlNets start acting (default 0)"),
      N_("F") },
    { "control-end", 0, 0, G_OPTION_ARG_STRING, &o.control_end,
      N_("Fraction of the steps after which they stop (default 1)"), N_("F") },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.loras,
      N_("A LoRA (kohya/A1111 or diffusers .safetensors) and its weight (default 1; may be "
         "negative); repeatable"), N_("FILE[:WEIGHT]") },
    { "lora-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.lora_dirs,
      N_("A folder of LoRAs for the prompt's <lora:NAME:WEIGHT> tags (NAME = file name "
         "without .safetensors); repeatable"), N_("DIR") },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  GOptionEntry own[G_N_ELEMENTS (entries)];
  GessoModelParams mp;
  GessoEditParams p;
  GessoCliControls controls = { 0 };
  GessoCliLoras loras = { 0 };
  g_autoptr (GError) control_error = NULL;
  g_autoptr (GError) lora_error = NULL;
  g_autoptr (GPtrArray) descriptions = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) model_error = NULL;
  gboolean usable = FALSE;
  guint n_own = 0;
  int status;

  /* each command lists the options that mean something to it, with its defaults; any other
   * is an unknown option there */
  gesso_edit_params_init (&p, kind);
  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      g_autofree char *value = NULL;

      if (entries[i].long_name != NULL && !option_applies (entries[i].long_name, kind))
        continue;
      own[n_own] = entries[i];
      if (entries[i].long_name != NULL
          && (value = option_default (entries[i].long_name, &p)) != NULL)
        {
          char *text = g_strdup_printf (_("%s (default: %s)"), _(entries[i].description),
                                        value);
          g_ptr_array_add (descriptions, text);
          own[n_own].description = text;
        }
      n_own++;
    }
  g_option_context_set_summary (context, _(summary));
  g_option_context_add_main_entries (context, own, GETTEXT_PACKAGE);
  if (!gesso_cli_parse (context, command, &argc, &argv))
    {
      options_clear (&o);
      return GESSO_CLI_EXIT_USAGE;
    }
  if (argc > 1)
    gesso_cli_error (_("unexpected argument '%s'; run 'gesso %s --help' for the options"),
                     argv[1], command);
  else if (o.model == NULL && (o.model = gesso_cli_default_model (&model_error)) == NULL)
    gesso_cli_error ("%s", model_error->message);
  else if (o.prompt == NULL)
    gesso_cli_error (_("--prompt is required"));
  else if (o.out == NULL)
    gesso_cli_error (_("--out is required"));
  else if (!output_format_ok (o.out))
    gesso_cli_error (_("cannot write '%s': name the output .png, .jpg or .jpeg"), o.out);
  else if (!output_dir_ok (o.out))
    gesso_cli_error (_("cannot write '%s': its folder does not exist"), o.out);
  else if (!output_kind_ok (o.out))
    gesso_cli_error (_("cannot write '%s': it exists and is not a regular file"), o.out);
  else if (o.config_dir != NULL && !g_file_test (o.config_dir, G_FILE_TEST_IS_DIR))
    gesso_cli_error (_("--config-dir '%s' is not a folder"), o.config_dir);
  else if (kind != GESSO_EDIT_GENERATE && o.image == NULL)
    gesso_cli_error (_("--image is required"));
  else if (kind == GESSO_EDIT_INPAINT && o.mask == NULL)
    gesso_cli_error (_("--mask is required (white = regenerate, black = keep)"));
  else if (kind == GESSO_EDIT_RESTYLE && o.source_prompt == NULL)
    gesso_cli_error (_("--source-prompt is required: describe the image as it is"));
  else if (!embedding_options (&o))
    ;
  else if (!gesso_cli_controls_parse (o.controls, o.control_preprocess, &controls,
                                      &control_error))
    gesso_cli_error ("%s", control_error->message);
  else
    {
      if (o.sampler != NULL)
        {
          char *name = g_ascii_strdown (o.sampler, -1);

          g_free (o.sampler);
          o.sampler = g_strdelimit (name, "-", '_');
        }
      usable = text_options (&o);
      if (usable && !gesso_cli_loras_collect (o.loras, o.lora_dirs, o.prompt, &loras,
                                              &lora_error))
        {
          gesso_cli_error ("%s", lora_error->message);
          usable = FALSE;
        }
      usable = usable && apply_options (&o, kind, &p) && model_params (&o, &mp);
      if (usable)
        {
          /* the engine reads the prompt without its <lora:...> tags */
          p.prompt = loras.prompt;
          p.loras = (const GessoLoraUse *) (void *) loras.uses->data;
          p.n_loras = (int) loras.uses->len;
        }
    }
  status = usable ? run_job (kind, &o, &mp, &p, &controls) : GESSO_CLI_EXIT_USAGE;
  gesso_cli_controls_clear (&controls);
  gesso_cli_loras_clear (&loras);
  options_clear (&o);
  return status;
}

int
gesso_cli_generate (int argc, char **argv)
{
  return run_edit (GESSO_EDIT_GENERATE, "generate", N_("Make an image from a prompt."), argc,
                   argv);
}

int
gesso_cli_inpaint (int argc, char **argv)
{
  return run_edit (GESSO_EDIT_INPAINT, "inpaint",
                   N_("Regenerate the masked part of an image from a prompt."), argc, argv);
}

int
gesso_cli_sdedit (int argc, char **argv)
{
  return run_edit (GESSO_EDIT_SDEDIT, "sdedit",
                   N_("Turn rough strokes or a sketch into a finished image (SDEdit)."), argc,
                   argv);
}

int
gesso_cli_restyle (int argc, char **argv)
{
  return run_edit (GESSO_EDIT_RESTYLE, "restyle",
                   N_("Change an image's style: invert it under one prompt, sample it under "
                      "another."), argc, argv);
}
