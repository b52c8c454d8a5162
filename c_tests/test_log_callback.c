/* dynamo_set_log_callback / dynamo_set_log_level: set before the interpreter starts, the library's log
 * records reach the callback (not stderr) at the chosen level, on any thread; removing the callback
 * stops the calls once it returns; bad use of the stream API still reports through statuses. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "test_util.h"

static atomic_int calls, below_level, debug_seen, asyncio_seen;
static atomic_int min_level = DYNAMO_LOG_DEBUG;

static void on_log(int32_t level, const char* logger, const char* message, void* user) {
    CHECK(user == (void*)&calls && logger != NULL && message != NULL);
    atomic_fetch_add(&calls, 1);
    if (level < atomic_load(&min_level)) atomic_fetch_add(&below_level, 1);
    if (level == DYNAMO_LOG_DEBUG) atomic_fetch_add(&debug_seen, 1);
    if (strcmp(logger, "asyncio") == 0) atomic_fetch_add(&asyncio_seen, 1);
}

int main(void) {
    CHECK_STATUS(dynamo_set_log_level(DYNAMO_LOG_DEBUG), DYNAMO_OK);
    CHECK_STATUS(dynamo_set_log_callback(on_log, &calls), DYNAMO_OK);
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    /* the loop thread's start logs at DEBUG ("Using selector: ...", logger asyncio) */
    CHECK(atomic_load(&calls) > 0 && atomic_load(&debug_seen) > 0 && atomic_load(&asyncio_seen) > 0);

    /* a higher level: nothing below it arrives */
    atomic_store(&min_level, DYNAMO_LOG_ERROR);
    CHECK_STATUS(dynamo_set_log_level(DYNAMO_LOG_ERROR), DYNAMO_OK);
    dynamo_runtime_t* rt2 = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt2), DYNAMO_OK);
    dynamo_stream_t* s = NULL;
    int chunks = 0;
    CHECK_STATUS(dynamo_generate(rt2, MOCK_ENDPOINT, "{\"n\": 3}", &s), DYNAMO_OK);
    CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt2), DYNAMO_OK);
    CHECK(atomic_load(&below_level) == 0);

    /* removed: once the call returns, the callback is never called again */
    CHECK_STATUS(dynamo_set_log_level(DYNAMO_LOG_DEBUG), DYNAMO_OK);
    CHECK_STATUS(dynamo_set_log_callback(NULL, NULL), DYNAMO_OK);
    int frozen = atomic_load(&calls);
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt2), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt2), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    usleep(100000);
    CHECK(atomic_load(&calls) == frozen);
    /* and set again on a running interpreter (what it routes then: tests/capi/test_log_bridge.py) */
    CHECK_STATUS(dynamo_set_log_callback(on_log, &calls), DYNAMO_OK);
    CHECK_STATUS(dynamo_set_log_callback(NULL, NULL), DYNAMO_OK);
    puts("ok");
    return 0;
}
