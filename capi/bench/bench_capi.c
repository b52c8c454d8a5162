/* The C half of `python -m pyimpl.bench capi`: prints one JSON object of figures.
 * (1) ns per dynamo_stream_poll of an already-queued chunk (median over batches)
 * (2) chunks/s of one N-chunk mock stream consumed from C
 * (3) chunks/s with 8 host threads, one stream each
 * (4) p50/p99 produce->receive delay while another request keeps Python CPU-busy */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_NAME "bench_capi"
#include "bench_util.h"

#define ENDPOINT "bench.mock.stream"
static dynamo_runtime_t* rt;
static long n_chunks = 100000;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static dynamo_stream_t* open_stream(const char* request) {
    dynamo_stream_t* s;
    dynamo_status_t st = dynamo_generate(rt, ENDPOINT, request, &s);
    if (st != DYNAMO_OK) die("dynamo_generate", st);
    return s;
}
static long consume(dynamo_stream_t* s) {
    dynamo_chunk_t c;
    dynamo_status_t st;
    long n = 0;
    while ((st = dynamo_stream_poll(s, -1, &c)) == DYNAMO_OK) n++;
    if (st != DYNAMO_END) die("dynamo_stream_poll", st);
    return n;
}
static long stat_int(const char* key) {
    const char* json;
    if (dynamo_runtime_stats_json(rt, &json) != DYNAMO_OK) return -1;
    const char* at = strstr(json, key);
    return at ? strtol(at + strlen(key) + 1, NULL, 10) : -1;
}

/* (1) */
static double poll_queued_ns(void) {
    enum { BATCH = 1000, BATCHES = 90 };
    char request[64];
    snprintf(request, sizeof request, "{\"n\": %d}", BATCH * BATCHES + 1);
    dynamo_stream_t* s = open_stream(request);
    dynamo_chunk_t first;
    if (dynamo_stream_poll(s, -1, &first) != DYNAMO_OK) die("first poll", DYNAMO_TIMEOUT); /* the producer runs */
    struct timespec pause = {0, 20000000};
    while (stat_int("\"live_streams\"") != 0) nanosleep(&pause, NULL); /* producer done: all chunks queued */
    double per_batch[BATCHES];
    dynamo_chunk_t c;
    for (int b = 0; b < BATCHES; b++) {
        long long t0 = now_ns();
        for (int i = 0; i < BATCH; i++)
            if (dynamo_stream_poll(s, 0, &c) != DYNAMO_OK) die("queued poll", DYNAMO_TIMEOUT);
        per_batch[b] = (double)(now_ns() - t0) / BATCH;
    }
    qsort(per_batch, BATCHES, sizeof per_batch[0], cmp_double);
    consume(s);
    dynamo_stream_free(s);
    return per_batch[BATCHES / 2];
}

/* (3) */
static long thread_chunks;
static void* thread_main(void* arg) {
    dynamo_stream_t* s = arg;
    long n = consume(s);
    __atomic_add_fetch(&thread_chunks, n, __ATOMIC_RELAXED);
    return NULL;
}

/* (5) how long dynamo_generate takes while Python is busy (it must not wait for the GIL) */
static double submit_busy_p99_us;

/* (4) */
static void latency(double* p50_us, double* p99_us, long* samples) {
    enum { N = 400 };
    dynamo_stream_t* busy = open_stream("{\"busy_ms\": 4000}");
    struct timespec settle = {0, 200000000};
    nanosleep(&settle, NULL); /* the busy request is running */
    char request[64];
    snprintf(request, sizeof request, "{\"n\": %d, \"interval_us\": 5000}", N);
    dynamo_stream_t* s = open_stream(request);
    static double delays[N];
    dynamo_chunk_t c;
    static double submit_us[200];
    for (int i = 0; i < 200; i++) {
        dynamo_stream_t* t;
        long long t0 = now_ns();
        dynamo_status_t sst = dynamo_generate(rt, ENDPOINT, "{\"n\": 1}", &t);
        submit_us[i] = (double)(now_ns() - t0) / 1000.0;
        if (sst != DYNAMO_OK) die("busy submit", sst);
        dynamo_stream_free(t);
    }
    qsort(submit_us, 200, sizeof submit_us[0], cmp_double);
    submit_busy_p99_us = submit_us[198];
    dynamo_status_t st;
    long n = 0;
    while ((st = dynamo_stream_poll(s, -1, &c)) == DYNAMO_OK) {
        long long received = now_ns();
        const char* at = strstr(c.json, "\"t_ns\":");
        if (at && n < N) delays[n++] = (double)(received - atoll(at + 7)) / 1000.0;
    }
    if (st != DYNAMO_END) die("latency poll", st);
    dynamo_stream_cancel(busy);
    dynamo_stream_free(busy);
    dynamo_stream_free(s);
    qsort(delays, (size_t)n, sizeof delays[0], cmp_double);
    *p50_us = delays[n / 2];
    *p99_us = delays[(n * 99) / 100];
    *samples = n;
}

/* (2): chunks/s of one n_chunks stream; *got is its chunk count */
static double stream_rate(long* got) {
    char request[64];
    snprintf(request, sizeof request, "{\"n\": %ld}", n_chunks);
    dynamo_stream_t* s = open_stream(request);
    double t0 = now_s();
    *got = consume(s);
    double rate = *got / (now_s() - t0);
    dynamo_stream_free(s);
    return rate;
}

/* bench_capi [N [stream]]: every figure, or with "stream" only (2) (one more round of it) */
int main(int argc, char** argv) {
    if (argc > 1) n_chunks = atol(argv[1]);
    dynamo_status_t st = dynamo_runtime_create("{\"serve_model\": false, \"mock_endpoint\": \"" ENDPOINT "\"}", &rt);
    if (st != DYNAMO_OK) die("dynamo_runtime_create", st);
    consume(open_stream("{\"n\": 1000}")); /* warm up */
    long got;
    if (argc > 2 && strcmp(argv[2], "stream") == 0) {
        double rate = stream_rate(&got);
        printf("{\"c_chunks_per_s\": %.0f, \"c_chunks\": %ld}\n", rate, got);
        dynamo_runtime_destroy(rt);
        return 0;
    }

    double poll_ns = poll_queued_ns();
    double single = stream_rate(&got);
    char request[64];
    double t0;

    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    snprintf(request, sizeof request, "{\"n\": %ld}", n_chunks / THREADS);
    t0 = now_s();
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, thread_main, open_stream(request));
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    double threaded = thread_chunks / (now_s() - t0);

    double p50, p99;
    long samples;
    latency(&p50, &p99, &samples);

    printf("{\"poll_queued_ns_median\": %.1f, \"c_chunks_per_s\": %.0f, \"c_chunks\": %ld, "
           "\"c_8_threads_chunks_per_s\": %.0f, \"busy_delay_p50_us\": %.1f, \"busy_delay_p99_us\": %.1f, "
           "\"busy_delay_samples\": %ld, \"busy_submit_p99_us\": %.1f}\n",
           poll_ns, single, got, threaded, p50, p99, samples, submit_busy_p99_us);
    dynamo_runtime_destroy(rt);
    return 0;
}
