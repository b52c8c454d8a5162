/* A chat stream whose worker is lost (SIGKILL of the worker process mid-stream) with "migration_limit": 0:
 * every chunk before the loss carries its token ids, the last chunk carries DYNAMO_FINISH_CANCELLED, and the
 * poll after it returns DYNAMO_ERR_UNAVAILABLE (sticky), never DYNAMO_END. The deployment (file discovery,
 * tcp) comes from DYN_* variables, shared by the worker process and the C runtime created without them.
 *   test_worker_lost PYTHON */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static pid_t worker_pid;
static void kill_worker(void) { if (worker_pid > 0) kill(worker_pid, SIGKILL); } /* a failed CHECK exits */

/* Start `python -m pyimpl.worker` on the tiny model (mock engine, 20 ms a token); returns its pid once ready. */
static pid_t start_worker(const char* python, FILE** out) {
    const char* root = getenv("DYNAMO_TEST_REPO_ROOT");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && path=$(%s -c 'from pyimpl.models import tiny_model_path; print(tiny_model_path())') && "
             "echo $$ && exec %s -m pyimpl.worker --model \"$path\" --model-name tiny --engine mock "
             "--mock-step-delay-s 0.02 2>&1", root ? root : ".", python, python);
    *out = popen(cmd, "r");
    CHECK(*out != NULL);
    char line[4096];
    CHECK(fgets(line, sizeof line, *out) != NULL);
    pid_t pid = worker_pid = (pid_t)atol(line);
    CHECK(pid > 0);
    atexit(kill_worker);
    while (fgets(line, sizeof line, *out))
        if (strstr(line, "worker ready")) return pid;
    fprintf(stderr, "the worker did not start\n");
    exit(1);
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    char dir[] = "/tmp/dyn_worker_lost_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK(setenv("DYN_DISCOVERY_BACKEND", "file", 1) == 0 && setenv("DYN_REQUEST_PLANE", "tcp", 1) == 0);
    CHECK(setenv("DYN_FILE_KV", dir, 1) == 0);
    FILE* worker_out = NULL;
    pid_t worker = start_worker(argv[1], &worker_out); /* before the library starts its threads */

    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create("{\"migration_limit\": 0}", &rt), DYNAMO_OK);
    dynamo_stream_t* s = NULL;
    dynamo_status_t st = DYNAMO_ERR_NOT_FOUND;
    dynamo_chunk_t c;
    for (int tries = 0; tries < 100 && st == DYNAMO_ERR_NOT_FOUND; tries++) { /* until the card is seen */
        if (s) { CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK); usleep(100000); }
        CHECK_STATUS(dynamo_chat_completion(rt, "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                                                " \"max_tokens\": 1000, \"ignore_eos\": true}", &s), DYNAMO_OK);
        st = dynamo_stream_poll(s, 30000, &c);
    }
    CHECK_STATUS(st, DYNAMO_OK);
    size_t ids = 0;
    int chunks = 0, killed = 0, last_finish = -1;
    while ((st = dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) {
        chunks++;
        ids += c.num_token_ids;
        CHECK(last_finish == -1 || last_finish == DYNAMO_FINISH_NONE); /* nothing after the finish */
        last_finish = c.finish_reason;
        if (!killed && ids >= 10) { CHECK(kill(worker, SIGKILL) == 0); killed = 1; }
    }
    CHECK(killed && ids < 1000);
    CHECK(last_finish == DYNAMO_FINISH_CANCELLED);
    CHECK_STATUS(st, DYNAMO_ERR_UNAVAILABLE);
    CHECK(strstr(dynamo_last_error(), "Error:") == NULL); /* a plain sentence */
    printf("%d chunks, %zu token ids, then FINISH_CANCELLED and UNAVAILABLE: %s\n", chunks, ids, dynamo_last_error());
    CHECK_STATUS(dynamo_stream_poll(s, 0, &c), DYNAMO_ERR_UNAVAILABLE);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    waitpid(worker, NULL, 0);
    worker_pid = 0; /* reaped: its pid may be reused */
    pclose(worker_out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    puts("ok");
    return 0;
}
