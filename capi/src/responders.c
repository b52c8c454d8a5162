/* Responder handles of C-served endpoints and the responder API: what the host sends becomes an outbox
 * event the loop thread streams to the client (pyimpl/capi/c_endpoint.py). A slot is reused with a new
 * generation, so a finished, forged or expired handle is refused, never followed. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "serve_tables.h"

enum { MAX_RESPONDERS = 1 << 20 };
#define MAX_ERROR_BYTES 65536u

typedef struct {
    uint32_t gen;
    int live;
    int cancelled;
    uint32_t server;       /* index of its server */
} responder_slot;

static responder_slot* responders; /* grown by realloc: only touched under dyn_serve_mu */
static uint32_t responders_made, *free_responders;
static size_t free_count;

static responder_slot* responder_locked(uint64_t h) {
    uint32_t index, gen;
    if (!handle_split(h, TAG_RESPONDER, &index, &gen) || index >= responders_made) return NULL;
    responder_slot* r = &responders[index];
    return r->live && r->gen == gen ? r : NULL;
}

uint64_t dyn_responder_new_locked(uint32_t server) {
    uint32_t index;
    if (free_count) {
        index = free_responders[--free_count];
    } else {
        if (responders_made == MAX_RESPONDERS) return 0;
        responder_slot* grown = realloc(responders, (responders_made + 1) * sizeof *grown);
        if (grown) responders = grown;
        uint32_t* free_grown = realloc(free_responders, (responders_made + 1) * sizeof *free_grown);
        if (free_grown) free_responders = free_grown;
        if (!grown || !free_grown) return 0;
        memset(&responders[responders_made], 0, sizeof *responders);
        index = responders_made++;
    }
    responder_slot* r = &responders[index];
    r->gen = r->gen + 1 ? r->gen + 1 : 1;
    r->live = 1;
    r->cancelled = 0;
    r->server = server;
    return handle_make(index, r->gen, TAG_RESPONDER);
}

int dyn_responder_state_locked(uint64_t h) {
    responder_slot* r = responder_locked(h);
    return !r ? -1 : r->cancelled;
}

void dyn_responder_end_locked(uint64_t h, const char* error) {
    responder_slot* r = responder_locked(h);
    if (!r) return;
    r->live = 0;
    r->cancelled = 1;
    dyn_server_response_done_locked(r->server);
    free_responders[free_count++] = (uint32_t)((h >> 4) & 0x0FFFFFFF);
    size_t len = error ? strnlen(error, MAX_ERROR_BYTES) : 0;
    dyn_event_t* ev = dyn_outbox_event(DYN_OUT_FINISH, h, error, len);
    if (ev) dyn_outbox_push(ev); /* out of memory: the client's stream ends when its server stops */
}

void dyn_responders_expire_locked(uint32_t server, const char* error) {
    for (uint32_t i = 0; i < responders_made; i++)
        if (responders[i].live && responders[i].server == server)
            dyn_responder_end_locked(handle_make(i, responders[i].gen, TAG_RESPONDER), error);
}

/* ---- Python side ---- */

void dyn_responder_cancel(uint64_t responder) {
    pthread_mutex_lock(&dyn_serve_mu);
    responder_slot* r = responder_locked(responder);
    if (r) r->cancelled = 1;
    pthread_mutex_unlock(&dyn_serve_mu);
}

/* ---- the API ---- */

static dynamo_status_t invalid(void) {
    return dyn_fail(DYNAMO_ERR_INVALID_HANDLE, "invalid responder handle (finished, forged or expired)");
}

dynamo_status_t dynamo_responder_send(dynamo_responder_t* responder, const char* json, size_t json_len) {
    REFUSE_IF_FORKED();
    if (!responder) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the responder is NULL");
    if (!json) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "json is NULL");
    if (json_len > DYN_MAX_REQUEST_BYTES)
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "json is larger than %u bytes", DYN_MAX_REQUEST_BYTES);
    if (!dyn_utf8_valid(json, json_len)) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "json is not valid UTF-8");
    if (!dyn_json_valid_object(json, json_len))
        return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "json is not a well-formed JSON object");
    uint64_t h = (uint64_t)(uintptr_t)responder;
    dyn_event_t* ev = dyn_outbox_event(DYN_OUT_SEND, h, json, json_len);
    if (!ev) return dyn_fail(DYNAMO_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_lock(&dyn_serve_mu);
    int state = dyn_responder_state_locked(h);
    if (state == 0) dyn_outbox_push(ev); /* under the lock: never after this responder's finish */
    pthread_mutex_unlock(&dyn_serve_mu);
    if (state == 0) return DYNAMO_OK;
    dyn_event_release(ev);
    return state > 0 ? dyn_fail(DYNAMO_ERR_CANCELLED, "the client went away or the endpoint is stopping") : invalid();
}

dynamo_status_t dynamo_responder_finish(dynamo_responder_t* responder, const char* error_message) {
    REFUSE_IF_FORKED();
    if (!responder) return dyn_fail(DYNAMO_ERR_INVALID_ARGUMENT, "the responder is NULL");
    uint64_t h = (uint64_t)(uintptr_t)responder;
    pthread_mutex_lock(&dyn_serve_mu);
    int live = dyn_responder_state_locked(h) >= 0;
    if (live) dyn_responder_end_locked(h, error_message);
    pthread_mutex_unlock(&dyn_serve_mu);
    return live ? DYNAMO_OK : invalid();
}

int dynamo_responder_is_cancelled(dynamo_responder_t* responder) {
    if (dyn_forked) return 1;
    pthread_mutex_lock(&dyn_serve_mu);
    int state = dyn_responder_state_locked((uint64_t)(uintptr_t)responder);
    pthread_mutex_unlock(&dyn_serve_mu);
    if (state < 0) invalid();
    return state != 0;
}
