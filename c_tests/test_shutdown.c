/* Destroying a runtime ends its live streams with DYNAMO_ERR_SHUTDOWN; a new runtime works afterwards. */
#include "test_util.h"

int main(void) {
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    dynamo_stream_t* s[4];
    dynamo_chunk_t c;
    for (int i = 0; i < 4; i++)
        CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 1000000, \"interval_us\": 1000}", &s[i]), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_poll(s[0], 30000, &c), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    for (int i = 0; i < 4; i++) {
        dynamo_status_t st;
        while ((st = dynamo_stream_poll(s[i], 30000, &c)) == DYNAMO_OK) {}
        CHECK_STATUS(st, DYNAMO_ERR_SHUTDOWN);
        CHECK_STATUS(dynamo_stream_poll(s[i], 0, &c), DYNAMO_ERR_SHUTDOWN);
        CHECK_STATUS(dynamo_stream_free(s[i]), DYNAMO_OK);
    }
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    dynamo_stream_t* t = NULL;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 5}", &t), DYNAMO_OK);
    int chunks;
    CHECK_STATUS(drain(t, &chunks), DYNAMO_END);
    CHECK(chunks == 5);
    CHECK_STATUS(dynamo_stream_free(t), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
