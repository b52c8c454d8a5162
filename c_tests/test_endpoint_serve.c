/* An endpoint served by a C handler, reached by dynamo_generate on the same runtime: answers inline and
 * from another thread, an error finish, a client that goes away (is_cancelled), a responder the host never
 * finishes (stop drains, then gives up), every error path of the serve/responder/server/model functions. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

typedef struct {
    atomic_int calls;
    atomic_int saw_cancel;       /* a "wait_cancel" request's thread saw is_cancelled */
    dynamo_responder_t* _Atomic never; /* the responder of a "never" request */
    dynamo_server_t* _Atomic self;     /* the server a "stop_self" request stops from its handler */
    atomic_int self_stopped;
} server_state;

typedef struct { dynamo_responder_t* r; server_state* state; int n; } job;

static void send_n(dynamo_responder_t* r, int n) {
    for (int i = 0; i < n; i++) {
        char json[64];
        int len = snprintf(json, sizeof json, "{\"token_ids\": [%d], \"finish_reason\": null}", i);
        CHECK_STATUS(dynamo_responder_send(r, json, (size_t)len), DYNAMO_OK);
    }
}

static void* later(void* arg) { /* answers from a host thread, after the handler returned */
    job* j = arg;
    usleep(20000);
    send_n(j->r, j->n);
    CHECK_STATUS(dynamo_responder_finish(j->r, NULL), DYNAMO_OK);
    free(j);
    return NULL;
}

static void* wait_cancel(void* arg) {
    job* j = arg;
    send_n(j->r, 1);
    for (int i = 0; i < 500 && !dynamo_responder_is_cancelled(j->r); i++) usleep(10000);
    if (dynamo_responder_is_cancelled(j->r)) atomic_store(&j->state->saw_cancel, 1);
    CHECK(dynamo_responder_send(j->r, "{}", 2) == DYNAMO_ERR_CANCELLED);
    CHECK_STATUS(dynamo_responder_finish(j->r, NULL), DYNAMO_OK);
    free(j);
    return NULL;
}

static void spawn(void* (*fn)(void*), dynamo_responder_t* r, server_state* state, int n) {
    job* j = malloc(sizeof *j);
    *j = (job){r, state, n};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, j) == 0);
    pthread_detach(t);
}

static void handler(void* user_data, const char* request, size_t len, dynamo_responder_t* r) {
    server_state* state = user_data;
    atomic_fetch_add(&state->calls, 1);
    CHECK(strlen(request) == len);
    CHECK(dynamo_responder_is_cancelled(r) == 0);
    if (strstr(request, "\"inline\"")) {
        send_n(r, 3);
        CHECK_STATUS(dynamo_responder_finish(r, NULL), DYNAMO_OK);
        CHECK_STATUS(dynamo_responder_finish(r, NULL), DYNAMO_ERR_INVALID_HANDLE); /* exactly once */
        CHECK(dynamo_responder_send(r, "{}", 2) == DYNAMO_ERR_INVALID_HANDLE);
        CHECK(dynamo_responder_is_cancelled(r) == 1);
    } else if (strstr(request, "\"later\"")) {
        spawn(later, r, state, 4);
    } else if (strstr(request, "\"error\"")) {
        CHECK_STATUS(dynamo_responder_send(r, NULL, 0), DYNAMO_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dynamo_responder_send(r, "[1]", 3), DYNAMO_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dynamo_responder_send(r, "{\"a\":", 5), DYNAMO_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dynamo_responder_send(r, "{\"a\":\"\xff\"}", 9), DYNAMO_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dynamo_responder_send(r, "{}", (size_t)8 * 1024 * 1024 + 1), DYNAMO_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dynamo_responder_finish(r, "boom: the engine failed"), DYNAMO_OK);
    } else if (strstr(request, "\"stop_self\"")) {
        send_n(r, 2);
        CHECK_STATUS(dynamo_responder_finish(r, NULL), DYNAMO_OK);
        CHECK_STATUS(dynamo_server_stop(atomic_load(&state->self)), DYNAMO_OK); /* from its own handler */
        atomic_store(&state->self_stopped, 1);
    } else if (strstr(request, "\"wait_cancel\"")) {
        spawn(wait_cancel, r, state, 0);
    } else { /* "never": kept open until the server's stop gives up on it */
        atomic_store(&state->never, r); /* before the chunk the test waits for */
        send_n(r, 1);
    }
}

/* Poll a stream to its end: the number of chunks; *end gets the final status. */
static int drain_counting(dynamo_stream_t* s, dynamo_status_t* end) {
    dynamo_chunk_t c;
    int n = 0;
    dynamo_status_t st;
    while ((st = dynamo_stream_poll(s, 10000, &c)) == DYNAMO_OK) {
        CHECK(c.num_token_ids == 1 && c.token_ids[0] == (uint32_t)n);
        n++;
    }
    *end = st;
    return n;
}

static dynamo_stream_t* ask(dynamo_runtime_t* rt, const char* mode) {
    char request[64];
    snprintf(request, sizeof request, "{\"mode\": \"%s\"}", mode);
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_generate(rt, "test.c.serve", request, &s), DYNAMO_OK);
    return s;
}

int main(void) {
    setenv("DYN_GRACE_PERIOD", "0.5", 1);
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    server_state state = {0};
    dynamo_server_t* server = NULL;

    /* serve: argument and handle errors */
    CHECK_STATUS(dynamo_endpoint_serve(NULL, "test.c.serve", handler, &state, &server), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_endpoint_serve(rt, NULL, handler, &state, &server), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", NULL, &state, &server), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", handler, &state, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c", handler, &state, &server), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.\xff.x", handler, &state, &server), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_endpoint_serve(rt, MOCK_ENDPOINT, handler, &state, &server), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_endpoint_serve((dynamo_runtime_t*)(uintptr_t)0x1239, "test.c.serve", handler, &state, &server),
                 DYNAMO_ERR_INVALID_HANDLE);
    CHECK(server == NULL);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", handler, &state, &server), DYNAMO_OK);
    dynamo_server_t* twice = NULL;
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", handler, &state, &twice), DYNAMO_ERR_INVALID_ARGUMENT);

    /* model cards */
    CHECK_STATUS(dynamo_model_register(NULL, "{}"), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_model_register(server, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_model_register(server, "{\"name\":"), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_model_register(server, "{\"name\": \"m\"}"), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_model_register(server, "{\"name\": \"m\", \"model_path\": \"/x\", \"color\": 1}"),
                 DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_model_register(server, "{\"name\": \"m\", \"model_path\": \"/x\", \"context_length\": \"9\"}"),
                 DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_model_register((dynamo_server_t*)(uintptr_t)0x1233, "{\"name\": \"m\", \"model_path\": \"/x\"}"),
                 DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_model_register(server, "{\"name\": \"m\", \"model_path\": \"/x\", \"kv_block_size\": 4}"),
                 DYNAMO_OK);
    CHECK_STATUS(dynamo_model_register(server, "{\"name\": \"m2\", \"model_path\": \"/x\"}"), DYNAMO_ERR_INVALID_ARGUMENT);

    /* answers: inline, later from another thread, an error */
    dynamo_status_t end;
    dynamo_stream_t* s = ask(rt, "inline");
    CHECK(drain_counting(s, &end) == 3 && end == DYNAMO_END);
    dynamo_stream_free(s);
    s = ask(rt, "later");
    CHECK(drain_counting(s, &end) == 4 && end == DYNAMO_END);
    dynamo_stream_free(s);
    s = ask(rt, "error");
    CHECK(drain_counting(s, &end) == 0 && end == DYNAMO_ERR_ENGINE);
    CHECK(strstr(dynamo_last_error(), "boom: the engine failed") != NULL);
    dynamo_stream_free(s);

    /* the client goes away: the host sees is_cancelled, a later send is refused */
    s = ask(rt, "wait_cancel");
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_stream_poll(s, 10000, &c), DYNAMO_OK);
    dynamo_stream_free(s);
    for (int i = 0; i < 500 && !atomic_load(&state.saw_cancel); i++) usleep(10000);
    CHECK(atomic_load(&state.saw_cancel) == 1);

    /* forged responders */
    dynamo_responder_t* forged = (dynamo_responder_t*)(uintptr_t)0x100000017ull;
    CHECK_STATUS(dynamo_responder_send(forged, "{}", 2), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_responder_finish(forged, NULL), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_responder_send(NULL, "{}", 2), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_responder_finish(NULL, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(dynamo_responder_is_cancelled(forged) == 1);
    CHECK(dynamo_responder_is_cancelled(NULL) == 1);

    /* stop with a response the host never finishes: the drain gives up after the grace period, the client's
     * stream fails, the responder expires, the endpoint is gone */
    s = ask(rt, "never");
    CHECK_STATUS(dynamo_stream_poll(s, 10000, &c), DYNAMO_OK);
    dynamo_responder_t* never = atomic_load(&state.never);
    CHECK(never != NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_STATUS(dynamo_server_stop(server), DYNAMO_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(waited >= 0.4 && waited < 5.0);
    CHECK(dynamo_stream_poll(s, 10000, &c) == DYNAMO_ERR_ENGINE);
    dynamo_stream_free(s);
    CHECK(dynamo_responder_is_cancelled(never) == 1);
    CHECK_STATUS(dynamo_responder_finish(never, NULL), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_server_stop(server), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_server_stop(NULL), DYNAMO_OK);
    CHECK_STATUS(dynamo_server_stop((dynamo_server_t*)(uintptr_t)0x1233), DYNAMO_ERR_INVALID_HANDLE);
    s = ask(rt, "inline");
    CHECK(drain_counting(s, &end) == 0 && (end == DYNAMO_ERR_NOT_FOUND || end == DYNAMO_ERR_UNAVAILABLE));
    dynamo_stream_free(s);

    /* served again after the stop */
    int calls = atomic_load(&state.calls);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", handler, &state, &server), DYNAMO_OK);
    s = ask(rt, "later");
    CHECK(drain_counting(s, &end) == 4 && end == DYNAMO_END);
    dynamo_stream_free(s);
    CHECK(atomic_load(&state.calls) == calls + 1);
    CHECK_STATUS(dynamo_server_stop(server), DYNAMO_OK);

    /* at most 64 live servers: the 65th is refused, and a stop frees a place */
    dynamo_server_t* many[64];
    int live = 0;
    for (; live < 64; live++) {
        char path[64];
        snprintf(path, sizeof path, "test.many.s%d", live);
        if (dynamo_endpoint_serve(rt, path, handler, &state, &many[live]) != DYNAMO_OK) break;
    }
    CHECK(live == 64);
    dynamo_server_t* extra = NULL;
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.many.extra", handler, &state, &extra), DYNAMO_ERR_OUT_OF_MEMORY);
    CHECK_STATUS(dynamo_server_stop(many[63]), DYNAMO_OK);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.many.extra", handler, &state, &many[63]), DYNAMO_OK);
    for (int i = 0; i < 64; i++) CHECK_STATUS(dynamo_server_stop(many[i]), DYNAMO_OK);

    /* a handler may stop its own server (it cannot wait for itself: the call returns, the handler ends) */
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", handler, &state, &server), DYNAMO_OK);
    atomic_store(&state.self, server);
    s = ask(rt, "stop_self");
    CHECK(drain_counting(s, &end) == 2 && end == DYNAMO_END);
    dynamo_stream_free(s);
    for (int i = 0; i < 500 && !atomic_load(&state.self_stopped); i++) usleep(10000);
    CHECK(atomic_load(&state.self_stopped) == 1);
    CHECK_STATUS(dynamo_server_stop(server), DYNAMO_ERR_INVALID_HANDLE);

    /* the runtime's destroy stops its servers (their handles then expire) */
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", handler, &state, &server), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    CHECK_STATUS(dynamo_server_stop(server), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_endpoint_serve(rt, "test.c.serve", handler, &state, &server), DYNAMO_ERR_INVALID_HANDLE);
    puts("ok");
    return 0;
}
