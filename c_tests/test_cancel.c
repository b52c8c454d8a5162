/* Cancel mid-stream: the poller sees DYNAMO_ERR_CANCELLED and the engine aborts the request
 * and frees its KV blocks (read through dynamo_runtime_stats_json). */
#include <time.h>

#include "test_util.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    char* config = tiny_model_config(argv[1], "torch");
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    free(config);
    const char* request =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story\"}], \"max_tokens\": 2000,"
        " \"ignore_eos\": true}";
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_chat_completion(rt, request, &s), DYNAMO_OK);
    dynamo_chunk_t c;
    for (int i = 0; i < 3; i++) CHECK_STATUS(dynamo_stream_poll(s, 60000, &c), DYNAMO_OK);

    const char* stats = NULL;
    CHECK_STATUS(dynamo_runtime_stats_json(rt, &stats), DYNAMO_OK);
    CHECK(json_int(stats, "num_running") == 1);
    CHECK(json_int(stats, "kv_blocks_used") > 0);

    CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_OK); /* idempotent */
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_CANCELLED);
    CHECK_STATUS(dynamo_stream_poll(s, -1, &c), DYNAMO_ERR_CANCELLED); /* sticky */

    /* The abort reaches the engine asynchronously: wait (bounded) until it has freed the blocks. */
    int freed = 0;
    for (int i = 0; i < 1000 && !freed; i++) {
        CHECK_STATUS(dynamo_runtime_stats_json(rt, &stats), DYNAMO_OK);
        freed = json_int(stats, "num_running") == 0 && json_int(stats, "kv_blocks_used") == 0 &&
                json_int(stats, "abort_count") == 1 && json_int(stats, "live_streams") == 0;
        if (!freed) sleep_ms(10);
    }
    if (!freed) fprintf(stderr, "stats: %s\n", stats);
    CHECK(freed);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
