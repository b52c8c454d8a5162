/* Stream handles and the stream API: everything a host thread touches without the Python GIL.
 * Handles are slot+generation tokens checked against a table that is never freed; a slot's
 * queue is stream_queue.c's. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "stream_slot.h"

/* ---- stream table: pages of slots, allocated once and never freed ---- */

enum { PAGE_SLOTS = 256, MAX_PAGES = 4096 };
static stream_slot* _Atomic pages[MAX_PAGES];
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t* free_list;
static size_t free_count, free_cap;
static uint32_t slots_made;

static stream_slot* slot_at(uint32_t index) {
    if (index / PAGE_SLOTS >= MAX_PAGES) return NULL;
    stream_slot* page = atomic_load_explicit(&pages[index / PAGE_SLOTS], memory_order_acquire);
    return page ? &page[index % PAGE_SLOTS] : NULL;
}

/* Under table_mu: a free slot index, making a page when none is left. */
static int slot_take_locked(uint32_t* index) {
    if (free_count) { *index = free_list[--free_count]; return 1; }
    if (slots_made % PAGE_SLOTS == 0) {
        uint32_t p = slots_made / PAGE_SLOTS;
        if (p >= MAX_PAGES) return 0;
        stream_slot* page = calloc(PAGE_SLOTS, sizeof *page);
        if (!page) return 0;
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        /* spin briefly before sleeping: every critical section on a slot is a few pointer moves */
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
        for (int i = 0; i < PAGE_SLOTS; i++) {
            pthread_mutex_init(&page[i].mu, &ma);
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_init(&page[i].cv, &ca);
            pthread_condattr_destroy(&ca);
            page[i].efd = -1;
        }
        pthread_mutexattr_destroy(&ma);
        atomic_store_explicit(&pages[p], page, memory_order_release);
    }
    *index = slots_made++;
    return 1;
}

static void slot_give_back(uint32_t index) {
    pthread_mutex_lock(&table_mu);
    if (free_count == free_cap) {
        size_t cap = free_cap ? free_cap * 2 : 1024;
        uint32_t* grown = realloc(free_list, cap * sizeof *grown);
        if (!grown) { pthread_mutex_unlock(&table_mu); return; } /* slot leaks, table stays sound */
        free_list = grown;
        free_cap = cap;
    }
    free_list[free_count++] = index;
    pthread_mutex_unlock(&table_mu);
}

/* The slot of a live stream handle, else NULL; no lock taken. */
static stream_slot* stream_slot_of(uint64_t h) {
    uint32_t index, gen;
    if (!handle_split(h, TAG_STREAM, &index, &gen)) return NULL;
    stream_slot* s = slot_at(index);
    if (!s || atomic_load_explicit(&s->owner, memory_order_acquire) != h) return NULL;
    return s;
}

/* Lock and return the slot of a live stream handle, else NULL (nothing locked). */
stream_slot* dyn_stream_lock(uint64_t h) {
    stream_slot* s = stream_slot_of(h);
    if (!s) return NULL;
    pthread_mutex_lock(&s->mu);
    if (atomic_load_explicit(&s->owner, memory_order_relaxed) != h) { pthread_mutex_unlock(&s->mu); return NULL; }
    return s;
}

static void send_cancel(uint64_t stream, uint64_t runtime) {
    dyn_event_t* ev = calloc(1, sizeof *ev);
    if (!ev) return;
    ev->kind = DYN_EV_CANCEL;
    ev->stream = stream;
    ev->runtime = runtime;
    dyn_ev_push(ev);
}

/* ---- submissions ---- */

static dynamo_status_t check_request(const char* request_json, size_t* len) {
    if (!request_json) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "request_json is NULL");
    *len = strnlen(request_json, DYN_MAX_REQUEST_BYTES + 1);
    if (*len > DYN_MAX_REQUEST_BYTES)
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "request_json is larger than %u bytes", DYN_MAX_REQUEST_BYTES);
    if (!dyn_utf8_valid(request_json, *len)) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "request_json is not valid UTF-8");
    if (!dyn_json_valid_object(request_json, *len))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "request_json is not a well-formed JSON object");
    return DYNAMO_OK;
}

dynamo_status_t dyn_submit(dynamo_runtime_t* rt, int kind, const char* endpoint, const char* request_json,
                           dynamo_stream_t** out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!rt) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the runtime is NULL");
    size_t len = 0;
    dynamo_status_t st = check_request(request_json, &len);
    if (st != DYNAMO_OK) return st;
    dyn_event_t* ev = calloc(1, sizeof *ev);
    if (!ev || !(ev->request = malloc(len + 1)) || (endpoint && !(ev->endpoint = strdup(endpoint)))) {
        dyn_event_release(ev);
        return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(ev->request, request_json, len + 1);
    ev->request_len = len;
    ev->kind = kind;
    ev->runtime = (uint64_t)(uintptr_t)rt;

    /* Holding dyn_rt_mu while the stream is registered orders it before a concurrent destroy's sweep. */
    pthread_mutex_lock(&dyn_rt_mu);
    if (!dyn_runtime_live_locked(ev->runtime)) {
        pthread_mutex_unlock(&dyn_rt_mu);
        dyn_event_release(ev);
        return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");
    }
    uint32_t index;
    pthread_mutex_lock(&table_mu);
    int ok = slot_take_locked(&index);
    pthread_mutex_unlock(&table_mu);
    if (!ok) {
        pthread_mutex_unlock(&dyn_rt_mu);
        dyn_event_release(ev);
        return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "too many live streams");
    }
    stream_slot* s = slot_at(index);
    pthread_mutex_lock(&s->mu);
    s->gen = s->gen + 1 ? s->gen + 1 : 1;
    s->efd = -1;
    s->fd_ready = s->ended = s->cancel_sent = s->cancelled = 0; /* never waiters: see stream_slot */
    s->end_status = DYNAMO_OK;
    s->end_message = NULL;
    s->runtime = ev->runtime;
    s->head = s->tail = s->current = NULL;
    ev->stream = handle_make(index, s->gen, TAG_STREAM);
    atomic_store_explicit(&s->owner, ev->stream, memory_order_release);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&dyn_rt_mu);

    *out = (dynamo_stream_t*)(uintptr_t)ev->stream;
    dyn_ev_push(ev);
    return DYNAMO_OK;
}

dynamo_status_t dynamo_chat_completion(dynamo_runtime_t* rt, const char* request_json, dynamo_stream_t** out) {
    return dyn_submit(rt, DYN_EV_CHAT, NULL, request_json, out);
}

dynamo_status_t dynamo_completion(dynamo_runtime_t* rt, const char* request_json, dynamo_stream_t** out) {
    return dyn_submit(rt, DYN_EV_COMPLETION, NULL, request_json, out);
}

dynamo_status_t dynamo_generate(dynamo_runtime_t* rt, const char* endpoint_path, const char* request_json,
                                dynamo_stream_t** out) {
    if (dyn_forked) return dyn_fail(DYNAMO_ERR_FORKED, "called from a child process after fork()");
    if (!endpoint_path) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "endpoint_path is NULL");
    size_t n = strnlen(endpoint_path, 1025);
    if (n == 0 || n > 1024 || !dyn_utf8_valid(endpoint_path, n))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "endpoint_path must be 1..1024 bytes of UTF-8");
    return dyn_submit(rt, DYN_EV_GENERATE, endpoint_path, request_json, out);
}

/* ---- stream API (no GIL) ---- */

/* Every step under the slot's lock, so a free (or cancel) on another thread is either before the
 * poll (DYNAMO_ERR_INVALID_HANDLE) or after it; the lock is held for a few pointer moves and the
 * scan of one array element, never while the host reads its chunk. */
dynamo_status_t dynamo_stream_poll(dynamo_stream_t* stream, int32_t timeout_ms, dynamo_chunk_t* out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!stream) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream is NULL");
    uint64_t h = (uint64_t)(uintptr_t)stream;
    stream_slot* s = dyn_stream_lock(h);
    if (!s) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid stream handle");
    chunk_node* done = NULL;
    int tell_python = 0;
    dynamo_status_t st = dyn_poll_locked(s, h, timeout_ms, out, &done, &tell_python);
    uint64_t runtime = s->runtime;
    pthread_mutex_unlock(&s->mu);
    dyn_free_chunks(done);
    if (tell_python) send_cancel(h, runtime);
    return st;
}

dynamo_status_t dynamo_stream_cancel(dynamo_stream_t* stream) {
    REFUSE_IF_FORKED();
    if (!stream) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream is NULL");
    uint64_t h = (uint64_t)(uintptr_t)stream;
    stream_slot* s = dyn_stream_lock(h);
    if (!s) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid stream handle");
    int tell_python = !s->ended && !s->cancel_sent;
    chunk_node* dropped = NULL;
    if (!s->ended) {
        dropped = dyn_end_locked(s, DYNAMO_ERR_CANCELLED, "the stream was cancelled", 1);
        s->cancelled = 1;
    }
    if (tell_python) s->cancel_sent = 1;
    uint64_t runtime = s->runtime;
    pthread_mutex_unlock(&s->mu);
    dyn_free_chunks(dropped);
    if (tell_python) send_cancel(h, runtime);
    return DYNAMO_OK;
}

int dynamo_stream_fd(dynamo_stream_t* stream) {
    if (dyn_forked) { dyn_fail(DYNAMO_ERR_FORKED, "called from a child process after fork()"); return -1; }
    if (!stream) { dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream is NULL"); return -1; }
    stream_slot* s = dyn_stream_lock((uint64_t)(uintptr_t)stream);
    if (!s) { dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid stream handle"); return -1; }
    if (s->efd < 0) {
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->efd < 0) dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "eventfd: %s", strerror(errno));
        else if (s->head || s->ended || dyn_array_more_locked(s)) {
            uint64_t one = 1;
            ssize_t w = write(s->efd, &one, sizeof one);
            (void)w;
            s->fd_ready = 1;
        }
    }
    int fd = s->efd;
    pthread_mutex_unlock(&s->mu);
    return fd;
}

dynamo_status_t dynamo_stream_free(dynamo_stream_t* stream) {
    REFUSE_IF_FORKED();
    if (!stream) return DYNAMO_OK;
    uint64_t h = (uint64_t)(uintptr_t)stream;
    stream_slot* s = dyn_stream_lock(h);
    if (!s) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid stream handle");
    int tell_python = !s->ended && !s->cancel_sent;
    uint64_t runtime = s->runtime;
    chunk_node* queue = s->head;
    chunk_node* current = s->current;
    dyn_array_scan scan = s->scan;
    char* message = s->end_message;
    int efd = s->efd;
    s->head = s->tail = s->current = NULL;
    memset(&s->scan, 0, sizeof s->scan);
    s->end_message = NULL;
    atomic_store_explicit(&s->owner, 0, memory_order_release);
    s->efd = -1;
    s->gen = s->gen + 1 ? s->gen + 1 : 1;  /* stale handles no longer match */
    if (s->waiters) pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (tell_python) send_cancel(h, runtime);
    dyn_free_chunks(queue);
    free(current);
    dyn_scan_end(&scan);
    free(message);
    if (efd >= 0) close(efd);
    slot_give_back((uint32_t)((h >> 4) & 0x0FFFFFFF));
    return DYNAMO_OK;
}

/* End every live stream of a runtime with DYNAMO_ERR_SHUTDOWN. */
void dyn_end_streams_of(uint64_t runtime) {
    pthread_mutex_lock(&table_mu);
    uint32_t made = slots_made;
    pthread_mutex_unlock(&table_mu);
    for (uint32_t i = 0; i < made; i++) {
        stream_slot* s = slot_at(i);
        pthread_mutex_lock(&s->mu);
        chunk_node* dropped = NULL;
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) && s->runtime == runtime)
            dropped = dyn_end_locked(s, DYNAMO_ERR_SHUTDOWN, "the runtime was destroyed", 0);
        pthread_mutex_unlock(&s->mu);
        dyn_free_chunks(dropped);
    }
}

