/* dynamo_responses_create on the tiny model (mock engine: the reply echoes the prompt's tokens, so a
 * conversation continued with previous_response_id shows its history in the reply): a streamed response's
 * events in OpenAI's order with sequence numbers 0..n-1 and the chunk fields the header documents,
 * previous_response_id across calls, errors before generation as the call's status (bad JSON, a refused
 * field, unknown model, unknown previous_response_id), cancel and free mid-stream (the engine lets go),
 * destroy with a stream open, and 8 threads creating chained responses on one runtime at once.
 * Mode "tools" (the demo model, torch): a required function call streams its arguments and ends with
 * DYNAMO_FINISH_TOOL_CALLS; its output, sent back with previous_response_id, gets a completed answer.
 *   test_responses PYTHON [tools] */
#include <pthread.h>
#include <time.h>

#include "test_util.h"

enum { THREADS = 8, PER_THREAD = 4 };
static dynamo_runtime_t* rt;

typedef struct {
    int events, deltas, arg_deltas, finishes;
    char call_id[128];     /* the first function_call item's call_id */
    int32_t last_finish;
    char id[128];          /* the response's id (from response.created) */
    char* text;            /* the output_text deltas, concatenated */
    size_t text_len;
    char last_type[64];
} summary;

/* The value of the event's "type" (the first key of every event's JSON) into out. */
static void event_type(const char* json, char* out, size_t cap) {
    const char* prefix = "{\"type\":\"";
    CHECK(strncmp(json, prefix, strlen(prefix)) == 0);
    const char* start = json + strlen(prefix);
    size_t n = strcspn(start, "\"");
    CHECK(n < cap);
    memcpy(out, start, n);
    out[n] = '\0';
}

/* The string after `"key":"` in json (first occurrence) into out. */
static void json_str(const char* json, const char* key, char* out, size_t cap) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char* at = strstr(json, pattern);
    CHECK(at != NULL);
    at += strlen(pattern);
    size_t n = strcspn(at, "\"");
    CHECK(n < cap);
    memcpy(out, at, n);
    out[n] = '\0';
}

/* Every event of a started stream, checked against the header's promises, to DYNAMO_END. */
static void drain_response(dynamo_stream_t* s, summary* out) {
    static const char* head[] = {"response.created", "response.in_progress", "response.output_item.added"};
    memset(out, 0, sizeof *out);
    out->last_finish = -1;
    dynamo_chunk_t c;
    dynamo_status_t st;
    char type[64];
    while ((st = dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) {
        CHECK(out->finishes == 0); /* nothing after the terminal event */
        CHECK(c.json && c.json_len == strlen(c.json) && c.token_ids == NULL && c.num_token_ids == 0);
        CHECK(c.choice_index == 0);
        event_type(c.json, type, sizeof type);
        CHECK(json_int(c.json, "sequence_number") == out->events);
        if (out->events < 3) CHECK(strcmp(type, head[out->events]) == 0);
        if (out->events == 0) json_str(strstr(c.json, "\"response\":"), "id", out->id, sizeof out->id);
        if (strcmp(type, "response.output_text.delta") == 0) {
            CHECK(c.text != NULL && c.text[c.text_len] == '\0');
            out->text = realloc(out->text, out->text_len + c.text_len + 1);
            memcpy(out->text + out->text_len, c.text, c.text_len + 1);
            out->text_len += c.text_len;
            out->deltas++;
        } else {
            CHECK(c.text == NULL);
        }
        if (strcmp(type, "response.function_call_arguments.delta") == 0) out->arg_deltas++;
        if (strcmp(type, "response.output_item.added") == 0 && strstr(c.json, "\"type\":\"function_call\"") &&
            !out->call_id[0])
            json_str(c.json, "call_id", out->call_id, sizeof out->call_id);
        int terminal = strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0 ||
                       strcmp(type, "response.failed") == 0;
        CHECK(terminal == (c.finish_reason != DYNAMO_FINISH_NONE));
        if (terminal) { out->finishes++; out->last_finish = c.finish_reason; }
        snprintf(out->last_type, sizeof out->last_type, "%s", type);
        out->events++;
    }
    CHECK_STATUS(st, DYNAMO_END);
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_END); /* sticky */
    CHECK(out->finishes == 1 && out->events >= 6 && out->id[0]);
}

static void run_response(const char* request, summary* out) {
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_responses_create(rt, request, &s), DYNAMO_OK);
    CHECK(s != NULL);
    drain_response(s, out);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
}

static void expect_refused(const char* request, dynamo_status_t expected, const char* word) {
    dynamo_stream_t* s = (dynamo_stream_t*)(uintptr_t)0x1234; /* out is written only on DYNAMO_OK */
    CHECK_STATUS(dynamo_responses_create(rt, request, &s), expected);
    CHECK(s == (dynamo_stream_t*)(uintptr_t)0x1234);
    if (!strstr(dynamo_last_error(), word)) fprintf(stderr, "message: %s\n", dynamo_last_error());
    CHECK(strstr(dynamo_last_error(), word) != NULL);
    CHECK(strstr(dynamo_last_error(), "Error:") == NULL && strstr(dynamo_last_error(), "Exception") == NULL);
}

static void order_and_fields(void) {
    summary r;
    run_response("{\"model\": \"tiny\", \"input\": \"Hello there, how are you today?\"}", &r);
    CHECK(r.deltas >= 1 && r.text_len > 0);
    CHECK(strcmp(r.last_type, "response.completed") == 0 && r.last_finish == DYNAMO_FINISH_STOP);
    free(r.text);
    /* "model" left out: the one served model; a length cut is response.incomplete with FINISH_LENGTH */
    run_response("{\"input\": \"Count with me: one two three four five six seven\", \"max_output_tokens\": 3}", &r);
    CHECK(strcmp(r.last_type, "response.incomplete") == 0 && r.last_finish == DYNAMO_FINISH_LENGTH);
    free(r.text);
}

static void previous_response(void) {
    summary first, second, unstored;
    run_response("{\"model\": \"tiny\", \"input\": \"My codeword is zebra\"}", &first);
    char request[512];
    snprintf(request, sizeof request,
             "{\"model\": \"tiny\", \"input\": \"What was it?\", \"previous_response_id\": \"%s\"}", first.id);
    run_response(request, &second);
    CHECK(strcmp(second.id, first.id) != 0);
    CHECK(strstr(second.text, "zebra") != NULL); /* the mock echoes the prompt: the history was in it */
    CHECK(strstr(first.text, "What was it") == NULL);
    /* "store": false keeps nothing to continue from */
    run_response("{\"model\": \"tiny\", \"input\": \"forget me\", \"store\": false}", &unstored);
    snprintf(request, sizeof request, "{\"model\": \"tiny\", \"input\": \"hi\", \"previous_response_id\": \"%s\"}",
             unstored.id);
    expect_refused(request, DYNAMO_ERR_NOT_FOUND, unstored.id);
    free(first.text);
    free(second.text);
    free(unstored.text);
}

static void errors_before_generation(void) {
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_responses_create(rt, NULL, &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_responses_create(rt, "{}", NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_responses_create(NULL, "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_responses_create((dynamo_runtime_t*)(uintptr_t)0x99, "{}", &s), DYNAMO_ERR_INVALID_HANDLE);
    expect_refused("{\"model\": \"tiny\", \"input\": ", DYNAMO_ERR_INVALID_ARGUMENT, "JSON");
    expect_refused("[\"not an object\"]", DYNAMO_ERR_INVALID_ARGUMENT, "JSON");
    expect_refused("{\"model\": \"tiny\", \"input\": \"\xff\xfe\"}", DYNAMO_ERR_INVALID_ARGUMENT, "UTF-8");
    expect_refused("{\"model\": \"tiny\", \"input\": 5}", DYNAMO_ERR_INVALID_ARGUMENT, "input");
    expect_refused("{\"model\": \"tiny\"}", DYNAMO_ERR_INVALID_ARGUMENT, "input");
    expect_refused("{\"model\": \"tiny\", \"input\": \"hi\", \"temperature\": 9}", DYNAMO_ERR_INVALID_ARGUMENT,
                   "temperature");
    expect_refused("{\"model\": \"no-such-model\", \"input\": \"hi\"}", DYNAMO_ERR_NOT_FOUND, "no-such-model");
    expect_refused("{\"model\": \"tiny\", \"input\": \"hi\", \"previous_response_id\": \"resp_nonexistent\"}",
                   DYNAMO_ERR_NOT_FOUND, "resp_nonexistent");
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A long prompt: the mock engine's reply echoes it token by token (hundreds of events). */
static char* long_request(void) {
    size_t cap = 16384, n = 0;
    char* request = malloc(cap);
    n += (size_t)snprintf(request, cap, "{\"model\": \"tiny\", \"input\": \"");
    for (int i = 0; i < 150; i++) n += (size_t)snprintf(request + n, cap - n, "word%d and ", i);
    snprintf(request + n, cap - n, "the end\"}");
    return request;
}

/* Until the runtime has no live stream and the engine nothing running (bounded wait). */
static void wait_idle(void) {
    const char* stats = NULL;
    for (int i = 0; i < 1000; i++) {
        CHECK_STATUS(dynamo_runtime_stats_json(rt, &stats), DYNAMO_OK);
        if (json_int(stats, "live_streams") == 0 && json_int(stats, "num_running") == 0) return;
        sleep_ms(10);
    }
    fprintf(stderr, "stats: %s\n", stats);
    CHECK(0);
}

static void cancel_and_free(void) {
    char* request = long_request();
    dynamo_stream_t* s = NULL;
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_responses_create(rt, request, &s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), DYNAMO_OK);
    char id[128];
    json_str(strstr(c.json, "\"response\":"), "id", id, sizeof id);
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_OK); /* idempotent */
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_CANCELLED);
    CHECK_STATUS(dynamo_stream_poll(s, -1, &c), DYNAMO_ERR_CANCELLED); /* sticky */
    wait_idle();
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    char next[256];
    snprintf(next, sizeof next, "{\"model\": \"tiny\", \"input\": \"hi\", \"previous_response_id\": \"%s\"}", id);
    expect_refused(next, DYNAMO_ERR_NOT_FOUND, id); /* a cancelled response is not stored */

    /* freed mid-stream, never cancelled: the generation stops too */
    CHECK_STATUS(dynamo_responses_create(rt, request, &s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_INVALID_HANDLE);
    wait_idle();
    free(request);
}

/* Each thread chains its responses (each continues the previous one), all threads at once. */
static void* chain(void* arg) {
    int t = (int)(intptr_t)arg;
    char previous[128] = "";
    for (int i = 0; i < PER_THREAD; i++) {
        char request[512];
        if (previous[0])
            snprintf(request, sizeof request, "{\"model\": \"tiny\", \"input\": \"thread %d turn %d\", "
                     "\"max_output_tokens\": 400, \"previous_response_id\": \"%s\"}", t, i, previous);
        else
            snprintf(request, sizeof request, "{\"model\": \"tiny\", \"input\": \"thread %d turn %d\"}", t, i);
        summary r;
        run_response(request, &r);
        CHECK(strcmp(r.last_type, "response.failed") != 0);
        if (i > 0) {
            char mine[64];
            snprintf(mine, sizeof mine, "thread %d turn 0", t);
            CHECK(strstr(r.text, mine) != NULL); /* its own history, not another thread's */
            for (int other = 0; other < THREADS; other++) {
                snprintf(mine, sizeof mine, "thread %d turn", other);
                CHECK(other == t || strstr(r.text, mine) == NULL);
            }
        }
        snprintf(previous, sizeof previous, "%s", r.id);
        free(r.text);
    }
    return NULL;
}

static void threads(void) {
    pthread_t tids[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&tids[i], NULL, chain, (void*)(intptr_t)i) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(tids[i], NULL);
    wait_idle();
}

static void destroy_while_streaming(void) {
    char* request = long_request();
    dynamo_stream_t* s = NULL;
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_responses_create(rt, request, &s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    dynamo_status_t st;
    while ((st = dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) {}
    CHECK(st == DYNAMO_ERR_SHUTDOWN || st == DYNAMO_END); /* END: it had finished before the destroy */
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_responses_create(rt, request, &s), DYNAMO_ERR_INVALID_HANDLE);
    free(request);
}

#define WEATHER_TOOL "[{\"type\": \"function\", \"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", " \
    "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}]"

static void tools_round_trip(void) {
    CHECK_STATUS(dynamo_runtime_create("{}", &rt), DYNAMO_OK);
    summary call, answer;
    run_response("{\"input\": \"What is the weather in Paris?\", \"tool_choice\": \"required\", \"tools\": "
                 WEATHER_TOOL "}", &call);
    CHECK(strcmp(call.last_type, "response.completed") == 0 && call.last_finish == DYNAMO_FINISH_TOOL_CALLS);
    CHECK(call.call_id[0] && call.arg_deltas >= 1 && call.deltas == 0);
    char request[1024];
    snprintf(request, sizeof request, "{\"input\": [{\"type\": \"function_call_output\", \"call_id\": \"%s\", "
             "\"output\": \"{\\\"temperature_c\\\": 21}\"}], \"previous_response_id\": \"%s\", \"max_output_tokens\": 64, "
             "\"tools\": " WEATHER_TOOL "}", call.call_id, call.id);
    run_response(request, &answer);
    CHECK(strcmp(answer.last_type, "response.failed") != 0); /* the demo model's reply: completed, or cut at 64 */
    free(call.text);
    free(answer.text);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    if (argc > 2 && strcmp(argv[2], "tools") == 0) {
        tools_round_trip();
        puts("ok");
        return 0;
    }
    char* config = tiny_model_config(argv[1], "mock");
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    free(config);
    order_and_fields();
    previous_response();
    errors_before_generation();
    cancel_and_free();
    threads();
    destroy_while_streaming();
    puts("ok");
    return 0;
}
