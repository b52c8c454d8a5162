/* C-served endpoints: server handles, each server's handler thread (one call at a time, in arrival order),
 * requests handed over by the Python side (pyimpl/capi/c_endpoint.py), model cards, and the stop's drain.
 * Responder handles and the responder API: responders.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve_tables.h"

enum { MAX_SERVERS = 64 };

typedef struct pending_call {
    struct pending_call* next;
    uint64_t responder;
    size_t len;
    char request[]; /* len bytes + NUL */
} pending_call;

typedef struct {
    uint32_t gen;
    int in_use;
    int stopping;          /* dispatch refuses: stop began (or serve has not finished) */
    int exit;              /* the handler thread ends once its queue is empty */
    uint64_t runtime;
    dynamo_request_handler_t handler;
    void* user_data;
    pthread_t thread;
    int64_t grace_ms;
    pending_call *head, *tail;
    size_t open;           /* responders of this server not finished (queued or handed over) */
    pthread_cond_t cv;     /* calls queued, exit, open reaching 0 */
} server_slot;

pthread_mutex_t dyn_serve_mu = PTHREAD_MUTEX_INITIALIZER;
static server_slot servers[MAX_SERVERS];

static server_slot* server_locked(uint64_t h) {
    uint32_t index, gen;
    if (!handle_split(h, TAG_SERVER, &index, &gen) || index >= MAX_SERVERS) return NULL;
    server_slot* s = &servers[index];
    return s->in_use && s->gen == gen ? s : NULL;
}

void dyn_server_response_done_locked(uint32_t server) {
    server_slot* s = &servers[server];
    if (s->open && --s->open == 0) pthread_cond_broadcast(&s->cv);
}

/* ---- the handler thread of a server ---- */

static void* handler_main(void* arg) {
    server_slot* s = arg;
    pthread_mutex_lock(&dyn_serve_mu);
    uint32_t gen = s->gen; /* a slot reused after a stop from inside this thread's handler is not ours */
    for (;;) {
        while (!s->head && !s->exit && s->gen == gen) pthread_cond_wait(&s->cv, &dyn_serve_mu);
        pending_call* call = s->gen == gen ? s->head : NULL;
        if (!call) break;
        s->head = call->next;
        if (!s->head) s->tail = NULL;
        int state = dyn_responder_state_locked(call->responder);
        if (state > 0) dyn_responder_end_locked(call->responder, NULL); /* the client left while it was queued */
        pthread_mutex_unlock(&dyn_serve_mu);
        if (state == 0) s->handler(s->user_data, call->request, call->len, (dynamo_responder_t*)(uintptr_t)call->responder);
        free(call);
        pthread_mutex_lock(&dyn_serve_mu);
    }
    pthread_mutex_unlock(&dyn_serve_mu);
    return NULL;
}

/* ---- Python side ---- */

uint64_t dyn_serve_dispatch(uint64_t server, const char* request, size_t len) {
    pending_call* call = malloc(sizeof *call + len + 1);
    if (!call) return 0;
    memcpy(call->request, request, len);
    call->request[len] = '\0';
    call->len = len;
    call->next = NULL;
    pthread_mutex_lock(&dyn_serve_mu);
    server_slot* s = server_locked(server);
    uint64_t h = s && !s->stopping ? dyn_responder_new_locked((uint32_t)(s - servers)) : 0;
    if (h) {
        call->responder = h;
        if (s->tail) s->tail->next = call; else s->head = call;
        s->tail = call;
        s->open++;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&dyn_serve_mu);
    if (!h) free(call);
    return h;
}

void dyn_server_set_grace_ms(uint64_t server, int64_t ms) {
    pthread_mutex_lock(&dyn_serve_mu);
    server_slot* s = server_locked(server);
    if (s) s->grace_ms = ms < 0 ? 0 : ms;
    pthread_mutex_unlock(&dyn_serve_mu);
}

/* ---- the API ---- */

typedef struct { uint64_t runtime, server; const char* text; } py_args;
static int call_serve(void* a) { py_args* x = a; return dyn_py_endpoint_serve(x->runtime, x->server, x->text); }
static int call_register(void* a) { py_args* x = a; return dyn_py_model_register(x->server, x->text); }
static int call_stop(void* a) { py_args* x = a; return dyn_py_server_stop(x->server); }

dynamo_status_t dynamo_endpoint_serve(dynamo_runtime_t* rt, const char* endpoint_path,
                                      dynamo_request_handler_t handler, void* user_data, dynamo_server_t** out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!rt) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the runtime is NULL");
    if (!endpoint_path) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "endpoint_path is NULL");
    if (!handler) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "handler is NULL");
    if (!dyn_utf8_valid(endpoint_path, strlen(endpoint_path)))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "endpoint_path is not valid UTF-8");
    uint64_t rh = (uint64_t)(uintptr_t)rt;
    pthread_mutex_lock(&dyn_rt_mu);
    int live = dyn_runtime_live_locked(rh);
    pthread_mutex_unlock(&dyn_rt_mu);
    if (!live) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");

    pthread_mutex_lock(&dyn_serve_mu);
    uint32_t index = 0;
    while (index < MAX_SERVERS && servers[index].in_use) index++;
    if (index == MAX_SERVERS) {
        pthread_mutex_unlock(&dyn_serve_mu);
        return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "too many servers (%d)", MAX_SERVERS);
    }
    server_slot* s = &servers[index];
    if (!s->gen) pthread_cond_init(&s->cv, NULL); /* first use of the slot */
    s->gen = s->gen + 1 ? s->gen + 1 : 1;
    s->in_use = 1;
    s->stopping = 0;
    s->exit = 0;
    s->runtime = rh;
    s->handler = handler;
    s->user_data = user_data;
    s->grace_ms = 5000;
    s->open = 0;
    uint64_t h = handle_make(index, s->gen, TAG_SERVER);
    pthread_mutex_unlock(&dyn_serve_mu);

    /* the handler thread blocks asynchronous signals: they stay the host's threads' business */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    int started = pthread_create(&s->thread, NULL, handler_main, s);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    dynamo_status_t st = started == 0 ? DYNAMO_OK : dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "cannot start a thread");
    if (st == DYNAMO_OK) {
        py_args args = {rh, h, endpoint_path};
        st = (dynamo_status_t)dyn_python_call(call_serve, &args);
    }
    if (st != DYNAMO_OK) {
        pthread_mutex_lock(&dyn_serve_mu);
        s->stopping = s->exit = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&dyn_serve_mu);
        if (started == 0) pthread_join(s->thread, NULL);
        pthread_mutex_lock(&dyn_serve_mu);
        s->in_use = 0;
        pthread_mutex_unlock(&dyn_serve_mu);
        return st;
    }
    *out = (dynamo_server_t*)(uintptr_t)h;
    return DYNAMO_OK;
}

dynamo_status_t dynamo_model_register(dynamo_server_t* server, const char* card_json) {
    REFUSE_IF_FORKED();
    if (!server) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the server is NULL");
    if (!card_json) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "card_json is NULL");
    size_t len = strnlen(card_json, DYN_MAX_CONFIG_BYTES + 1);
    if (len > DYN_MAX_CONFIG_BYTES || !dyn_utf8_valid(card_json, len) || !dyn_json_valid_object(card_json, len))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "card_json is not a well-formed JSON object (UTF-8, at most 1 MiB)");
    uint64_t h = (uint64_t)(uintptr_t)server;
    pthread_mutex_lock(&dyn_serve_mu);
    server_slot* s = server_locked(h);
    int ok = s && !s->stopping;
    pthread_mutex_unlock(&dyn_serve_mu);
    if (!ok) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid server handle");
    py_args args = {0, h, card_json};
    return (dynamo_status_t)dyn_python_call(call_register, &args);
}

/* Stop server h (its slot already marked stopping by the caller). */
static dynamo_status_t stop_server(uint64_t h, server_slot* s) {
    py_args args = {0, h, NULL};
    dynamo_status_t st = (dynamo_status_t)dyn_python_call(call_stop, &args); /* deregistered: no new requests */
    pthread_mutex_lock(&dyn_serve_mu);
    for (pending_call* call = s->head; call; call = call->next) /* queued, never handed over: they fail */
        dyn_responder_end_locked(call->responder, "the endpoint stopped before the request was handled");
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += s->grace_ms / 1000;
    deadline.tv_nsec += (s->grace_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
    while (s->open && pthread_cond_timedwait(&s->cv, &dyn_serve_mu, &deadline) != ETIMEDOUT) {}
    if (s->open) /* the drain gave up on these */
        dyn_responders_expire_locked((uint32_t)(s - servers),
                                     "the engine did not finish the response before its endpoint stopped");
    s->exit = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&dyn_serve_mu);
    if (pthread_equal(pthread_self(), s->thread)) pthread_detach(s->thread); /* stop from its own handler */
    else pthread_join(s->thread, NULL);
    pthread_mutex_lock(&dyn_serve_mu);
    for (pending_call* call = s->head; call;) { /* already failed above */
        pending_call* next = call->next;
        free(call);
        call = next;
    }
    s->head = s->tail = NULL;
    s->in_use = 0;
    pthread_mutex_unlock(&dyn_serve_mu);
    return st;
}

dynamo_status_t dynamo_server_stop(dynamo_server_t* server) {
    REFUSE_IF_FORKED();
    if (!server) return DYNAMO_OK;
    uint64_t h = (uint64_t)(uintptr_t)server;
    pthread_mutex_lock(&dyn_serve_mu);
    server_slot* s = server_locked(h);
    int ok = s && !s->stopping;
    if (ok) s->stopping = 1;
    pthread_mutex_unlock(&dyn_serve_mu);
    if (!ok) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid server handle");
    return stop_server(h, s);
}

void dyn_servers_stop_of(uint64_t runtime) {
    for (uint32_t i = 0; i < MAX_SERVERS; i++) {
        pthread_mutex_lock(&dyn_serve_mu);
        server_slot* s = &servers[i];
        int mine = s->in_use && !s->stopping && s->runtime == runtime;
        if (mine) s->stopping = 1;
        uint64_t h = handle_make(i, s->gen, TAG_SERVER);
        pthread_mutex_unlock(&dyn_serve_mu);
        if (mine) stop_server(h, s);
    }
}
