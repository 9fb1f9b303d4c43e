/* The "scheduler" family: noise schedules and samplers against diffusers' schedulers.
 * The replay itself lives in scheduler-case.c (the unit tests run it too); this file turns
 * its checks into conformance results: per case "timesteps" (exact), "sigmas" (sigma
 * samplers), "rollout" (worst of scaled inputs, previous samples and x0 predictions over the
 * recorded steps) or, for RePaint, "timesteps" and "ops". */
#include <math.h>

#include "families.h"
#include "scheduler-case.h"

void conformance_family_scheduler (ConformanceRun *run, const ConformanceCase *c);

typedef struct
{
  ConformanceRun *run;
  const ConformanceCase *c;
} Context;

static void
on_check (const char *check, gboolean pass, double max_abs, double tol, const char *detail,
          gpointer user_data)
{
  Context *ctx = user_data;

  ConformanceOutcome outcome = pass ? CONFORMANCE_PASS : CONFORMANCE_FAIL;

  if (detail != NULL)
    conformance_report (ctx->run, ctx->c, outcome, check, max_abs, tol, "%s", detail);
  else
    conformance_report (ctx->run, ctx->c, outcome, check, max_abs, tol, NULL);
}

void
conformance_family_scheduler (ConformanceRun *run, const ConformanceCase *c)
{
  g_autoptr (GError) error = NULL;
  Context ctx = { run, c };

  if (!scheduler_case_run (c->manifest, c->tensors, on_check, &ctx, &error))
    conformance_report (run, c, CONFORMANCE_FAIL, NULL, NAN, 0, "%s", error->message);
}
