/* The library starts its own interpreter from the build-time environment whatever the host's
 * environment says (hostile PYTHONHOME/PYTHONPATH, another python3 first on PATH); a venv that
 * cannot start is DYNAMO_ERR_PYTHON_INIT (sticky), never an abort.
 *   test_python_env hostile | bad-venv */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

int main(int argc, char** argv) {
    CHECK(argc > 1);
    dynamo_runtime_t* rt = NULL;
    if (strcmp(argv[1], "bad-venv") == 0) {
        setenv("DYNAMO_LLM_VENV", "/nonexistent/venv", 1);
        CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_ERR_PYTHON_INIT);
        CHECK(strstr(dynamo_last_error(), "/nonexistent/venv") != NULL);
        CHECK_STATUS(dynamo_runtime_create(MOCK_CONFIG, &rt), DYNAMO_ERR_PYTHON_INIT);
        puts("ok");
        return 0;
    }
    /* a fake python3 first on PATH, and a hostile Python environment */
    char dir[] = "/tmp/dynamo_fake_pythonXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fake[256];
    snprintf(fake, sizeof fake, "%s/python3", dir);
    FILE* f = fopen(fake, "w");
    CHECK(f != NULL);
    fputs("#!/bin/sh\nexit 3\n", f);
    fclose(f);
    chmod(fake, 0755);
    char path[4096];
    snprintf(path, sizeof path, "%s:%s", dir, getenv("PATH") ? getenv("PATH") : "/usr/bin");
    setenv("PATH", path, 1);
    setenv("PYTHONHOME", "/bogus/home", 1);
    setenv("PYTHONPATH", "/bogus/path", 1);
    unsetenv("DYNAMO_LLM_VENV");
    dynamo_status_t st = dynamo_runtime_create(MOCK_CONFIG, &rt);
    unlink(fake);
    rmdir(dir);
    CHECK_STATUS(st, DYNAMO_OK);
    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_generate(rt, MOCK_ENDPOINT, "{\"n\": 2}", &s), DYNAMO_OK);
    int chunks;
    CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
    CHECK(chunks == 2);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(rt), DYNAMO_OK);
    puts("ok");
    return 0;
}
