/* Runtimes in one process are separate worlds unless configured to join a deployment: each sees
 * only its own models and engine, and destroying one never touches another's streams. A stream
 * cut short (its worker went away) never ends like a finished one.
 *   test_isolation PYTHON */
#include <unistd.h>

#include "test_util.h"

/* the tiny model, served in-process by the torch engine under `name`, plus extra config keys */
static dynamo_runtime_t* start(const char* python, const char* name, const char* extra) {
    char* tiny = tiny_model_config(python, "torch");
    char config[4096];
    char* at = strstr(tiny, "\"tiny\"");
    CHECK(at != NULL);
    snprintf(config, sizeof config, "%.*s\"%s\"%.*s%s}", (int)(at - tiny), tiny, name,
             (int)(strlen(at + 6) - 1), at + 6, extra);
    free(tiny);
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    return rt;
}

static dynamo_stream_t* long_chat(dynamo_runtime_t* rt, const char* model) {
    char request[512];
    snprintf(request, sizeof request, "{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
             " \"max_tokens\": 400, \"ignore_eos\": true}", model);
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_chat_completion(rt, request, &s), DYNAMO_OK);
    return s;
}

/* Poll to the end: the final status; *chunks and *last_finish describe what came before. */
static dynamo_status_t finish(dynamo_stream_t* s, int* chunks, int* last_finish) {
    dynamo_chunk_t c;
    dynamo_status_t st;
    *chunks = 0;
    *last_finish = DYNAMO_FINISH_NONE;
    while ((st = dynamo_stream_poll(s, 60000, &c)) == DYNAMO_OK) {
        (*chunks)++;
        if (c.finish_reason != DYNAMO_FINISH_NONE) *last_finish = c.finish_reason;
    }
    return st;
}

static void separate_worlds(const char* python) {
    dynamo_runtime_t* a = start(python, "alpha", "");
    dynamo_runtime_t* b = start(python, "beta", "");
    const char* stats = NULL;
    CHECK_STATUS(dynamo_runtime_stats_json(a, &stats), DYNAMO_OK);
    printf("A: %s\n", stats);
    CHECK(strstr(stats, "\"alpha\"") && !strstr(stats, "\"beta\""));
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_chat_completion(a, "{\"model\": \"beta\", \"messages\": [{\"role\": \"user\", "
                                           "\"content\": \"hi\"}]}", &s), DYNAMO_OK);
    int chunks, last;
    CHECK_STATUS(finish(s, &chunks, &last), DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);

    /* destroying B while A streams leaves A's stream whole */
    s = long_chat(a, "alpha");
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_stream_poll(s, 60000, &c), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(b), DYNAMO_OK);
    CHECK_STATUS(finish(s, &chunks, &last), DYNAMO_END);
    CHECK(last == DYNAMO_FINISH_LENGTH);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(a), DYNAMO_OK);
}

/* A frontend runtime joined to a worker runtime's deployment (file discovery, tcp): the worker
 * going away mid-stream is an error on the frontend's stream, never FINISH_STOP/END. */
static void cut_short_is_an_error(const char* python) {
    char dir[] = "/tmp/dynamo_isolation_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char extra[256], config[512];
    snprintf(extra, sizeof extra, ", \"discovery\": \"file\", \"file_kv_dir\": \"%s\"", dir);
    dynamo_runtime_t* worker = start(python, "gamma", extra);
    snprintf(config, sizeof config, "{\"discovery\": \"file\", \"file_kv_dir\": \"%s\"}", dir);
    dynamo_runtime_t* frontend = NULL;
    CHECK_STATUS(dynamo_runtime_create(config, &frontend), DYNAMO_OK);
    dynamo_stream_t* s = long_chat(frontend, "gamma");
    dynamo_chunk_t c;
    for (int i = 0; i < 3; i++) CHECK_STATUS(dynamo_stream_poll(s, 60000, &c), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(worker), DYNAMO_OK);
    int chunks, last;
    dynamo_status_t st = finish(s, &chunks, &last);
    printf("cut short: %s after %d more chunks (last finish %d): %s\n", dynamo_status_str(st), chunks, last,
           dynamo_last_error());
    CHECK(st != DYNAMO_END && st < 0);
    CHECK(last != DYNAMO_FINISH_STOP && last != DYNAMO_FINISH_LENGTH);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(frontend), DYNAMO_OK);
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    separate_worlds(argv[1]);
    cut_short_is_an_error(argv[1]);
    puts("ok");
    return 0;
}
