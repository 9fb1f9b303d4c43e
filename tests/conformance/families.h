/* One handler per family of cases; each lives in family-<name>.c. */
#ifndef GESSO_CONFORMANCE_FAMILIES_H
#define GESSO_CONFORMANCE_FAMILIES_H

#include "harness.h"

/* Not a manifest family: every model under <dir>/models, every file of it, loaded and
 * cross-checked against its diffusers folder. */
void conformance_models (ConformanceRun *run, const char *dir);

/* vae/ cases: encode and decode through every file of the model (family-vae.c). */
void conformance_family_vae (ConformanceRun *run, const ConformanceCase *c);

/* unet/ cases: one forward per file of the model (family-unet.c). */
void conformance_family_unet (ConformanceRun *run, const ConformanceCase *c);

/* text_encoder/ cases: input_ids through every file of the model (family-text_encoder.c). */
void conformance_family_text_encoder (ConformanceRun *run, const ConformanceCase *c);

/* tokenizer/ cases: every prompt through the model's tokenizer folder, ids exact
 * (family-tokenizer.c). */
void conformance_family_tokenizer (ConformanceRun *run, const ConformanceCase *c);

/* pipeline/ cases: txt2img, img2img, inpaint, restyle and latent RePaint end to end with the
 * recorded noise, through every file of the model (family-pipeline.c). */
void conformance_family_pipeline (ConformanceRun *run, const ConformanceCase *c);

/* controlnet/ cases: residuals and the controlled UNet output through every file of the
 * ControlNet(s) (family-controlnet.c). */
void conformance_family_controlnet (ConformanceRun *run, const ConformanceCase *c);

/* taesd/ cases: encode and decode through the diffusers folder and madebyollin's files
 * (family-taesd.c). */
void conformance_family_taesd (ConformanceRun *run, const ConformanceCase *c);

/* scheduler/ cases: timesteps, sigmas and 5-step rollouts (family-scheduler.c). */
void conformance_family_scheduler (ConformanceRun *run, const ConformanceCase *c);

#endif
