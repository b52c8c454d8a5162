/* The blocking host calls of the C ABI: tokenize, detokenize, chat template, model info, embeddings
 * and whole chat replies. Each checks its arguments here, then makes one dyn_py_host_call (the Python
 * side, pyimpl/capi/host_calls.py, runs it on the runtime's loop) whose answer comes back as this
 * thread's owned result: bytes the host receives and frees with dynamo_free. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_slot.h"

enum { MAX_MODEL_NAME = 1024 };

/* ---- this thread's owned result ---- */

static __thread char* owned;
static __thread size_t owned_len;
static __thread dynamo_model_info_t tls_info;

static void set_owned(char* data, size_t len) {
    free(owned);
    owned = data;
    owned_len = len;
}

void dyn_set_owned_result(const char* data, size_t len) {
    char* copy = malloc(len + 1);
    if (copy) {
        if (len) memcpy(copy, data, len);
        copy[len] = '\0';
    }
    set_owned(copy, copy ? len : 0);
}

char* dyn_take_owned_result(size_t* len) {
    char* out = owned;
    if (len) *len = owned_len;
    owned = NULL;
    owned_len = 0;
    return out;
}

static void copy_text(char* dst, size_t cap, const char* src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

void dyn_set_model_info(uint32_t context_length, uint32_t vocab_size, const uint32_t* eos, size_t num_eos,
                        uint32_t kv_block_size, uint32_t kv_total_blocks, int32_t is_embedding,
                        const char* name, const char* architecture, const char* dtype) {
    dynamo_model_info_t* info = &tls_info;
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    info->context_length = context_length;
    info->vocab_size = vocab_size;
    if (num_eos > DYNAMO_MODEL_INFO_MAX_EOS) num_eos = DYNAMO_MODEL_INFO_MAX_EOS;
    info->num_eos_ids = (uint32_t)num_eos;
    for (size_t i = 0; i < num_eos; i++) info->eos_ids[i] = eos[i];
    info->kv_block_size = kv_block_size;
    info->kv_total_blocks = kv_total_blocks;
    info->is_embedding = is_embedding;
    copy_text(info->name, sizeof info->name, name);
    copy_text(info->architecture, sizeof info->architecture, architecture);
    copy_text(info->dtype, sizeof info->dtype, dtype);
}

void dyn_set_embeddings(const float* data, size_t count, size_t dims, uint32_t prompt_tokens, const char* model) {
    size_t model_len = strlen(model ? model : "");
    size_t floats = count * dims;
    if (dims && floats / dims != count) { set_owned(NULL, 0); return; }
    size_t head = (sizeof(dynamo_embeddings_t) + 15) & ~(size_t)15;
    dynamo_embeddings_t* e = malloc(head + floats * sizeof(float) + model_len + 1);
    if (!e) { set_owned(NULL, 0); return; }
    float* values = (float*)((char*)e + head);
    char* name = (char*)(values + floats);
    if (floats) memcpy(values, data, floats * sizeof(float));
    memcpy(name, model ? model : "", model_len + 1);
    e->data = values;
    e->count = count;
    e->dims = dims;
    e->prompt_tokens = prompt_tokens;
    e->reserved0 = 0;
    e->model = name;
    set_owned((char*)e, 0);
}

void dynamo_free(void* ptr) { free(ptr); }

/* ---- one call into the Python side ---- */

typedef struct {
    uint64_t runtime;
    int32_t op;
    const char* model;
    const char* arg;
    size_t arg_len;
    int32_t flag;
} host_call_args;

static int host_call_python(void* p) {
    host_call_args* a = p;
    return dyn_py_host_call(a->runtime, a->op, a->model, a->arg, a->arg_len, a->flag);
}

static dynamo_status_t check_text(const char* what, const char* s, size_t* len) {
    if (!s) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "%s is NULL", what);
    *len = strnlen(s, DYN_MAX_REQUEST_BYTES + 1);
    if (*len > DYN_MAX_REQUEST_BYTES)
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "%s is larger than %u bytes", what, DYN_MAX_REQUEST_BYTES);
    if (!dyn_utf8_valid(s, *len)) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "%s is not valid UTF-8", what);
    return DYNAMO_OK;
}

/* Check rt and model, run op, hand over the owned result (*out, never NULL on DYNAMO_OK). */
static dynamo_status_t host_call(dynamo_runtime_t* rt, int32_t op, const char* model, const char* arg,
                                 size_t arg_len, int32_t flag, char** out, size_t* out_len) {
    REFUSE_IF_FORKED();
    if (!model) model = "";
    size_t model_len = strnlen(model, MAX_MODEL_NAME + 1);
    if (model_len > MAX_MODEL_NAME || !dyn_utf8_valid(model, model_len))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "model must be at most %d bytes of UTF-8", MAX_MODEL_NAME);
    uint64_t h;
    dynamo_status_t st = dyn_runtime_check(rt, &h);
    if (st != DYNAMO_OK) return st;
    set_owned(NULL, 0);
    host_call_args a = {h, op, model, arg ? arg : "", arg_len, flag};
    st = (dynamo_status_t)dyn_python_call(host_call_python, &a);
    size_t len = 0;
    char* result = dyn_take_owned_result(&len);
    if (st != DYNAMO_OK) { free(result); return st; }
    if (!result) return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "out of memory for the result");
    *out = result;
    if (out_len) *out_len = len;
    return DYNAMO_OK;
}

/* ---- text ---- */

dynamo_status_t dynamo_tokenize(dynamo_runtime_t* rt, const char* model, const char* text, int add_special,
                                uint32_t** ids, size_t* n) {
    REFUSE_IF_FORKED();
    if (!ids || !n) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "ids or n is NULL");
    size_t len;
    dynamo_status_t st = check_text("text", text, &len);
    if (st != DYNAMO_OK) return st;
    char* bytes;
    size_t bytes_len;
    st = host_call(rt, DYN_OP_TOKENIZE, model, text, len, add_special != 0, &bytes, &bytes_len);
    if (st != DYNAMO_OK) return st;
    if (bytes_len % sizeof(uint32_t)) { free(bytes); return dyn_fail(DYNAMO_ERR_INTERNAL, "token ids misaligned"); }
    *n = bytes_len / sizeof(uint32_t);
    if (*n == 0) { free(bytes); bytes = NULL; }
    *ids = (uint32_t*)(void*)bytes; /* malloc'd: aligned for any type */
    return DYNAMO_OK;
}

dynamo_status_t dynamo_detokenize(dynamo_runtime_t* rt, const char* model, const uint32_t* ids, size_t n,
                                  int skip_special, char** text) {
    REFUSE_IF_FORKED();
    if (!text) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "text is NULL");
    if (n && !ids) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "ids is NULL with n > 0");
    if (n > DYN_MAX_REQUEST_BYTES / sizeof(uint32_t))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "more than %u token ids",
                        (unsigned)(DYN_MAX_REQUEST_BYTES / sizeof(uint32_t)));
    return host_call(rt, DYN_OP_DETOKENIZE, model, (const char*)ids, n * sizeof(uint32_t), skip_special != 0,
                     text, NULL);
}

dynamo_status_t dynamo_apply_chat_template(dynamo_runtime_t* rt, const char* model, const char* messages_json,
                                           int add_generation_prompt, char** prompt) {
    REFUSE_IF_FORKED();
    if (!prompt) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "prompt is NULL");
    size_t len;
    dynamo_status_t st = check_text("messages_json", messages_json, &len);
    if (st != DYNAMO_OK) return st;
    return host_call(rt, DYN_OP_CHAT_TEMPLATE, model, messages_json, len, add_generation_prompt != 0, prompt, NULL);
}

/* ---- model info ---- */

dynamo_status_t dynamo_model_info_json(dynamo_runtime_t* rt, const char* model, char** json) {
    REFUSE_IF_FORKED();
    if (!json) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "json is NULL");
    return host_call(rt, DYN_OP_MODEL_INFO, model, NULL, 0, 0, json, NULL);
}

dynamo_status_t dynamo_model_info(dynamo_runtime_t* rt, const char* model, dynamo_model_info_t* info) {
    REFUSE_IF_FORKED();
    if (!info) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "info is NULL");
    size_t want = info->struct_size;
    if (want < 2 * sizeof(uint32_t))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "info->struct_size must be set to sizeof(dynamo_model_info_t)");
    char* json;
    dynamo_status_t st = host_call(rt, DYN_OP_MODEL_INFO, model, NULL, 0, 0, &json, NULL);
    if (st != DYNAMO_OK) return st;
    free(json);
    dynamo_model_info_t filled = tls_info;
    filled.struct_size = info->struct_size;
    memcpy(info, &filled, want < sizeof filled ? want : sizeof filled);
    return DYNAMO_OK;
}

/* ---- whole replies ---- */

dynamo_status_t dyn_check_json_object(const char* what, const char* json, size_t* len) {
    dynamo_status_t st = check_text(what, json, len);
    if (st != DYNAMO_OK) return st;
    if (!dyn_json_valid_object(json, *len))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "%s is not a well-formed JSON object", what);
    return DYNAMO_OK;
}

dynamo_status_t dynamo_chat_completion_sync(dynamo_runtime_t* rt, const char* request_json, char** response_json) {
    REFUSE_IF_FORKED();
    if (!response_json) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "response_json is NULL");
    size_t len;
    dynamo_status_t st = dyn_check_json_object("request_json", request_json, &len);
    if (st != DYNAMO_OK) return st;
    return host_call(rt, DYN_OP_CHAT_SYNC, NULL, request_json, len, 0, response_json, NULL);
}

dynamo_status_t dynamo_embeddings(dynamo_runtime_t* rt, const char* request_json, dynamo_embeddings_t** result) {
    REFUSE_IF_FORKED();
    if (!result) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "result is NULL");
    size_t len;
    dynamo_status_t st = dyn_check_json_object("request_json", request_json, &len);
    if (st != DYNAMO_OK) return st;
    char* block;
    st = host_call(rt, DYN_OP_EMBEDDINGS, NULL, request_json, len, 0, &block, NULL);
    if (st == DYNAMO_OK) *result = (dynamo_embeddings_t*)(void*)block;
    return st;
}
