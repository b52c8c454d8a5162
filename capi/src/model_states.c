/* dynamo_runtime_set_state_callback: the host's callback per runtime for its hosted models' state changes.
 * The Python side (pyimpl/capi/host_api_bridge.py) calls dyn_model_state_emit from one thread of its own. */
#include "stream_slot.h"

enum { MAX_ENTRIES = 256 }; /* as many as runtimes (runtime_api.c) */

typedef struct {
    uint64_t runtime;
    dynamo_model_state_callback_t cb;
    void* user;
} state_entry;

/* Emitters hold the read lock across the callback: a setter returns once the old callback is not running. */
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static state_entry entries[MAX_ENTRIES];

static uint32_t slot_of(uint64_t runtime) { return (uint32_t)((runtime >> 4) & 0x0FFFFFFF) % MAX_ENTRIES; }

void dyn_model_state_emit(uint64_t runtime, const char* model, int32_t state, const char* message) {
    pthread_rwlock_rdlock(&lock);
    state_entry e = entries[slot_of(runtime)];
    if (e.runtime == runtime && e.cb)
        e.cb((dynamo_runtime_t*)(uintptr_t)runtime, model ? model : "", state,
             message && *message ? message : NULL, e.user);
    pthread_rwlock_unlock(&lock);
}

dynamo_status_t dynamo_runtime_set_state_callback(dynamo_runtime_t* rt, dynamo_model_state_callback_t cb,
                                                  void* user_data) {
    REFUSE_IF_FORKED();
    uint64_t h;
    dynamo_status_t st = dyn_runtime_check(rt, &h);
    if (st != DYNAMO_OK) return st;
    pthread_rwlock_wrlock(&lock);
    entries[slot_of(h)] = (state_entry){h, cb, user_data};
    pthread_rwlock_unlock(&lock);
    return DYNAMO_OK;
}
