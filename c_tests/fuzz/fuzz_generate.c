/* libFuzzer target: dynamo_generate(rt, endpoint_path, request_json) on a stub runtime. The input's
 * first line is the endpoint path, the rest the request. Covers C's checks of both (path 1..1024
 * bytes of UTF-8; request as dynamo_chat_completion) and the queued submission (both strings byte
 * for byte). Endpoint resolution and the handler (Python) are not covered here. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const uint8_t* nl = memchr(data, '\n', size);
    size_t path_len = nl ? (size_t)(nl - data) : size;
    char* path = fuzz_string(data, path_len);
    char* request = nl ? fuzz_string(nl + 1, size - path_len - 1) : fuzz_string((const uint8_t*)"{}", 2);
    dynamo_stream_t* s = NULL;
    dynamo_status_t st = dynamo_generate(fuzz_runtime(), path, request, &s);
    if (st == DYNAMO_OK) {
        size_t n = strlen(path);
        FUZZ_CHECK(n >= 1 && n <= 1024 && dyn_utf8_valid(path, n));
        FUZZ_CHECK(dyn_json_valid_object(request, strlen(request)));
        fuzz_take_submission(s, request, path);
    } else {
        FUZZ_CHECK(st == DYNAMO_ERR_INVALID_ARGUMENT && s == NULL && dynamo_last_error()[0] != '\0');
    }
    free(path);
    free(request);
    return 0;
}
