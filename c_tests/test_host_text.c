/* The host API's text and model calls against the tiny model: tokenize/detokenize, chat template, model
 * info (JSON and struct), whole chat replies, completion streams, typed sampling parameters; each
 * function's error paths and what the host owns (run under ASan/valgrind by sanitize.sh). */
#include <locale.h>
#include <pthread.h>
#include <math.h>

#include "test_util.h"

static dynamo_runtime_t* rt;

static void text_calls(void) {
    uint32_t* ids = NULL;
    size_t n = 0;
    CHECK_STATUS(dynamo_tokenize(rt, NULL, "Hello world, hello tokens", 0, &ids, &n), DYNAMO_OK);
    CHECK(n > 0 && ids != NULL);
    uint32_t* special = NULL;
    size_t n_special = 0;
    CHECK_STATUS(dynamo_tokenize(rt, "tiny", "Hello world, hello tokens", 1, &special, &n_special), DYNAMO_OK);
    CHECK(n_special >= n);
    char* text = NULL;
    CHECK_STATUS(dynamo_detokenize(rt, NULL, ids, n, 1, &text), DYNAMO_OK);
    CHECK(strcmp(text, "Hello world, hello tokens") == 0);
    dynamo_free(text);
    dynamo_free(special);
    /* an empty text: no ids, NULL array; zero ids: the empty string */
    uint32_t* none = (uint32_t*)1;
    size_t zero = 7;
    CHECK_STATUS(dynamo_tokenize(rt, NULL, "", 0, &none, &zero), DYNAMO_OK);
    CHECK(zero == 0 && none == NULL);
    CHECK_STATUS(dynamo_detokenize(rt, NULL, NULL, 0, 1, &text), DYNAMO_OK);
    CHECK(text[0] == '\0');
    dynamo_free(text);
    dynamo_free(NULL);

    /* error paths: outputs untouched */
    uint32_t* untouched = (uint32_t*)1;
    CHECK_STATUS(dynamo_tokenize(rt, NULL, NULL, 0, &untouched, &n), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_tokenize(rt, NULL, "x", 0, NULL, &n), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_tokenize(rt, NULL, "bad \xff utf-8", 0, &untouched, &n), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_tokenize(NULL, NULL, "x", 0, &untouched, &n), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_tokenize((dynamo_runtime_t*)(uintptr_t)0x12345679, NULL, "x", 0, &untouched, &n),
                 DYNAMO_ERR_INVALID_HANDLE);
    CHECK_STATUS(dynamo_tokenize(rt, "no-such-model", "x", 0, &untouched, &n), DYNAMO_ERR_NOT_FOUND);
    CHECK(strstr(dynamo_last_error(), "no-such-model") != NULL);
    CHECK(untouched == (uint32_t*)1);
    uint32_t huge = 0xFFFFFFF0u;
    char* untouched_text = (char*)1;
    CHECK_STATUS(dynamo_detokenize(rt, NULL, &huge, 1, 1, &untouched_text), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "vocabulary") != NULL);
    CHECK_STATUS(dynamo_detokenize(rt, NULL, NULL, 3, 1, &untouched_text), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(untouched_text == (char*)1);
    dynamo_free(ids);
}

static void chat_template(void) {
    const char* messages = "[{\"role\": \"user\", \"content\": \"What is up?\"}]";
    char* with = NULL;
    char* without = NULL;
    CHECK_STATUS(dynamo_apply_chat_template(rt, NULL, messages, 1, &with), DYNAMO_OK);
    CHECK_STATUS(dynamo_apply_chat_template(rt, NULL, messages, 0, &without), DYNAMO_OK);
    CHECK(strstr(with, "What is up?") != NULL && strlen(with) > strlen(without));
    char* from_request = NULL;
    CHECK_STATUS(dynamo_apply_chat_template(rt, NULL, "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", "
                                            "\"content\": \"What is up?\"}]}", 1, &from_request), DYNAMO_OK);
    CHECK(strcmp(from_request, with) == 0);
    dynamo_free(from_request);
    dynamo_free(without);
    dynamo_free(with);
    char* untouched = (char*)1;
    CHECK_STATUS(dynamo_apply_chat_template(rt, NULL, "[{", 1, &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_apply_chat_template(rt, NULL, "42", 1, &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_apply_chat_template(rt, NULL, "[{\"role\": 3}]", 1, &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_apply_chat_template(rt, NULL, messages, 1, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(untouched == (char*)1);
}

static void model_info(void) {
    char* json = NULL;
    CHECK_STATUS(dynamo_model_info_json(rt, NULL, &json), DYNAMO_OK);
    CHECK(strstr(json, "\"name\":\"tiny\"") != NULL && strstr(json, "\"context_length\":") != NULL);
    long context = json_int(json, "context_length");
    long vocab = json_int(json, "vocab_size");
    long blocks = json_int(json, "kv_total_blocks");
    dynamo_free(json);
    dynamo_model_info_t info;
    memset(&info, 0xAB, sizeof info);
    info.struct_size = sizeof info;
    CHECK_STATUS(dynamo_model_info(rt, "tiny", &info), DYNAMO_OK);
    CHECK(info.struct_size == sizeof info && (long)info.context_length == context && (long)info.vocab_size == vocab);
    CHECK(info.num_eos_ids >= 1 && info.num_eos_ids <= DYNAMO_MODEL_INFO_MAX_EOS);
    CHECK(info.kv_block_size > 0 && (long)info.kv_total_blocks == blocks && blocks > 0);
    CHECK(info.is_embedding == 0 && strcmp(info.name, "tiny") == 0 && info.architecture[0] != '\0');
    CHECK(info.reserved[0] == 0 && info.reserved[7] == 0);
    /* an older host's smaller struct: nothing past its size is written */
    unsigned char buf[sizeof info + 16];
    memset(buf, 0xCD, sizeof buf);
    dynamo_model_info_t* small = (dynamo_model_info_t*)(void*)buf;
    small->struct_size = 12;
    CHECK_STATUS(dynamo_model_info(rt, NULL, small), DYNAMO_OK);
    CHECK(small->struct_size == 12 && (long)small->context_length == context && (long)small->vocab_size == vocab);
    for (size_t i = 12; i < sizeof buf; i++) CHECK(buf[i] == 0xCD);
    small->struct_size = 0;
    CHECK_STATUS(dynamo_model_info(rt, NULL, small), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_model_info(rt, "nope", &info), DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_model_info_json(rt, NULL, NULL), DYNAMO_ERR_INVALID_ARGUMENT);
}

static void whole_reply(void) {
    char* reply = NULL;
    CHECK_STATUS(dynamo_chat_completion_sync(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                                             "\"max_tokens\": 6, \"ignore_eos\": true}", &reply), DYNAMO_OK);
    CHECK(strstr(reply, "\"chat.completion\"") != NULL && strstr(reply, "\"finish_reason\":\"length\"") != NULL);
    CHECK(json_int(reply, "completion_tokens") == 6);
    dynamo_free(reply);
    char* untouched = (char*)1;
    CHECK_STATUS(dynamo_chat_completion_sync(rt, "{\"messages\": [], \"max_token\": 3}", &untouched),
                 DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "max_token") != NULL);
    CHECK_STATUS(dynamo_chat_completion_sync(rt, "{\"model\": \"nope\", \"messages\": [{\"role\": \"user\", "
                                             "\"content\": \"Hi\"}]}", &untouched), DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_chat_completion_sync(rt, "not json", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(untouched == (char*)1);
}

static void completion_stream(void) {
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_completion(rt, "{\"prompt\": \"Once upon\", \"max_tokens\": 5, \"ignore_eos\": true}", &s),
                 DYNAMO_OK);
    dynamo_chunk_t c;
    dynamo_status_t st;
    int finishes = 0;
    size_t text_bytes = 0;
    while ((st = dynamo_stream_poll(s, 60000, &c)) == DYNAMO_OK) {
        CHECK(strstr(c.json, "text_completion") != NULL);
        if (c.text) text_bytes += c.text_len;
        if (c.finish_reason != DYNAMO_FINISH_NONE) { finishes++; CHECK(c.finish_reason == DYNAMO_FINISH_LENGTH); }
    }
    CHECK_STATUS(st, DYNAMO_END);
    CHECK(finishes == 1 && text_bytes > 0);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_completion(rt, "{\"prompt\": \"x\", \"model\": \"nope\"}", &s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_poll(s, 60000, &c), DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_completion(rt, "[1]", &s), DYNAMO_ERR_INVALID_ARGUMENT);
}

static void sampling_params(void) {
    dynamo_sampling_params_t p = dynamo_sampling_params_default();
    CHECK(p.struct_size == sizeof p && p.temperature == 1.0f && p.top_p == 1.0f && p.max_tokens == 0);
    char* json = NULL;
    CHECK_STATUS(dynamo_sampling_params_apply(&p, "{}", &json), DYNAMO_OK);
    CHECK(json[0] == '{' && strstr(json, "\"temperature\":1") != NULL && strstr(json, "max_tokens") == NULL);
    CHECK(strstr(json, "seed") == NULL);
    dynamo_free(json);
    p.temperature = 0.7f;
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) { /* a comma locale, if installed */
        char comma[16];
        snprintf(comma, sizeof comma, "%.1f", 0.5);
        printf("host locale's 0.5: %s\n", comma);
    }
    CHECK_STATUS(dynamo_sampling_params_apply(&p, "{\"n\": 1}", &json), DYNAMO_OK);
    CHECK(strncmp(json, "{\"n\": 1,", 8) == 0 && strstr(json, "\"temperature\":0.7,") != NULL);
    dynamo_free(json);
    setlocale(LC_NUMERIC, "C");
    p.temperature = 0.0f;
    p.max_tokens = 4;
    p.ignore_eos = 1;
    p.has_seed = 1;
    p.seed = 42;
    CHECK_STATUS(dynamo_sampling_params_apply(&p, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                                              "\"temperature\": 1.5}", &json), DYNAMO_OK);
    char* reply = NULL;
    CHECK_STATUS(dynamo_chat_completion_sync(rt, json, &reply), DYNAMO_OK);
    CHECK(json_int(reply, "completion_tokens") == 4);
    dynamo_free(reply);
    dynamo_free(json);
    /* the struct's values meet the JSON's validation */
    p.temperature = 5.0f;
    CHECK_STATUS(dynamo_sampling_params_apply(&p, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}", &json),
                 DYNAMO_OK);
    dynamo_stream_t* s = NULL;
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_chat_completion(rt, json, &s), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_poll(s, 60000, &c), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "temperature") != NULL);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    dynamo_free(json);
    char* untouched = (char*)1;
    p.temperature = NAN;
    CHECK_STATUS(dynamo_sampling_params_apply(&p, "{}", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "temperature") != NULL);
    p = dynamo_sampling_params_default();
    CHECK_STATUS(dynamo_sampling_params_apply(&p, "[]", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_sampling_params_apply(NULL, "{}", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    p.struct_size = 4;
    CHECK_STATUS(dynamo_sampling_params_apply(&p, "{}", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(untouched == (char*)1);
}

/* Host calls from several threads at once, beside a live stream: each gets its own answer. */
static void* tokenize_loop(void* expected_n) {
    for (int i = 0; i < 50; i++) {
        uint32_t* ids = NULL;
        size_t n = 0;
        CHECK_STATUS(dynamo_tokenize(rt, NULL, "Hello world, hello tokens", 0, &ids, &n), DYNAMO_OK);
        CHECK(n == *(size_t*)expected_n);
        dynamo_free(ids);
        char* json = NULL;
        CHECK_STATUS(dynamo_model_info_json(rt, "tiny", &json), DYNAMO_OK);
        dynamo_free(json);
    }
    return NULL;
}

static void concurrent_calls(void) {
    uint32_t* ids = NULL;
    size_t n = 0;
    CHECK_STATUS(dynamo_tokenize(rt, NULL, "Hello world, hello tokens", 0, &ids, &n), DYNAMO_OK);
    dynamo_free(ids);
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                                        "\"max_tokens\": 32, \"ignore_eos\": true}", &s), DYNAMO_OK);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&threads[i], NULL, tokenize_loop, &n) == 0);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    int chunks = 0;
    CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
    CHECK(chunks >= 2);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    char* config = tiny_model_config(argv[1], "torch");
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    free(config);
    text_calls();
    chat_template();
    model_info();
    whole_reply();
    completion_stream();
    sampling_params();
    concurrent_calls();
    /* a runtime that serves no model answers the model calls with NOT_FOUND */
    dynamo_runtime_t* bare = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &bare), DYNAMO_OK);
    uint32_t* none = NULL;
    size_t zero = 0;
    char* text = NULL;
    CHECK_STATUS(dynamo_tokenize(bare, NULL, "x", 0, &none, &zero), DYNAMO_ERR_NOT_FOUND);
    CHECK(strstr(dynamo_last_error(), "serves no model") != NULL);
    CHECK_STATUS(dynamo_model_info_json(bare, NULL, &text), DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_chat_completion_sync(bare, "{\"messages\": []}", &text), DYNAMO_ERR_NOT_FOUND);
    CHECK(text == NULL && none == NULL);
    CHECK_STATUS(dynamo_runtime_destroy(bare), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    uint32_t* ids = NULL;
    size_t n = 0;
    CHECK_STATUS(dynamo_tokenize(rt, NULL, "x", 0, &ids, &n), DYNAMO_ERR_INVALID_HANDLE);
    puts("ok");
    return 0;
}
