/* Freed, double-freed, forged and wrong-kind handles give DYNAMO_ERR_INVALID_HANDLE, never a crash. */
#include "test_util.h"

int main(void) {
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    dynamo_stream_t* s = NULL;
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 100000, \"interval_us\": 1000}", &s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK); /* frees a running stream: cancels it */

    /* freed and double-freed */
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_stream_poll(s, -1, &c), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_ERR_INVALID_HANDLE);
    CHECK(dynamo_stream_fd(s) == -1);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_ERR_INVALID_HANDLE);

    /* a new stream reuses the slot: the stale handle still does not match */
    dynamo_stream_t* s2 = NULL;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 2}", &s2), DYNAMO_OK);
    CHECK(s2 != s);
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_INVALID_HANDLE);
    int chunks;
    CHECK_STATUS(drain(s2, &chunks), DYNAMO_END);
    CHECK(chunks == 2);

    /* forged values and a handle of the wrong kind */
    uintptr_t forged[] = {1, 0xdeadbeef, 0xdeadbeef0, (uintptr_t)-1, (uintptr_t)&c, (uintptr_t)s2 + 16,
                          (uintptr_t)s2 ^ ((uintptr_t)1 << 40), (uintptr_t)rt};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        dynamo_stream_t* f = (dynamo_stream_t*)forged[i];
        CHECK_STATUS(dynamo_stream_poll(f, 0, &c), DYNAMO_ERR_INVALID_HANDLE);
        CHECK_STATUS(dynamo_stream_cancel(f), DYNAMO_ERR_INVALID_HANDLE);
        CHECK_STATUS(dynamo_stream_free(f), DYNAMO_ERR_INVALID_HANDLE);
        CHECK(dynamo_stream_fd(f) == -1);
        dynamo_runtime_t* r = (dynamo_runtime_t*)(forged[i] == (uintptr_t)rt ? (uintptr_t)s2 : forged[i]);
        CHECK_STATUS(dynamo_generate(r, MOCK_ENDPOINT, "{}", &s), DYNAMO_ERR_INVALID_HANDLE);
        CHECK_STATUS(dynamo_runtime_destroy(r), DYNAMO_ERR_INVALID_HANDLE);
        const char* stats;
        CHECK_STATUS(dynamo_runtime_stats_json(r, &stats), DYNAMO_ERR_INVALID_HANDLE);
    }
    CHECK_STATUS(dynamo_stream_free(s2), DYNAMO_OK);

    /* a destroyed runtime */
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{}", &s), DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_ERR_INVALID_HANDLE);
    puts("ok");
    return 0;
}
