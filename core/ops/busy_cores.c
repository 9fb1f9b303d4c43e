/* Threads fitted to the cores other programs leave free.
 *
 * The kernels split their work evenly among their threads, so one thread on a core that
 * another program keeps busy gets half that core and holds every other thread at each join:
 * a step with two threads on a 2-core machine with one core busy took as long as on one
 * thread, or longer (see README, "Speed and memory"), and waiting OpenMP workers spinning for
 * their next region take cycles from that program too. Results do not depend on the thread
 * count (ops.h), so the count can follow the load between two UNet evaluations: the cores
 * the rest of the machine kept busy since the last call are measured from /proc/stat, less
 * this process's own CPU time, and that many fewer threads are used. OMP_WAIT_POLICY was the
 * other candidate, but libgomp reads it once before main(), so code cannot choose it.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "ops/ops.h"

typedef struct
{
  double wall;                  /* seconds, monotonic */
  double busy;                  /* CPU seconds all processors spent not idle */
  double own;                   /* CPU seconds this process spent */
} Sample;

static GMutex lock;
static Sample last;             /* wall 0: none yet */

static double
clock_seconds (clockid_t clock)
{
  struct timespec ts;

  clock_gettime (clock, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* The first line of /proc/stat: user nice system idle iowait irq softirq steal, in clock
 * ticks. Stolen time counts as busy: a virtual machine's host gave it to someone else. */
static gboolean
read_sample (Sample *s)
{
  unsigned long long v[8] = { 0 };
  FILE *f = fopen ("/proc/stat", "r");
  int n;

  if (f == NULL)
    return FALSE;
  n = fscanf (f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
              &v[4], &v[5], &v[6], &v[7]);
  fclose (f);
  if (n < 5)
    return FALSE;
  s->wall = clock_seconds (CLOCK_MONOTONIC);
  s->busy = (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double) sysconf (_SC_CLK_TCK);
  s->own = clock_seconds (CLOCK_PROCESS_CPUTIME_ID);
  return TRUE;
}

int
gesso_ops_threads_for_load (int wanted, int n_cpus, double others_busy_cores)
{
  /* a core counts as taken once another program uses more than half of it */
  int free_cores = (int) (n_cpus - others_busy_cores + 0.5);

  return CLAMP (free_cores, 1, MAX (wanted, 1));
}

void
gesso_ops_fit_threads_to_load (void)
{
  Sample now;
  int limit = 0;

  if (!read_sample (&now))
    return;
  g_mutex_lock (&lock);
  /* a window shorter than a few clock ticks says nothing */
  if (last.wall > 0 && now.wall - last.wall > 0.1)
    {
      double others = ((now.busy - last.busy) - (now.own - last.own)) / (now.wall - last.wall);

      limit = gesso_ops_threads_for_load (gesso_ops_get_configured_threads (),
                                          (int) sysconf (_SC_NPROCESSORS_ONLN), MAX (others, 0));
    }
  if (last.wall == 0 || limit > 0)
    last = now;
  g_mutex_unlock (&lock);
  if (limit > 0)
    gesso_ops_limit_threads (limit);
}
