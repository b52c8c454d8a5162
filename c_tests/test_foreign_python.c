/* A host that already runs another CPython version gets DYNAMO_ERR_PYTHON_INIT with a clear message
 * at once (it used to spin at 100% CPU in dynamo_runtime_create): like a python3.X host loading the
 * library through ctypes, the "other Python" (argv[1], fake_python) is in the global scope before
 * the library is dlopen'ed (argv[2]).
 *   test_foreign_python FOREIGN_LIBPYTHON LIBDYNAMO */
#include <dlfcn.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dynamo_llm.h"

#define LOAD(lib, name) do { *(void**)(&name) = dlsym(lib, #name); if (!name) return 1; } while (0)

int main(int argc, char** argv) {
    /* the library's functions, looked up (CHECK's messages use these names too) */
    dynamo_status_t (*dynamo_runtime_create)(const char*, dynamo_runtime_t**);
    const char* (*dynamo_last_error)(void) = NULL;
    const char* (*dynamo_status_str)(dynamo_status_t);
    if (argc < 3 || !dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) { fprintf(stderr, "usage / %s\n", dlerror()); return 1; }
    alarm(60); /* a spin is a failure, not a hang of the suite */
    void* lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    LOAD(lib, dynamo_runtime_create);
    LOAD(lib, dynamo_last_error);
    LOAD(lib, dynamo_status_str);
    dynamo_runtime_t* rt = NULL;
    CHECK_STATUS(dynamo_runtime_create("{\"serve_model\": false}", &rt), DYNAMO_ERR_PYTHON_INIT);
    printf("%s\n", dynamo_last_error());
    CHECK(strstr(dynamo_last_error(), "already runs Python 3.99.0") != NULL);
    CHECK_STATUS(dynamo_runtime_create("{\"serve_model\": false}", &rt), DYNAMO_ERR_PYTHON_INIT); /* sticky */
    puts("ok");
    return 0;
}
