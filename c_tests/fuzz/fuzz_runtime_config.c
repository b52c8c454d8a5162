/* libFuzzer target: dynamo_runtime_create(config_json) as C runs it before Python (NULs end the
 * string, the 1 MiB limit, UTF-8, JSON well-formedness) with the Python side stubbed: an accepted
 * config gives a runtime that destroys cleanly; a refused one gives DYNAMO_ERR_INVALID_ARGUMENT with
 * a message and no handle. The Python side's reading of the keys is not covered here
 * (tests/capi and test_bad_input cover it). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    char* config = fuzz_string(data, size);
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = dynamo_runtime_create(config, &rt);
    if (st == DYNAMO_OK) {
        FUZZ_CHECK(rt != NULL && dyn_json_valid_object(config, strlen(config)));
        FUZZ_CHECK(dynamo_runtime_destroy(rt) == DYNAMO_OK);
    } else {
        FUZZ_CHECK(st == DYNAMO_ERR_INVALID_ARGUMENT && rt == NULL && dynamo_last_error()[0] != '\0');
    }
    free(config);
    return 0;
}
