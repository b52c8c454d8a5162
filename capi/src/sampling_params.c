/* dynamo_sampling_params_t: llama.h-style typed sampling fields written into a request's JSON, so they
 * meet exactly the validation the JSON fields meet (the Python side's request types). */
#define _GNU_SOURCE
#include <locale.h>
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

/* Numbers in JSON's notation whatever locale the host set (a "de_DE" LC_NUMERIC prints 0,7). */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;
static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* The shortest decimal that reads back as the same float (0.7f is "0.7", not "0.699999988"). */
static void put_float(char* out, size_t cap, float value) {
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(out, cap, "%.*g", digits, (double)value);
        if (strtof(out, NULL) == value) return;
    }
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
        char number[32];
        put_float(number, sizeof number, floats[i].value);
        n += (size_t)snprintf(out + n, cap - n, "\"%s\":%s,", floats[i].key, number);
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
    pthread_once(&c_locale_once, make_c_locale);
    locale_t before = c_locale ? uselocale(c_locale) : (locale_t)0;
    int bad = params_text(params, fields, sizeof fields);
    if (c_locale) uselocale(before);
    if (bad) return DYNAMO_ERR_INVALID_ARGUMENT;
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
