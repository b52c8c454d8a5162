/* dynamo_runtime_destroy returns every resource: 100 create("{}") / chat / destroy cycles keep RSS
 * within 10% of the RSS after the warm-up cycles, and the thread and fd counts do not grow.
 *   test_destroy_leak [cycles] [config_json] */
#include <dirent.h>

#include "test_util.h"

#define WARMUP 2

/* A "Key: value" number of /proc/self/status (VmRSS in kB, Threads), -1 if absent. */
static long proc_status(const char* key) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    long value = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') { value = strtol(line + n + 1, NULL, 10); break; }
    if (f) fclose(f);
    return value;
}

static long open_fds(void) {
    DIR* d = opendir("/proc/self/fd");
    long n = 0;
    while (d && readdir(d)) n++;
    if (d) closedir(d);
    return n;
}

int main(int argc, char** argv) {
    int cycles = argc > 1 ? atoi(argv[1]) : 100;
    const char* config = argc > 2 ? argv[2] : "{}";
    long rss0 = 0, threads0 = 0, fds0 = 0, rss_max = 0;
    for (int i = 0; i < cycles; i++) {
        dynamo_runtime_t* rt = NULL;
        CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
        dynamo_stream_t* s = NULL;
        CHECK_STATUS(dynamo_chat_completion(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                                                " \"max_tokens\": 2}", &s), DYNAMO_OK);
        int chunks;
        CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
        CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
        CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
        long rss = proc_status("VmRSS");
        if (i + 1 == WARMUP) { rss0 = rss; threads0 = proc_status("Threads"); fds0 = open_fds(); }
        if (rss > rss_max) rss_max = rss;
        if (i + 1 == WARMUP || i + 1 == cycles || (i + 1) % 25 == 0)
            printf("cycle %d: rss %ld MB, threads %ld, fds %ld\n", i + 1, rss / 1024, proc_status("Threads"), open_fds());
    }
    long rss = proc_status("VmRSS");
    printf("rss after warm-up %ld MB, after %d cycles %ld MB (max %ld MB)\n", rss0 / 1024, cycles, rss / 1024,
           rss_max / 1024);
    CHECK(cycles <= WARMUP || rss <= rss0 + rss0 / 10);
    CHECK(cycles <= WARMUP || proc_status("Threads") <= threads0);
    CHECK(cycles <= WARMUP || open_fds() <= fds0);
    puts("ok");
    return 0;
}
