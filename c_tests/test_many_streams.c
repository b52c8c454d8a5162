/* 1,000 concurrent C streams, each completed, cancelled or freed at random from several host threads,
 * over several rounds (issue 11's proof). Three in four are dynamo_generate streams of the mock endpoint
 * (2 ms between chunks, so the round's streams are open at once), one in four chat streams of the tiny
 * model on the mock engine (the frontend's whole request path: template, detokenizer, migration wrapper):
 *  - every stream ends exactly once: a completed one with all its chunks in order then DYNAMO_END, a
 *    cancelled one with DYNAMO_ERR_CANCELLED (or DYNAMO_END with every chunk, when it had already
 *    ended: the documented contract of dynamo_stream_cancel), and the end is sticky;
 *  - nothing lost: a completed generate stream has every chunk, indexes without gap; a completed chat
 *    stream carries exactly max_tokens token ids and one finish (LENGTH) on its last choice chunk;
 *  - nothing kept: live_streams and the engine's running requests are 0 after each round, fds flat;
 *  - RSS (/proc/self/statm) flat over the rounds after the first: printed, and bounded.
 *   test_many_streams PYTHON [ROUNDS] [STREAMS]   (default 5 rounds of 1000) */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* RSS means nothing there: quarantine and shadow memory */
#else
#define SANITIZED 0
#endif

enum { THREADS = 4, MAX_CHUNKS = 40 };
enum fate { COMPLETE, COMPLETE_FD, CANCEL_AT_ONCE, CANCEL_MID, FREE_MID, CANCEL_BY_OTHER, FATES };

typedef struct {
    dynamo_stream_t* s;
    int chat;            /* a chat stream (else dynamo_generate of the mock endpoint) */
    int n;               /* chunks (generate) or tokens (chat) the request asks for */
    int got;             /* chunks (generate) or token ids (chat) polled */
    int finishes;        /* chat: chunks with a finish_reason */
    int stop_after;      /* CANCEL_MID / FREE_MID: act after this many chunks */
    enum fate fate;
    int done;
} stream_t;

static dynamo_runtime_t* rt;
static stream_t* all;
static int per_thread;
static _Atomic int submitted, cancels_by_other;
static long peak_open; /* the most streams open at once, sampled in the 20 ms after a round's last submission */
static _Atomic long ended[FATES][2]; /* [fate][0: END, 1: CANCELLED] */

static unsigned next_rand(unsigned* seed) { *seed = *seed * 1103515245u + 12345u; return (*seed >> 16) & 0x7fff; }

static long rss_kb(void) {
    long pages = 0, resident = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    CHECK(f && fscanf(f, "%ld %ld", &pages, &resident) == 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int open_fds(void) {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* A stream reached its end: check it against its fate, that the end is sticky, free it. */
static void finish(stream_t* st, dynamo_status_t status) {
    CHECK(!st->done);
    dynamo_chunk_t c;
    if (status == DYNAMO_END) {
        CHECK(st->got == st->n); /* nothing lost, whatever the fate */
        CHECK(!st->chat || st->finishes == 1);
        ended[st->fate][0]++;
    } else {
        CHECK_STATUS(status, DYNAMO_ERR_CANCELLED);
        CHECK(st->fate != COMPLETE && st->fate != COMPLETE_FD);
        CHECK(st->got <= st->n);
        ended[st->fate][1]++;
    }
    CHECK_STATUS(dynamo_stream_poll(st->s, 0, &c), status);
    CHECK_STATUS(dynamo_stream_cancel(st->s), DYNAMO_OK); /* a cancel after the end changes nothing */
    CHECK_STATUS(dynamo_stream_poll(st->s, 0, &c), status);
    CHECK_STATUS(dynamo_stream_free(st->s), DYNAMO_OK);
    st->done = 1;
}

/* Poll what is there; returns 1 once the stream is done (ended or freed). */
static int step(stream_t* st) {
    dynamo_chunk_t c;
    dynamo_status_t status;
    if (st->fate == COMPLETE_FD) { /* wait on the stream's fd as an event loop would */
        struct pollfd p = {dynamo_stream_fd(st->s), POLLIN, 0};
        CHECK(p.fd >= 0);
        if (poll(&p, 1, 0) == 0) return 0;
    }
    while ((status = dynamo_stream_poll(st->s, 0, &c)) == DYNAMO_OK) {
        int before = st->got;
        if (st->chat) {
            CHECK(c.choice_index == 0 && !st->finishes); /* nothing after the finish */
            CHECK((c.num_token_ids == 0) == (c.token_ids == NULL));
            st->got += (int)c.num_token_ids;
            if (c.finish_reason != DYNAMO_FINISH_NONE) {
                CHECK(c.finish_reason == DYNAMO_FINISH_LENGTH);
                st->finishes++;
            }
        } else {
            CHECK(json_int(c.json, "index") == st->got); /* in order, no gap, no duplicate */
            CHECK(c.num_token_ids == 1 && c.token_ids[0] == (uint32_t)st->got);
            st->got++;
        }
        CHECK(st->got <= st->n);
        if ((st->fate == CANCEL_MID || st->fate == FREE_MID) && before < st->stop_after && st->got >= st->stop_after) {
            if (st->fate == FREE_MID) { /* freed while running: the runtime cancels it */
                CHECK_STATUS(dynamo_stream_free(st->s), DYNAMO_OK);
                ended[FREE_MID][1]++;
                st->done = 1;
                return 1;
            }
            CHECK_STATUS(dynamo_stream_cancel(st->s), DYNAMO_OK);
        }
    }
    if (status == DYNAMO_TIMEOUT) return 0;
    finish(st, status);
    return 1;
}

static void* host_thread(void* arg) {
    stream_t* mine = all + (long)arg * per_thread;
    unsigned seed = (unsigned)(long)arg * 7919u + (unsigned)time(NULL);
    char request[256];
    for (int i = 0; i < per_thread; i++) {
        stream_t* st = &mine[i];
        memset(st, 0, sizeof *st);
        st->chat = next_rand(&seed) % 4 == 0;
        st->n = 1 + (int)(next_rand(&seed) % MAX_CHUNKS);
        st->fate = (enum fate)(next_rand(&seed) % FATES);
        st->stop_after = 1 + (int)(next_rand(&seed) % (unsigned)st->n);
        if (st->stop_after == st->n && st->n > 1) st->stop_after--;
        if (st->chat) {
            snprintf(request, sizeof request, "{\"messages\": [{\"role\": \"user\", \"content\": \"stream %d\"}],"
                     " \"max_tokens\": %d, \"ignore_eos\": true}", i, st->n);
            CHECK_STATUS(dynamo_chat_completion(rt, request, &st->s), DYNAMO_OK);
        } else { /* 2 ms between chunks: every stream of the round is open at once */
            snprintf(request, sizeof request, "{\"n\": %d, \"interval_us\": 2000}", st->n);
            CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, request, &st->s), DYNAMO_OK);
        }
        if (st->fate == CANCEL_AT_ONCE) CHECK_STATUS(dynamo_stream_cancel(st->s), DYNAMO_OK);
        submitted++;
    }
    int left = per_thread;
    while (left) {
        int progressed = 0;
        for (int i = 0; i < per_thread; i++)
            if (!mine[i].done && step(&mine[i])) { left--; progressed = 1; }
        if (!progressed) usleep(500);
    }
    return NULL;
}

/* Cancels the CANCEL_BY_OTHER streams of every host thread at random moments, racing their pollers.
 * A stream its owner already freed answers DYNAMO_ERR_INVALID_HANDLE (its slot may even hold a new
 * stream by then: the handle's generation tells them apart). */
static void* canceller(void* arg) {
    unsigned seed = (unsigned)(long)arg;
    int total = per_thread * THREADS;
    while (submitted < total) usleep(100);
    for (int i = 0; i < total; i++) {
        if (all[i].fate != CANCEL_BY_OTHER) continue;
        if (next_rand(&seed) % 4 == 0) usleep(next_rand(&seed) % 3000);
        dynamo_status_t st = dynamo_stream_cancel(all[i].s);
        CHECK(st == DYNAMO_OK || st == DYNAMO_ERR_INVALID_HANDLE);
        cancels_by_other++;
    }
    return NULL;
}

/* Streams the runtime still runs: C streams it serves plus requests in the engine. */
static long busy(void) {
    const char* stats = NULL;
    CHECK_STATUS(dynamo_runtime_stats_json(rt, &stats), DYNAMO_OK);
    long live = json_int(stats, "live_streams"), running = json_int(stats, "num_running");
    CHECK(live >= 0 && running >= 0);
    return live + running;
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    int streams = argc > 3 ? atoi(argv[3]) : 1000;
    CHECK(rounds >= 2 && streams >= THREADS);
    per_thread = streams / THREADS;
    all = calloc((size_t)(per_thread * THREADS), sizeof *all);
    CHECK(all != NULL);
    char* model = tiny_model_config(argv[1], "mock");
    char* config = malloc(strlen(model) + 64);
    CHECK(config != NULL);
    sprintf(config, "%.*s, \"mock_endpoint\": \"" MOCK_ENDPOINT "\"}", (int)strlen(model) - 1, model);
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    free(model);
    free(config);
    long rss_first = 0, rss_max = 0, rss_last = 0;
    int fds_first = 0;
    for (int round = 0; round < rounds; round++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        submitted = 0;
        pthread_t hosts[THREADS], other;
        for (long i = 0; i < THREADS; i++) CHECK(pthread_create(&hosts[i], NULL, host_thread, (void*)i) == 0);
        CHECK(pthread_create(&other, NULL, canceller, (void*)(long)(round + 1)) == 0);
        while (submitted < per_thread * THREADS) usleep(100);
        for (int sample = 0; sample < 10; sample++) { /* the runtime takes them up as its loop gets to them */
            const char* stats = NULL;
            CHECK_STATUS(dynamo_runtime_stats_json(rt, &stats), DYNAMO_OK);
            long open = json_int(stats, "live_streams");
            if (open > peak_open) peak_open = open;
            usleep(2000);
        }
        for (int i = 0; i < THREADS; i++) pthread_join(hosts[i], NULL);
        pthread_join(other, NULL);
        long left = -1;
        for (int wait = 0; wait < 200 && (left = busy()) != 0; wait++) usleep(25000); /* cancels travel */
        CHECK(left == 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long rss = rss_kb();
        int fds = open_fds();
        if (round == 0) { rss_first = rss; fds_first = fds; }
        if (round > 0 && rss > rss_max) rss_max = rss;
        rss_last = rss;
        printf("round %d: %d streams in %.2f s, rss %ld kB, fds %d\n", round + 1, per_thread * THREADS,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, rss, fds);
        CHECK(fds <= fds_first + 2); /* every stream's eventfd closed */
    }
    static const char* names[FATES] = {"complete", "complete_fd", "cancel_at_once", "cancel_mid", "free_mid",
                                       "cancel_by_other"};
    for (int f = 0; f < FATES; f++)
        printf("%-16s END %ld, CANCELLED %ld\n", names[f], ended[f][0], ended[f][1]);
    for (int f = 0; f < FATES; f++) CHECK(ended[f][0] + ended[f][1] > 0);
    CHECK(ended[CANCEL_MID][1] > 0 && ended[CANCEL_BY_OTHER][1] > 0);
    printf("streams open at once: up to %ld of %d (sampled after a round's last submission)\n", peak_open,
           per_thread * THREADS);
    CHECK(peak_open >= per_thread * THREADS / 2);
    printf("rss after round 1 %ld kB, max of later rounds %ld kB, last %ld kB\n", rss_first, rss_max, rss_last);
    /* after the first round (slot pages, the interpreter's pools) memory stops growing: 20% slack */
    if (!SANITIZED) CHECK(rss_max <= rss_first + rss_first / 5);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    free(all);
    puts("ok");
    return 0;
}
