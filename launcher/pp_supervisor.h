/*  pp_supervisor: runs the plan's stages as child processes and keeps them running.

    A stage that dies is logged (stage_exited, with its exit status or signal) and started
    again after its backoff: restart_backoff_ms, doubling per death up to
    restart_backoff_max_ms, reset once a run lasted stable_ms; never a tight loop. A stage
    that exits with status 2 (bad configuration) on its very first run makes the whole
    launcher give up, since restarting cannot fix the file. Children get PR_SET_PDEATHSIG
    so that they do not outlive a launcher killed with SIGKILL.

    Counters (proc="launcher"): stage_restarts_total{stage}, stage_up{stage},
    stage_pid{stage}.
*/
#ifndef PP_SUPERVISOR_H
#define PP_SUPERVISOR_H

#include "pp_metrics.h"
#include "pp_plan.h"

#include <sys/types.h>

typedef struct pp_supervisor_t pp_supervisor_t;

/*  paths[i] is the program of plan->stages[i]; common_args (NULL-terminated, may be NULL)
    go to every stage before its own "--metrics-port N". Copies what it needs. */
pp_supervisor_t *pp_supervisor_new(const pp_plan_t *plan, char *const *paths,
                                   const char *const *common_args, pp_metrics_t *metrics);
void pp_supervisor_destroy(pp_supervisor_t **p);

/*  Starts every stage. Returns 0, or -1 if fork failed (logged). */
int pp_supervisor_start(pp_supervisor_t *s);

/*  Reaps stages that died and restarts the ones whose backoff is over. Call often (every
    few tens of ms). Returns 0, or 2 when a stage failed its configuration on its first run. */
int pp_supervisor_tick(pp_supervisor_t *s);

/*  Stops in two steps so that a stop loses nothing: SIGTERM to the broker, which drains
    while the workers keep working; once it has exited (or after stop_timeout_ms, then
    SIGKILL), SIGTERM to every worker, up to stop_timeout_ms, then SIGKILL. Reaps every
    child: none is left afterwards. stop_timeout_ms must exceed broker.drain_ms
    (pp_plan_read checks). */
void pp_supervisor_stop(pp_supervisor_t *s);

/*  Current pid of stage i, 0 when not running. */
pid_t pp_supervisor_pid(const pp_supervisor_t *s, size_t i);

#endif
