/* How the library finds its Python (README "Install"), through dlopen of a library file:
 *   test_python_home missing-home  LIB   $DYNAMO_LLM_PYTHONHOME names no Python: PYTHON_INIT, says which
 *   test_python_home wrong-version LIB   a home that is not this Python X.Y: PYTHON_INIT, says so
 *   test_python_home relocated     LIB   a copy of LIB elsewhere, its python.cfg with a relative home
 *                                        (a symlink to $DYNAMO_TEST_VENV): streams from the mock
 * ctest sets DYNAMO_TEST_VENV (the build's venv) and DYNAMO_TEST_REPO_ROOT. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dynamo_llm.h"

/* the library is only dlopen'ed here, so check.h (which calls dynamo_last_error) is not usable */
#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

#define MOCK_CONFIG "{\"serve_model\": false, \"mock_endpoint\": \"test.mock.stream\"}"

typedef struct {
    dynamo_status_t (*create)(const char*, dynamo_runtime_t**);
    dynamo_status_t (*destroy)(dynamo_runtime_t*);
    dynamo_status_t (*generate)(dynamo_runtime_t*, const char*, const char*, dynamo_stream_t**);
    dynamo_status_t (*poll)(dynamo_stream_t*, int32_t, dynamo_chunk_t*);
    dynamo_status_t (*stream_free)(dynamo_stream_t*);
    const char* (*last_error)(void);
} api_t;

static void* sym(void* lib, const char* name) {
    void* p = dlsym(lib, name);
    CHECK(p != NULL);
    return p;
}

static api_t load(const char* path) {
    void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    CHECK(lib != NULL);
    api_t api;
    *(void**)&api.create = sym(lib, "dynamo_runtime_create");
    *(void**)&api.destroy = sym(lib, "dynamo_runtime_destroy");
    *(void**)&api.generate = sym(lib, "dynamo_generate");
    *(void**)&api.poll = sym(lib, "dynamo_stream_poll");
    *(void**)&api.stream_free = sym(lib, "dynamo_stream_free");
    *(void**)&api.last_error = sym(lib, "dynamo_last_error");
    return api;
}

static void expect_init_error(const char* lib, const char* needle1, const char* needle2) {
    api_t api = load(lib);
    dynamo_runtime_t* rt = NULL;
    CHECK(api.create(MOCK_CONFIG, &rt) == DYNAMO_ERR_PYTHON_INIT);
    printf("error: %s\n", api.last_error());
    CHECK(strstr(api.last_error(), needle1) != NULL);
    CHECK(strstr(api.last_error(), needle2) != NULL);
    CHECK(api.create(MOCK_CONFIG, &rt) == DYNAMO_ERR_PYTHON_INIT); /* sticky */
}

static void write_file(const char* path, const char* text) {
    FILE* f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char* from, const char* to) {
    FILE* in = fopen(from, "rb");
    FILE* out = fopen(to, "wb");
    CHECK(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n);
    fclose(in);
    fclose(out);
}

int main(int argc, char** argv) {
    CHECK(argc > 2);
    const char* mode = argv[1];
    const char* lib = argv[2];
    unsetenv("DYNAMO_LLM_VENV");
    char tmp[] = "/tmp/dynamo_python_homeXXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char path[4096], cfg[4096];
    if (strcmp(mode, "missing-home") == 0) {
        setenv("DYNAMO_LLM_PYTHONHOME", "/nonexistent/python-home", 1);
        expect_init_error(lib, "/nonexistent/python-home", "bin/python3");
    } else if (strcmp(mode, "wrong-version") == 0) {
        snprintf(path, sizeof path, "%s/bin", tmp);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof path, "%s/bin/python3", tmp);
        write_file(path, "#!/bin/sh\nexit 3\n");
        CHECK(chmod(path, 0755) == 0);
        setenv("DYNAMO_LLM_PYTHONHOME", tmp, 1);
        expect_init_error(lib, tmp, "is not a Python 3.");
    } else if (strcmp(mode, "relocated") == 0) {
        const char* venv = getenv("DYNAMO_TEST_VENV");
        const char* repo = getenv("DYNAMO_TEST_REPO_ROOT");
        CHECK(venv && repo);
        unsetenv("DYNAMO_LLM_PYTHONHOME");
        snprintf(path, sizeof path, "%s/venv", tmp);
        CHECK(symlink(venv, path) == 0);
        snprintf(path, sizeof path, "%s/lib", tmp);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof path, "%s/lib/dynamo_llm", tmp);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof path, "%s/lib/dynamo_llm/python.cfg", tmp);
        snprintf(cfg, sizeof cfg, "# relocated\nhome = ../../venv\npath = %s\n", repo);
        write_file(path, cfg);
        snprintf(path, sizeof path, "%s/lib/libdynamo_llm_capi.so.0", tmp);
        copy_file(lib, path);
        api_t api = load(path);
        dynamo_runtime_t* rt = NULL;
        dynamo_status_t st = api.create(MOCK_CONFIG, &rt);
        if (st != DYNAMO_OK) fprintf(stderr, "create: %s\n", api.last_error());
        CHECK(st == DYNAMO_OK);
        dynamo_stream_t* s = NULL;
        CHECK(api.generate(rt, "test.mock.stream", "{\"n\": 2}", &s) == DYNAMO_OK);
        dynamo_chunk_t c;
        int chunks = 0;
        while ((st = api.poll(s, 30000, &c)) == DYNAMO_OK) chunks++;
        CHECK(st == DYNAMO_END && chunks == 2);
        CHECK(api.stream_free(s) == DYNAMO_OK);
        CHECK(api.destroy(rt) == DYNAMO_OK);
        unlink(path);
        snprintf(path, sizeof path, "%s/lib/dynamo_llm/python.cfg", tmp);
        unlink(path);
        snprintf(path, sizeof path, "%s/lib/dynamo_llm", tmp);
        rmdir(path);
        snprintf(path, sizeof path, "%s/lib", tmp);
        rmdir(path);
        snprintf(path, sizeof path, "%s/venv", tmp);
        unlink(path);
    } else {
        CHECK(!"unknown mode");
    }
    snprintf(path, sizeof path, "%s/bin/python3", tmp);
    unlink(path);
    snprintf(path, sizeof path, "%s/bin", tmp);
    rmdir(path);
    rmdir(tmp);
    puts("ok");
    return 0;
}
