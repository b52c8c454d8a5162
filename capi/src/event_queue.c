/* A queue from C threads to the loop thread that never waits for the interpreter: a mutex, a list and an
 * eventfd that becomes readable when the queue turns non-empty. Two instances exist: the submission queue
 * (runtime_api.c) and the outbox of C/C++ engines (outbox.c). */
#define _GNU_SOURCE
#include <sys/eventfd.h>
#include <unistd.h>

#include "dyn_internal.h"

int dyn_queue_fd(dyn_event_queue* q) {
    pthread_mutex_lock(&q->mu);
    if (q->fd < 0) q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int fd = q->fd;
    pthread_mutex_unlock(&q->mu);
    return fd;
}

void dyn_queue_push(dyn_event_queue* q, dyn_event_t* ev) {
    int fd = dyn_queue_fd(q);
    ev->next = NULL;
    pthread_mutex_lock(&q->mu);
    int was_empty = q->head == NULL;
    if (q->tail) q->tail->next = ev; else q->head = ev;
    q->tail = ev;
    pthread_mutex_unlock(&q->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(fd, &one, sizeof one);
        (void)w;
    }
}

dyn_event_t* dyn_queue_next(dyn_event_queue* q) {
    pthread_mutex_lock(&q->mu);
    dyn_event_t* ev = q->head;
    if (ev) { q->head = ev->next; if (!q->head) q->tail = NULL; }
    pthread_mutex_unlock(&q->mu);
    return ev;
}
