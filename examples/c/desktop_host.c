/* desktop_host: a desktop app with two models and memory for one (BodhiApp's load strategies).
 *   usage: desktop_host MODEL_A_DIR MODEL_B_DIR ["prompt"]
 * The runtime is configured with both models and "max_loaded_models": 1. Asking model "a", then "b", then
 * "a" again loads a (Load), unloads a and loads b (DropAndLoad), then swaps back; a state callback shows the
 * changes as a status line would. Uses dynamo_runtime_set_state_callback and dynamo_chat_completion_sync;
 * the reply JSON is the caller's and goes back with dynamo_free. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamo_llm.h"

static const char* state_name(int32_t state) {
    switch (state) {
    case DYNAMO_MODEL_UNLOADED: return "unloaded";
    case DYNAMO_MODEL_LOADING: return "loading";
    case DYNAMO_MODEL_LOADED: return "loaded";
    case DYNAMO_MODEL_UNLOADING: return "unloading";
    default: return "failed";
    }
}

/* Called on a library thread, in order; a real app would post this to its UI thread. */
static void on_state(dynamo_runtime_t* rt, const char* model, int32_t state, const char* message, void* user) {
    (void)rt;
    (void)user;
    printf("[state] %s: %s%s%s\n", model, state_name(state), message ? ": " : "", message ? message : "");
    fflush(stdout);
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

static int ask(dynamo_runtime_t* rt, const char* model, const char* prompt) {
    char* text = json_escape(prompt);
    size_t cap = strlen(text) + 256;
    char* request = malloc(cap);
    if (!text || !request) return 1;
    snprintf(request, cap, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
             "\"max_tokens\":12,\"temperature\":0}", model, text);
    char* reply = NULL;
    dynamo_status_t st = dynamo_chat_completion_sync(rt, request, &reply);
    free(request);
    free(text);
    if (st != DYNAMO_OK) {
        fprintf(stderr, "desktop_host: %s: %s: %s\n", model, dynamo_status_str(st), dynamo_last_error());
        return 1;
    }
    printf("[reply] %s: %.200s\n", model, reply);
    dynamo_free(reply);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: desktop_host MODEL_A_DIR MODEL_B_DIR [\"prompt\"]\n");
        return 2;
    }
    char *a = json_escape(argv[1]), *b = json_escape(argv[2]);
    const char* prompt = argc > 3 ? argv[3] : "Hello!";
    char config[8192];
    snprintf(config, sizeof config, "{\"models\": [{\"name\": \"a\", \"path\": \"%s\"}, {\"name\": \"b\", \"path\": \"%s\"}],"
             " \"max_loaded_models\": 1}", a, b);
    free(a);
    free(b);
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = dynamo_runtime_create(config, &rt);
    if (st != DYNAMO_OK) {
        fprintf(stderr, "desktop_host: create: %s: %s\n", dynamo_status_str(st), dynamo_last_error());
        return 1;
    }
    dynamo_runtime_set_state_callback(rt, on_state, NULL);
    int failed = ask(rt, "a", prompt) || ask(rt, "b", prompt) || ask(rt, "a", prompt);
    dynamo_runtime_set_state_callback(rt, NULL, NULL); /* no callback runs after this returns */
    dynamo_runtime_destroy(rt);
    return failed;
}
