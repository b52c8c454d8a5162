/* A stream's queue: what the loop thread pushes (single chunks, batches, JSON arrays handed over
 * as one copy) and what a poll takes (an array is split here, on the host's thread, one element
 * per poll), with the condition variable and eventfd that wake the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stream_slot.h"

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

void dyn_free_chunks(chunk_node* n) {
    while (n) { chunk_node* next = n->next; free(n); n = next; }
}

/* Under s->mu: end the stream with status (first end wins). Returns the
 * dropped queue for the caller to free after unlocking. */
chunk_node* dyn_end_locked(stream_slot* s, dynamo_status_t status, const char* message, int drop_queue) {
    chunk_node* dropped = NULL;
    if (s->ended) return NULL;
    s->ended = 1;
    s->end_status = status;
    s->end_message = message && *message ? strdup(message) : NULL;
    if (drop_queue) { dropped = s->head; s->head = s->tail = NULL; }
    signal_ready_locked(s);
    return dropped;
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
    stream_slot* s = dyn_stream_lock(stream);
    if (!s || s->ended) {
        if (s) pthread_mutex_unlock(&s->mu);
        dyn_free_chunks(first);
        return -1;
    }
    if (s->tail) s->tail->next = first; else s->head = first;
    s->tail = last;
    int wake = mark_ready_locked(s);
    pthread_mutex_unlock(&s->mu);
    if (wake) pthread_cond_broadcast(&s->cv); /* slots are never freed: the cv outlives the stream */
    return 0;
}

int dyn_stream_push_batch(uint64_t stream, size_t count, const char* json_blob, const char* text_blob,
                          const int32_t* meta, const uint32_t* token_ids) {
    chunk_node *first = NULL, *last = NULL;
    for (size_t i = 0; i < count; i++) {
        const int32_t* m = meta + DYN_CHUNK_META * i;
        chunk_node* n = make_chunk(json_blob, (size_t)m[0], m[1] >= 0 ? text_blob : NULL, m[1] >= 0 ? (size_t)m[1] : 0,
                                   m[2] ? token_ids : NULL, (size_t)m[2], m[3]);
        if (!n) { dyn_free_chunks(first); return -1; }
        n->chunk.choice_index = m[4];
        json_blob += m[0];
        if (m[1] > 0) text_blob += m[1];
        if (m[2]) token_ids += m[2]; /* NULL when no chunk has ids (completions, Responses events): NULL + 0 is UB */
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
    stream_slot* s = dyn_stream_lock(stream);
    if (!s) return;
    chunk_node* dropped = dyn_end_locked(s, status == DYNAMO_OK ? DYNAMO_END : (dynamo_status_t)status, message, 0);
    pthread_mutex_unlock(&s->mu);
    dyn_free_chunks(dropped);
}

static void deadline_after(struct timespec* ts, int32_t ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* Under s->mu: does the array being read hold more elements? */
int dyn_array_more_locked(const stream_slot* s) {
    return s->current && s->current->array_len && !s->cancelled && s->scan.p < s->scan.end && *s->scan.p != ']';
}

/* Under s->mu: the fd stops being readable once nothing is left to poll. */
static void settle_fd_locked(stream_slot* s) {
    if (!s->head && !s->ended && s->fd_ready && s->efd >= 0 && !dyn_array_more_locked(s)) {
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
dynamo_status_t dyn_poll_locked(stream_slot* s, uint64_t h, int32_t timeout_ms, dynamo_chunk_t* out,
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
            chunk_node* dropped = dyn_end_locked(s, DYNAMO_ERR_INTERNAL, "the runtime sent a malformed response batch", 1);
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

