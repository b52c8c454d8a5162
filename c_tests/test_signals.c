/* The host's signals stay the host's: a host that left SIGINT at its default is killed by SIGINT
 * after create (the library installs no handler), and signals sent to the process while library
 * threads run land only on host threads (every library thread blocks asynchronous signals). */
#define _GNU_SOURCE
#include <pthread.h>
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

int main(void) {
    default_sigint_kills_the_host();

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
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
