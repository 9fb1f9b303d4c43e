/* The one sampling loop every edit runs.
 *
 * For each timestep t of the sampler from FIRST on:
 *   model input = scale_model_input (x, t);  prediction = guided UNet (guidance.h);
 *   x = sampler step (prediction, t, x, noise if the step wants some).
 * RePaint samplers (Lugmayr et al. 2022, Algorithm 1) walk their jump schedule instead: a
 * timestep below the previous one is a reverse step, where the known region is the
 * original forward-noised to the step's target level and the rest is the model's DDIM step
 * (joined by the mask, line 8); a timestep above it is an "undo": x is re-noised one training
 * step at a time back up (line 10).
 *
 * Known region (RePaint for inpainting, and SDEdit with a mask): ORIGINAL is the clean latent
 * and CHANGE a soft mask per latent cell (1 = regenerate, 0 = keep). After every step, each
 * cell that is held is replaced by ORIGINAL forward-noised to the level the step reached
 * (ORIGINAL itself after the last step); RePaint steps do the same inside the sampler.
 *
 * Previews: when the job's progress has a previewer, each model-evaluating step hands it the
 * sampler's predicted x_0 (the "denoised" sample for LCM) with the cells held at that step
 * set to ORIGINAL, so the preview looks like the composite the run is heading for. The x_0
 * is the one the sampler computes anyway; without a previewer none is kept.
 *
 * Soft masks, "differential diffusion" (Levin & Fried 2023, "Differential Diffusion: Giving
 * Each Pixel Its Strength"): a run of K noise levels gives its j-th step (j = 0, 1, ..., K-1,
 * from the noisiest) the remaining noise fraction rho_j = (K - j) / K. A cell with change
 * value m is held while rho_j > m and free once rho_j <= m: it follows the original until
 * the noise has come down to the fraction m of the run, then denoises freely, exactly as an
 * SDEdit of strength m would. m = 1 is free from the first step (plain RePaint/SDEdit
 * inside the mask), m = 0 is held to the end and ends exactly at ORIGINAL, and a hard mask
 * behaves exactly as the binary algorithms. For RePaint the level of a step is its timestep's
 * position in the schedule, so the jumps revisit the same fractions.
 * (Held while rho > m, not "free while rho > 1 - m": under the latter every cell with m < 1
 * would be held on the last step and so end exactly at the original, making a soft edge
 * the same as a hard one.)
 *
 * Noise draws, in order, per op: a step draws what the sampler's step wants
 * (gesso_sampler_step_noise_count), then, with a known region and unless it is the last step,
 * one tensor to noise the original with; a RePaint step draws one tensor (the sampler uses
 * it for the known part and, eta > 0, the variance); an undo draws T / steps tensors.
 *
 * Buffers are allocated by gesso_denoise_init, once, after the sampler's set_timesteps.
 */
#ifndef GESSO_DENOISE_H
#define GESSO_DENOISE_H

#include <glib.h>

#include "edit/guidance.h"
#include "edit/noise.h"
#include "edit/preview.h"
#include "gesso.h"
#include "sampling/sampler.h"

G_BEGIN_DECLS

/* A job's progress: DONE of TOTAL model-evaluating steps, reported through FUNC; with a
 * PREVIEWER, each step's estimate of the clean latent goes with it as a preview. */
typedef struct
{
  GessoProgressFunc func;
  gpointer data;
  int done;
  int total;
  GessoPreviewer *previewer;    /* borrowed; NULL: no previews */
} GessoJobProgress;

/* Where the loop puts a step's estimate of the clean latent for the preview; NULL when no
 * preview is wanted, so a loop without previews computes none. */
float *gesso_job_progress_estimate (GessoJobProgress *progress);

/* Counts one step and calls FUNC, with the preview of the estimate when there is a
 * previewer; FALSE with GESSO_ERROR_CANCELLED when FUNC says stop. */
gboolean gesso_job_progress_step (GessoJobProgress *progress, GError **error);

/* Sees the latents after every op (tests compare them with reference runs). PHASE names the
 * loop ("denoise", "inversion", ...); INDEX counts ops from 0. */
typedef void (*GessoLatentObserver) (gpointer data, const char *phase, guint index, double t,
                                     const float *latents, size_t numel);

typedef struct
{
  GessoSampler *sampler;
  GessoGuider *guider;
  GessoNoiseSource *noise;
  guint first;                  /* the timestep index to start at */
  guint end;                    /* and to stop before; 0 = the end of the schedule */
  const float *original;        /* [1, C, h, w]; NULL: no known region */
  const float *change;          /* [h * w], 1 = regenerate; NULL: everything */
  GessoPrediction prediction;   /* what the model predicts (RePaint wants epsilon) */
  const char *phase;
  GessoJobProgress *progress;   /* may be NULL */
  GessoLatentObserver observe;  /* may be NULL */
  gpointer observe_data;

  /* planned by gesso_denoise_init */
  size_t numel;
  size_t plane;
  float *scaled;                /* the model input */
  float *prediction_buf;
  float *noise_buf;             /* as many tensors as any op draws at once */
  float *known;                 /* the original forward-noised */
  float *keep;                  /* per cell, 1 = held (RePaint mask) */
} GessoDenoise;

/* Sets D up for SAMPLER (timesteps already set) and GUIDER; everything else is zero and the
 * caller fills FIRST, ORIGINAL, CHANGE, ... before running. */
gboolean gesso_denoise_init (GessoDenoise *d, GessoSampler *sampler, GessoGuider *guider,
                             GessoNoiseSource *noise, GessoPrediction prediction,
                             GError **error);
void gesso_denoise_clear (GessoDenoise *d);

/* How many model evaluations a run from FIRST makes. */
int gesso_denoise_count_steps (const GessoDenoise *d);

/* The index of the first RePaint op at noise level LEVEL (0 = the cleanest), for runs that
 * start part-way (strength < 1); FALSE when the schedule never reaches it. */
gboolean gesso_denoise_repaint_first (const GessoDenoise *d, int level, guint *first);

/* Runs the loop on X [1, C, h, w] in place. */
gboolean gesso_denoise_run (GessoDenoise *d, float *x, GError **error);

G_END_DECLS

#endif /* GESSO_DENOISE_H */
