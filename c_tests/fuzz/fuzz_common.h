/* Shared by the libFuzzer targets: the fuzz input as a NUL-terminated string, and one stub runtime
 * (c_tests/python_stub.c stands in for Python, so each input costs microseconds). */
#ifndef DYN_FUZZ_COMMON_H
#define DYN_FUZZ_COMMON_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dyn_internal.h"

#define FUZZ_CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* data[0, size) as a fresh NUL-terminated copy (an embedded NUL ends the string, as in C). */
static inline char* fuzz_string(const uint8_t* data, size_t size) {
    char* s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static inline dynamo_runtime_t* fuzz_runtime(void) {
    static dynamo_runtime_t* rt;
    if (!rt) FUZZ_CHECK(dynamo_runtime_create("{}", &rt) == DYNAMO_OK);
    return rt;
}

/* Take the submission a dynamo_chat_completion/dynamo_generate queued for the loop thread and check
 * it carries the request unchanged; the stream is freed. */
static inline void fuzz_take_submission(dynamo_stream_t* s, const char* request, const char* endpoint) {
    dyn_event_t* ev = dyn_next_event();
    FUZZ_CHECK(ev != NULL && ev->stream == (uint64_t)(uintptr_t)s);
    FUZZ_CHECK(ev->request_len == strlen(request) && memcmp(ev->request, request, ev->request_len + 1) == 0);
    FUZZ_CHECK(endpoint ? ev->endpoint && strcmp(ev->endpoint, endpoint) == 0 : ev->endpoint == NULL);
    dyn_event_release(ev);
    FUZZ_CHECK(dynamo_stream_free(s) == DYNAMO_OK);
    while ((ev = dyn_next_event())) dyn_event_release(ev); /* the free's cancel */
}
#endif
