/* dynamo_stream_set_callback: chunks in order on a library thread (not the host's), a terminal call
 * exactly once and nothing after it, cancel and free from inside the callback, a stream that ended
 * before the callback was set, 200 concurrent streams, and the argument errors. Uses the mock endpoint. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

typedef struct {
    atomic_int chunks;
    atomic_int terminals;
    atomic_int after_terminal;   /* calls after the terminal one: must stay 0 */
    atomic_int out_of_order;
    atomic_int on_host_thread;
    int cancel_at;               /* cancel from inside the callback at this chunk (-1: never) */
    int free_at;                 /* free from inside the callback at this chunk (-1: never; -2: at the terminal) */
    atomic_int last_status;
    pthread_t host;
} watch_t;

static void on_event(dynamo_stream_t* s, dynamo_status_t st, const dynamo_chunk_t* chunk, void* user) {
    watch_t* w = user;
    if (pthread_equal(pthread_self(), w->host)) atomic_fetch_add(&w->on_host_thread, 1);
    if (atomic_load(&w->terminals)) atomic_fetch_add(&w->after_terminal, 1);
    if (st == DYNAMO_OK) {
        CHECK(chunk != NULL && chunk->json != NULL);
        int seen = atomic_fetch_add(&w->chunks, 1);
        if (json_int(chunk->json, "index") != seen) atomic_fetch_add(&w->out_of_order, 1);
        if (seen == w->cancel_at) CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_OK);
        if (seen == w->free_at) CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
        return;
    }
    CHECK(chunk == NULL);
    atomic_store(&w->last_status, st);
    if (w->free_at == -2) CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    atomic_fetch_add(&w->terminals, 1); /* the last touch of w: the host may reuse it once it sees this */
}

static void wait_until(atomic_int* value, int want) {
    for (int i = 0; i < 3000 && atomic_load(value) < want; i++) usleep(10000);
    CHECK(atomic_load(value) >= want);
}

static dynamo_stream_t* start(dynamo_runtime_t* rt, int n, int interval_us) {
    char request[128];
    snprintf(request, sizeof request, "{\"n\": %d, \"interval_us\": %d}", n, interval_us);
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, request, &s), DYNAMO_OK);
    return s;
}

static void watch_init(watch_t* w, int cancel_at, int free_at) {
    memset(w, 0, sizeof *w);
    w->cancel_at = cancel_at;
    w->free_at = free_at;
    w->host = pthread_self();
}

/* A watch of its own per stream: a callback may still be reading its watch after the count the host
 * waited for (e.g. after a chunk it freed the stream on). */
static watch_t* fresh(int cancel_at, int free_at) {
    static watch_t pool[16];
    static int used;
    CHECK(used < 16);
    watch_t* w = &pool[used++];
    watch_init(w, cancel_at, free_at);
    return w;
}

int main(void) {
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);

    /* every chunk in order, then END once, on a library thread; freed at the terminal call */
    watch_t* w = fresh(-1, -2);
    dynamo_stream_t* s = start(rt, 50, 100);
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_ERR_INVALID_ARGUMENT);
    wait_until(&w->terminals, 1);
    usleep(50000);
    CHECK(w->chunks == 50 && w->terminals == 1 && w->last_status == DYNAMO_END && w->out_of_order == 0);
    CHECK(w->on_host_thread == 0 && w->after_terminal == 0);

    /* cancel from inside the callback: the terminal call is CANCELLED, nothing after it */
    w = fresh(3, -1);
    s = start(rt, 100000, 1000);
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_OK);
    wait_until(&w->terminals, 1);
    usleep(50000);
    CHECK(w->last_status == DYNAMO_ERR_CANCELLED && w->terminals == 1 && w->after_terminal == 0 && w->chunks >= 4);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);

    /* free from inside the callback: nothing more is delivered, not even a terminal call */
    w = fresh(-1, 5);
    s = start(rt, 100000, 1000);
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_OK);
    wait_until(&w->chunks, 6);
    usleep(200000);
    CHECK(w->chunks == 6 && w->terminals == 0);

    /* cancelled from the host's thread while streaming */
    w = fresh(-1, -1);
    s = start(rt, 100000, 1000);
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_OK);
    wait_until(&w->chunks, 2);
    CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_OK);
    wait_until(&w->terminals, 1);
    CHECK(w->last_status == DYNAMO_ERR_CANCELLED);
    usleep(20000);
    CHECK(w->terminals == 1 && w->after_terminal == 0);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);

    /* a stream that ended before its callback was set still delivers everything */
    w = fresh(-1, -2);
    s = start(rt, 5, 0);
    dynamo_chunk_t c;
    int fd = dynamo_stream_fd(s);
    CHECK(fd >= 0);
    for (int i = 0; i < 300; i++) { usleep(10000); } /* 3 s: the mock's 5 chunks are long done */
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_OK);
    wait_until(&w->terminals, 1);
    CHECK(w->chunks == 5 && w->last_status == DYNAMO_END);
    (void)c;

    /* 200 concurrent streams, half cancelled by the host mid-way: each ends exactly once */
    enum { N = 200 };
    static watch_t many[N];
    dynamo_stream_t* streams[N];
    for (int i = 0; i < N; i++) {
        watch_init(&many[i], -1, -1);
        streams[i] = start(rt, i % 2 ? 100000 : 20, 200);
        CHECK_STATUS(dynamo_stream_set_callback(streams[i], on_event, &many[i]), DYNAMO_OK);
    }
    usleep(100000);
    for (int i = 1; i < N; i += 2) CHECK_STATUS(dynamo_stream_cancel(streams[i]), DYNAMO_OK);
    for (int i = 0; i < N; i++) {
        wait_until(&many[i].terminals, 1);
        CHECK(many[i].out_of_order == 0 && many[i].on_host_thread == 0);
        CHECK(many[i].last_status == (i % 2 ? DYNAMO_ERR_CANCELLED : DYNAMO_END));
        if (i % 2 == 0) CHECK(many[i].chunks == 20);
    }
    usleep(50000);
    for (int i = 0; i < N; i++) {
        CHECK(many[i].terminals == 1 && many[i].after_terminal == 0);
        CHECK_STATUS(dynamo_stream_free(streams[i]), DYNAMO_OK);
    }

    /* argument errors */
    s = start(rt, 1, 0);
    CHECK_STATUS(dynamo_stream_set_callback(s, NULL, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_stream_set_callback(NULL, on_event, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_ERR_INVALID_HANDLE);

    /* a runtime destroyed under live callback streams: each gets DYNAMO_ERR_SHUTDOWN once */
    w = fresh(-1, -1);
    s = start(rt, 100000, 1000);
    CHECK_STATUS(dynamo_stream_set_callback(s, on_event, w), DYNAMO_OK);
    wait_until(&w->chunks, 1);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    wait_until(&w->terminals, 1);
    CHECK(w->last_status == DYNAMO_ERR_SHUTDOWN);
    usleep(20000);
    CHECK(w->terminals == 1);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    puts("ok");
    return 0;
}
