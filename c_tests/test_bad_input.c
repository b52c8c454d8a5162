/* Bad input gives a status and a message, never a crash: NULL everywhere, invalid UTF-8,
 * malformed JSON, unknown keys, unknown model or endpoint, a 10 MB request. */
#include "test_util.h"

static void expect_stream_error(dynamo_stream_t* s, dynamo_status_t expected) {
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), expected);
    CHECK(strlen(dynamo_last_error()) > 0);
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), expected); /* sticky */
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    dynamo_runtime_t* rt = NULL;
    dynamo_stream_t* s = NULL;
    dynamo_chunk_t c;

    /* config */
    CHECK_STATUS(dynamo_runtime_create("{}", NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_runtime_create("{\"serve_model\": false, \"bogus\": 1}", &rt), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "bogus") != NULL);
    CHECK_STATUS(dynamo_runtime_create("{\"serve_model\": ", &rt), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_runtime_create("[1, 2]", &rt), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_runtime_create("{\"serve_model\": \"\xff\xfe\"}", &rt), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_runtime_create("{\"serve_model\": \"yes\"}", &rt), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_runtime_create("{\"model\": \"/nonexistent/model\", \"engine\": \"mock\"}", &rt),
                 DYNAMO_ERR_NOT_FOUND);

    /* a runtime serving the tiny model through the mock engine (fast), plus the mock endpoint */
    char* tiny = tiny_model_config(argv[1], "mock");
    char config[4096];
    snprintf(config, sizeof config, "%.*s, \"mock_endpoint\": \"%s\"}", (int)strlen(tiny) - 1, tiny, MOCK_ENDPOINT);
    free(tiny);
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);

    /* NULL everywhere */
    CHECK_STATUS(dynamo_chat_completion(NULL, "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_chat_completion(rt, NULL, &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_chat_completion(rt, "{}", NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_generate(rt, NULL, "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, NULL, &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_generate(NULL, MOCK_ENDPOINT, "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{}", NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_stream_poll(NULL, 0, &c), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_stream_cancel(NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(dynamo_stream_fd(NULL) == -1);
    CHECK_STATUS(dynamo_runtime_stats_json(NULL, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_runtime_stats_json(rt, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(dynamo_status_str((dynamo_status_t)-999) != NULL);

    /* invalid UTF-8, malformed JSON, not an object */
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": \"\xc3\x28\"}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "UTF-8") != NULL);
    CHECK_STATUS(dynamo_generate(rt, "test.\xed\xa0\x80.x", "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": [}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"a\": 1} trailing", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_chat_completion(rt, "\"just a string\"", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_chat_completion(rt, "", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_generate(rt, "", "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);

    /* a 10 MB request */
    size_t big = 10u * 1000u * 1000u;
    char* huge = malloc(big + 64);
    CHECK(huge != NULL);
    strcpy(huge, "{\"messages\": [{\"role\": \"user\", \"content\": \"");
    size_t at = strlen(huge);
    memset(huge + at, 'a', big);
    strcpy(huge + at + big, "\"}]}");
    CHECK_STATUS(dynamo_chat_completion(rt, huge, &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "larger") != NULL);
    free(huge);

    /* errors found by the runtime come from the first poll */
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"model\": \"no-such-model\", \"messages\": "
                                            "[{\"role\": \"user\", \"content\": \"hi\"}]}", &s), DYNAMO_OK);
    expect_stream_error(s, DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": \"not a list\"}", &s), DYNAMO_OK);
    expect_stream_error(s, DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                                            " \"max_tokens\": -5}", &s), DYNAMO_OK);
    expect_stream_error(s, DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_generate(rt, "test.absent.endpoint", "{}", &s), DYNAMO_OK);
    expect_stream_error(s, DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_generate(rt, "not-a-path", "{}", &s), DYNAMO_OK);
    expect_stream_error(s, DYNAMO_ERR_NOT_FOUND);

    /* the runtime still works afterwards */
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                                            " \"max_tokens\": 4}", &s), DYNAMO_OK);
    int chunks;
    CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
    CHECK(chunks >= 1);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
