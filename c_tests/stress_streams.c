/* The stream code (capi/src/streams.c, stream_queue.c, runtime_api.c) without Python, from many
 * threads: a producer thread plays the interpreter's loop (drains submissions and cancels, pushes
 * chunks through all three push functions, finishes streams) while host threads poll (timeouts 0,
 * 1 ms and -1, and through the fd), cancel and free, also racing each other on one stream. Built by
 * c_tests/sanitize.sh under TSan and ASan+UBSan, linked with c_tests/python_stub.c; every chunk is
 * checked for order and content. Exit 0 when all held. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dyn_internal.h"

/* the Python side is stubbed: c_tests/python_stub.c */
enum { HOSTS = 6, ROUNDS = 300, CHUNKS = 96, MAX_LIVE = 4096 };

/* ---- producer: the loop thread's part ---- */
typedef struct { uint64_t stream; int sent; } live_stream;
static live_stream live[MAX_LIVE];
static int n_live;
static atomic_int stop_producer;

static int push_some(live_stream* ls, unsigned* seed) {
    int k = ls->sent, count = 1 + (int)(rand_r(seed) % 8);
    if (count > CHUNKS - k) count = CHUNKS - k;
    char json[64 * 8], text[32 * 8];
    uint32_t ids[8];
    int rc;
    switch (rand_r(seed) % 3) {
    case 0: { /* a batch of one chunk */
        int jl = snprintf(json, 64, "{\"i\":%d,\"token_ids\":[%d]}", k, k);
        int tl = snprintf(text, 32, "t%d", k);
        ids[0] = (uint32_t)k;
        int32_t meta[DYN_CHUNK_META] = {jl, tl, 1, DYNAMO_FINISH_NONE, 0};
        rc = dyn_stream_push_batch(ls->stream, 1, json, text, meta, ids);
        count = 1;
        break;
    }
    case 1: { /* a batch: blobs back to back, DYN_CHUNK_META ints of metadata per chunk */
        int32_t meta[DYN_CHUNK_META * 8] = {0}; /* json_len, text_len, num_token_ids, finish, then 0s */
        size_t jo = 0, to = 0;
        for (int c = 0; c < count; c++) {
            int jl = snprintf(json + jo, 64, "{\"i\":%d,\"token_ids\":[%d]}", k + c, k + c);
            int tl = snprintf(text + to, 32, "t%d", k + c);
            jo += (size_t)jl; to += (size_t)tl;
            ids[c] = (uint32_t)(k + c);
            int32_t* m = meta + DYN_CHUNK_META * c;
            m[0] = jl; m[1] = tl; m[2] = 1; m[3] = DYNAMO_FINISH_NONE;
        }
        rc = dyn_stream_push_batch(ls->stream, (size_t)count, json, text, meta, ids);
        break;
    }
    default: { /* a JSON array the poller splits */
        size_t o = 0;
        json[o++] = '[';
        for (int c = 0; c < count; c++)
            o += (size_t)snprintf(json + o, 64, "%s{\"i\":%d,\"token_ids\":[%d]}", c ? "," : "", k + c, k + c);
        json[o++] = ']';
        rc = dyn_stream_push_json_array(ls->stream, json, o);
        CHECK(rc != -2);
    }
    }
    ls->sent += count;
    return rc;
}

static void* producer(void* arg) {
    (void)arg;
    unsigned seed = 7;
    struct pollfd pfd = {dyn_wake_fd(), POLLIN, 0};
    for (;;) {
        poll(&pfd, 1, n_live ? 0 : 5);
        uint64_t v;
        ssize_t r = read(pfd.fd, &v, sizeof v);
        (void)r;
        dyn_event_t* ev;
        while ((ev = dyn_next_event())) {
            if (ev->kind == DYN_EV_CANCEL) dyn_stream_finish(ev->stream, DYNAMO_ERR_CANCELLED, "cancelled");
            else if (n_live < MAX_LIVE) live[n_live++] = (live_stream){ev->stream, 0};
            else dyn_stream_finish(ev->stream, DYNAMO_ERR_UNAVAILABLE, "producer full");
            dyn_event_release(ev);
        }
        for (int i = 0; i < n_live; i++) {
            live_stream* ls = &live[i];
            int gone = push_some(ls, &seed) < 0;
            if (!gone && ls->sent == CHUNKS) { dyn_stream_finish(ls->stream, DYNAMO_OK, ""); gone = 1; }
            if (gone) { live[i--] = live[--n_live]; }
        }
        if (atomic_load(&stop_producer) && !n_live) return NULL;
        if (rand_r(&seed) % 4 == 0) sched_yield(); /* hand-overs in bursts, as the loop does */
    }
}

/* ---- host threads ---- */
static dynamo_runtime_t* rt;

/* A chunk is the k-th of its stream: same index in json, text (if any) and token ids. */
static void check_chunk(const dynamo_chunk_t* c, int k) {
    char want[64];
    int n = snprintf(want, sizeof want, "{\"i\":%d,\"token_ids\":[%d]}", k, k);
    if (c->json_len != (size_t)n || memcmp(c->json, want, (size_t)n + 1) != 0) {
        fprintf(stderr, "chunk %d: got %zu bytes \"%.*s\", want \"%s\"\n", k, c->json_len, (int)c->json_len, c->json, want);
        exit(1);
    }
    CHECK(c->num_token_ids == 1 && c->token_ids[0] == (uint32_t)k && c->choice_index == 0);
    if (c->text) {
        n = snprintf(want, sizeof want, "t%d", k);
        CHECK(c->text_len == (size_t)n && memcmp(c->text, want, (size_t)n + 1) == 0);
    }
}

static dynamo_stream_t* submit(void) {
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_generate(rt, "stress.queue.gen", "{\"n\": 1}", &s), DYNAMO_OK);
    return s;
}

/* Poll to the end with mixed timeouts and the fd; returns the chunk count. */
static int drain_checked(dynamo_stream_t* s, unsigned* seed) {
    dynamo_chunk_t c;
    dynamo_status_t st;
    int k = 0, fd = rand_r(seed) % 2 ? dynamo_stream_fd(s) : -1;
    for (;;) {
        if (fd >= 0) {
            struct pollfd pfd = {fd, POLLIN, 0};
            if (poll(&pfd, 1, 10000) != 1) {
                st = dynamo_stream_poll(s, 0, &c);
                fprintf(stderr, "fd not readable; poll(0) says %s after %d chunks\n", dynamo_status_str(st), k);
                exit(1);
            }
            st = dynamo_stream_poll(s, 0, &c);
        } else {
            static const int32_t timeouts[] = {0, 1, -1};
            st = dynamo_stream_poll(s, timeouts[rand_r(seed) % 3], &c);
        }
        if (st == DYNAMO_TIMEOUT) continue;
        if (st != DYNAMO_OK) break;
        check_chunk(&c, k++);
    }
    CHECK_STATUS(st, DYNAMO_END);
    return k;
}

typedef struct { dynamo_stream_t* s; atomic_int started; } racer_arg;

/* Polls (0 and -1) and cancels until the stream is freed under it. */
static void* racer(void* p) {
    racer_arg* a = p;
    dynamo_chunk_t c;
    atomic_store(&a->started, 1);
    for (unsigned i = 0;; i++) {
        dynamo_status_t st = i % 5 == 4 ? dynamo_stream_cancel(a->s) : dynamo_stream_poll(a->s, i % 2 ? -1 : 0, &c);
        if (st == DYNAMO_ERR_INVALID_HANDLE) return NULL;
        CHECK(st == DYNAMO_OK || st == DYNAMO_TIMEOUT || st == DYNAMO_END || st == DYNAMO_ERR_CANCELLED);
        if (st == DYNAMO_END || st == DYNAMO_ERR_CANCELLED) sched_yield();
    }
}

static void* host(void* arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int round = 0; round < ROUNDS; round++) {
        dynamo_stream_t* s = submit();
        switch (round % 3) {
        case 0:
            CHECK(drain_checked(s, &seed) == CHUNKS);
            CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
            break;
        case 1: { /* another thread polls and cancels while this one frees */
            racer_arg a = {s, 0};
            pthread_t t;
            CHECK(pthread_create(&t, NULL, racer, &a) == 0);
            while (!atomic_load(&a.started)) sched_yield();
            struct timespec pause = {0, (long)(rand_r(&seed) % 200) * 1000L};
            nanosleep(&pause, NULL);
            CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
            pthread_join(t, NULL);
            break;
        }
        default: { /* cancel mid-stream: chunks in order, then CANCELLED for good */
            dynamo_chunk_t c;
            dynamo_status_t st;
            int k = 0;
            while (k < 10 && (st = dynamo_stream_poll(s, -1, &c)) == DYNAMO_OK) check_chunk(&c, k++);
            CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_OK);
            while ((st = dynamo_stream_poll(s, 0, &c)) == DYNAMO_OK) check_chunk(&c, k++); /* it had ended */
            CHECK(st == DYNAMO_ERR_CANCELLED || (st == DYNAMO_END && k == CHUNKS));
            CHECK_STATUS(dynamo_stream_poll(s, -1, &c), st);
            CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
        }
        }
    }
    return NULL;
}

/* Before the producer runs: an array the poller cannot split ends the stream with
 * DYNAMO_ERR_INTERNAL after the elements before the bad one, for good, and the runtime is told. */
static void malformed_array_ends_the_stream(void) {
    dynamo_stream_t* s = submit();
    dyn_event_t* ev = dyn_next_event();
    CHECK(ev && ev->kind == DYN_EV_GENERATE);
    uint64_t h = ev->stream;
    dyn_event_release(ev);
    const char bad[] = "[{\"i\":0,\"token_ids\":[0]}, {\"a\" 1}]";
    CHECK(dyn_stream_push_json_array(h, bad, sizeof bad - 1) == 0);
    CHECK(dyn_stream_push_json_array(h, "{}", 2) == -2); /* not an array: refused at once */
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_OK);
    check_chunk(&c, 0);
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_INTERNAL);
    CHECK(strstr(dynamo_last_error(), "malformed") != NULL);
    CHECK_STATUS(dynamo_stream_poll(s, -1, &c), DYNAMO_ERR_INTERNAL);
    ev = dyn_next_event();
    CHECK(ev && ev->kind == DYN_EV_CANCEL && ev->stream == h);
    dyn_event_release(ev);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK(dyn_next_event() == NULL); /* the cancel was sent once */
}

int main(void) {
    CHECK_STATUS(dynamo_runtime_create("{}", &rt), DYNAMO_OK);
    malformed_array_ends_the_stream();
    pthread_t prod, hosts[HOSTS];
    CHECK(pthread_create(&prod, NULL, producer, NULL) == 0);
    for (int i = 0; i < HOSTS; i++) CHECK(pthread_create(&hosts[i], NULL, host, (void*)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < HOSTS; i++) pthread_join(hosts[i], NULL);

    /* a destroy ends the streams still open with SHUTDOWN, after the chunks already queued */
    dynamo_stream_t* open[8];
    for (int i = 0; i < 8; i++) open[i] = submit();
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    for (int i = 0; i < 8; i++) {
        dynamo_chunk_t c;
        dynamo_status_t st;
        int k = 0;
        while ((st = dynamo_stream_poll(open[i], -1, &c)) == DYNAMO_OK) check_chunk(&c, k++);
        CHECK(st == DYNAMO_ERR_SHUTDOWN || (st == DYNAMO_END && k == CHUNKS));
        CHECK_STATUS(dynamo_stream_free(open[i]), DYNAMO_OK);
    }
    atomic_store(&stop_producer, 1);
    pthread_join(prod, NULL);
    puts("ok");
    return 0;
}
