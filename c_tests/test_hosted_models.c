/* Multi-model hosting (config "models", "max_loaded_models": 1): 3 models (the tiny model under three
 * names; mock engine, or argv[2] "torch") switched by requests from 3 threads at once: every request completes, never two
 * models loaded, the state callback hears loading/loaded/unloading/unloaded in order on a library thread,
 * a model that cannot load fails its request with a clear error (and a FAILED state), RSS stays bounded. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "test_util.h"

static dynamo_runtime_t* rt;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int loaded_now, most_loaded, events, failed_events, bad_order;
static int last_state[4] = {DYNAMO_MODEL_UNLOADED, DYNAMO_MODEL_UNLOADED, DYNAMO_MODEL_UNLOADED, DYNAMO_MODEL_UNLOADED};
static char failed_message[512];
static pthread_t host_thread;

static int model_index(const char* name) { return name[0] >= 'a' && name[0] <= 'd' ? name[0] - 'a' : -1; }

static void on_state(dynamo_runtime_t* r, const char* model, int32_t state, const char* message, void* user) {
    CHECK(r == rt && user == &mu && !pthread_equal(pthread_self(), host_thread));
    int i = model_index(model);
    CHECK(i >= 0);
    pthread_mutex_lock(&mu);
    events++;
    static const int after[] = {[DYNAMO_MODEL_LOADING] = -1, [DYNAMO_MODEL_LOADED] = DYNAMO_MODEL_LOADING,
                                [DYNAMO_MODEL_UNLOADING] = DYNAMO_MODEL_LOADED,
                                [DYNAMO_MODEL_UNLOADED] = DYNAMO_MODEL_UNLOADING,
                                [DYNAMO_MODEL_FAILED] = DYNAMO_MODEL_LOADING};
    if (state == DYNAMO_MODEL_LOADING) {
        if (last_state[i] != DYNAMO_MODEL_UNLOADED && last_state[i] != DYNAMO_MODEL_FAILED) bad_order++;
    } else if (last_state[i] != after[state]) {
        bad_order++;
    }
    last_state[i] = state;
    if (state == DYNAMO_MODEL_LOADED && ++loaded_now > most_loaded) most_loaded = loaded_now;
    if (state == DYNAMO_MODEL_UNLOADING) loaded_now--;
    if (state == DYNAMO_MODEL_FAILED) {
        failed_events++;
        CHECK(message != NULL);
        snprintf(failed_message, sizeof failed_message, "%s", message);
    } else {
        CHECK(message == NULL);
    }
    pthread_mutex_unlock(&mu);
}

static dynamo_status_t ask(const char* model) {
    char request[256];
    snprintf(request, sizeof request, "{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
             "\"max_tokens\": 4, \"ignore_eos\": true}", model);
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_chat_completion(rt, request, &s), DYNAMO_OK);
    dynamo_chunk_t c;
    dynamo_status_t st;
    int finishes = 0;
    while ((st = dynamo_stream_poll(s, 60000, &c)) == DYNAMO_OK)
        if (c.finish_reason != DYNAMO_FINISH_NONE) finishes++;
    if (st == DYNAMO_END) CHECK(finishes == 1);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    return st;
}

static atomic_int completed;

static void* client(void* seed) {
    unsigned r = (unsigned)(uintptr_t)seed;
    static const char* names[] = {"a", "b", "c", "bee"}; /* "bee": b's alias */
    for (int i = 0; i < 8; i++) {
        r = r * 1103515245u + 12345u;
        CHECK_STATUS(ask(names[(r >> 16) % 4]), DYNAMO_END);
        atomic_fetch_add(&completed, 1);
    }
    return NULL;
}

static long rss_kb(void) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

int main(int argc, char** argv) {
    CHECK(argc > 1);
    host_thread = pthread_self();
    const char* engine = argc > 2 ? argv[2] : "mock"; /* "torch": real engines loaded and freed on each swap */
    char* tiny = tiny_model_config(argv[1], engine); /* {"model": "PATH", ...}: take the path out of it */
    char* start = strstr(tiny, "\"model\": \"") + 10;
    *strchr(start, '"') = '\0';
    char config[8192];
    snprintf(config, sizeof config, "{\"engine\": \"%s\", \"max_loaded_models\": 1, \"models\": ["
             "{\"name\": \"a\", \"path\": \"%s\"}, {\"name\": \"b\", \"path\": \"%s\", \"aliases\": [\"bee\"]}, "
             "{\"name\": \"c\", \"path\": \"%s\"}, {\"name\": \"d\", \"path\": \"/nonexistent/model\"}]}",
             engine, start, start, start);
    free(tiny);
    CHECK_STATUS(dynamo_runtime_create(config, &rt), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_set_state_callback(rt, on_state, &mu), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_set_state_callback(NULL, on_state, &mu), DYNAMO_ERR_INVALID_ARGUMENT);

    long rss[3];
    for (int round = 0; round < 3; round++) {
        pthread_t threads[3];
        for (int i = 0; i < 3; i++) CHECK(pthread_create(&threads[i], NULL, client, (void*)(uintptr_t)(round * 3 + i + 1)) == 0);
        for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
        rss[round] = rss_kb();
        printf("round %d: %d requests completed, %d state events, RSS %ld kB\n", round, atomic_load(&completed), events,
               rss[round]);
    }
    CHECK(atomic_load(&completed) == 72);
    usleep(100000); /* the last state events are delivered off the loop */
    pthread_mutex_lock(&mu);
    CHECK(most_loaded == 1 && bad_order == 0 && events >= 6);
    pthread_mutex_unlock(&mu);
    CHECK(rss[2] - rss[0] < 200 * 1024);

    /* a model that cannot load: its request fails clearly, the state callback says FAILED and why */
    CHECK_STATUS(ask("d"), DYNAMO_ERR_ENGINE);
    CHECK(strstr(dynamo_last_error(), "'d' failed to load") != NULL);
    usleep(100000);
    pthread_mutex_lock(&mu);
    CHECK(failed_events == 1 && strstr(failed_message, "/nonexistent/model") != NULL);
    pthread_mutex_unlock(&mu);
    CHECK_STATUS(ask("zzz"), DYNAMO_ERR_NOT_FOUND); /* not configured */
    CHECK_STATUS(ask("a"), DYNAMO_END);              /* the others still work */

    CHECK_STATUS(dynamo_runtime_set_state_callback(rt, NULL, NULL), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_set_state_callback(rt, on_state, &mu), DYNAMO_ERR_INVALID_HANDLE);
    puts("ok");
    return 0;
}
