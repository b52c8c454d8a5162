/* Splits a compact JSON array of endpoint responses (one msgspec encode of a whole batch on the
 * Python side) into chunks, reading each object's top-level "token_ids" and "finish_reason" here
 * instead of in Python: the generic-endpoint hot path does no per-chunk Python work but encode.
 * Every read is bounded by the blob's end; a malformed blob is reported, never overrun. */
#include <stdlib.h>
#include <string.h>

#include "dyn_internal.h"

static const char* skip_ws(const char* p, const char* end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p at '"': just past the closing quote, or NULL. */
static const char* skip_string(const char* p, const char* end) {
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* p at the first byte of a value: just past it, or NULL. */
static const char* skip_value(const char* p, const char* end) {
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p != '[' && *p != '{') { /* number, true, false, null: at least one byte (`[,` has no element) */
        const char* start = p;
        while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
        return p > start ? p : NULL;
    }
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            if (!(p = skip_string(p, end))) return NULL;
            continue;
        }
        if (c == '[' || c == '{') depth++;
        else if ((c == ']' || c == '}') && --depth == 0) return p + 1;
        p++;
    }
    return NULL;
}

/* [v, ...] of integers in 0..UINT32_MAX into scan->ids; 0 (and no ids) for anything else. */
static int read_token_ids(dyn_array_scan* scan, const char* p, const char* end) {
    size_t n = 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return 1;
    while (p < end) {
        if (*p < '0' || *p > '9') return 0;
        uint64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            v = v * 10 + (uint64_t)(*p++ - '0');
            if (v > UINT32_MAX) return 0;
        }
        if (n == scan->ids_cap) {
            size_t cap = scan->ids_cap ? scan->ids_cap * 2 : 64;
            uint32_t* grown = realloc(scan->ids, cap * sizeof *grown);
            if (!grown) return 0;
            scan->ids = grown;
            scan->ids_cap = cap;
        }
        scan->ids[n++] = (uint32_t)v;
        p = skip_ws(p, end);
        if (p < end && *p == ']') {
            scan->item.token_ids = scan->ids;
            scan->item.num_token_ids = n;
            return 1;
        }
        if (p >= end || *p != ',') return 0;
        p = skip_ws(p + 1, end);
    }
    return 0;
}

/* DYNAMO_FINISH_* of a finish_reason value [p, end), as pyimpl.capi.status.finish_code maps it:
 * null, false, 0 and "" are none, a known string its code, anything else an error. */
static int32_t finish_of(const char* p, const char* end) {
    static const struct { const char* text; int32_t code; } known[] = {
        {"\"stop\"", DYNAMO_FINISH_STOP}, {"\"eos\"", DYNAMO_FINISH_STOP}, {"\"length\"", DYNAMO_FINISH_LENGTH},
        {"\"tool_calls\"", DYNAMO_FINISH_TOOL_CALLS}, {"\"abort\"", DYNAMO_FINISH_CANCELLED},
        {"\"cancelled\"", DYNAMO_FINISH_CANCELLED}, {"\"error\"", DYNAMO_FINISH_ERROR},
        {"null", DYNAMO_FINISH_NONE}, {"false", DYNAMO_FINISH_NONE}, {"0", DYNAMO_FINISH_NONE}, {"\"\"", DYNAMO_FINISH_NONE}};
    size_t n = (size_t)(end - p);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].text) == n && memcmp(known[i].text, p, n) == 0) return known[i].code;
    return DYNAMO_FINISH_ERROR;
}

/* p at '{': reads the object's top-level fields that a dynamo_chunk_t carries while skipping it
 * (one pass); just past its '}', or NULL. */
static const char* read_object(dyn_array_scan* scan, const char* p, const char* end) {
    p = skip_ws(p + 1, end);
    while (p < end && *p != '}') {
        if (*p != '"') return NULL;
        const char* key = p + 1;
        if (!(p = skip_string(p, end))) return NULL;
        size_t key_len = (size_t)(p - 1 - key);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return NULL;
        const char* value = skip_ws(p + 1, end);
        if (!(p = skip_value(value, end))) return NULL;
        if (key_len == 9 && memcmp(key, "token_ids", 9) == 0) {
            scan->item.token_ids = NULL;
            scan->item.num_token_ids = 0;
            if (*value == '[' && !read_token_ids(scan, value, p)) scan->item.num_token_ids = 0;
        } else if (key_len == 13 && memcmp(key, "finish_reason", 13) == 0) {
            scan->item.finish_reason = finish_of(value, p);
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') p = skip_ws(p + 1, end);
    }
    return p < end ? p + 1 : NULL;
}

int dyn_scan_begin(dyn_array_scan* scan, const char* blob, size_t len) {
    memset(scan, 0, sizeof *scan);
    return dyn_scan_restart(scan, blob, len);
}

int dyn_scan_restart(dyn_array_scan* scan, const char* blob, size_t len) {
    memset(&scan->item, 0, sizeof scan->item);
    scan->end = blob + len;
    scan->p = skip_ws(blob, scan->end);
    if (scan->p >= scan->end || *scan->p != '[') return 0;
    scan->p = skip_ws(scan->p + 1, scan->end);
    return scan->p < scan->end;
}

int dyn_scan_next(dyn_array_scan* scan) {
    const char *p = scan->p, *end = scan->end;
    if (p >= end || *p == ']') return 0;
    dyn_scanned_item* item = &scan->item;
    item->token_ids = NULL;
    item->num_token_ids = 0;
    item->finish_reason = DYNAMO_FINISH_NONE;
    const char* after = *p == '{' ? read_object(scan, p, end) : skip_value(p, end);
    if (!after) return -1;
    item->json = p;
    item->json_len = (size_t)(after - p);
    p = skip_ws(after, end);
    if (p < end && *p == ',') p = skip_ws(p + 1, end);
    else if (p < end && *p == ']') p = end; /* done: the element's closing byte is never read again */
    else return -1;
    scan->p = p;
    return 1;
}

void dyn_scan_end(dyn_array_scan* scan) {
    free(scan->ids);
    scan->ids = NULL;
}
