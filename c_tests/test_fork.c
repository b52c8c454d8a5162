/* A child forked after the library started is refused with DYNAMO_ERR_FORKED instead of deadlocking. */
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static void handler(void* user_data, const char* request, size_t len, dynamo_responder_t* responder) {
    (void)user_data; (void)request; (void)len;
    dynamo_responder_finish(responder, NULL);
}

int main(void) {
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 1000000, \"interval_us\": 100}", &s), DYNAMO_OK);
    dynamo_chunk_t c;
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), DYNAMO_OK);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dynamo_runtime_t* rt2 = NULL;
        dynamo_stream_t* s2 = NULL;
        CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt2), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{}", &s2), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_chat_completion(rt, "{}", &s2), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_stream_poll(s, -1, &c), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_stream_cancel(s), DYNAMO_ERR_FORKED);
        CHECK(dynamo_stream_fd(s) == -1);
        CHECK_STATUS(dynamo_stream_free(s), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_runtime_stats_json(rt, (const char**)&s2), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_ERR_FORKED);
        /* C engines: serving and answering are refused too; Dynamo's KV functions say ERR */
        dynamo_server_t* server = NULL;
        CHECK_STATUS(dynamo_endpoint_serve(rt, "test.fork.serve", handler, NULL, &server), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_server_stop((dynamo_server_t*)(uintptr_t)0x13), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_model_register((dynamo_server_t*)(uintptr_t)0x13, "{}"), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_responder_send((dynamo_responder_t*)(uintptr_t)0x17, "{}", 2), DYNAMO_ERR_FORKED);
        CHECK_STATUS(dynamo_responder_finish((dynamo_responder_t*)(uintptr_t)0x17, NULL), DYNAMO_ERR_FORKED);
        CHECK(dynamo_responder_is_cancelled((dynamo_responder_t*)(uintptr_t)0x17) == 1);
        CHECK(dynamo_llm_init("test", NULL, "generate", 4) == DYNAMO_LLM_RESULT_ERR);
        CHECK(dynamo_llm_shutdown() == DYNAMO_LLM_RESULT_ERR);
        CHECK(strstr(dynamo_last_error(), "fork") != NULL);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the parent is unaffected */
    CHECK_STATUS(dynamo_stream_poll(s, 30000, &c), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
