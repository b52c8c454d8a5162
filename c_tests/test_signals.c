/* The host's signals stay the host's: a host that left SIGINT at its default is killed by SIGINT
 * after create (the library installs no handler), and signals sent to the process while library
 * threads run land only on host threads (every library thread blocks asynchronous signals, torch's
 * engine and intra-op threads of the default demo-model runtime included). */
#define _GNU_SOURCE
#include <pthread.h>
#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define SENDS 20

static volatile sig_atomic_t received;
static volatile pid_t receivers[2 * SENDS];
static volatile pid_t host_tid;

static void on_signal(int sig) {
    (void)sig;
    if (received < 2 * SENDS) receivers[received] = (pid_t)syscall(SYS_gettid);
    received++;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The one host thread that leaves the signals unblocked: it just waits for them. */
static void* host_thread(void* arg) {
    (void)arg;
    host_tid = (pid_t)syscall(SYS_gettid);
    for (;;) pause();
    return NULL;
}

/* A child (fresh process: the library is first used there) with SIGINT at SIG_DFL, killed by SIGINT. */
static void default_sigint_kills_the_host(void) {
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        signal(SIGINT, SIG_DFL);
        dynamo_runtime_t* rt = NULL;
        if (dynamo_runtime_create(MOCK_CONFIG, &rt) != DYNAMO_OK) _exit(2);
        struct sigaction now;
        sigaction(SIGINT, NULL, &now);
        if (now.sa_handler != SIG_DFL) _exit(3);
        kill(getpid(), SIGINT);
        sleep_ms(5000);
        _exit(4); /* still alive: the library took SIGINT */
    }
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    if (!WIFSIGNALED(status)) fprintf(stderr, "child exited with %d\n", WEXITSTATUS(status));
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
}

/* Every thread but the host's (main_tid, host_tid) blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGALRM:
 * read from /proc/self/task/<tid>/status (SigBlk, a hex mask, bit sig-1). Returns the threads seen. */
static int library_threads_block_signals(pid_t main_tid) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGALRM};
    DIR* d = opendir("/proc/self/task");
    CHECK(d != NULL);
    struct dirent* e;
    int threads = 0;
    while ((e = readdir(d)) != NULL) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0) continue;
        threads++;
        if (tid == main_tid || tid == host_tid) continue;
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
        FILE* f = fopen(path, "r");
        if (!f) continue; /* the thread just ended */
        unsigned long long blocked = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "SigBlk: %llx", &blocked) == 1) break;
        fclose(f);
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            if (!(blocked & (1ULL << (sigs[i] - 1))))
                fprintf(stderr, "library thread %d does not block signal %d (SigBlk %llx)\n", (int)tid, sigs[i], blocked);
            CHECK(blocked & (1ULL << (sigs[i] - 1)));
        }
    }
    closedir(d);
    return threads;
}

int main(void) {
    default_sigint_kills_the_host();
    pid_t main_tid = (pid_t)syscall(SYS_gettid);

    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_OK);
    /* library threads at work: the loop thread and an executor thread (busy_ms runs in one) */
    dynamo_stream_t* busy = NULL;
    dynamo_stream_t* slow = NULL;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"busy_ms\": 3000}", &busy), DYNAMO_OK);
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 1000, \"interval_us\": 2000}", &slow), DYNAMO_OK);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0);
    pthread_t host;
    CHECK(pthread_create(&host, NULL, host_thread, NULL) == 0);
    while (!host_tid) sleep_ms(1);
    /* this thread blocks them: the kernel must choose among the other threads */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &mask, NULL) == 0);

    for (int i = 0; i < 2 * SENDS; i++) {
        sig_atomic_t before = received;
        kill(getpid(), i % 2 ? SIGUSR1 : SIGINT);
        for (int waited = 0; received == before && waited < 5000; waited++) sleep_ms(1);
        CHECK(received == before + 1);
        if (i == SENDS) {
            dynamo_chunk_t c;
            CHECK_STATUS(dynamo_stream_poll(slow, 5000, &c), DYNAMO_OK);
        }
    }
    int elsewhere = 0;
    for (int i = 0; i < 2 * SENDS; i++) elsewhere += receivers[i] != host_tid;
    printf("%d of %d signals landed on a library thread\n", elsewhere, 2 * SENDS);
    CHECK(elsewhere == 0);
    CHECK_STATUS(dynamo_stream_free(busy), DYNAMO_OK);
    CHECK_STATUS(dynamo_stream_free(slow), DYNAMO_OK);

    /* the default runtime: torch's engine thread and intra-op threads are library threads too */
    dynamo_runtime_t* demo = NULL;
    CHECK_STATUS(dynamo_runtime_create("{}", &demo), DYNAMO_OK);
    dynamo_stream_t* chat = NULL;
    CHECK_STATUS(dynamo_chat_completion(demo, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
                                              " \"max_tokens\": 4}", &chat), DYNAMO_OK);
    int chunks;
    CHECK_STATUS(drain(chat, &chunks), DYNAMO_END);
    CHECK_STATUS(dynamo_stream_free(chat), DYNAMO_OK);
    int threads = library_threads_block_signals(main_tid);
    printf("%d threads, all but the 2 host threads block asynchronous signals\n", threads);
    CHECK(threads > 3);
    CHECK_STATUS(dynamo_runtime_destroy(demo), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
