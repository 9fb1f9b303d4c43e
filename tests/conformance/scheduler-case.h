/* One "scheduler" family case, replayed against core/sampling. Shared by the conformance
 * handler (family-scheduler.c) and the sampling unit tests, so both check the same things.
 *
 * Rollout cases (sched-<name>-<pred>-<N>steps-*): timesteps_{10,20,50} exactly, sigmas_* and
 * init_noise_sigma within the case tolerance, then the recorded rollout: from
 * initial_sample, scale_model_input / step with model_outputs[i] and the recorded noise fed
 * in draw order, comparing scaled_model_inputs, prev_samples and pred_original_samples (our
 * own prev_sample is carried to the next step). RePaint cases (sched-repaint-*): the jump
 * schedule exactly, then the recorded step / undo_step ops compared after every op.
 */
#ifndef GESSO_SCHEDULER_CASE_H
#define GESSO_SCHEDULER_CASE_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "io/safetensors.h"

G_BEGIN_DECLS

/* One result: CHECK names it ("timesteps", "sigmas", "rollout", "ops"); MAX_ABS and TOL are
 * 0 for exact checks; DETAIL (may be NULL) says what failed or which output was worst. */
typedef void (*SchedulerCheckFunc) (const char *check, gboolean pass, double max_abs, double tol,
                                    const char *detail, gpointer user_data);

/* Runs the case; FALSE (and ERROR) when it cannot be run at all (bad manifest, missing
 * tensor, a sampler that refuses the config), after which nothing more is reported. */
gboolean scheduler_case_run (JsonObject *manifest, GessoSafetensors *tensors,
                             SchedulerCheckFunc func, gpointer user_data, GError **error);

G_END_DECLS

#endif /* GESSO_SCHEDULER_CASE_H */
