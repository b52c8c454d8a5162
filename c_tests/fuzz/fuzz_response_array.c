/* libFuzzer target: the hand-over of endpoint responses, Python -> C (dyn_stream_push_json_array,
 * then the poller splitting the array in capi/src/chunk_scan.c and stream_queue.c). Any bytes: the push
 * refuses what is not an array (-2) or the stream polls chunks until DYNAMO_END, or an
 * INTERNAL error for a malformed element; every chunk's json is NUL-terminated at json_len and lies
 * inside the pushed bytes' copy, its token ids are what the element says. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    dynamo_stream_t* s = NULL;
    FUZZ_CHECK(dynamo_generate(fuzz_runtime(), "fuzz.array.push", "{}", &s) == DYNAMO_OK);
    dyn_event_t* ev = dyn_next_event();
    FUZZ_CHECK(ev != NULL);
    uint64_t h = ev->stream;
    dyn_event_release(ev);
    int rc = dyn_stream_push_json_array(h, (const char*)data, size);
    FUZZ_CHECK(rc == 0 || rc == -2);
    dyn_stream_finish(h, DYNAMO_OK, "");
    dynamo_chunk_t c;
    dynamo_status_t st;
    while ((st = dynamo_stream_poll(s, 0, &c)) == DYNAMO_OK) {
        FUZZ_CHECK(c.json != NULL && c.json_len > 0 && c.json_len <= size && c.json[c.json_len] == '\0');
        FUZZ_CHECK(c.text == NULL && (c.num_token_ids == 0) == (c.token_ids == NULL) && c.choice_index == 0);
        uint64_t sum = 0;
        for (size_t i = 0; i < c.num_token_ids; i++) sum += c.token_ids[i]; /* readable (ASan) */
        (void)sum;
    }
    FUZZ_CHECK(st == DYNAMO_END || st == DYNAMO_ERR_INTERNAL);
    FUZZ_CHECK(dynamo_stream_free(s) == DYNAMO_OK);
    while ((ev = dyn_next_event())) dyn_event_release(ev);
    return 0;
}
