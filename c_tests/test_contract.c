/* The header's contract, point by point: NULL handles are DYNAMO_ERR_INVALID_ARGUMENT, config_json
 * has a documented 1 MiB limit, an unknown chat request key is an error naming the key, messages are
 * plain sentences (no Python class names), an unreachable NATS is DYNAMO_ERR_UNAVAILABLE, and an
 * "n" > 1 chat stream carries each chunk's choice_index with one finish per choice.
 *   test_contract PYTHON */
#include <stddef.h>

#include "test_util.h"

#if UINTPTR_MAX > 0xFFFFFFFFu
/* choice_index sits in 0.1's tail padding: the struct's size and other offsets are unchanged */
_Static_assert(sizeof(dynamo_chunk_t) == 56, "dynamo_chunk_t changed size");
_Static_assert(offsetof(dynamo_chunk_t, finish_reason) == 48, "dynamo_chunk_t changed layout");
#endif

static int has_class_name(const char* message) {
    return strstr(message, "Error:") || strstr(message, "Exception") || strstr(message, "CapiError");
}

static void expect_plain_error(dynamo_stream_t* s, dynamo_status_t expected, const char* word) {
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), expected);
    CHECK(strstr(dynamo_last_error(), word) != NULL);
    CHECK(!has_class_name(dynamo_last_error()));
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
}

/* n = 3: every chunk belongs to one choice (json's index = choice_index), every choice ends once
 * with its own finish_reason, no chunk of a choice follows that choice's finish, and the usage chunk
 * (no choice) comes last with choice_index -1. */
static void check_n_choices(dynamo_runtime_t* rt) {
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                                            " \"n\": 3, \"max_tokens\": 6, \"temperature\": 1.0,"
                                            " \"stream_options\": {\"include_usage\": true}}", &s), DYNAMO_OK);
    int finished[3] = {0, 0, 0}, chunks[3] = {0, 0, 0}, usage = 0;
    dynamo_chunk_t c;
    dynamo_status_t st;
    while ((st = dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) {
        CHECK(!usage); /* the usage chunk is the last */
        if (c.choice_index == -1) {
            CHECK(strstr(c.json, "\"usage\"") && c.finish_reason == DYNAMO_FINISH_NONE && !c.text);
            usage = 1;
            continue;
        }
        CHECK(c.choice_index >= 0 && c.choice_index < 3);
        CHECK(!finished[c.choice_index]);
        CHECK(json_int(c.json, "index") == c.choice_index);
        CHECK(strstr(strstr(c.json, "\"index\"") + 1, "\"index\"") == NULL); /* one choice per chunk */
        chunks[c.choice_index]++;
        if (c.finish_reason != DYNAMO_FINISH_NONE) finished[c.choice_index] = 1;
    }
    CHECK_STATUS(st, DYNAMO_END);
    CHECK(usage);
    for (int i = 0; i < 3; i++) CHECK(finished[i] && chunks[i] >= 2);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    dynamo_runtime_t* rt = NULL;
    dynamo_stream_t* s = NULL;
    dynamo_chunk_t c;
    const char* out = NULL;

    /* config_json: 1 MiB at most, checked before anything is cut */
    size_t big = (1u << 20) + 100;
    char* huge = malloc(big + 64);
    CHECK(huge != NULL);
    strcpy(huge, "{\"model_name\": \"");
    memset(huge + strlen(huge), 'a', big);
    strcpy(huge + 16 + big, "\"}");
    CHECK_STATUS(dynamo_runtime_create(huge, &rt), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "larger than 1048576 bytes") != NULL);
    free(huge);

    /* plain-sentence messages */
    CHECK_STATUS(dynamo_runtime_create("{\"serve_model\": false, \"bogus\": 1}", &rt), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "bogus") != NULL && !has_class_name(dynamo_last_error()));

    /* an unreachable deployment is unavailable, not an invalid argument */
    CHECK_STATUS(dynamo_runtime_create("{\"discovery\": \"nats\", \"nats_url\": \"nats://127.0.0.1:1\"}", &rt),
                 DYNAMO_ERR_UNAVAILABLE);
    CHECK(strstr(dynamo_last_error(), "NATS") != NULL && !has_class_name(dynamo_last_error()));

    char* config = tiny_model_config(argv[1], "mock");
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    free(config);

    /* NULL handles */
    CHECK_STATUS(dynamo_chat_completion(NULL, "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_generate(NULL, MOCK_ENDPOINT, "{}", &s), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_runtime_stats_json(NULL, &out), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_stream_poll(NULL, 0, &c), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_stream_cancel(NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(dynamo_stream_fd(NULL) == -1);
    CHECK_STATUS(dynamo_runtime_destroy(NULL), DYNAMO_OK); /* documented no-op */

    /* unknown chat request keys are errors naming the key; known ones still work */
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                                            " \"max_token\": 4}", &s), DYNAMO_OK);
    expect_plain_error(s, DYNAMO_ERR_INVALID_ARGUMENT, "\"max_token\"");
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"model\": \"no-such-model\", \"messages\": "
                                            "[{\"role\": \"user\", \"content\": \"hi\"}]}", &s), DYNAMO_OK);
    expect_plain_error(s, DYNAMO_ERR_NOT_FOUND, "no-such-model");

    check_n_choices(rt);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
