/* Create and destroy a runtime 100 times (a stream on each), plus NULL no-ops. */
#include "test_util.h"

int main(int argc, char** argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    CHECK_STATUS(dynamo_runtime_destroy(NULL), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_free(NULL), DYNAMO_OK);
    for (int i = 0; i < rounds; i++) {
        dynamo_runtime_t* rt = NULL;
        CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
        dynamo_stream_t* s = NULL;
        CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 3}", &s), DYNAMO_OK);
        int chunks;
        CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
        CHECK(chunks == 3);
        CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
        CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
        CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_ERR_INVALID_HANDLE);
    }
    puts("ok");
    return 0;
}
