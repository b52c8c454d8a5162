/* Private to the stream code of libdynamo_llm_capi: the handle encoding, a stream's slot and
 * queue, and the calls between runtime_api.c (runtimes, events, errors), streams.c (the stream
 * table and API) and stream_queue.c (what the loop thread pushes, what a poll takes). */
#ifndef DYN_STREAM_SLOT_H
#define DYN_STREAM_SLOT_H

#include <pthread.h>
#include <stdatomic.h>

#include "dyn_internal.h"

#define REFUSE_IF_FORKED() \
    do { if (dyn_forked) return dyn_fail(DYNAMO_ERR_FORKED, "called from a child process after fork()"); } while (0)

/* ---- handle encoding: (generation << 32) | (index << 4) | tag ---- */

enum { TAG_STREAM = 0x5, TAG_RUNTIME = 0x9 };

static inline uint64_t handle_make(uint32_t index, uint32_t gen, unsigned tag) {
    return ((uint64_t)gen << 32) | ((uint64_t)index << 4) | tag;
}
static inline int handle_split(uint64_t h, unsigned tag, uint32_t* index, uint32_t* gen) {
    if ((h & 0xF) != tag) return 0;
    *index = (uint32_t)((h >> 4) & 0x0FFFFFFF);
    *gen = (uint32_t)(h >> 32);
    return *gen != 0;
}

/* A node of a stream's queue: one chunk (array_len == 0: json, text and token ids follow in the
 * same allocation), or a whole JSON array of endpoint responses (array_len bytes + NUL follow) that
 * the poller splits one element per poll: the producer (the interpreter's loop thread) only
 * copies the bytes once, the scan runs on the host's thread. */
typedef struct chunk_node {
    struct chunk_node* next;
    size_t array_len;
    dynamo_chunk_t chunk;
} chunk_node;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t owner; /* the live handle using this slot, 0 when free (checked without the lock) */
    int cancelled;          /* set by cancel: the array being read is dropped too */
    uint32_t gen;          /* generation of the current (or last) owner */
    int efd;               /* -1 until the host asks for it (dynamo_stream_fd) */
    int fd_ready;          /* efd holds a count: a poll would not block */
    int ended;             /* no more chunks will be queued */
    int cancel_sent;       /* a cancel event went to the loop thread */
    int waiters;           /* threads in a wait on cv: the slot's, not a stream's (a woken poller of a
                              freed stream may decrement it after a new stream took the slot) */
    dynamo_status_t end_status;
    char* end_message;
    uint64_t runtime;
    chunk_node *head, *tail;  /* queue not yet polled */
    chunk_node *current;      /* the node the host borrows from (and, for an array, reads on) */
    dyn_array_scan scan;      /* position in current when it is an array */
} stream_slot;

/* ---- runtime_api.c ---- */
extern pthread_mutex_t dyn_rt_mu;            /* held while a stream is registered: orders it before a destroy's sweep */
int  dyn_runtime_live_locked(uint64_t h);    /* under dyn_rt_mu: is h a live, open runtime? */
dynamo_status_t dyn_runtime_check(dynamo_runtime_t* rt, uint64_t* h); /* NULL / dead rt: its status, else OK */
void dyn_ev_push(dyn_event_t* ev);           /* queue an event for the loop thread */

/* ---- streams.c ---- */
stream_slot* dyn_stream_lock(uint64_t h);    /* the locked slot of a live stream handle, else NULL */
void dyn_end_streams_of(uint64_t runtime);   /* end every live stream of a runtime with DYNAMO_ERR_SHUTDOWN */
/* check request_json (NULL, 8 MiB, UTF-8, JSON object), register a stream of rt and queue a DYN_EV_* submission */
dynamo_status_t dyn_submit(dynamo_runtime_t* rt, int kind, const char* endpoint, const char* request_json,
                           dynamo_stream_t** out);

/* ---- stream_queue.c (every *_locked call under s->mu) ---- */
void dyn_free_chunks(chunk_node* n);
/* end the stream with status (first end wins); returns the dropped queue for the caller to free after unlocking */
chunk_node* dyn_end_locked(stream_slot* s, dynamo_status_t status, const char* message, int drop_queue);
int dyn_array_more_locked(const stream_slot* s); /* does the array being read hold more elements? */
/* what dynamo_stream_poll returns for the live stream h; nodes to free after unlocking go to *done,
 * *tell_python says a cancel must be sent (the stream ended on a malformed batch) */
dynamo_status_t dyn_poll_locked(stream_slot* s, uint64_t h, int32_t timeout_ms, dynamo_chunk_t* out,
                                chunk_node** done, int* tell_python);

#endif
