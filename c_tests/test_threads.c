/* 16 host threads x 50 streams open at once: every stream complete and in order. */
#include <pthread.h>

#include "test_util.h"

enum { THREADS = 16, STREAMS = 50, CHUNKS = 20 };
static dynamo_runtime_t* rt;

static void* worker(void* arg) {
    (void)arg;
    dynamo_stream_t* streams[STREAMS];
    int next[STREAMS] = {0}, done = 0;
    char request[64];
    snprintf(request, sizeof request, "{\"n\": %d}", CHUNKS);
    for (int i = 0; i < STREAMS; i++) CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, request, &streams[i]), DYNAMO_OK);
    while (done < STREAMS) {
        for (int i = 0; i < STREAMS; i++) {
            if (!streams[i]) continue;
            dynamo_chunk_t c;
            dynamo_status_t st;
            while ((st = dynamo_stream_poll(streams[i], 0, &c)) == DYNAMO_OK) {
                CHECK(json_int(c.json, "index") == next[i]);
                CHECK(c.num_token_ids == 1 && c.token_ids[0] == (uint32_t)next[i]);
                next[i]++;
            }
            if (st == DYNAMO_TIMEOUT) continue;
            CHECK_STATUS(st, DYNAMO_END);
            CHECK(next[i] == CHUNKS);
            CHECK_STATUS(dynamo_stream_free(streams[i]), DYNAMO_OK);
            streams[i] = NULL;
            done++;
        }
        /* wait on one unfinished stream rather than spinning */
        for (int i = 0; i < STREAMS; i++)
            if (streams[i]) {
                dynamo_chunk_t c;
                dynamo_status_t st = dynamo_stream_poll(streams[i], 1000, &c);
                if (st == DYNAMO_OK) { CHECK(json_int(c.json, "index") == next[i]); next[i]++; }
                break;
            }
    }
    return NULL;
}

int main(void) {
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, worker, NULL) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
