/* Figures of the C-engine functions (a benchmark, not a test): the cost of a KV-event publish to the
 * calling engine thread and the rate the Python side drains them; a C-served endpoint's round trip for a
 * one-chunk request and its streaming rate, through dynamo_generate on the same (embedded) runtime.
 *   build/c_tests/bench_c_engine [events] [requests] [chunks] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "dynamo_llm.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static void handler(void* user_data, const char* request, size_t len, dynamo_responder_t* r) {
    (void)user_data;
    (void)len;
    long n = strtol(strstr(request, ":") + 1, NULL, 10);
    for (long i = 0; i < n; i++) {
        char json[64];
        int k = snprintf(json, sizeof json, "{\"token_ids\": [%ld], \"finish_reason\": null}", i);
        dynamo_responder_send(r, json, (size_t)k);
    }
    dynamo_responder_finish(r, NULL);
}

static long run(dynamo_runtime_t* rt, long chunks) {
    char request[64];
    snprintf(request, sizeof request, "{\"n\":%ld}", chunks);
    dynamo_stream_t* s = NULL;
    CHECK(dynamo_generate(rt, "bench.c.serve", request, &s) == DYNAMO_OK);
    dynamo_chunk_t c;
    long got = 0;
    dynamo_status_t st;
    while ((st = dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) got++;
    CHECK(st == DYNAMO_END);
    dynamo_stream_free(s);
    return got;
}

int main(int argc, char** argv) {
    long events = argc > 1 ? atol(argv[1]) : 100000;
    int requests = argc > 2 ? atoi(argv[2]) : 500;
    long chunks = argc > 3 ? atol(argv[3]) : 20000;

    /* KV events: 4 full blocks of 16 tokens per stored event */
    uint32_t tokens[64];
    size_t counts[4] = {16, 16, 16, 16};
    uint64_t ids[4];
    for (int i = 0; i < 64; i++) tokens[i] = (uint32_t)i;
    CHECK(dynamo_llm_init("bench", NULL, "generate", 16) == DYNAMO_LLM_RESULT_OK);
    double t0 = now_s();
    for (long e = 0; e < events; e++) {
        for (int b = 0; b < 4; b++) ids[b] = (uint64_t)e * 4 + (uint64_t)b + 1;
        CHECK(dynamo_kv_event_publish_stored((uint64_t)e + 1, tokens, counts, ids, 4, NULL, NULL) ==
              DYNAMO_LLM_RESULT_OK);
    }
    double t1 = now_s();
    CHECK(dynamo_llm_shutdown() == DYNAMO_LLM_RESULT_OK); /* returns once every queued event is published */
    double t2 = now_s();
    printf("kv publish_stored (4 blocks): %.2f us per call on the engine thread; %.0f events/s published "
           "(%ld events, all out %.2f s after the first)\n",
           (t1 - t0) / (double)events * 1e6, (double)events / (t2 - t0), events, t2 - t0);

    dynamo_runtime_t* rt = NULL;
    CHECK(dynamo_runtime_create("{\"serve_model\": false}", &rt) == DYNAMO_OK);
    dynamo_server_t* server = NULL;
    CHECK(dynamo_endpoint_serve(rt, "bench.c.serve", handler, NULL, &server) == DYNAMO_OK);
    run(rt, 1); /* warm up */
    double* lat = malloc((size_t)requests * sizeof *lat);
    for (int i = 0; i < requests; i++) {
        double a = now_s();
        CHECK(run(rt, 1) == 1);
        lat[i] = now_s() - a;
    }
    qsort(lat, (size_t)requests, sizeof *lat, cmp_double);
    printf("served from C, 1-chunk request round trip: p50 %.0f us, p99 %.0f us (%d requests)\n",
           lat[requests / 2] * 1e6, lat[requests * 99 / 100] * 1e6, requests);
    double a = now_s();
    CHECK(run(rt, chunks) == chunks);
    double b = now_s();
    printf("served from C, one stream: %.0f chunks/s (%ld chunks)\n", (double)chunks / (b - a), chunks);
    CHECK(dynamo_server_stop(server) == DYNAMO_OK);
    CHECK(dynamo_runtime_destroy(rt) == DYNAMO_OK);
    free(lat);
    return 0;
}
