/* The outbox: a second queue from C to the loop thread, for what C/C++ engines hand over (KV events,
 * responses of C-served endpoints). As the submission queue (runtime_api.c), a push never waits for the
 * interpreter (event_queue.c; the loop thread watches its eventfd in pyimpl/capi/c_engines.py). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "dyn_internal.h"

static dyn_event_queue outbox = DYN_EVENT_QUEUE_INIT;

int dyn_outbox_fd(void) { return dyn_queue_fd(&outbox); }
void dyn_outbox_push(dyn_event_t* ev) { dyn_queue_push(&outbox, ev); }
dyn_event_t* dyn_outbox_next(void) { return dyn_queue_next(&outbox); }

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
