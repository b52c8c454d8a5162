/* Internal declarations shared by the hand-written C parts of libdynamo_llm_capi
 * and the cffi-generated module (never installed). */
#ifndef DYN_INTERNAL_H
#define DYN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dynamo_llm.h"

#define DYN_MAX_REQUEST_BYTES (8u * 1024u * 1024u)
#define DYN_MAX_CONFIG_BYTES (1024u * 1024u)  /* config_json, as documented in dynamo_llm.h */

/* Events the loop thread drains (C -> Python, never waiting on the GIL). */
enum { DYN_EV_CHAT = 1, DYN_EV_GENERATE = 2, DYN_EV_CANCEL = 3 };

/* cffi:begin  Between the cffi markers: what the Python side calls, copied into the cffi cdef at build time
 * by capi/build_capi.py (this file is the only copy; keep the markers and one declaration per statement). */

typedef struct dyn_event {
    int32_t  kind;
    uint64_t runtime;     /* runtime handle value */
    uint64_t stream;      /* stream handle value */
    char*    endpoint;    /* DYN_EV_GENERATE only, else NULL */
    char*    request;     /* submissions only, else NULL */
    size_t   request_len;
    struct dyn_event* next;
} dyn_event_t;

/* ---- called by the Python side ---- */
int  dyn_wake_fd(void);
dyn_event_t* dyn_next_event(void);               /* NULL when empty; release with dyn_event_release */
void dyn_event_release(dyn_event_t* ev);
/* count chunks at once: meta holds DYN_CHUNK_META int32 per chunk (json_len, text_len or -1,
 * num_token_ids, finish_reason, choice_index); the blobs and token_ids hold their bytes/ids back to
 * back (pyimpl/capi/chunks.py's ChunkBatch fills them). */
#define DYN_CHUNK_META 5
int  dyn_stream_push_batch(uint64_t stream, size_t count, const char* json_blob, const char* text_blob,
                           const int32_t* meta, const uint32_t* token_ids);
/* the elements of a compact JSON array, one chunk each (token ids and finish reason read in C,
 * see chunk_scan.c): copied once here, split by the poller; -1 if the stream is gone or ended,
 * -2 if the blob is not an array. A malformed element ends the stream, when a poll reaches it,
 * with DYNAMO_ERR_INTERNAL (after the elements before it) and cancels the request. */
int  dyn_stream_push_json_array(uint64_t stream, const char* blob, size_t len);
void dyn_stream_finish(uint64_t stream, int32_t status, const char* message);
void dyn_set_error(const char* message);         /* this thread's dynamo_last_error */
void dyn_set_result(const char* text);           /* this thread's borrowed result string */
/* cffi:end */

/* ---- Python side, reached through cffi extern "Python+C" trampolines ---- */
/* cffi:python-begin (each declaration becomes `extern "Python+C"` in the cdef) */
int dyn_py_ready(void);                          /* 1 once pyimpl.capi.bridge is installed */
int dyn_py_runtime_create(uint64_t runtime, const char* config_json);
int dyn_py_runtime_destroy(uint64_t runtime);
int dyn_py_runtime_stats(uint64_t runtime);
/* cffi:python-end */

/* ---- C helpers ---- */
dynamo_status_t dyn_python_start(void);          /* idempotent; sets last error on failure */
/* dyn_py_runtime_* with the host's signals kept from Python and its threads (python_init.c) */
dynamo_status_t dyn_python_create(uint64_t runtime, const char* config_json);
dynamo_status_t dyn_python_destroy(uint64_t runtime);
dynamo_status_t dyn_python_stats(uint64_t runtime);
int  dyn_utf8_valid(const char* s, size_t n);
int  dyn_json_valid_object(const char* s, size_t n);
dynamo_status_t dyn_fail(dynamo_status_t status, const char* fmt, ...);
extern volatile int dyn_forked;

/* ---- chunk_scan.c: a JSON array of endpoint responses, element by element ---- */
typedef struct {
    const char* json;          /* the element's text, borrowed from the blob */
    size_t json_len;
    const uint32_t* token_ids; /* its top-level "token_ids" if an array of uint32, else NULL */
    size_t num_token_ids;
    int32_t finish_reason;     /* DYNAMO_FINISH_* of its top-level "finish_reason" */
} dyn_scanned_item;

typedef struct {
    const char *p, *end;
    dyn_scanned_item item;     /* valid after dyn_scan_next returned 1, until the next call */
    uint32_t* ids;             /* scratch for token ids */
    size_t ids_cap;
} dyn_array_scan;

int  dyn_scan_begin(dyn_array_scan* scan, const char* blob, size_t len); /* 0 if not an array */
int  dyn_scan_restart(dyn_array_scan* scan, const char* blob, size_t len); /* begin, keeping the ids scratch */
int  dyn_scan_next(dyn_array_scan* scan);  /* 1: scan->item is the next element; 0: done; -1: malformed */
void dyn_scan_end(dyn_array_scan* scan);

#endif
