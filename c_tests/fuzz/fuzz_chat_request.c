/* libFuzzer target: dynamo_chat_completion(rt, request_json) on a stub runtime: C's checks (NULs end
 * the string, 8 MiB limit, UTF-8, JSON object) and the submission queue. An accepted request is
 * queued for the loop thread byte for byte and its stream frees cleanly; a refused one gives
 * DYNAMO_ERR_INVALID_ARGUMENT with a message and no handle. The runtime's own request validation
 * (Python) is not covered here. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    char* request = fuzz_string(data, size);
    dynamo_stream_t* s = NULL;
    dynamo_status_t st = dynamo_chat_completion(fuzz_runtime(), request, &s);
    if (st == DYNAMO_OK) {
        FUZZ_CHECK(dyn_utf8_valid(request, strlen(request)) && dyn_json_valid_object(request, strlen(request)));
        fuzz_take_submission(s, request, NULL);
    } else {
        FUZZ_CHECK(st == DYNAMO_ERR_INVALID_ARGUMENT && s == NULL && dynamo_last_error()[0] != '\0');
    }
    free(request);
    return 0;
}
