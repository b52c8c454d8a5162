/* dynamo_responses_create: an OpenAI Responses request queued like a chat request (DYN_EV_RESPONSES; the
 * Python side is pyimpl/capi/session.py's RuntimeSession.responses), then waited for until the response has
 * started (its first event is queued) or failed before generation. Why wait: POST /v1/responses answers a
 * bad request, an unknown model or previous_response_id with an HTTP error before any event, and the C call
 * gives the same errors as its own status instead of a stream that fails on its first poll. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stream_slot.h"

#define START_WAIT_S 600 /* as dynamo_chat_completion_sync: a response that has not started by then is given up */

/* Wait until the live stream h has a chunk queued or has ended. DYNAMO_OK: it started (chunks follow);
 * else the status it ended with before its first event, its message in *message (malloc'd, may be NULL). */
static dynamo_status_t wait_started(uint64_t h, char** message) {
    stream_slot* s = dyn_stream_lock(h);
    if (!s) return DYNAMO_ERR_INVALID_HANDLE; /* freed meanwhile through a forged copy of the handle */
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += START_WAIT_S;
    dynamo_status_t st = DYNAMO_OK;
    while (!s->head && !s->ended) {
        s->waiters++;
        int rc = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
        s->waiters--;
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) != h) { pthread_mutex_unlock(&s->mu); return DYNAMO_ERR_INVALID_HANDLE; }
        if (rc == ETIMEDOUT && !s->head && !s->ended) {
            *message = strdup("the response did not start within 600 seconds");
            st = DYNAMO_ERR_UNAVAILABLE;
            break;
        }
    }
    if (st == DYNAMO_OK && !s->head) { /* ended before its first event: the error POST would answer */
        st = s->end_status == DYNAMO_END ? DYNAMO_ERR_INTERNAL : s->end_status;
        *message = strdup(s->end_message ? s->end_message
                          : st == DYNAMO_ERR_INTERNAL ? "the response ended without an event" : dynamo_status_str(st));
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

dynamo_status_t dynamo_responses_create(dynamo_runtime_t* rt, const char* request_json, dynamo_stream_t** out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    dynamo_stream_t* stream = NULL;
    dynamo_status_t st = dyn_submit(rt, DYN_EV_RESPONSES, NULL, request_json, &stream);
    if (st != DYNAMO_OK) return st;
    char* message = NULL;
    st = wait_started((uint64_t)(uintptr_t)stream, &message);
    if (st == DYNAMO_OK) {
        *out = stream;
        return DYNAMO_OK;
    }
    dynamo_stream_free(stream); /* cancels it on the Python side if it still runs (the timeout) */
    st = dyn_fail(st, "%s", message ? message : "the stream was freed before the response started");
    free(message);
    return st;
}
