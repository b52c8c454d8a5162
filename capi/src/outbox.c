/* The outbox: a second queue from C to the loop thread, for what C/C++ engines hand over (KV events,
 * responses of C-served endpoints). As the submission queue (runtime_api.c), a push never waits for the
 * interpreter: a mutex, a list and an eventfd that the loop thread watches (pyimpl/capi/c_engines.py). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dyn_internal.h"

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static dyn_event_t *out_head, *out_tail;
static int out_fd = -1;
static pthread_once_t out_once = PTHREAD_ONCE_INIT;

static void out_init(void) { out_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int dyn_outbox_fd(void) {
    pthread_once(&out_once, out_init);
    return out_fd;
}

void dyn_outbox_push(dyn_event_t* ev) {
    pthread_once(&out_once, out_init);
    ev->next = NULL;
    pthread_mutex_lock(&out_mu);
    int was_empty = out_head == NULL;
    if (out_tail) out_tail->next = ev; else out_head = ev;
    out_tail = ev;
    pthread_mutex_unlock(&out_mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(out_fd, &one, sizeof one);
        (void)w;
    }
}

dyn_event_t* dyn_outbox_next(void) {
    pthread_mutex_lock(&out_mu);
    dyn_event_t* ev = out_head;
    if (ev) { out_head = ev->next; if (!out_head) out_tail = NULL; }
    pthread_mutex_unlock(&out_mu);
    return ev;
}

dyn_event_t* dyn_outbox_event(int32_t kind, uint64_t handle, const void* data, size_t len) {
    dyn_event_t* ev = calloc(1, sizeof *ev);
    if (!ev) return NULL;
    ev->kind = kind;
    ev->stream = handle;
    if (data) {
        ev->request = malloc(len + 1);
        if (!ev->request) { free(ev); return NULL; }
        memcpy(ev->request, data, len);
        ev->request[len] = '\0';
        ev->request_len = len;
    }
    return ev;
}
