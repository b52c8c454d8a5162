/* A child forked after the library started is refused with DYNAMO_ERR_FORKED instead of deadlocking. */
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

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
