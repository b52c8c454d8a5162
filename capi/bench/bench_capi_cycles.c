/* `python -m pyimpl.bench capi` line (6): N dynamo_runtime_create/destroy cycles, one short stream in
 * each, RSS after the first cycle against after the last. Prints one JSON object.
 *   bench_capi_cycles N [config_json]   (config default "{}": the embedded demo model) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_NAME "bench_capi_cycles"
#include "bench_util.h"

static long rss_kb(void) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) { kb = strtol(line + 6, NULL, 10); break; }
    if (f) fclose(f);
    return kb;
}


int main(int argc, char** argv) {
    int cycles = argc > 1 ? atoi(argv[1]) : 1000;
    const char* config = argc > 2 ? argv[2] : "{}";
    int chat = strstr(config, "\"serve_model\": false") == NULL; /* a served model gets a chat request */
    long first = 0, peak = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < cycles; i++) {
        dynamo_runtime_t* rt = NULL;
        dynamo_status_t st = dynamo_runtime_create(config, &rt);
        if (st != DYNAMO_OK) die("dynamo_runtime_create", st);
        dynamo_stream_t* s = NULL;
        st = chat ? dynamo_chat_completion(rt, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}", &s)
                  : DYNAMO_OK;
        if (st != DYNAMO_OK) die("dynamo_chat_completion", st);
        dynamo_chunk_t c;
        while (s && (st = dynamo_stream_poll(s, 60000, &c)) == DYNAMO_OK) {}
        if (s && st != DYNAMO_END) die("dynamo_stream_poll", st);
        dynamo_stream_free(s);
        if ((st = dynamo_runtime_destroy(rt)) != DYNAMO_OK) die("dynamo_runtime_destroy", st);
        long rss = rss_kb();
        if (i == 0) first = rss;
        if (rss > peak) peak = rss;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("{\"cycles\": %d, \"rss_first_mb\": %.1f, \"rss_last_mb\": %.1f, \"rss_peak_mb\": %.1f, \"s_per_cycle\": %.3f}\n",
           cycles, first / 1024.0, rss_kb() / 1024.0, peak / 1024.0, seconds / (cycles ? cycles : 1));
    return 0;
}
