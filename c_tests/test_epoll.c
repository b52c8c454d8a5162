/* One thread, epoll over the fds of 200 streams: every stream delivered completely and in order. */
#include <sys/epoll.h>

#include "test_util.h"

enum { STREAMS = 200, CHUNKS = 10 };

int main(void) {
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    int ep = epoll_create1(0);
    CHECK(ep >= 0);
    dynamo_stream_t* streams[STREAMS];
    int next[STREAMS] = {0};
    for (int i = 0; i < STREAMS; i++) {
        char request[64];
        snprintf(request, sizeof request, "{\"n\": %d, \"interval_us\": %d}", CHUNKS, 100 * (i % 7));
        CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, request, &streams[i]), DYNAMO_OK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, dynamo_stream_fd(streams[i]), &ev) == 0);
    }
    int done = 0, wakeups = 0;
    while (done < STREAMS) {
        struct epoll_event events[64];
        int n = epoll_wait(ep, events, 64, 30000);
        CHECK(n > 0);
        wakeups++;
        for (int k = 0; k < n; k++) {
            int i = (int)events[k].data.u32;
            dynamo_chunk_t c;
            dynamo_status_t st;
            while ((st = dynamo_stream_poll(streams[i], 0, &c)) == DYNAMO_OK) {
                CHECK(json_int(c.json, "index") == next[i]);
                next[i]++;
            }
            if (st == DYNAMO_TIMEOUT) continue; /* level-triggered: the fd is quiet again */
            CHECK_STATUS(st, DYNAMO_END);
            CHECK(next[i] == CHUNKS);
            CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, dynamo_stream_fd(streams[i]), NULL) == 0);
            CHECK_STATUS(dynamo_stream_free(streams[i]), DYNAMO_OK);
            done++;
        }
    }
    printf("ok (%d wakeups)\n", wakeups);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    return 0;
}
