/* Issue 9 item 1: dynamo_stream_free on one thread while another polls the same stream with
 * timeout 0 (and with a wait): the poller gets chunks, DYNAMO_TIMEOUT, DYNAMO_END or, once the
 * free has happened, DYNAMO_ERR_INVALID_HANDLE; never a crash or a double free. */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "test_util.h"

enum { ROUNDS = 300 };
static dynamo_runtime_t* rt;

typedef struct {
    dynamo_stream_t* s;
    int32_t timeout_ms;
    _Atomic int started;
    long chunks;
} poller_arg;

static void* poller(void* p) {
    poller_arg* a = p;
    dynamo_chunk_t c;
    a->started = 1;
    for (;;) {
        dynamo_status_t st = dynamo_stream_poll(a->s, a->timeout_ms, &c);
        if (st == DYNAMO_ERR_INVALID_HANDLE) return NULL; /* the free happened: the only way out */
        if (st == DYNAMO_OK) { a->chunks++; continue; }
        if (st != DYNAMO_TIMEOUT && st != DYNAMO_END) {
            fprintf(stderr, "poll racing a free returned %s: %s\n", dynamo_status_str(st), dynamo_last_error());
            exit(1);
        }
    }
}

static void race(int round) {
    dynamo_stream_t* s = NULL;
    /* a mock stream that is mid-flight when freed: many chunks in bursts */
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 100000}", &s), DYNAMO_OK);
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), DYNAMO_OK);
    poller_arg a = {s, round % 4 == 3 ? 5 : 0, 0, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, poller, &a) == 0);
    while (!a.started) sched_yield();
    struct timespec pause = {0, (round % 7) * 50000L}; /* free at varied points of the poller's loop */
    nanosleep(&pause, NULL);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    pthread_join(t, NULL);
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_INVALID_HANDLE);
}

int main(void) {
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    for (int i = 0; i < ROUNDS; i++) race(i);
    /* the library is still sound: a fresh stream runs to its end */
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 5}", &s), DYNAMO_OK);
    int chunks;
    CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
    CHECK(chunks == 5);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
