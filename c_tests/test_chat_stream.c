/* Chat streaming against the tiny model: OpenAI chunks, text deltas, every token id once (max_tokens of
 * them over the stream), one finish reason, sticky END. */
#include "test_util.h"

int main(int argc, char** argv) {
    CHECK(argc > 1);
    char* config = tiny_model_config(argv[1], "torch");
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    free(config);
    for (int round = 0; round < 2; round++) { /* "model" given, then omitted (one model served) */
        const char* request = round == 0
            ? "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], \"max_tokens\": 12, \"ignore_eos\": true}"
            : "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi there\"}], \"max_tokens\": 12, \"ignore_eos\": true}";
        dynamo_stream_t* s = NULL;
        CHECK_STATUS(dynamo_chat_completion(rt, request, &s), DYNAMO_OK);
        CHECK(dynamo_stream_fd(s) >= 0);
        dynamo_chunk_t c;
        dynamo_status_t st;
        int chunks = 0, finishes = 0;
        size_t text_bytes = 0, token_ids = 0;
        while ((st = dynamo_stream_poll(s, 60000, &c)) == DYNAMO_OK) {
            chunks++;
            CHECK(c.json != NULL && c.json_len == strlen(c.json));
            CHECK(strstr(c.json, "chat.completion.chunk") != NULL);
            /* text_len counts the whole delta: a random model may generate U+0000, so strlen can be shorter */
            if (c.text) { CHECK(c.text[c.text_len] == '\0' && strlen(c.text) <= c.text_len); text_bytes += c.text_len; }
            CHECK((c.token_ids != NULL) == (c.num_token_ids > 0));
            token_ids += c.num_token_ids;
            if (c.finish_reason != DYNAMO_FINISH_NONE) {
                finishes++;
                CHECK(c.finish_reason == DYNAMO_FINISH_LENGTH);
            }
        }
        CHECK_STATUS(st, DYNAMO_END);
        CHECK(chunks >= 2 && finishes == 1 && text_bytes > 0 && token_ids == 12);
        CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_END);
        CHECK_STATUS(dynamo_stream_poll(s, -1, &c), DYNAMO_END);
        CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    }
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
