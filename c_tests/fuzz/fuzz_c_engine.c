/* libFuzzer target: what a C engine hands the library, on a stub runtime (python_stub.c): a response
 * (dynamo_responder_send on a live responder of a server), a model card (dynamo_model_register) and an
 * endpoint path (dynamo_endpoint_serve, then dynamo_server_stop). The first byte picks the call, the rest
 * is its text. An accepted response reaches the outbox byte for byte; anything refused is
 * DYNAMO_ERR_INVALID_ARGUMENT with a message. The Python side (card keys, path format) is not covered. */
#include "fuzz_common.h"

static void noop_handler(void* user_data, const char* request, size_t len, dynamo_responder_t* responder) {
    (void)user_data; (void)request; (void)len; (void)responder; /* the target finishes the responder */
}

static dynamo_server_t* fuzz_server(void) {
    static dynamo_server_t* server;
    if (!server)
        FUZZ_CHECK(dynamo_endpoint_serve(fuzz_runtime(), "fuzz.c.serve", noop_handler, NULL, &server) == DYNAMO_OK);
    return server;
}

static void drop_outbox(void) {
    dyn_event_t* ev;
    while ((ev = dyn_outbox_next())) dyn_event_release(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    int op = data[0] % 3;
    data++, size--;
    if (op == 0) {
        uint64_t r = dyn_serve_dispatch((uint64_t)(uintptr_t)fuzz_server(), "{}", 2);
        FUZZ_CHECK(r != 0);
        dynamo_responder_t* responder = (dynamo_responder_t*)(uintptr_t)r;
        dynamo_status_t st = dynamo_responder_send(responder, (const char*)data, size);
        if (st == DYNAMO_OK) {
            FUZZ_CHECK(dyn_utf8_valid((const char*)data, size) && dyn_json_valid_object((const char*)data, size));
            dyn_event_t* ev = dyn_outbox_next();
            FUZZ_CHECK(ev && ev->kind == DYN_OUT_SEND && ev->stream == r && ev->request_len == size);
            FUZZ_CHECK(memcmp(ev->request, data, size) == 0 && ev->request[size] == '\0');
            dyn_event_release(ev);
        } else {
            FUZZ_CHECK(st == DYNAMO_ERR_INVALID_ARGUMENT && dynamo_last_error()[0] != '\0');
        }
        FUZZ_CHECK(dynamo_responder_finish(responder, NULL) == DYNAMO_OK);
        FUZZ_CHECK(dynamo_responder_finish(responder, NULL) == DYNAMO_ERR_INVALID_HANDLE);
        drop_outbox();
    } else if (op == 1) {
        char* card = fuzz_string(data, size);
        dynamo_status_t st = dynamo_model_register(fuzz_server(), card);
        if (st == DYNAMO_OK) FUZZ_CHECK(dyn_json_valid_object(card, strlen(card)));
        else FUZZ_CHECK(st == DYNAMO_ERR_INVALID_ARGUMENT && dynamo_last_error()[0] != '\0');
        free(card);
    } else {
        char* path = fuzz_string(data, size);
        dynamo_server_t* server = NULL;
        dynamo_status_t st = dynamo_endpoint_serve(fuzz_runtime(), path, noop_handler, NULL, &server);
        if (st == DYNAMO_OK) {
            FUZZ_CHECK(dyn_utf8_valid(path, strlen(path)));
            FUZZ_CHECK(dynamo_server_stop(server) == DYNAMO_OK);
        } else {
            FUZZ_CHECK(st == DYNAMO_ERR_INVALID_ARGUMENT && server == NULL);
        }
        free(path);
        drop_outbox();
    }
    return 0;
}
