/*  pp_plan: which stages the launcher runs, read from the config's "launcher" section.

      broker                  true   run the broker on this host
      resolvers               2      resolver processes (0..32)
      apns_senders            1      (0..16)
      mqtt_senders            1      (0..16)
      bin_dir                 ""     where the pushpipe-* programs are; empty: next to the
                                     pushpipe binary, or in the build tree's folders
      metrics_base_port       9600   the launcher serves metrics on it (unless
                                     launcher.metrics_port says otherwise), stage k on base+1+k
                                     in the order broker, resolvers, apns senders, mqtt senders;
                                     0 turns every stage's metrics off
      restart_backoff_ms      500    first wait before restarting a stage that died
      restart_backoff_max_ms  30000  the wait doubles per quick death up to this
      stable_ms               10000  a stage that ran this long gets its backoff reset
      stop_timeout_ms         10000  SIGTERM, wait this long, then SIGKILL

    Slots keep their ports whatever runs: the broker's slot is base+1 even with "broker":
    false, so `pushpipe status` finds every stage from the same config.
*/
#ifndef PP_PLAN_H
#define PP_PLAN_H

#include "pp_config.h"

#include <stdbool.h>
#include <stddef.h>

#define PP_PLAN_MAX_RESOLVERS 32
#define PP_PLAN_MAX_SENDERS 16
#define PP_PLAN_MAX_STAGES (1 + PP_PLAN_MAX_RESOLVERS + 2 * PP_PLAN_MAX_SENDERS)

typedef enum {
    PP_STAGE_BROKER = 0,
    PP_STAGE_RESOLVER,
    PP_STAGE_APNS,
    PP_STAGE_MQTT
} pp_stage_kind_t;

typedef struct {
    pp_stage_kind_t kind;
    int instance;        /* 1-based within its kind */
    char name[32];       /* "broker", "resolver-2", "apns-sender-1", ... */
    const char *program; /* "pushpipe-resolver" */
    const char *folder;  /* its folder in the build tree: "resolver" */
    const char *section; /* its config section: "resolver" */
    int metrics_port;    /* 0: off */
    char extra[2][256];  /* stage-specific flags (the broker's --bind ADDR); "" when none */
} pp_stage_t;

typedef struct {
    pp_stage_t stages[PP_PLAN_MAX_STAGES];
    size_t n_stages;
    int launcher_metrics_port;
    const char *bin_dir; /* "" when not set; lives as long as the config */
    int restart_backoff_ms;
    int restart_backoff_max_ms;
    int stable_ms;
    int stop_timeout_ms;
} pp_plan_t;

/*  Reads the launcher section into *plan. Problems are config errors naming the key
    (check pp_config_ok afterwards). */
void pp_plan_read(pp_config_t *config, pp_plan_t *plan);

/*  Writes the path of a stage's program into out: in bin_dir when set; else next to
    self_dir (the launcher's own directory), else in self_dir/../<folder>/ (the build tree).
    Returns 0, or -1 when no executable was found (out then holds the first candidate). */
int pp_plan_program_path(const pp_plan_t *plan, const pp_stage_t *stage, const char *self_dir,
                         char *out, size_t outlen);

#endif
