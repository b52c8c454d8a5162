/* A host that loads the library with dlopen(RTLD_LOCAL) (argv[1]: its path) gets a working runtime. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamo_llm.h"

#define LOAD(name) __typeof__(&name) p_##name = (__typeof__(&name))dlsym(lib, #name); if (!p_##name) return fail(#name)

static int fail(const char* what) {
    fprintf(stderr, "test_dlopen: %s failed: %s\n", what, dlerror());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 2) return fail("usage");
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fail("dlopen");
    LOAD(dynamo_runtime_create);
    LOAD(dynamo_runtime_destroy);
    LOAD(dynamo_generate);
    LOAD(dynamo_stream_poll);
    LOAD(dynamo_stream_free);
    LOAD(dynamo_last_error);
    dynamo_runtime_t* rt = NULL;
    dynamo_status_t st = p_dynamo_runtime_create(
        "{\"serve_model\": false, \"mock_endpoint\": \"test.mock.stream\"}", &rt);
    if (st != DYNAMO_OK) { fprintf(stderr, "create: %d %s\n", st, p_dynamo_last_error()); return 1; }
    dynamo_stream_t* s = NULL;
    if (p_dynamo_generate(rt, "test.mock.stream", "{\"n\": 4}", &s) != DYNAMO_OK) return fail("generate");
    dynamo_chunk_t c;
    int chunks = 0;
    while ((st = p_dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) chunks++;
    if (st != DYNAMO_END || chunks != 4) { fprintf(stderr, "poll: %d after %d chunks\n", st, chunks); return 1; }
    p_dynamo_stream_free(s);
    if (p_dynamo_runtime_destroy(rt) != DYNAMO_OK) return fail("destroy");
    puts("ok");
    return 0;
}
