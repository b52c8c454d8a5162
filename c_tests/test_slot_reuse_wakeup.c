/* Issue 9 item 2: a poller waiting on a stream that is freed returns DYNAMO_ERR_INVALID_HANDLE,
 * and a new stream that reuses the freed slot before that poller woke still wakes its own
 * poller (poll(-1) gets every chunk, never hangs). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

enum { ROUNDS = 20, CHUNKS = 3 };
static dynamo_runtime_t* rt;

typedef struct { dynamo_stream_t* s; dynamo_status_t last; int chunks; } poll_arg;

static void* poll_to_end(void* p) {
    poll_arg* a = p;
    dynamo_chunk_t c;
    while ((a->last = dynamo_stream_poll(a->s, -1, &c)) == DYNAMO_OK) a->chunks++;
    return NULL;
}

/* Join t within seconds, or fail the test (a poller that never wakes). */
static void join_within(pthread_t t, int seconds, const char* what) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    int rc = pthread_timedjoin_np(t, NULL, &deadline);
    if (rc == ETIMEDOUT) {
        fprintf(stderr, "%s: poll(-1) still waiting after %d s (no wake-up)\n", what, seconds);
        _exit(1);
    }
    CHECK(rc == 0);
}

int main(void) {
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    for (int round = 0; round < ROUNDS; round++) {
        dynamo_stream_t* old = NULL;
        /* its first chunk comes in 60 s: the poller below waits on the condition variable */
        CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 1, \"interval_us\": 60000000}", &old), DYNAMO_OK);
        poll_arg waiting = {old, DYNAMO_OK, 0};
        pthread_t t_old;
        CHECK(pthread_create(&t_old, NULL, poll_to_end, &waiting) == 0);
        struct timespec settle = {0, 30000000};
        nanosleep(&settle, NULL);
        /* free, then at once a new stream: it takes the freed slot before the old poller wakes */
        CHECK_STATUS(dynamo_stream_free(old), DYNAMO_OK);
        dynamo_stream_t* next = NULL;
        char request[64];
        snprintf(request, sizeof request, "{\"n\": %d, \"interval_us\": 20000}", CHUNKS);
        CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, request, &next), DYNAMO_OK);
        join_within(t_old, 10, "the poller of the freed stream");
        CHECK_STATUS(waiting.last, DYNAMO_ERR_INVALID_HANDLE);

        poll_arg fresh = {next, DYNAMO_OK, 0};
        pthread_t t_next;
        CHECK(pthread_create(&t_next, NULL, poll_to_end, &fresh) == 0);
        join_within(t_next, 10, "the poller of the stream that reused the slot");
        CHECK_STATUS(fresh.last, DYNAMO_END);
        CHECK(fresh.chunks == CHUNKS);
        CHECK_STATUS(dynamo_stream_free(next), DYNAMO_OK);
    }
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
