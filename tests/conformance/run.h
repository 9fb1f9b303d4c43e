/* The harness's private state, shared by harness.c and main.c only. */
#ifndef GESSO_CONFORMANCE_RUN_H
#define GESSO_CONFORMANCE_RUN_H

#include "harness.h"

struct ConformanceRun
{
  guint counts[3];              /* by ConformanceOutcome */
  guint reports_for_case;
  GHashTable *unsupported;      /* model name -> the engine's reason, "" when it runs it */
};

#endif
