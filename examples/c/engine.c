/* A toy C engine served through the runtime: it answers the worker's token protocol (token ids and
 * sampling options in, token ids streamed out: pyimpl/llm/backend/model_server.py's wire format), publishes
 * its model card so an HTTP frontend serves it, and publishes its KV cache events with Dynamo's C functions
 * so a KV-aware router (python -m pyimpl.frontend --router-mode kv) sends a repeated prefix back here.
 *
 *   DYN_DISCOVERY_BACKEND=file DYN_REQUEST_PLANE=tcp ./engine MODEL_DIR [--name NAME]
 *       [--endpoint ns.component.endpoint] [--block-size N] [--token-delay-ms N]
 *
 * MODEL_DIR holds the tokenizer and chat template the frontend uses for this model. The "model" echoes the
 * prompt's tokens cyclically, max_tokens of them, one per token_delay_ms. Its "KV cache" is a FIFO of the
 * prompts' full blocks (named by a chained FNV-1a hash, the engine's own block ids); storing and evicting
 * them is published as KV events. SIGINT/SIGTERM stop it: the endpoint drains, then everything is released. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dynamo_llm.h"

enum { CACHE_BLOCKS = 256, MAX_PROMPT = 1 << 16 };

static struct {
    const char* model_dir;
    const char* name;
    const char* endpoint;
    uint32_t block_size;
    int token_delay_ms;
} opt = {NULL, "c-engine", "dynamo.backend.generate", 16, 2};

/* ---- the "KV cache": full prompt blocks, FIFO-evicted, published as KV events ---- */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cache[CACHE_BLOCKS];
static size_t cache_len, cache_head; /* a ring: cache[(cache_head + i) % CACHE_BLOCKS], i < cache_len */
static uint64_t next_event_id = 1;

static int cached(uint64_t id) {
    for (size_t i = 0; i < cache_len; i++)
        if (cache[(cache_head + i) % CACHE_BLOCKS] == id) return 1;
    return 0;
}

static uint64_t block_id(uint64_t parent, const uint32_t* tokens, uint32_t n) { /* chained FNV-1a */
    uint64_t h = 1469598103934665603ull ^ parent;
    for (uint32_t i = 0; i < n; i++) h = (h ^ tokens[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Store the prompt's full blocks that are not cached yet; evict the oldest beyond the capacity. */
static void prefill(const uint32_t* tokens, size_t n) {
    size_t blocks = n / opt.block_size;
    if (!blocks) return;
    uint64_t* ids = malloc(blocks * sizeof *ids);
    size_t* counts = malloc(blocks * sizeof *counts);
    uint64_t parent = 0;
    for (size_t b = 0; b < blocks; b++) {
        ids[b] = parent = block_id(parent, tokens + b * opt.block_size, opt.block_size);
        counts[b] = opt.block_size;
    }
    pthread_mutex_lock(&cache_mu);
    size_t first = 0;
    while (first < blocks && cached(ids[first])) first++;
    if (first < blocks) {
        dynamo_kv_event_publish_stored(next_event_id++, tokens + first * opt.block_size, counts + first,
                                       ids + first, blocks - first, first ? &ids[first - 1] : NULL, NULL);
        uint64_t evicted[CACHE_BLOCKS];
        size_t n_evicted = 0;
        for (size_t b = first; b < blocks; b++) {
            if (cache_len == CACHE_BLOCKS) {
                evicted[n_evicted++] = cache[cache_head];
                cache_head = (cache_head + 1) % CACHE_BLOCKS;
                cache_len--;
            }
            cache[(cache_head + cache_len++) % CACHE_BLOCKS] = ids[b];
        }
        if (n_evicted) dynamo_kv_event_publish_removed(next_event_id++, evicted, n_evicted);
    }
    pthread_mutex_unlock(&cache_mu);
    free(ids);
    free(counts);
}

/* ---- requests ---- */

typedef struct {
    dynamo_responder_t* responder;
    uint32_t* tokens;
    size_t num_tokens;
    long max_tokens;
} request_t;

static atomic_int live_requests;

/* The ints of the JSON array after "key": (no nesting inside), at most cap of them. */
static size_t int_array(const char* json, const char* key, uint32_t* out, size_t cap) {
    const char* p = strstr(json, key);
    if (!p || !(p = strchr(p + strlen(key), '['))) return 0;
    size_t n = 0;
    for (p++; *p && *p != ']' && n < cap;) {
        char* end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p) { p++; continue; }
        out[n++] = (uint32_t)v;
        p = end;
    }
    return n;
}

static long int_field(const char* json, const char* key, long fallback) {
    const char* p = strstr(json, key);
    if (!p || !(p = strchr(p + strlen(key), ':'))) return fallback;
    char* end;
    long v = strtol(p + 1, &end, 10);
    return end == p + 1 ? fallback : v;
}

static void* generate(void* arg) {
    request_t* req = arg;
    prefill(req->tokens, req->num_tokens);
    for (long i = 0; i < req->max_tokens; i++) {
        if (dynamo_responder_is_cancelled(req->responder)) {
            printf("engine: request cancelled by its client after %ld tokens\n", i);
            fflush(stdout);
            break;
        }
        char chunk[96];
        int last = i + 1 == req->max_tokens;
        int len = snprintf(chunk, sizeof chunk, "{\"token_ids\": [%u], \"finish_reason\": %s}",
                           req->tokens[i % (long)req->num_tokens], last ? "\"length\"" : "null");
        if (dynamo_responder_send(req->responder, chunk, (size_t)len) != DYNAMO_OK) break; /* cancelled */
        if (opt.token_delay_ms > 0) {
            struct timespec pause = {0, opt.token_delay_ms * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
    dynamo_responder_finish(req->responder, NULL);
    free(req->tokens);
    free(req);
    atomic_fetch_sub(&live_requests, 1);
    return NULL;
}

/* Called on the server's library thread: parse, then generate on a thread of our own. */
static void handle(void* user_data, const char* json, size_t len, dynamo_responder_t* responder) {
    (void)user_data;
    (void)len;
    request_t* req = calloc(1, sizeof *req);
    uint32_t* tokens = malloc(MAX_PROMPT * sizeof *tokens);
    req->responder = responder;
    req->num_tokens = int_array(json, "\"token_ids\"", tokens, MAX_PROMPT);
    req->tokens = tokens;
    req->max_tokens = int_field(json, "\"max_tokens\"", 16);
    if (req->num_tokens == 0) {
        dynamo_responder_finish(responder, "the request has no token_ids");
        free(tokens);
        free(req);
        return;
    }
    atomic_fetch_add(&live_requests, 1);
    pthread_t thread;
    if (pthread_create(&thread, NULL, generate, req) != 0) {
        atomic_fetch_sub(&live_requests, 1);
        dynamo_responder_finish(responder, "the engine could not start a thread");
        free(tokens);
        free(req);
        return;
    }
    pthread_detach(thread);
}

static int fail(const char* what) {
    fprintf(stderr, "engine: %s failed: %s\n", what, dynamo_last_error());
    return 1;
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc) opt.name = argv[++i];
        else if (!strcmp(argv[i], "--endpoint") && i + 1 < argc) opt.endpoint = argv[++i];
        else if (!strcmp(argv[i], "--block-size") && i + 1 < argc) opt.block_size = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--token-delay-ms") && i + 1 < argc) opt.token_delay_ms = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !opt.model_dir) opt.model_dir = argv[i];
        else { fprintf(stderr, "usage: %s MODEL_DIR [--name N] [--endpoint ns.c.e] [--block-size N] "
                               "[--token-delay-ms N]\n", argv[0]); return 2; }
    }
    if (!opt.model_dir || opt.block_size == 0) { fprintf(stderr, "engine: a MODEL_DIR is required\n"); return 2; }

    sigset_t stop_signals; /* blocked here, so sigwait below receives them */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    dynamo_runtime_t* rt = NULL;
    if (dynamo_runtime_create("{\"serve_model\": false}", &rt) != DYNAMO_OK) return fail("dynamo_runtime_create");
    dynamo_server_t* server = NULL;
    if (dynamo_endpoint_serve(rt, opt.endpoint, handle, NULL, &server) != DYNAMO_OK) return fail("serve");

    char ns[256], component[256];
    const char* dot = strchr(opt.endpoint, '.');
    const char* dot2 = dot ? strchr(dot + 1, '.') : NULL;
    if (!dot2) { fprintf(stderr, "engine: bad endpoint %s\n", opt.endpoint); return 2; }
    snprintf(ns, sizeof ns, "%.*s", (int)(dot - opt.endpoint), opt.endpoint);
    snprintf(component, sizeof component, "%.*s", (int)(dot2 - dot - 1), dot + 1);
    if (dynamo_llm_init(ns, component, dot2 + 1, opt.block_size) != DYNAMO_LLM_RESULT_OK)
        return fail("dynamo_llm_init");

    char card[4096];
    snprintf(card, sizeof card, "{\"name\": \"%s\", \"model_path\": \"%s\", \"kv_block_size\": %u}", opt.name,
             opt.model_dir, opt.block_size);
    if (dynamo_model_register(server, card) != DYNAMO_OK) return fail("dynamo_model_register");
    printf("engine ready: %s serves model %s\n", opt.endpoint, opt.name);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    dynamo_server_stop(server); /* deregister, drain */
    for (int i = 0; i < 200 && atomic_load(&live_requests); i++) {
        struct timespec pause = {0, 10000000L};
        nanosleep(&pause, NULL);
    }
    dynamo_llm_shutdown();
    dynamo_runtime_destroy(rt);
    printf("engine stopped\n");
    return 0;
}
