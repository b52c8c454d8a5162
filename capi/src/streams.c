/* Streams, handles and the event queue: everything a host thread touches
 * without the Python GIL. Chunks are handed over through a per-stream queue
 * (mutex + condition variable + eventfd) that the Python side fills; handles
 * are slot+generation tokens checked against a table that is never freed. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dyn_internal.h"

/* ---- thread-local error and result strings ---- */

static __thread char tls_error[2048];
static __thread char* tls_result;

const char* dynamo_last_error(void) { return tls_error; }

void dyn_set_error(const char* message) {
    snprintf(tls_error, sizeof tls_error, "%s", message ? message : "");
}

dynamo_status_t dyn_fail(dynamo_status_t status, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    return status;
}

void dyn_set_result(const char* text) {
    free(tls_result);
    tls_result = text ? strdup(text) : NULL;
}

/* ---- fork detection ---- */

volatile int dyn_forked;
static volatile int library_used; /* a runtime was ever created: the interpreter and its threads exist */
static void on_fork_child(void) { if (library_used) dyn_forked = 1; }
__attribute__((constructor)) static void register_fork_handler(void) { pthread_atfork(NULL, NULL, on_fork_child); }

#define REFUSE_IF_FORKED() \
    do { if (dyn_forked) return dyn_fail(DYNAMO_ERR_FORKED, "called from a child process after fork()"); } while (0)

/* ---- handle encoding: (generation << 32) | (index << 4) | tag ---- */

enum { TAG_STREAM = 0x5, TAG_RUNTIME = 0x9 };

static uint64_t handle_make(uint32_t index, uint32_t gen, unsigned tag) {
    return ((uint64_t)gen << 32) | ((uint64_t)index << 4) | tag;
}
static int handle_split(uint64_t h, unsigned tag, uint32_t* index, uint32_t* gen) {
    if ((h & 0xF) != tag) return 0;
    *index = (uint32_t)((h >> 4) & 0x0FFFFFFF);
    *gen = (uint32_t)(h >> 32);
    return *gen != 0;
}

/* ---- event queue (C -> loop thread) ---- */

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static dyn_event_t *ev_head, *ev_tail;
static int ev_fd = -1;
static pthread_once_t ev_once = PTHREAD_ONCE_INIT;

static void ev_init(void) { ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int dyn_wake_fd(void) {
    pthread_once(&ev_once, ev_init);
    return ev_fd;
}

static void ev_push(dyn_event_t* ev) {
    pthread_once(&ev_once, ev_init);
    ev->next = NULL;
    pthread_mutex_lock(&ev_mu);
    int was_empty = ev_head == NULL;
    if (ev_tail) ev_tail->next = ev; else ev_head = ev;
    ev_tail = ev;
    pthread_mutex_unlock(&ev_mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(ev_fd, &one, sizeof one);
        (void)w;
    }
}

dyn_event_t* dyn_next_event(void) {
    pthread_mutex_lock(&ev_mu);
    dyn_event_t* ev = ev_head;
    if (ev) { ev_head = ev->next; if (!ev_head) ev_tail = NULL; }
    pthread_mutex_unlock(&ev_mu);
    return ev;
}

void dyn_event_release(dyn_event_t* ev) {
    if (!ev) return;
    free(ev->endpoint);
    free(ev->request);
    free(ev);
}

/* ---- runtime table ---- */

enum { MAX_RUNTIMES = 256 };
typedef struct { uint32_t gen; int in_use; int closing; } runtime_slot;
static pthread_mutex_t rt_mu = PTHREAD_MUTEX_INITIALIZER;
static runtime_slot runtimes[MAX_RUNTIMES];

/* Under rt_mu: is h a live, open runtime? */
static int runtime_live_locked(uint64_t h) {
    uint32_t index, gen;
    if (!handle_split(h, TAG_RUNTIME, &index, &gen) || index >= MAX_RUNTIMES) return 0;
    return runtimes[index].in_use && runtimes[index].gen == gen && !runtimes[index].closing;
}

/* ---- stream table: pages of slots, allocated once and never freed ---- */

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
static stream_slot* stream_lock(uint64_t h) {
    stream_slot* s = stream_slot_of(h);
    if (!s) return NULL;
    pthread_mutex_lock(&s->mu);
    if (atomic_load_explicit(&s->owner, memory_order_relaxed) != h) { pthread_mutex_unlock(&s->mu); return NULL; }
    return s;
}

/* Under s->mu: make the fd readable; returns whether pollers wait on the condition variable
 * (the caller broadcasts after unlocking, so a woken poller does not block on s->mu at once). */
static int mark_ready_locked(stream_slot* s) {
    if (s->efd >= 0 && !s->fd_ready) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w;
        s->fd_ready = 1;
    }
    return s->waiters;
}

static void signal_ready_locked(stream_slot* s) {
    if (mark_ready_locked(s)) pthread_cond_broadcast(&s->cv);
}

static void free_chunks(chunk_node* n) {
    while (n) { chunk_node* next = n->next; free(n); n = next; }
}

/* Under s->mu: end the stream with status (first end wins). Returns the
 * dropped queue for the caller to free after unlocking. */
static chunk_node* end_locked(stream_slot* s, dynamo_status_t status, const char* message, int drop_queue) {
    chunk_node* dropped = NULL;
    if (s->ended) return NULL;
    s->ended = 1;
    s->end_status = status;
    s->end_message = message && *message ? strdup(message) : NULL;
    if (drop_queue) { dropped = s->head; s->head = s->tail = NULL; }
    signal_ready_locked(s);
    return dropped;
}

static void send_cancel(uint64_t stream, uint64_t runtime) {
    dyn_event_t* ev = calloc(1, sizeof *ev);
    if (!ev) return;
    ev->kind = DYN_EV_CANCEL;
    ev->stream = stream;
    ev->runtime = runtime;
    ev_push(ev);
}

/* ---- Python side: fill and end streams ---- */

static chunk_node* make_chunk(const char* json, size_t json_len, const char* text, size_t text_len,
                              const uint32_t* token_ids, size_t num_token_ids, int32_t finish_reason) {
    size_t ids_bytes = num_token_ids * sizeof(uint32_t);
    size_t text_bytes = text ? text_len + 1 : 0;
    chunk_node* n = malloc(sizeof *n + ids_bytes + json_len + 1 + text_bytes);
    if (!n) return NULL;
    char* p = (char*)(n + 1);
    n->next = NULL;
    n->array_len = 0;
    n->chunk.token_ids = NULL;
    n->chunk.num_token_ids = num_token_ids;
    if (num_token_ids) { memcpy(p, token_ids, ids_bytes); n->chunk.token_ids = (const uint32_t*)p; p += ids_bytes; }
    memcpy(p, json, json_len); p[json_len] = '\0';
    n->chunk.json = p; n->chunk.json_len = json_len; p += json_len + 1;
    n->chunk.text = NULL; n->chunk.text_len = 0;
    if (text) { memcpy(p, text, text_len); p[text_len] = '\0'; n->chunk.text = p; n->chunk.text_len = text_len; }
    n->chunk.finish_reason = finish_reason;
    n->chunk.choice_index = 0;
    return n;
}

/* Append a built list to a stream's queue; frees it and returns -1 if the stream is gone or ended. */
static int append_chunks(uint64_t stream, chunk_node* first, chunk_node* last) {
    stream_slot* s = stream_lock(stream);
    if (!s || s->ended) {
        if (s) pthread_mutex_unlock(&s->mu);
        free_chunks(first);
        return -1;
    }
    if (s->tail) s->tail->next = first; else s->head = first;
    s->tail = last;
    int wake = mark_ready_locked(s);
    pthread_mutex_unlock(&s->mu);
    if (wake) pthread_cond_broadcast(&s->cv); /* slots are never freed: the cv outlives the stream */
    return 0;
}

int dyn_stream_push(uint64_t stream, const char* json, size_t json_len, const char* text, size_t text_len,
                    const uint32_t* token_ids, size_t num_token_ids, int32_t finish_reason) {
    chunk_node* n = make_chunk(json, json_len, text, text_len, token_ids, num_token_ids, finish_reason);
    if (!n) return -1;
    return append_chunks(stream, n, n);
}

int dyn_stream_push_batch(uint64_t stream, size_t count, const char* json_blob, const char* text_blob,
                          const int32_t* meta, const uint32_t* token_ids) {
    chunk_node *first = NULL, *last = NULL;
    for (size_t i = 0; i < count; i++) {
        const int32_t* m = meta + DYN_CHUNK_META * i;
        chunk_node* n = make_chunk(json_blob, (size_t)m[0], m[1] >= 0 ? text_blob : NULL, m[1] >= 0 ? (size_t)m[1] : 0,
                                   m[2] ? token_ids : NULL, (size_t)m[2], m[3]);
        if (!n) { free_chunks(first); return -1; }
        n->chunk.choice_index = m[4];
        json_blob += m[0];
        if (m[1] > 0) text_blob += m[1];
        token_ids += m[2];
        if (last) last->next = n; else first = n;
        last = n;
    }
    return first ? append_chunks(stream, first, last) : 0;
}

int dyn_stream_push_json_array(uint64_t stream, const char* blob, size_t len) {
    size_t i = 0;
    while (i < len && (blob[i] == ' ' || blob[i] == '\t' || blob[i] == '\n' || blob[i] == '\r')) i++;
    if (i == len || blob[i] != '[') return -2; /* elements are checked as the poller reaches them */
    chunk_node* n = malloc(sizeof *n + len + 1);
    if (!n) return -1;
    char* copy = (char*)(n + 1);
    memcpy(copy, blob, len);
    copy[len] = '\0';
    n->next = NULL;
    n->array_len = len;
    return append_chunks(stream, n, n);
}

void dyn_stream_finish(uint64_t stream, int32_t status, const char* message) {
    stream_slot* s = stream_lock(stream);
    if (!s) return;
    chunk_node* dropped = end_locked(s, status == DYNAMO_OK ? DYNAMO_END : (dynamo_status_t)status, message, 0);
    pthread_mutex_unlock(&s->mu);
    free_chunks(dropped);
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

static dynamo_status_t submit(dynamo_runtime_t* rt, int kind, const char* endpoint, const char* request_json,
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

    /* Holding rt_mu while the stream is registered orders it before a concurrent destroy's sweep. */
    pthread_mutex_lock(&rt_mu);
    if (!runtime_live_locked(ev->runtime)) {
        pthread_mutex_unlock(&rt_mu);
        dyn_event_release(ev);
        return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");
    }
    uint32_t index;
    pthread_mutex_lock(&table_mu);
    int ok = slot_take_locked(&index);
    pthread_mutex_unlock(&table_mu);
    if (!ok) {
        pthread_mutex_unlock(&rt_mu);
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
    pthread_mutex_unlock(&rt_mu);

    *out = (dynamo_stream_t*)(uintptr_t)ev->stream;
    ev_push(ev);
    return DYNAMO_OK;
}

dynamo_status_t dynamo_chat_completion(dynamo_runtime_t* rt, const char* request_json, dynamo_stream_t** out) {
    return submit(rt, DYN_EV_CHAT, NULL, request_json, out);
}

dynamo_status_t dynamo_generate(dynamo_runtime_t* rt, const char* endpoint_path, const char* request_json,
                                dynamo_stream_t** out) {
    if (dyn_forked) return dyn_fail(DYNAMO_ERR_FORKED, "called from a child process after fork()");
    if (!endpoint_path) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "endpoint_path is NULL");
    size_t n = strnlen(endpoint_path, 1025);
    if (n == 0 || n > 1024 || !dyn_utf8_valid(endpoint_path, n))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "endpoint_path must be 1..1024 bytes of UTF-8");
    return submit(rt, DYN_EV_GENERATE, endpoint_path, request_json, out);
}

/* ---- stream API (no GIL) ---- */

static void deadline_after(struct timespec* ts, int32_t ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* Under s->mu: does the array being read hold more elements? */
static int array_more_locked(const stream_slot* s) {
    return s->current && s->current->array_len && !s->cancelled && s->scan.p < s->scan.end && *s->scan.p != ']';
}

/* Under s->mu: the fd stops being readable once nothing is left to poll. */
static void settle_fd_locked(stream_slot* s) {
    if (!s->head && !s->ended && s->fd_ready && s->efd >= 0 && !array_more_locked(s)) {
        uint64_t v;
        ssize_t r = read(s->efd, &v, sizeof v);
        (void)r;
        s->fd_ready = 0;
    }
}

/* Under s->mu: the next chunk into *out (1), none queued (0), or a malformed array (-1). The node
 * the host borrowed from goes to *done, for the caller to free after unlocking. */
static int next_chunk_locked(stream_slot* s, dynamo_chunk_t* out, chunk_node** done) {
    for (;;) {
        chunk_node* n = s->current;
        if (n && n->array_len && !s->cancelled) {
            int r = dyn_scan_next(&s->scan);
            if (r < 0) return -1;
            if (r == 1) {
                const dyn_scanned_item* it = &s->scan.item;
                ((char*)it->json)[it->json_len] = '\0'; /* our copy; the scan has moved past that byte */
                out->json = it->json;
                out->json_len = it->json_len;
                out->text = NULL;
                out->text_len = 0;
                out->token_ids = it->num_token_ids ? it->token_ids : NULL;
                out->num_token_ids = it->num_token_ids;
                out->finish_reason = it->finish_reason;
                out->choice_index = 0;
                return 1;
            }
        }
        if (n) { n->next = *done; *done = n; s->current = NULL; }
        if (!s->head) return 0;
        n = s->current = s->head;
        s->head = n->next;
        if (!s->head) s->tail = NULL;
        n->next = NULL;
        if (n->array_len) {
            if (!dyn_scan_restart(&s->scan, (const char*)(n + 1), n->array_len)) return -1;
            continue;
        }
        *out = n->chunk;
        return 1;
    }
}

/* Under s->mu (a live stream h): what dynamo_stream_poll returns. */
static dynamo_status_t poll_locked(stream_slot* s, uint64_t h, int32_t timeout_ms, dynamo_chunk_t* out,
                                   chunk_node** done, int* tell_python) {
    struct timespec deadline;
    int have_deadline = 0;
    for (;;) {
        int got = next_chunk_locked(s, out, done);
        if (got == 1) {
            settle_fd_locked(s);
            return DYNAMO_OK;
        }
        if (got < 0) { /* the runtime handed over bytes C cannot split: end the stream, tell Python */
            *tell_python = !s->ended && !s->cancel_sent;
            if (*tell_python) s->cancel_sent = 1;
            if (s->ended) { s->ended = 0; free(s->end_message); s->end_message = NULL; } /* outranks any end */
            chunk_node* dropped = end_locked(s, DYNAMO_ERR_INTERNAL, "the runtime sent a malformed response batch", 1);
            if (dropped) { chunk_node* last = dropped; while (last->next) last = last->next; last->next = *done; *done = dropped; }
            s->cancelled = 1; /* the rest of the array is dropped */
            continue;
        }
        if (s->ended) {
            settle_fd_locked(s);
            if (s->end_status != DYNAMO_END) dyn_set_error(s->end_message ? s->end_message : dynamo_status_str(s->end_status));
            return s->end_status;
        }
        settle_fd_locked(s);
        if (timeout_ms == 0) return DYNAMO_TIMEOUT;
        /* Sleep at once, no spinning: the Python side hands chunks over in bursts, one per loop
         * iteration, so a spinning poller would catch little and steal the producer's core. */
        int rc = 0;
        s->waiters++;
        if (timeout_ms < 0) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else {
            if (!have_deadline) { deadline_after(&deadline, timeout_ms); have_deadline = 1; }
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
        }
        s->waiters--;
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) != h)
            return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "stream freed while polled");
        if (rc == ETIMEDOUT && !s->head && !s->ended) return DYNAMO_TIMEOUT;
    }
}

/* Every step under the slot's lock, so a free (or cancel) on another thread is either before the
 * poll (DYNAMO_ERR_INVALID_HANDLE) or after it; the lock is held for a few pointer moves and the
 * scan of one array element, never while the host reads its chunk. */
dynamo_status_t dynamo_stream_poll(dynamo_stream_t* stream, int32_t timeout_ms, dynamo_chunk_t* out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!stream) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream is NULL");
    uint64_t h = (uint64_t)(uintptr_t)stream;
    stream_slot* s = stream_lock(h);
    if (!s) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid stream handle");
    chunk_node* done = NULL;
    int tell_python = 0;
    dynamo_status_t st = poll_locked(s, h, timeout_ms, out, &done, &tell_python);
    uint64_t runtime = s->runtime;
    pthread_mutex_unlock(&s->mu);
    free_chunks(done);
    if (tell_python) send_cancel(h, runtime);
    return st;
}

dynamo_status_t dynamo_stream_cancel(dynamo_stream_t* stream) {
    REFUSE_IF_FORKED();
    if (!stream) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream is NULL");
    uint64_t h = (uint64_t)(uintptr_t)stream;
    stream_slot* s = stream_lock(h);
    if (!s) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid stream handle");
    int tell_python = !s->ended && !s->cancel_sent;
    chunk_node* dropped = NULL;
    if (!s->ended) {
        dropped = end_locked(s, DYNAMO_ERR_CANCELLED, "the stream was cancelled", 1);
        s->cancelled = 1;
    }
    if (tell_python) s->cancel_sent = 1;
    uint64_t runtime = s->runtime;
    pthread_mutex_unlock(&s->mu);
    free_chunks(dropped);
    if (tell_python) send_cancel(h, runtime);
    return DYNAMO_OK;
}

int dynamo_stream_fd(dynamo_stream_t* stream) {
    if (dyn_forked) { dyn_fail(DYNAMO_ERR_FORKED, "called from a child process after fork()"); return -1; }
    if (!stream) { dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream is NULL"); return -1; }
    stream_slot* s = stream_lock((uint64_t)(uintptr_t)stream);
    if (!s) { dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid stream handle"); return -1; }
    if (s->efd < 0) {
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->efd < 0) dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "eventfd: %s", strerror(errno));
        else if (s->head || s->ended || array_more_locked(s)) {
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
    stream_slot* s = stream_lock(h);
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
    free_chunks(queue);
    free(current);
    dyn_scan_end(&scan);
    free(message);
    if (efd >= 0) close(efd);
    slot_give_back((uint32_t)((h >> 4) & 0x0FFFFFFF));
    return DYNAMO_OK;
}

/* ---- runtime API ---- */

dynamo_status_t dynamo_runtime_create(const char* config_json, dynamo_runtime_t** out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!config_json) config_json = "{}";
    size_t len = strnlen(config_json, DYN_MAX_CONFIG_BYTES + 1);
    if (len > DYN_MAX_CONFIG_BYTES)
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "config_json is larger than %u bytes", DYN_MAX_CONFIG_BYTES);
    if (!dyn_utf8_valid(config_json, len)) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "config_json is not valid UTF-8");
    if (!dyn_json_valid_object(config_json, len))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "config_json is not a well-formed JSON object");
    library_used = 1;
    dynamo_status_t st = dyn_python_start();
    if (st != DYNAMO_OK) return st;

    pthread_mutex_lock(&rt_mu);
    uint32_t index = 0;
    while (index < MAX_RUNTIMES && runtimes[index].in_use) index++;
    if (index == MAX_RUNTIMES) {
        pthread_mutex_unlock(&rt_mu);
        return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "too many runtimes (%d)", MAX_RUNTIMES);
    }
    runtime_slot* r = &runtimes[index];
    r->gen = r->gen + 1 ? r->gen + 1 : 1;
    r->in_use = 1;
    r->closing = 1; /* no submissions until Python has it */
    uint64_t h = handle_make(index, r->gen, TAG_RUNTIME);
    pthread_mutex_unlock(&rt_mu);

    st = dyn_python_create(h, config_json);
    pthread_mutex_lock(&rt_mu);
    if (st == DYNAMO_OK) r->closing = 0; else r->in_use = 0;
    pthread_mutex_unlock(&rt_mu);
    if (st == DYNAMO_OK) *out = (dynamo_runtime_t*)(uintptr_t)h;
    return st;
}

/* End every live stream of a runtime with DYNAMO_ERR_SHUTDOWN. */
static void end_streams_of(uint64_t runtime) {
    pthread_mutex_lock(&table_mu);
    uint32_t made = slots_made;
    pthread_mutex_unlock(&table_mu);
    for (uint32_t i = 0; i < made; i++) {
        stream_slot* s = slot_at(i);
        pthread_mutex_lock(&s->mu);
        chunk_node* dropped = NULL;
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) && s->runtime == runtime)
            dropped = end_locked(s, DYNAMO_ERR_SHUTDOWN, "the runtime was destroyed", 0);
        pthread_mutex_unlock(&s->mu);
        free_chunks(dropped);
    }
}

dynamo_status_t dynamo_runtime_destroy(dynamo_runtime_t* rt) {
    REFUSE_IF_FORKED();
    if (!rt) return DYNAMO_OK;
    uint64_t h = (uint64_t)(uintptr_t)rt;
    pthread_mutex_lock(&rt_mu);
    if (!runtime_live_locked(h)) {
        pthread_mutex_unlock(&rt_mu);
        return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");
    }
    runtime_slot* r = &runtimes[(h >> 4) & 0x0FFFFFFF];
    r->closing = 1;
    pthread_mutex_unlock(&rt_mu);

    end_streams_of(h);
    dynamo_status_t st = dyn_python_destroy(h);
    pthread_mutex_lock(&rt_mu);
    r->in_use = 0;
    r->closing = 0;
    pthread_mutex_unlock(&rt_mu);
    return st;
}

dynamo_status_t dynamo_runtime_stats_json(dynamo_runtime_t* rt, const char** out) {
    REFUSE_IF_FORKED();
    if (!out) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "out is NULL");
    if (!rt) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the runtime is NULL");
    uint64_t h = (uint64_t)(uintptr_t)rt;
    pthread_mutex_lock(&rt_mu);
    int live = runtime_live_locked(h);
    pthread_mutex_unlock(&rt_mu);
    if (!live) return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid runtime handle");
    dyn_set_result(NULL);
    dynamo_status_t st = dyn_python_stats(h);
    if (st == DYNAMO_OK) {
        if (!tls_result) return dyn_fail(DYNAMO_ERR_INTERNAL, "no stats produced");
        *out = tls_result;
    }
    return st;
}

/* ---- static facts ---- */

uint32_t dynamo_llm_abi_version(void) { return DYNAMO_LLM_ABI_VERSION; }

#define DYN_STR2(x) #x
#define DYN_STR(x) DYN_STR2(x)
const char* dynamo_llm_version(void) {
    return DYN_STR(DYNAMO_LLM_VERSION_MAJOR) "." DYN_STR(DYNAMO_LLM_VERSION_MINOR) "." DYN_STR(DYNAMO_LLM_VERSION_PATCH);
}

const char* dynamo_status_str(dynamo_status_t status) {
    switch (status) {
    case DYNAMO_OK: return "DYNAMO_OK";
    case DYNAMO_TIMEOUT: return "DYNAMO_TIMEOUT";
    case DYNAMO_END: return "DYNAMO_END";
    case DYNAMO_ERR_INVALID_ARGUMENT: return "DYNAMO_ERR_INVALID_ARGUMENT";
    case DYNAMO_ERR_INVALID_HANDLE: return "DYNAMO_ERR_INVALID_HANDLE";
    case DYNAMO_ERR_NOT_FOUND: return "DYNAMO_ERR_NOT_FOUND";
    case DYNAMO_ERR_UNAVAILABLE: return "DYNAMO_ERR_UNAVAILABLE";
    case DYNAMO_ERR_CANCELLED: return "DYNAMO_ERR_CANCELLED";
    case DYNAMO_ERR_ENGINE: return "DYNAMO_ERR_ENGINE";
    case DYNAMO_ERR_SHUTDOWN: return "DYNAMO_ERR_SHUTDOWN";
    case DYNAMO_ERR_FORKED: return "DYNAMO_ERR_FORKED";
    case DYNAMO_ERR_INTERNAL: return "DYNAMO_ERR_INTERNAL";
    case DYNAMO_ERR_PYTHON_INIT: return "DYNAMO_ERR_PYTHON_INIT";
    case DYNAMO_ERR_OUT_OF_MEMORY: return "DYNAMO_ERR_OUT_OF_MEMORY";
    }
    return "DYNAMO_UNKNOWN_STATUS";
}
