/* callback_stream: a chat reply delivered by callback instead of polling. The callback runs on a library
 * thread, once per chunk, then once with the terminal status; the host thread only waits for the end
 * (here on a condition variable; a GUI would post to its own loop instead).
 *   usage: callback_stream ["prompt"] [stop_after_chunks]
 * stop_after_chunks > 0 cancels from inside the callback after that many chunks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamo_llm.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int chunks;
    int stop_after;
    dynamo_status_t status;
} reply_t;

static void on_chunk(dynamo_stream_t* stream, dynamo_status_t status, const dynamo_chunk_t* chunk, void* user) {
    reply_t* r = user;
    if (status == DYNAMO_OK) {           /* chunk's pointers are valid during this call only */
        if (chunk->text) fwrite(chunk->text, 1, chunk->text_len, stdout);
        fflush(stdout);
        if (++r->chunks == r->stop_after) dynamo_stream_cancel(stream); /* allowed inside the callback */
        return;
    }
    pthread_mutex_lock(&r->mu);          /* the terminal call: exactly once, nothing after it */
    r->status = status;
    r->done = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int main(int argc, char** argv) {
    const char* prompt = argc > 1 ? argv[1] : "Tell me a short story.";
    reply_t r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, argc > 2 ? atoi(argv[2]) : 0, DYNAMO_OK};
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = dynamo_runtime_create(getenv("DYNAMO_LLM_CONFIG"), &rt);
    if (st != DYNAMO_OK) { fprintf(stderr, "create: %s\n", dynamo_last_error()); return 1; }

    dynamo_sampling_params_t params = dynamo_sampling_params_default();
    params.max_tokens = 48;
    params.temperature = 0.7f;
    char request[2048];
    snprintf(request, sizeof request, "{\"messages\": [{\"role\": \"user\", \"content\": \"%s\"}]}", prompt);
    char* with_params = NULL;
    dynamo_stream_t* s = NULL;
    if ((st = dynamo_sampling_params_apply(&params, request, &with_params)) != DYNAMO_OK ||
        (st = dynamo_chat_completion(rt, with_params, &s)) != DYNAMO_OK ||
        (st = dynamo_stream_set_callback(s, on_chunk, &r)) != DYNAMO_OK) {
        fprintf(stderr, "request: %s: %s\n", dynamo_status_str(st), dynamo_last_error());
        return 1;
    }
    dynamo_free(with_params);
    pthread_mutex_lock(&r.mu);
    while (!r.done) pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
    printf("\n[%d chunks, ended with %s]\n", r.chunks, dynamo_status_str(r.status));
    dynamo_stream_free(s);             /* after the terminal call */
    dynamo_runtime_destroy(rt);
    return r.status == DYNAMO_END || r.status == DYNAMO_ERR_CANCELLED ? 0 : 1;
}
