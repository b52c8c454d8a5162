/* `python -m pyimpl.bench capi` line (7): one maximum-size (8 MiB) chat request submitted while
 * another stream runs (the mock endpoint, a chunk every INTERVAL_US): p50/p99/max of that stream's
 * inter-chunk gaps before and while the big request is handled (from its submission until it
 * reports its first chunk or its end), and how long the big request took. Prints one JSON object.
 *   bench_capi_big [config_json]   (default: the demo model plus the mock endpoint) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_NAME "bench_capi_big"
#include "bench_util.h"

#define ENDPOINT "bench.mock.stream"
enum { INTERVAL_US = 1000, BASELINE = 300, MAX_GAPS = 1 << 20 };


typedef struct { dynamo_stream_t* s; long long done_ns; dynamo_status_t status; char error[256]; } big_arg;

/* Polls the big request until its first chunk or its end. */
static void* big_poller(void* p) {
    big_arg* a = p;
    dynamo_chunk_t c;
    a->status = dynamo_stream_poll(a->s, -1, &c);
    snprintf(a->error, sizeof a->error, "%s", a->status == DYNAMO_OK ? "" : dynamo_last_error()); /* thread-local */
    for (char* q = a->error; *q; q++) if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20) *q = '\''; /* JSON-safe */
    __atomic_store_n(&a->done_ns, now_ns(), __ATOMIC_RELEASE);
    return NULL;
}

/* Sorted gaps (ms): p50, p99, max into out[0..2]. */
static void summarize(double* gaps, long n, double out[3]) {
    qsort(gaps, (size_t)n, sizeof gaps[0], cmp_double);
    out[0] = n ? gaps[n / 2] : 0;
    out[1] = n ? gaps[(n * 99) / 100] : 0;
    out[2] = n ? gaps[n - 1] : 0;
}

static char* big_request(void) {
    const char* head = "{\"messages\": [{\"role\": \"user\", \"content\": \"";
    const char* tail = "\"}], \"max_tokens\": 1}";
    size_t total = 8u * 1024u * 1024u, fill = total - strlen(head) - strlen(tail);
    char* r = malloc(total + 1);
    if (!r) die("malloc", DYNAMO_ERR_OUT_OF_MEMORY);
    char* p = r + strlen(head);
    memcpy(r, head, strlen(head));
    for (size_t i = 0; i < fill; i++) p[i] = "lorem ipsum dolor sit amet "[i % 27];
    memcpy(p + fill, tail, strlen(tail) + 1);
    return r;
}

int main(int argc, char** argv) {
    const char* config = argc > 1 ? argv[1] : "{\"mock_endpoint\": \"" ENDPOINT "\"}";
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = dynamo_runtime_create(config, &rt);
    if (st != DYNAMO_OK) die("dynamo_runtime_create", st);
    char request[96];
    snprintf(request, sizeof request, "{\"n\": 100000000, \"interval_us\": %d}", INTERVAL_US);
    dynamo_stream_t* other = NULL;
    if ((st = dynamo_generate(rt, ENDPOINT, request, &other)) != DYNAMO_OK) die("dynamo_generate", st);

    static double before[BASELINE], during[MAX_GAPS];
    dynamo_chunk_t c;
    long long last = 0;
    for (int i = -20; i < BASELINE; i++) { /* 20 to settle, then the baseline */
        if ((st = dynamo_stream_poll(other, 30000, &c)) != DYNAMO_OK) die("baseline poll", st);
        long long t = now_ns();
        if (i >= 0) before[i] = (double)(t - last) / 1e6;
        last = t;
    }
    char* body = big_request();
    static big_arg big;
    long long submitted = now_ns();
    if ((st = dynamo_chat_completion(rt, body, &big.s)) != DYNAMO_OK) die("dynamo_chat_completion (8 MiB)", st);
    double submit_ms = (double)(now_ns() - submitted) / 1e6;
    pthread_t t;
    pthread_create(&t, NULL, big_poller, &big);
    long n = 0;
    last = now_ns();
    while (!__atomic_load_n(&big.done_ns, __ATOMIC_ACQUIRE) && n < MAX_GAPS) {
        if ((st = dynamo_stream_poll(other, 100, &c)) == DYNAMO_TIMEOUT) continue;
        if (st != DYNAMO_OK) die("poll during the big request", st);
        long long now = now_ns();
        during[n++] = (double)(now - last) / 1e6;
        last = now;
    }
    pthread_join(t, NULL);
    double big_ms = (double)(big.done_ns - submitted) / 1e6;
    double b[3], d[3];
    summarize(before, BASELINE, b);
    summarize(during, n, d);
    printf("{\"big_request_bytes\": %zu, \"big_submit_ms\": %.3f, \"big_first_response_ms\": %.1f, \"big_status\": \"%s\", \"big_error\": \"%s\", "
           "\"gap_before_p50_ms\": %.2f, \"gap_before_p99_ms\": %.2f, \"gap_during_p50_ms\": %.2f, "
           "\"gap_during_p99_ms\": %.2f, \"gap_during_max_ms\": %.1f, \"gaps_during\": %ld}\n",
           strlen(body), submit_ms, big_ms, dynamo_status_str(big.status), big.error, b[0], b[1], d[0], d[1], d[2], n);
    dynamo_stream_free(big.s);
    dynamo_stream_free(other);
    free(body);
    dynamo_runtime_destroy(rt);
    return 0;
}
