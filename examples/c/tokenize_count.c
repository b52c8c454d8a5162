/* tokenize_count: how many tokens a text (and a chat turn) costs with the model's own tokenizer, and
 * whether it fits the model's context: the host-side budget check a C/C++ app makes before sending.
 *   usage: tokenize_count [--model PATH] "text"
 * Uses dynamo_tokenize, dynamo_detokenize, dynamo_apply_chat_template and dynamo_model_info; every
 * array and string they return is the caller's and goes back with dynamo_free. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamo_llm.h"

static int fail(const char* what, dynamo_status_t st) {
    fprintf(stderr, "tokenize_count: %s: %s: %s\n", what, dynamo_status_str(st), dynamo_last_error());
    return 1;
}

/* s as the body of a JSON string (caller frees). */
static char* json_escape(const char* s) {
    char* out = malloc(strlen(s) * 6 + 1);
    char* p = out;
    if (!out) return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { *p++ = '\\'; *p++ = (char)c; }
        else if (c < 0x20) p += sprintf(p, "\\u%04x", c);
        else *p++ = (char)c;
    }
    *p = '\0';
    return out;
}

int main(int argc, char** argv) {
    char config[4096] = "{}";
    if (argc > 2 && strcmp(argv[1], "--model") == 0) {
        char* path = json_escape(argv[2]);
        snprintf(config, sizeof config, "{\"model\": \"%s\"}", path);
        free(path);
        argc -= 2;
        argv += 2;
    }
    const char* text = argc > 1 ? argv[1] : "Hello! How many tokens is this sentence?";
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = dynamo_runtime_create(config, &rt);
    if (st != DYNAMO_OK) return fail("dynamo_runtime_create", st);

    dynamo_model_info_t info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info; /* the library fills what this struct has room for */
    if ((st = dynamo_model_info(rt, NULL, &info)) != DYNAMO_OK) return fail("dynamo_model_info", st);
    printf("model %s (%s): context %u tokens, vocabulary %u, %u EOS id(s)\n", info.name, info.architecture,
           info.context_length, info.vocab_size, info.num_eos_ids);

    uint32_t* ids = NULL;
    size_t n = 0;
    if ((st = dynamo_tokenize(rt, NULL, text, 1, &ids, &n)) != DYNAMO_OK) return fail("dynamo_tokenize", st);
    printf("text: %zu tokens:", n);
    for (size_t i = 0; i < n && i < 16; i++) printf(" %u", ids[i]);
    printf("%s\n", n > 16 ? " ..." : "");
    char* back = NULL;
    if ((st = dynamo_detokenize(rt, NULL, ids, n, 1, &back)) != DYNAMO_OK) return fail("dynamo_detokenize", st);
    printf("decoded: %s\n", back);
    dynamo_free(back);
    dynamo_free(ids);

    /* a chat turn costs its template's tokens too */
    char* escaped = json_escape(text);
    char* messages = malloc(strlen(escaped) + 64);
    sprintf(messages, "[{\"role\": \"user\", \"content\": \"%s\"}]", escaped);
    free(escaped);
    char* prompt = NULL;
    st = dynamo_apply_chat_template(rt, NULL, messages, 1, &prompt);
    free(messages);
    if (st == DYNAMO_OK) {
        if ((st = dynamo_tokenize(rt, NULL, prompt, 0, &ids, &n)) != DYNAMO_OK) return fail("dynamo_tokenize", st);
        printf("as a chat turn: %zu tokens; room left for the reply: %ld tokens\n", n,
               (long)info.context_length - (long)n);
        dynamo_free(ids);
        dynamo_free(prompt);
    } else {
        printf("no chat template: %s\n", dynamo_last_error());
    }
    dynamo_runtime_destroy(rt);
    return 0;
}
