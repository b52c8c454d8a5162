/* chat: stream a reply of the embedded demo model (or of --model PATH: a HF folder or a .gguf file) to stdout.
 *   usage: chat [--model PATH] "your prompt" [max_tokens] [temperature]
 * $DYNAMO_LLM_CONFIG, if set, is passed to dynamo_runtime_create instead of "{}" (or {"model": PATH}). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamo_llm.h"

/* Append s to out as the body of a JSON string. */
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

static int fail(const char* what, dynamo_status_t st) {
    fprintf(stderr, "chat: %s: %s: %s\n", what, dynamo_status_str(st), dynamo_last_error());
    return 1;
}

int main(int argc, char** argv) {
    const char* config = getenv("DYNAMO_LLM_CONFIG");
    char* model_config = NULL;
    if (argc > 2 && strcmp(argv[1], "--model") == 0) {
        char* path = json_escape(argv[2]);
        model_config = malloc(strlen(path) + 16);
        sprintf(model_config, "{\"model\":\"%s\"}", path);
        free(path);
        if (!config) config = model_config;
        argc -= 2;
        argv += 2;
    }
    const char* prompt = argc > 1 ? argv[1] : "Hello, who are you?";
    int max_tokens = argc > 2 ? atoi(argv[2]) : 64;
    double temperature = argc > 3 ? atof(argv[3]) : 1.0;
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = dynamo_runtime_create(config, &rt);
    free(model_config);
    if (st != DYNAMO_OK) return fail("dynamo_runtime_create", st);

    char* body = json_escape(prompt);
    size_t cap = strlen(body) + 256;
    char* request = malloc(cap);
    snprintf(request, cap, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":%d,"
             "\"temperature\":%g}", body, max_tokens, temperature);
    free(body);

    dynamo_stream_t* stream = NULL;
    st = dynamo_chat_completion(rt, request, &stream);
    free(request);
    if (st != DYNAMO_OK) { dynamo_runtime_destroy(rt); return fail("dynamo_chat_completion", st); }

    dynamo_chunk_t chunk;
    while ((st = dynamo_stream_poll(stream, -1, &chunk)) == DYNAMO_OK) {
        if (chunk.text) fwrite(chunk.text, 1, chunk.text_len, stdout);
        fflush(stdout);
    }
    putchar('\n');
    int rc = st == DYNAMO_END ? 0 : fail("dynamo_stream_poll", st);
    dynamo_stream_free(stream);
    dynamo_runtime_destroy(rt);
    return rc;
}
