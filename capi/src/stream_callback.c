/* dynamo_stream_set_callback: callback streaming on top of the public poll/fd API. One library thread
 * (started on first use, gone when no stream has a callback) waits on the registered streams' fds with
 * epoll and delivers each ready stream's chunks, then its terminal status, to the host's callback. It
 * never touches the interpreter, so a callback never runs with the GIL held. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "stream_slot.h"

enum { CHUNKS_PER_TURN = 64, SWEEP_MS = 1000, MAX_EVENTS = 64 };

typedef struct registration {
    struct registration *prev, *next;
    dynamo_stream_t* stream;
    dynamo_stream_callback_t cb;
    void* user;
    int fd;
} registration;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static registration* regs;   /* live registrations (owned by the dispatcher once registered) */
static int epfd = -1;
static int running;          /* the dispatcher thread exists */

/* Under mu. */
static registration* find_locked(dynamo_stream_t* stream) {
    for (registration* r = regs; r; r = r->next)
        if (r->stream == stream) return r;
    return NULL;
}

/* Under mu: unlink r (the caller frees it). */
static void unlink_locked(registration* r) {
    if (r->prev) r->prev->next = r->next; else regs = r->next;
    if (r->next) r->next->prev = r->prev;
}

static void forget(registration* r, int remove_fd) {
    pthread_mutex_lock(&mu);
    if (remove_fd) epoll_ctl(epfd, EPOLL_CTL_DEL, r->fd, NULL);
    unlink_locked(r);
    pthread_mutex_unlock(&mu);
    free(r);
}

/* Deliver up to CHUNKS_PER_TURN chunks of r, then its terminal call if it ended. Returns 0 if r was
 * forgotten (ended or freed). */
static int deliver(registration* r) {
    for (int i = 0; i < CHUNKS_PER_TURN; i++) {
        dynamo_chunk_t chunk;
        dynamo_status_t st = dynamo_stream_poll(r->stream, 0, &chunk);
        if (st == DYNAMO_OK) {
            r->cb(r->stream, DYNAMO_OK, &chunk, r->user);
            continue;
        }
        if (st == DYNAMO_TIMEOUT) return 1;
        if (st == DYNAMO_ERR_INVALID_HANDLE) { /* freed (inside a callback): its fd went with it */
            forget(r, 0);
            return 0;
        }
        /* terminal: leave epoll first (the callback may free the stream and reuse the fd number) */
        dynamo_stream_t* stream = r->stream;
        dynamo_stream_callback_t cb = r->cb;
        void* user = r->user;
        forget(r, 1);
        cb(stream, st, NULL, user);
        return 0;
    }
    return 1;
}

/* Registrations whose stream was freed on another thread get no more events: drop them. */
static void sweep(void) {
    pthread_mutex_lock(&mu);
    registration* r = regs;
    while (r) {
        registration* next = r->next;
        if (dynamo_stream_fd(r->stream) < 0) { unlink_locked(r); free(r); }
        r = next;
    }
    pthread_mutex_unlock(&mu);
}

static void* dispatcher(void* unused) {
    (void)unused;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        pthread_mutex_lock(&mu);
        if (!regs) { /* idle: the thread goes (a later registration starts another) */
            running = 0;
            close(epfd);
            epfd = -1;
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        int fd = epfd;
        pthread_mutex_unlock(&mu);
        int n = epoll_wait(fd, events, MAX_EVENTS, SWEEP_MS);
        if (n < 0 && errno != EINTR) n = 0;
        if (n == 0) { sweep(); continue; }
        for (int i = 0; i < n; i++) {
            registration* r = events[i].data.ptr;
            pthread_mutex_lock(&mu);
            int live = 0;
            for (registration* x = regs; x; x = x->next) live |= x == r;
            pthread_mutex_unlock(&mu);
            if (live) deliver(r); /* only this thread frees registrations: r stays valid */
        }
    }
}

/* Under mu: the dispatcher thread, started with every asynchronous signal blocked (a guest in the host). */
static dynamo_status_t ensure_dispatcher_locked(void) {
    if (running) return DYNAMO_OK;
    if (epfd < 0 && (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "epoll_create1: %s", strerror(errno));
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&thread, &attr, dispatcher, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "cannot start the callback thread: %s", strerror(err));
    running = 1;
    return DYNAMO_OK;
}

dynamo_status_t dynamo_stream_set_callback(dynamo_stream_t* stream, dynamo_stream_callback_t cb, void* user_data) {
    REFUSE_IF_FORKED();
    if (!stream) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream is NULL");
    if (!cb) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the callback is NULL");
    int fd = dynamo_stream_fd(stream); /* sets the error of an invalid handle */
    if (fd < 0) return dyn_forked ? DYNAMO_ERR_FORKED : DYNAMO_ERR_INVALID_HANDLE;
    registration* r = calloc(1, sizeof *r);
    if (!r) return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "out of memory");
    r->stream = stream;
    r->cb = cb;
    r->user = user_data;
    r->fd = fd;
    pthread_mutex_lock(&mu);
    if (find_locked(stream)) {
        pthread_mutex_unlock(&mu);
        free(r);
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the stream already has a callback");
    }
    dynamo_status_t st = ensure_dispatcher_locked();
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
    if (st == DYNAMO_OK && epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        st = dyn_fail(DYNAMO_ERR_INTERNAL, "epoll_ctl: %s", strerror(errno));
    if (st != DYNAMO_OK) {
        pthread_mutex_unlock(&mu);
        free(r);
        return st;
    }
    r->next = regs;
    if (regs) regs->prev = r;
    regs = r;
    pthread_mutex_unlock(&mu);
    return DYNAMO_OK;
}
