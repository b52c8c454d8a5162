/* Internal declarations shared by the hand-written C parts of libdynamo_llm_capi
 * and the cffi-generated module (never installed). */
#ifndef DYN_INTERNAL_H
#define DYN_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "dynamo_llm.h"

#define DYN_MAX_REQUEST_BYTES (8u * 1024u * 1024u)
#define DYN_MAX_CONFIG_BYTES (1024u * 1024u)  /* config_json, as documented in dynamo_llm.h */

/* Events the loop thread drains (C -> Python, never waiting on the GIL). */
enum { DYN_EV_CHAT = 1, DYN_EV_GENERATE = 2, DYN_EV_CANCEL = 3, DYN_EV_COMPLETION = 4, DYN_EV_RESPONSES = 5 };

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
/* ---- the host API (host_text.c, log_callback.c; Python side: pyimpl/capi/host_calls.py, log_bridge.py) ----
 * dyn_py_host_call's ops; each answers with this thread's owned result (bytes handed to the host) */
#define DYN_OP_TOKENIZE 1
#define DYN_OP_DETOKENIZE 2
#define DYN_OP_CHAT_TEMPLATE 3
#define DYN_OP_MODEL_INFO 4
#define DYN_OP_EMBEDDINGS 5
#define DYN_OP_CHAT_SYNC 6
void dyn_set_owned_result(const char* data, size_t len); /* a malloc'd copy + NUL, taken by dyn_take_owned_result */
/* DYN_OP_MODEL_INFO also fills this thread's dynamo_model_info_t (strings NUL-terminated, truncated) */
void dyn_set_model_info(uint32_t context_length, uint32_t vocab_size, const uint32_t* eos, size_t num_eos,
                        uint32_t kv_block_size, uint32_t kv_total_blocks, int32_t is_embedding,
                        const char* name, const char* architecture, const char* dtype);
/* DYN_OP_EMBEDDINGS: this thread's owned result becomes one dynamo_embeddings_t allocation */
void dyn_set_embeddings(const float* data, size_t count, size_t dims, uint32_t prompt_tokens, const char* model);
void dyn_log_emit(int32_t level, const char* logger, const char* message); /* to the host's log callback */
int  dyn_log_wanted(int32_t* level);             /* 1 when the host set a log callback; marks Python attached */
void dyn_model_state_emit(uint64_t runtime, const char* model, int32_t state, const char* message); /* model_states.c */
/* ---- C/C++ engines (outbox.c, kv_events_c.c, endpoint_serve.c; Python side: pyimpl/capi/c_engines.py) ----
 * the outbox: a second queue to the loop thread; its events' kind is a DYN_OUT_*, `stream` the responder
 * (SEND/FINISH), `request` the payload: KV blobs (layout in pyimpl/capi/kv_publisher_c.py), a response's
 * JSON, a finish's error message (NULL: a normal end) */
#define DYN_OUT_KV_STORED 1
#define DYN_OUT_KV_REMOVED 2
#define DYN_OUT_SEND 3
#define DYN_OUT_FINISH 4
int  dyn_outbox_fd(void);
dyn_event_t* dyn_outbox_next(void);              /* NULL when empty; release with dyn_event_release */
/* hand a request of a C-served endpoint to its server's handler thread: the new responder's handle,
 * 0 when the server is stopping or gone (or out of memory) */
uint64_t dyn_serve_dispatch(uint64_t server, const char* request, size_t len);
void dyn_responder_cancel(uint64_t responder);   /* the client went away: is_cancelled says 1 */
void dyn_server_set_grace_ms(uint64_t server, int64_t ms); /* how long dynamo_server_stop drains */
/* cffi:end */

/* ---- Python side, reached through cffi extern "Python+C" trampolines ---- */
/* cffi:python-begin (each declaration becomes `extern "Python+C"` in the cdef) */
int dyn_py_ready(void);                          /* 1 once pyimpl.capi.bridge is installed */
int dyn_py_runtime_create(uint64_t runtime, const char* config_json);
int dyn_py_runtime_destroy(uint64_t runtime);
int dyn_py_runtime_stats(uint64_t runtime);
int dyn_py_host_call(uint64_t runtime, int32_t op, const char* model, const char* arg, size_t arg_len, int32_t flag);
int dyn_py_log_config(int32_t enabled, int32_t level);
int dyn_py_llm_init(const char* namespace_name, const char* component, const char* endpoint, uint32_t kv_block_size);
int dyn_py_llm_shutdown(void);
int dyn_py_endpoint_serve(uint64_t runtime, uint64_t server, const char* path);
int dyn_py_model_register(uint64_t server, const char* card_json);
int dyn_py_server_stop(uint64_t server);
/* cffi:python-end */

/* ---- event_queue.c: a FIFO of events from C threads to the loop thread, with a wake eventfd ---- */
typedef struct {
    pthread_mutex_t mu;
    dyn_event_t *head, *tail;
    int fd;                    /* created on first use; readable while the queue is non-empty */
} dyn_event_queue;
#define DYN_EVENT_QUEUE_INIT {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, -1}
int  dyn_queue_fd(dyn_event_queue* q);
void dyn_queue_push(dyn_event_queue* q, dyn_event_t* ev);
dyn_event_t* dyn_queue_next(dyn_event_queue* q);

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
/* host_text.c: this thread's owned result (NULL if none), handed over: the caller frees it */
char* dyn_take_owned_result(size_t* len);
/* NULL, size (8 MiB), UTF-8 and JSON-object checks of a request-like argument named `what` */
dynamo_status_t dyn_check_json_object(const char* what, const char* json, size_t* len);
/* run fn(arg), a dyn_py_* call, with the host's signals kept from Python (python_init.c) */
int  dyn_python_call(int (*fn)(void*), void* arg);
/* outbox.c: an event owning a copy of data[0..len) + NUL (data NULL: none); NULL when out of memory */
dyn_event_t* dyn_outbox_event(int32_t kind, uint64_t handle, const void* data, size_t len);
void dyn_outbox_push(dyn_event_t* ev);
/* endpoint_serve.c: stop every server of a runtime being destroyed (before its Python side goes) */
void dyn_servers_stop_of(uint64_t runtime);

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
