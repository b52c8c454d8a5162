/* dynamo_sampling_params_t: llama.h-style typed sampling fields written into a request's JSON, so they
 * meet exactly the validation the JSON fields meet (the Python side's request types). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_slot.h"

dynamo_sampling_params_t dynamo_sampling_params_default(void) {
    dynamo_sampling_params_t p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    return p;
}

/* The params' fields as `"key": value,` pairs (each ends with a comma); -1 on a non-finite float. */
static int params_text(const dynamo_sampling_params_t* p, char* out, size_t cap) {
    const struct { const char* key; float value; } floats[] = {
        {"temperature", p->temperature}, {"top_p", p->top_p}, {"min_p", p->min_p},
        {"repetition_penalty", p->repetition_penalty}, {"presence_penalty", p->presence_penalty},
        {"frequency_penalty", p->frequency_penalty},
    };
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n, "\"min_tokens\":%d,\"top_k\":%d,\"ignore_eos\":%s,", (int)p->min_tokens,
                          (int)p->top_k, p->ignore_eos ? "true" : "false");
    if (p->max_tokens) n += (size_t)snprintf(out + n, cap - n, "\"max_tokens\":%d,", (int)p->max_tokens);
    if (p->has_seed) n += (size_t)snprintf(out + n, cap - n, "\"seed\":%lld,", (long long)p->seed);
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        if (!isfinite(floats[i].value)) {
            dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "params.%s is not a finite number", floats[i].key);
            return -1;
        }
        n += (size_t)snprintf(out + n, cap - n, "\"%s\":%.9g,", floats[i].key, (double)floats[i].value);
    }
    return 0;
}

dynamo_status_t dynamo_sampling_params_apply(const dynamo_sampling_params_t* params, const char* request_json,
                                             char** out_json) {
    REFUSE_IF_FORKED();
    if (!params || !request_json || !out_json)
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "params, request_json or out_json is NULL");
    if (params->struct_size < sizeof(dynamo_sampling_params_t))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT,
                        "params->struct_size is %u: start from dynamo_sampling_params_default()",
                        (unsigned)params->struct_size);
    size_t len;
    dynamo_status_t st = dyn_check_json_object("request_json", request_json, &len);
    if (st != DYNAMO_OK) return st;
    char fields[1024];
    if (params_text(params, fields, sizeof fields) != 0) return DYNAMO_ERR_INVALID_ARGUMENT;
    /* Ours go after the request's own members: the request reader (Python's json) keeps the last of
     * duplicate keys, so ours replace the request's keys of the same names. */
    const char* open = strchr(request_json, '{');
    const char* close = strrchr(request_json, '}');
    const char* p = open + 1;
    while (p < close && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    int empty = p == close;
    size_t fields_len = strlen(fields) - 1; /* without the last comma */
    size_t body = (size_t)(close - open - 1);
    char* out = malloc(body + fields_len + 4);
    if (!out) return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "out of memory");
    size_t n = 0;
    out[n++] = '{';
    memcpy(out + n, open + 1, body);
    n += body;
    if (!empty) out[n++] = ',';
    memcpy(out + n, fields, fields_len);
    n += fields_len;
    out[n++] = '}';
    out[n] = '\0';
    *out_json = out;
    return DYNAMO_OK;
}
