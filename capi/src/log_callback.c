/* dynamo_set_log_callback: the host's log callback and level. The Python side (pyimpl/capi/log_bridge.py)
 * routes logging, warnings, uncaught tracebacks and sys.stderr to dyn_log_emit while a callback is set;
 * without one nothing is installed and the library prints to stderr as it always did. */
#include <pthread.h>
#include <stdio.h>

#include "stream_slot.h"

/* Emitters hold the read lock for the callback's run, so a setter (write lock) returns only once the
 * previous callback is no longer running. */
static pthread_rwlock_t cb_lock = PTHREAD_RWLOCK_INITIALIZER;
static dynamo_log_callback_t log_cb;
static void* log_user;

/* What the Python side should apply; `attached` once it has read it (it then follows every change). */
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t setter_mu = PTHREAD_MUTEX_INITIALIZER; /* one setter at a time, in order */
static int wanted;
static int32_t level = DYNAMO_LOG_WARNING;
static int attached;

void dyn_log_emit(int32_t lvl, const char* logger, const char* message) {
    pthread_rwlock_rdlock(&cb_lock);
    if (log_cb) log_cb(lvl, logger ? logger : "", message ? message : "", log_user);
    else fprintf(stderr, "%s\n", message ? message : "");
    pthread_rwlock_unlock(&cb_lock);
}

int dyn_log_wanted(int32_t* out_level) {
    pthread_mutex_lock(&state_mu);
    attached = 1;
    if (out_level) *out_level = level;
    int w = wanted;
    pthread_mutex_unlock(&state_mu);
    return w;
}

typedef struct { int32_t enabled, level; } log_config;

static int log_config_python(void* p) {
    log_config* c = p;
    return dyn_py_log_config(c->enabled, c->level);
}

/* Tell the Python side, if it is up (else it reads the state when it starts). */
static dynamo_status_t push_state(void) {
    pthread_mutex_lock(&state_mu);
    log_config c = {wanted, level};
    int up = attached;
    pthread_mutex_unlock(&state_mu);
    return up ? (dynamo_status_t)dyn_python_call(log_config_python, &c) : DYNAMO_OK;
}

dynamo_status_t dynamo_set_log_callback(dynamo_log_callback_t cb, void* user_data) {
    REFUSE_IF_FORKED();
    pthread_mutex_lock(&setter_mu);
    pthread_rwlock_wrlock(&cb_lock);
    log_cb = cb;
    log_user = user_data;
    pthread_rwlock_unlock(&cb_lock);
    pthread_mutex_lock(&state_mu);
    wanted = cb != NULL;
    pthread_mutex_unlock(&state_mu);
    dynamo_status_t st = push_state();
    pthread_mutex_unlock(&setter_mu);
    return st;
}

dynamo_status_t dynamo_set_log_level(int32_t lvl) {
    REFUSE_IF_FORKED();
    pthread_mutex_lock(&setter_mu);
    pthread_mutex_lock(&state_mu);
    level = lvl;
    pthread_mutex_unlock(&state_mu);
    dynamo_status_t st = push_state();
    pthread_mutex_unlock(&setter_mu);
    return st;
}
