/* Dynamo's C KV-event API (dynamo_llm_init / _shutdown / dynamo_kv_event_publish_*): the process's
 * publisher state and every argument check live here; a publish copies the event into the outbox and
 * returns (never waits for the interpreter); pyimpl/capi/kv_publisher_c.py hashes and publishes. */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dyn_internal.h"

enum { LLM_UNINITIALIZED, LLM_INITIALIZED, LLM_SHUT_DOWN };

typedef struct {
    char* namespace_name;
    char* component;
    char* endpoint;
    uint32_t kv_block_size;
} llm_config;

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;  /* serialises init and shutdown */
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER; /* the state; publishes queue under it */
static int state = LLM_UNINITIALIZED;
static llm_config current;

static dynamo_llm_result_t llm_err(const char* fmt, const char* detail) {
    char message[512];
    snprintf(message, sizeof message, fmt, detail ? detail : "");
    dyn_set_error(message);
    fprintf(stderr, "dynamo_llm: %s\n", message); /* Dynamo logs its errors; a Dynamo host reads only that */
    return DYNAMO_LLM_RESULT_ERR;
}

/* A trimmed copy of s (Dynamo trims white space), or NULL when s is NULL, not UTF-8 or blank. */
static char* trimmed(const char* s) {
    if (!s || !dyn_utf8_valid(s, strlen(s))) return NULL;
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return n ? strndup(s, n) : NULL;
}

static void config_clear(llm_config* c) {
    free(c->namespace_name);
    free(c->component);
    free(c->endpoint);
    memset(c, 0, sizeof *c);
}

static int config_same(const llm_config* a, const llm_config* b) {
    return strcmp(a->namespace_name, b->namespace_name) == 0 && strcmp(a->component, b->component) == 0 &&
           strcmp(a->endpoint, b->endpoint) == 0 && a->kv_block_size == b->kv_block_size;
}

typedef struct { const llm_config* config; } init_call;
static int call_init(void* arg) {
    const llm_config* c = ((init_call*)arg)->config;
    return dyn_py_llm_init(c->namespace_name, c->component, c->endpoint, c->kv_block_size);
}
static int call_shutdown(void* arg) { (void)arg; return dyn_py_llm_shutdown(); }

dynamo_llm_result_t dynamo_llm_init(const char* namespace_name, const char* component_name,
                                    const char* endpoint_name, uint32_t kv_block_size) {
    if (dyn_forked) return llm_err("called from a child process after fork()%s", NULL);
    llm_config wanted = {0};
    wanted.namespace_name = trimmed(namespace_name);
    wanted.endpoint = trimmed(endpoint_name);
    wanted.component = trimmed(component_name);
    if (!wanted.component) wanted.component = strdup("backend"); /* NULL, blank or not UTF-8: Dynamo's default */
    wanted.kv_block_size = kv_block_size;
    const char* bad = !wanted.namespace_name ? "the namespace is NULL, empty or not UTF-8"
                    : !wanted.endpoint       ? "the endpoint is NULL, empty or not UTF-8"
                    : !wanted.component      ? "out of memory"
                    : kv_block_size == 0     ? "kv_block_size must be greater than zero" : NULL;
    if (bad) {
        config_clear(&wanted);
        return llm_err("dynamo_llm_init: %s", bad);
    }
    pthread_mutex_lock(&init_mu);
    pthread_mutex_lock(&state_mu);
    int now = state;
    pthread_mutex_unlock(&state_mu);
    dynamo_llm_result_t result = DYNAMO_LLM_RESULT_OK;
    if (now == LLM_INITIALIZED) {
        if (!config_same(&current, &wanted))
            result = llm_err("dynamo_llm_init: already initialised with other arguments (%s); the first stay",
                             current.endpoint);
    } else if (now == LLM_SHUT_DOWN) {
        result = llm_err("dynamo_llm_init: called after dynamo_llm_shutdown; the publisher is once per process%s",
                         NULL);
    } else if (dyn_python_start() != DYNAMO_OK) {
        result = llm_err("dynamo_llm_init: %s", dynamo_last_error());
    } else {
        init_call call = {&wanted};
        if (dyn_python_call(call_init, &call) != DYNAMO_OK) {
            result = llm_err("dynamo_llm_init: %s", dynamo_last_error());
        } else {
            pthread_mutex_lock(&state_mu);
            current = wanted;
            memset(&wanted, 0, sizeof wanted);
            state = LLM_INITIALIZED;
            pthread_mutex_unlock(&state_mu);
        }
    }
    pthread_mutex_unlock(&init_mu);
    config_clear(&wanted);
    return result;
}

dynamo_llm_result_t dynamo_llm_shutdown(void) {
    if (dyn_forked) return llm_err("called from a child process after fork()%s", NULL);
    pthread_mutex_lock(&init_mu);
    pthread_mutex_lock(&state_mu);
    int was = state;
    if (was == LLM_INITIALIZED) state = LLM_SHUT_DOWN; /* publishes from now on: ERR */
    pthread_mutex_unlock(&state_mu);
    dynamo_llm_result_t result = DYNAMO_LLM_RESULT_OK;
    if (was == LLM_UNINITIALIZED) {
        result = llm_err("dynamo_llm_shutdown: dynamo_llm_init has not succeeded%s", NULL);
    } else if (was == LLM_INITIALIZED && dyn_python_call(call_shutdown, NULL) != DYNAMO_OK) {
        result = llm_err("dynamo_llm_shutdown: %s", dynamo_last_error());
    }
    pthread_mutex_unlock(&init_mu);
    return result;
}

dynamo_llm_result_t dynamo_llm_load_publisher_create(void) { return DYNAMO_LLM_RESULT_OK; }

/* The blobs read by pyimpl/capi/kv_publisher_c.py (native byte order, one process):
 * stored:  u64 event_id, u64 num_blocks_kept, u64 has_parent, u64 parent, u64 lora_len, u64 bad_block_tokens
 *          (the token count of the first block not published, 0 if all were), u64 block_ids[kept],
 *          u32 tokens[kept * kv_block_size], lora bytes;
 * removed: u64 event_id, u64 num_blocks, u64 block_ids[num_blocks]. */
enum { STORED_HEADER = 6, REMOVED_HEADER = 2 };

static dynamo_llm_result_t queue_locked(int32_t kind, void* blob, size_t len, const char* what) {
    dyn_event_t* ev = dyn_outbox_event(kind, 0, NULL, 0);
    if (!ev) { free(blob); return llm_err("%s: out of memory", what); }
    ev->request = blob;
    ev->request_len = len;
    dyn_outbox_push(ev);
    return DYNAMO_LLM_RESULT_OK;
}

dynamo_llm_result_t dynamo_kv_event_publish_stored(uint64_t event_id, const uint32_t* token_ids,
                                                   const size_t* num_block_tokens, const uint64_t* block_ids,
                                                   size_t num_blocks, const uint64_t* parent_hash,
                                                   const char* lora_name) {
    static const char* what = "dynamo_kv_event_publish_stored";
    if (num_blocks && (!token_ids || !num_block_tokens || !block_ids))
        return llm_err("%s: token_ids, num_block_tokens and block_ids must not be NULL", what);
    size_t lora_len = lora_name ? strlen(lora_name) : 0;
    if (lora_name && !dyn_utf8_valid(lora_name, lora_len)) return llm_err("%s: lora_name is not UTF-8", what);
    pthread_mutex_lock(&state_mu);
    if (state != LLM_INITIALIZED) {
        pthread_mutex_unlock(&state_mu);
        return llm_err("%s: dynamo_llm_init must succeed first (and dynamo_llm_shutdown ends publishing)", what);
    }
    size_t block = current.kv_block_size, kept = 0;
    while (kept < num_blocks && num_block_tokens[kept] == block) kept++; /* Dynamo stops at the first partial one */
    uint64_t bad = kept < num_blocks ? (uint64_t)num_block_tokens[kept] : 0;
    if (kept < num_blocks && bad == 0) bad = UINT64_MAX; /* a 0-token block: still "not a full block" */
    size_t len = (STORED_HEADER + kept) * sizeof(uint64_t) + kept * block * sizeof(uint32_t) + lora_len;
    char* blob = malloc(len + 1);
    if (!blob) { pthread_mutex_unlock(&state_mu); return llm_err("%s: out of memory", what); }
    uint64_t header[STORED_HEADER] = {event_id, kept, parent_hash != NULL, parent_hash ? *parent_hash : 0,
                                      lora_len, bad};
    char* p = blob;
    memcpy(p, header, sizeof header), p += sizeof header;
    if (kept) memcpy(p, block_ids, kept * sizeof(uint64_t)), p += kept * sizeof(uint64_t);
    if (kept) memcpy(p, token_ids, kept * block * sizeof(uint32_t)), p += kept * block * sizeof(uint32_t);
    if (lora_len) memcpy(p, lora_name, lora_len);
    blob[len] = '\0';
    dynamo_llm_result_t result = queue_locked(DYN_OUT_KV_STORED, blob, len, what);
    pthread_mutex_unlock(&state_mu);
    return result;
}

dynamo_llm_result_t dynamo_kv_event_publish_removed(uint64_t event_id, const uint64_t* block_ids,
                                                    size_t num_blocks) {
    static const char* what = "dynamo_kv_event_publish_removed";
    if (num_blocks && !block_ids) return llm_err("%s: block_ids must not be NULL", what);
    size_t len = (REMOVED_HEADER + num_blocks) * sizeof(uint64_t);
    char* blob = malloc(len + 1);
    if (!blob) return llm_err("%s: out of memory", what);
    uint64_t header[REMOVED_HEADER] = {event_id, num_blocks};
    memcpy(blob, header, sizeof header);
    if (num_blocks) memcpy(blob + sizeof header, block_ids, num_blocks * sizeof(uint64_t));
    blob[len] = '\0';
    pthread_mutex_lock(&state_mu);
    if (state != LLM_INITIALIZED) {
        pthread_mutex_unlock(&state_mu);
        free(blob);
        return llm_err("%s: dynamo_llm_init must succeed first (and dynamo_llm_shutdown ends publishing)", what);
    }
    dynamo_llm_result_t result = queue_locked(DYN_OUT_KV_REMOVED, blob, len, what);
    pthread_mutex_unlock(&state_mu);
    return result;
}
