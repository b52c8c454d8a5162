/* Runtimes and what every entry shares: thread-local errors, fork detection, the event queue
 * to the loop thread, the runtime table and the runtime API, static facts. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "stream_slot.h"

/* ---- thread-local error and result strings ---- */

static __thread char tls_error[2048];
static __thread char* tls_result;

const char* dynamo_last_error(void) { return tls_error; }

void dyn_set_error(const char* message) {
    snprintf(tls_error, sizeof tls_error, "%s", message ? message : "");
}

dynamo_status_t dyn_fail(dynamo_status_t status, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    return status;
}

void dyn_set_result(const char* text) {
    free(tls_result);
    tls_result = text ? strdup(text) : NULL;
}

/* ---- fork detection ---- */

volatile int dyn_forked;
static volatile int library_used; /* a runtime was ever created: the interpreter and its threads exist */
static void on_fork_child(void) { if (library_used) dyn_forked = 1; }
__attribute__((constructor)) static void register_fork_handler(void) { pthread_atfork(NULL, NULL, on_fork_child); }

/* ---- event queue (C -> loop thread) ---- */

static dyn_event_queue submissions = DYN_EVENT_QUEUE_INIT;

int dyn_wake_fd(void) { return dyn_queue_fd(&submissions); }
void dyn_ev_push(dyn_event_t* ev) { dyn_queue_push(&submissions, ev); }
dyn_event_t* dyn_next_event(void) { return dyn_queue_next(&submissions); }

void dyn_event_release(dyn_event_t* ev) {
    if (!ev) return;
    free(ev->endpoint);
    free(ev->request);
    free(ev);
}

/* ---- runtime table ---- */

enum { MAX_RUNTIMES = 256 };
typedef struct { uint32_t gen; int in_use; int closing; } runtime_slot;
pthread_mutex_t dyn_rt_mu = PTHREAD_MUTEX_INITIALIZER;
static runtime_slot runtimes[MAX_RUNTIMES];

/* Under dyn_rt_mu: is h a live, open runtime? */
int dyn_runtime_live_locked(uint64_t h) {
    uint32_t index, gen;
    if (!handle_split(h, TAG_RUNTIME, &index, &gen) || index >= MAX_RUNTIMES) return 0;
    return runtimes[index].in_use && runtimes[index].gen == gen && !runtimes[index].closing;
}

/* rt as a live runtime's handle value, else the status (and this thread's error) a call returns for it. */
dynamo_status_t dyn_runtime_check(dynamo_runtime_t* rt, uint64_t* h) {
    if (!rt) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the runtime is NULL");
    *h = (uint64_t)(uintptr_t)rt;
    pthread_mutex_lock(&dyn_rt_mu);
    int live = dyn_runtime_live_locked(*h);
    pthread_mutex_unlock(&dyn_rt_mu);
    return live ? DYNAMO_OK : dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");
}

/* ---- runtime API ---- */

dynamo_status_t dynamo_runtime_create(const char* config_json, dynamo_runtime_t** out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!config_json) config_json = "{}";
    size_t len = strnlen(config_json, DYN_MAX_CONFIG_BYTES + 1);
    if (len > DYN_MAX_CONFIG_BYTES)
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "config_json is larger than %u bytes", DYN_MAX_CONFIG_BYTES);
    if (!dyn_utf8_valid(config_json, len)) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "config_json is not valid UTF-8");
    if (!dyn_json_valid_object(config_json, len))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "config_json is not a well-formed JSON object");
    library_used = 1;
    dynamo_status_t st = dyn_python_start();
    if (st != DYNAMO_OK) return st;

    pthread_mutex_lock(&dyn_rt_mu);
    uint32_t index = 0;
    while (index < MAX_RUNTIMES && runtimes[index].in_use) index++;
    if (index == MAX_RUNTIMES) {
        pthread_mutex_unlock(&dyn_rt_mu);
        return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "too many runtimes (%d)", MAX_RUNTIMES);
    }
    runtime_slot* r = &runtimes[index];
    r->gen = r->gen + 1 ? r->gen + 1 : 1;
    r->in_use = 1;
    r->closing = 1; /* no submissions until Python has it */
    uint64_t h = handle_make(index, r->gen, TAG_RUNTIME);
    pthread_mutex_unlock(&dyn_rt_mu);

    st = dyn_python_create(h, config_json);
    pthread_mutex_lock(&dyn_rt_mu);
    if (st == DYNAMO_OK) r->closing = 0; else r->in_use = 0;
    pthread_mutex_unlock(&dyn_rt_mu);
    if (st == DYNAMO_OK) *out = (dynamo_runtime_t*)(uintptr_t)h;
    return st;
}

dynamo_status_t dynamo_runtime_destroy(dynamo_runtime_t* rt) {
    REFUSE_IF_FORKED();
    if (!rt) return DYNAMO_OK;
    uint64_t h = (uint64_t)(uintptr_t)rt;
    pthread_mutex_lock(&dyn_rt_mu);
    if (!dyn_runtime_live_locked(h)) {
        pthread_mutex_unlock(&dyn_rt_mu);
        return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");
    }
    runtime_slot* r = &runtimes[(h >> 4) & 0x0FFFFFFF];
    r->closing = 1;
    pthread_mutex_unlock(&dyn_rt_mu);

    dyn_end_streams_of(h);
    dyn_servers_stop_of(h); /* C-served endpoints drain and their handler threads end first */
    dynamo_status_t st = dyn_python_destroy(h);
    pthread_mutex_lock(&dyn_rt_mu);
    r->in_use = 0;
    r->closing = 0;
    pthread_mutex_unlock(&dyn_rt_mu);
    return st;
}

dynamo_status_t dynamo_runtime_stats_json(dynamo_runtime_t* rt, const char** out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!rt) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the runtime is NULL");
    uint64_t h = (uint64_t)(uintptr_t)rt;
    pthread_mutex_lock(&dyn_rt_mu);
    int live = dyn_runtime_live_locked(h);
    pthread_mutex_unlock(&dyn_rt_mu);
    if (!live) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");
    dyn_set_result(NULL);
    dynamo_status_t st = dyn_python_stats(h);
    if (st == DYNAMO_OK) {
        if (!tls_result) return dyn_fail(DYNAMO_ERR_INTERNAL, "no stats produced");
        *out = tls_result;
    }
    return st;
}

/* ---- static facts ---- */

uint32_t dynamo_llm_abi_version(void) { return DYNAMO_LLM_ABI_VERSION; }

#define DYN_STR2(x) #x
#define DYN_STR(x) DYN_STR2(x)
const char* dynamo_llm_version(void) {
    return DYN_STR(DYNAMO_LLM_VERSION_MAJOR) "." DYN_STR(DYNAMO_LLM_VERSION_MINOR) "." DYN_STR(DYNAMO_LLM_VERSION_PATCH);
}

const char* dynamo_status_str(dynamo_status_t status) {
    switch (status) {
    case DYNAMO_OK: return "DYNAMO_OK";
    case DYNAMO_TIMEOUT: return "DYNAMO_TIMEOUT";
    case DYNAMO_END: return "DYNAMO_END";
    case DYNAMO_ERR_INVALID_ARGUMENT: return "DYNAMO_ERR_INVALID_ARGUMENT";
    case DYNAMO_ERR_INVALID_HANDLE: return "DYNAMO_ERR_INVALID_HANDLE";
    case DYNAMO_ERR_NOT_FOUND: return "DYNAMO_ERR_NOT_FOUND";
    case DYNAMO_ERR_UNAVAILABLE: return "DYNAMO_ERR_UNAVAILABLE";
    case DYNAMO_ERR_CANCELLED: return "DYNAMO_ERR_CANCELLED";
    case DYNAMO_ERR_ENGINE: return "DYNAMO_ERR_ENGINE";
    case DYNAMO_ERR_SHUTDOWN: return "DYNAMO_ERR_SHUTDOWN";
    case DYNAMO_ERR_FORKED: return "DYNAMO_ERR_FORKED";
    case DYNAMO_ERR_INTERNAL: return "DYNAMO_ERR_INTERNAL";
    case DYNAMO_ERR_PYTHON_INIT: return "DYNAMO_ERR_PYTHON_INIT";
    case DYNAMO_ERR_OUT_OF_MEMORY: return "DYNAMO_ERR_OUT_OF_MEMORY";
    }
    return "DYNAMO_UNKNOWN_STATUS";
}
