#include "pp_supervisor.h"
#include "pp_log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const pp_stage_t *stage;
    char **argv;
    pid_t pid;
    uint64_t started_ms;
    uint64_t restart_at_ms; /* when dead: the time to start again */
    int backoff_ms;         /* the next wait */
    int runs;
    pp_metric_t *restarts, *up, *pid_gauge;
} s_child_t;

struct pp_supervisor_t {
    const pp_plan_t *plan;
    s_child_t *children;
    size_t n;
};

static char **s_argv(const char *path, const char *const *common, const pp_stage_t *stage)
{
    size_t n_common = 0;
    while (common && common[n_common])
        n_common++;
    char **argv = calloc(n_common + 6, sizeof *argv);
    if (!argv) abort();
    size_t k = 0;
    argv[k++] = strdup(path);
    for (size_t i = 0; i < n_common; i++)
        argv[k++] = strdup(common[i]);
    for (size_t i = 0; i < 2 && stage->extra[i][0]; i++)
        argv[k++] = strdup(stage->extra[i]);
    char port[16];
    snprintf(port, sizeof port, "%d", stage->metrics_port);
    argv[k++] = strdup("--metrics-port");
    argv[k++] = strdup(port);
    for (size_t i = 0; i < k; i++)
        if (!argv[i]) abort();
    return argv;
}

pp_supervisor_t *pp_supervisor_new(const pp_plan_t *plan, char *const *paths,
                                   const char *const *common_args, pp_metrics_t *metrics)
{
    pp_supervisor_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->plan = plan;
    s->n = plan->n_stages;
    s->children = calloc(s->n ? s->n : 1, sizeof *s->children);
    if (!s->children) abort();
    for (size_t i = 0; i < s->n; i++) {
        s_child_t *c = &s->children[i];
        c->stage = &plan->stages[i];
        c->argv = s_argv(paths[i], common_args, c->stage);
        c->backoff_ms = plan->restart_backoff_ms;
        char labels[64];
        snprintf(labels, sizeof labels, "stage=\"%s\"", c->stage->name);
        c->restarts = pp_metrics_counter(metrics, "stage_restarts_total",
                                         "Times the launcher restarted a stage", labels);
        c->up = pp_metrics_gauge(metrics, "stage_up", "1 while the stage's process runs", labels);
        c->pid_gauge = pp_metrics_gauge(metrics, "stage_pid", "The stage's process id", labels);
    }
    return s;
}

void pp_supervisor_destroy(pp_supervisor_t **p)
{
    if (!p || !*p) return;
    pp_supervisor_t *s = *p;
    for (size_t i = 0; i < s->n; i++) {
        for (char **a = s->children[i].argv; a && *a; a++)
            free(*a);
        free(s->children[i].argv);
    }
    free(s->children);
    free(s);
    *p = NULL;
}

/*  Between fork and exec only async-signal-safe calls: the argv was built beforehand. */
static void s_exec_child(s_child_t *c, pid_t parent)
{
    /* Die with the launcher even when it is SIGKILLed; the check covers a parent that
       died before prctl ran. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(c->argv[0], c->argv);
    static const char msg[] = "pushpipe: exec failed\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

static int s_spawn(s_child_t *c)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        pp_error("stage_fork_failed", "stage=%s error=\"%s\"", c->stage->name, strerror(errno));
        return -1;
    }
    if (pid == 0) s_exec_child(c, parent);
    c->pid = pid;
    c->started_ms = pp_mono_ms();
    c->runs++;
    pp_metric_set(c->up, 1);
    pp_metric_set(c->pid_gauge, pid);
    pp_info("stage_started", "stage=%s pid=%d metrics_port=%d run=%d program=%s", c->stage->name,
            (int)pid, c->stage->metrics_port, c->runs, c->argv[0]);
    return 0;
}

int pp_supervisor_start(pp_supervisor_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s_spawn(&s->children[i]) != 0) return -1;
    return 0;
}

static void s_describe(int status, char *out, size_t outlen)
{
    if (WIFEXITED(status))
        snprintf(out, outlen, "exit:%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, outlen, "signal:%d", WTERMSIG(status));
    else
        snprintf(out, outlen, "status:%d", status);
}

/*  Returns 2 when the death means the configuration is bad, else 0. */
static int s_on_exit(pp_supervisor_t *s, s_child_t *c, int status)
{
    uint64_t now = pp_mono_ms();
    uint64_t uptime = now - c->started_ms;
    char how[32];
    s_describe(status, how, sizeof how);
    pid_t old = c->pid;
    c->pid = 0;
    pp_metric_set(c->up, 0);
    pp_metric_set(c->pid_gauge, 0);
    if (c->runs == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
        uptime < (uint64_t)s->plan->stable_ms) {
        pp_error("stage_config_failed",
                 "stage=%s pid=%d status=%s effect=\"stopping the pipeline: fix the config\"",
                 c->stage->name, (int)old, how);
        return 2;
    }
    if (uptime >= (uint64_t)s->plan->stable_ms) c->backoff_ms = s->plan->restart_backoff_ms;
    c->restart_at_ms = now + (uint64_t)c->backoff_ms;
    pp_warn("stage_exited", "stage=%s pid=%d status=%s uptime_ms=%llu restart_in_ms=%d",
            c->stage->name, (int)old, how, (unsigned long long)uptime, c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > s->plan->restart_backoff_max_ms
                        ? s->plan->restart_backoff_max_ms
                        : c->backoff_ms * 2;
    return 0;
}

int pp_supervisor_tick(pp_supervisor_t *s)
{
    int rc = 0;
    for (size_t i = 0; i < s->n; i++) {
        s_child_t *c = &s->children[i];
        if (c->pid > 0) {
            int status;
            pid_t got = waitpid(c->pid, &status, WNOHANG);
            if (got == c->pid && s_on_exit(s, c, status) == 2) rc = 2;
        }
    }
    if (rc) return rc;
    uint64_t now = pp_mono_ms();
    for (size_t i = 0; i < s->n; i++) {
        s_child_t *c = &s->children[i];
        if (c->pid == 0 && c->runs > 0 && now >= c->restart_at_ms && s_spawn(c) == 0) {
            pp_metric_inc(c->restarts);
        } else if (c->pid == 0 && c->runs > 0 && now >= c->restart_at_ms) {
            c->restart_at_ms = now + (uint64_t)c->backoff_ms; /* fork failed: try later */
        }
    }
    return 0;
}

static size_t s_reap(pp_supervisor_t *s, bool log)
{
    size_t running = 0;
    for (size_t i = 0; i < s->n; i++) {
        s_child_t *c = &s->children[i];
        if (c->pid <= 0) continue;
        int status;
        pid_t got = waitpid(c->pid, &status, WNOHANG);
        if (got == c->pid || (got < 0 && errno == ECHILD)) {
            char how[32] = "gone";
            if (got == c->pid) s_describe(status, how, sizeof how);
            if (log)
                pp_info("stage_stopped", "stage=%s pid=%d status=%s", c->stage->name, (int)c->pid,
                        how);
            c->pid = 0;
            pp_metric_set(c->up, 0);
            pp_metric_set(c->pid_gauge, 0);
        } else
            running++;
    }
    return running;
}

/*  Sends sig to the running stages of one kind (brokers) or of every other kind. */
static void s_signal_group(pp_supervisor_t *s, bool brokers, int sig)
{
    for (size_t i = 0; i < s->n; i++) {
        s_child_t *c = &s->children[i];
        if (c->pid > 0 && (c->stage->kind == PP_STAGE_BROKER) == brokers) kill(c->pid, sig);
    }
}

static size_t s_running_group(const pp_supervisor_t *s, bool brokers)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->children[i].pid > 0 && (s->children[i].stage->kind == PP_STAGE_BROKER) == brokers)
            n++;
    return n;
}

/*  Reaps until no stage of the group runs or deadline (monotonic ms) passes. Returns the
    number of that group's stages still running. */
static size_t s_wait_group(pp_supervisor_t *s, bool brokers, uint64_t deadline)
{
    while (s_reap(s, true), s_running_group(s, brokers) > 0 && pp_mono_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return s_running_group(s, brokers);
}

static void s_kill_group(pp_supervisor_t *s, bool brokers)
{
    for (size_t i = 0; i < s->n; i++) {
        s_child_t *c = &s->children[i];
        if (c->pid <= 0 || (c->stage->kind == PP_STAGE_BROKER) != brokers) continue;
        pp_warn("stage_killed", "stage=%s pid=%d after_ms=%d", c->stage->name, (int)c->pid,
                s->plan->stop_timeout_ms);
        kill(c->pid, SIGKILL);
        int status;
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
            ;
        pp_info("stage_stopped", "stage=%s pid=%d status=killed", c->stage->name, (int)c->pid);
        c->pid = 0;
        pp_metric_set(c->up, 0);
        pp_metric_set(c->pid_gauge, 0);
    }
}

/*  The stop is staged so that nothing accepted is dropped: the broker is stopped first
    and drains (it stops intake and hands what it holds to workers) while every worker
    keeps working and granting credit; only once the broker has exited, or its
    stop_timeout_ms is over, are the workers stopped, each with its own timeout. Stopping
    all at once made workers stop taking jobs while the broker still held them. */
void pp_supervisor_stop(pp_supervisor_t *s)
{
    uint64_t timeout = (uint64_t)s->plan->stop_timeout_ms;
    if (s_running_group(s, true) > 0) {
        pp_info("stopping_brokers", "brokers=%zu workers_kept=%zu timeout_ms=%llu",
                s_running_group(s, true), s_running_group(s, false), (unsigned long long)timeout);
        s_signal_group(s, true, SIGTERM);
        if (s_wait_group(s, true, pp_mono_ms() + timeout) > 0) s_kill_group(s, true);
    }
    if (s_running_group(s, false) == 0) return;
    pp_info("stopping_workers", "workers=%zu timeout_ms=%llu", s_running_group(s, false),
            (unsigned long long)timeout);
    s_signal_group(s, false, SIGTERM);
    if (s_wait_group(s, false, pp_mono_ms() + timeout) > 0) s_kill_group(s, false);
}

pid_t pp_supervisor_pid(const pp_supervisor_t *s, size_t i)
{
    return i < s->n ? s->children[i].pid : 0;
}
