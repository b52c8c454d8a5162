/* libFuzzer target: dynamo_responses_create(rt, request_json) on a stub runtime, its loop thread played here.
 * C's checks are those of dynamo_chat_completion (NULs end the string, 8 MiB, UTF-8, JSON object): a refused
 * request gives DYNAMO_ERR_INVALID_ARGUMENT with a message, no handle, and nothing queued. An accepted one is
 * queued byte for byte, and the call waits until the player answers it, by the input's length: with an event
 * (the call returns the stream, which polls that event, then DYNAMO_END), with an error before any event
 * (the call returns that status and message, no handle: the stream is gone), or with an end and no event
 * (DYNAMO_ERR_INTERNAL). The runtime's own validation of a Responses body (Python) is not covered here. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "fuzz_common.h"

enum { ANSWER_EVENT, ANSWER_ERROR, ANSWER_EMPTY };
static const char EVENT[] = "{\"type\":\"response.created\",\"sequence_number\":0}";
static const char NOT_FOUND[] = "Response with id 'resp_1' not found.";

typedef struct {
    const char* request;
    int answer;
    atomic_int stop, answered;
} player_t;

/* The loop thread: answers the one submission as told, drains the rest (the cancel of a freed stream). */
static void* play(void* arg) {
    player_t* p = arg;
    for (;;) {
        dyn_event_t* ev = dyn_next_event();
        if (!ev) {
            if (atomic_load(&p->stop)) return NULL;
            sched_yield();
            continue;
        }
        if (ev->kind == DYN_EV_RESPONSES) {
            FUZZ_CHECK(ev->request_len == strlen(p->request) && memcmp(ev->request, p->request, ev->request_len + 1) == 0);
            FUZZ_CHECK(ev->endpoint == NULL && !atomic_load(&p->answered));
            if (p->answer == ANSWER_EVENT) {
                int32_t meta[DYN_CHUNK_META] = {(int32_t)strlen(EVENT), -1, 0, DYNAMO_FINISH_NONE, 0};
                FUZZ_CHECK(dyn_stream_push_batch(ev->stream, 1, EVENT, NULL, meta, NULL) == 0);
                dyn_stream_finish(ev->stream, DYNAMO_OK, "");
            } else {
                dyn_stream_finish(ev->stream, p->answer == ANSWER_ERROR ? DYNAMO_ERR_NOT_FOUND : DYNAMO_OK,
                                  p->answer == ANSWER_ERROR ? NOT_FOUND : "");
            }
            atomic_store(&p->answered, 1);
        }
        dyn_event_release(ev);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    char* request = fuzz_string(data, size);
    player_t p = {.request = request, .answer = (int)(size % 3)};
    atomic_init(&p.stop, 0);
    atomic_init(&p.answered, 0);
    pthread_t thread;
    FUZZ_CHECK(pthread_create(&thread, NULL, play, &p) == 0);
    dynamo_stream_t* s = NULL;
    dynamo_status_t st = dynamo_responses_create(fuzz_runtime(), request, &s);
    atomic_store(&p.stop, 1);
    pthread_join(thread, NULL);
    dyn_event_t* ev;
    while ((ev = dyn_next_event())) dyn_event_release(ev);
    int valid = dyn_utf8_valid(request, strlen(request)) && dyn_json_valid_object(request, strlen(request));
    if (!valid) {
        FUZZ_CHECK(st == DYNAMO_ERR_INVALID_ARGUMENT && s == NULL && dynamo_last_error()[0] != '\0');
        FUZZ_CHECK(!atomic_load(&p.answered));
    } else if (p.answer == ANSWER_EVENT) {
        FUZZ_CHECK(st == DYNAMO_OK && s != NULL && atomic_load(&p.answered));
        dynamo_chunk_t c;
        FUZZ_CHECK(dynamo_stream_poll(s, 0, &c) == DYNAMO_OK && strcmp(c.json, EVENT) == 0 && c.text == NULL);
        FUZZ_CHECK(dynamo_stream_poll(s, 0, &c) == DYNAMO_END);
        FUZZ_CHECK(dynamo_stream_free(s) == DYNAMO_OK);
    } else if (p.answer == ANSWER_ERROR) {
        FUZZ_CHECK(st == DYNAMO_ERR_NOT_FOUND && s == NULL && strcmp(dynamo_last_error(), NOT_FOUND) == 0);
    } else {
        FUZZ_CHECK(st == DYNAMO_ERR_INTERNAL && s == NULL && dynamo_last_error()[0] != '\0');
    }
    free(request);
    return 0;
}
