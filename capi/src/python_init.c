/* Starts the embedded interpreter ourselves, before cffi would: isolated
 * config, the build-time venv (or $DYNAMO_LLM_VENV), libpython promoted to
 * RTLD_GLOBAL for dlopen(RTLD_LOCAL) hosts, and failures as status codes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dyn_internal.h"
#include "dyn_build_paths.h" /* DYN_PYTHON_EXECUTABLE, DYN_LIBPYTHON, DYN_PYTHON_PATHS (generated) */

static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static dynamo_status_t start_status = DYNAMO_OK;
static char start_message[8400];

static void fail_start(const char* fmt, const char* a, const char* b) {
    start_status = DYNAMO_ERR_PYTHON_INIT;
    snprintf(start_message, sizeof start_message, fmt, a ? a : "", b ? b : "");
}

static int set_search_paths(PyConfig* config) {
    static const char* paths[] = {DYN_PYTHON_PATHS};
    config->module_search_paths_set = 1;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        wchar_t* w = Py_DecodeLocale(paths[i], NULL);
        if (!w) return 0;
        PyStatus st = PyWideStringList_Append(&config->module_search_paths, w);
        PyMem_RawFree(w);
        if (PyStatus_Exception(st)) return 0;
    }
    return 1;
}

static void start_python(void) {
    if (!dlopen(DYN_LIBPYTHON, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL)) {
        fail_start("cannot promote %s to RTLD_GLOBAL: %s", DYN_LIBPYTHON, dlerror());
        return;
    }
    if (Py_IsInitialized()) return; /* a Python host: reuse its interpreter */

    const char* venv = getenv("DYNAMO_LLM_VENV");
    char program[4096];
    if (venv && *venv) {
        snprintf(program, sizeof program, "%s/pyvenv.cfg", venv);
        if (access(program, R_OK) != 0) { fail_start("DYNAMO_LLM_VENV=%s has no pyvenv.cfg%s", venv, NULL); return; }
        snprintf(program, sizeof program, "%s/bin/python3", venv);
    } else {
        snprintf(program, sizeof program, "%s", DYN_PYTHON_EXECUTABLE);
    }
    if (access(program, X_OK) != 0) { fail_start("Python executable %s not found%s", program, NULL); return; }

    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    const char* malloc_env = getenv("PYTHONMALLOC");
    if (malloc_env && strcmp(malloc_env, "malloc") == 0) pre.allocator = PYMEM_ALLOCATOR_MALLOC;
    PyStatus st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st)) { fail_start("Py_PreInitialize failed: %s%s", st.err_msg, NULL); return; }

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    st = PyConfig_SetBytesString(&config, &config.program_name, program);
    if (!PyStatus_Exception(st)) st = PyConfig_SetBytesString(&config, &config.executable, program);
    if (PyStatus_Exception(st) || (!(venv && *venv) && !set_search_paths(&config))) {
        PyConfig_Clear(&config);
        fail_start("cannot build the interpreter config for %s%s", program, NULL);
        return;
    }
    st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        fail_start("Py_InitializeFromConfig failed: %s%s", st.err_msg ? st.err_msg : "?", NULL);
        return;
    }
    PyEval_SaveThread(); /* the loop thread and cffi take the GIL when they need it */
}

/* Runs cffi's init code (import of pyimpl.capi.bridge); a failure there leaves the
 * extern "Python" functions unattached, which cffi would answer with 0 = DYNAMO_OK. */
static void check_python_side(void) {
    if (dyn_py_ready() != 1)
        fail_start("the Python side of the C ABI (pyimpl.capi.bridge) could not be loaded with %s%s; "
                   "its traceback went to stderr", getenv("DYNAMO_LLM_VENV") ? getenv("DYNAMO_LLM_VENV")
                                                                             : DYN_PYTHON_EXECUTABLE, "");
}
static pthread_once_t ready_once = PTHREAD_ONCE_INIT;

dynamo_status_t dyn_python_start(void) {
    pthread_once(&start_once, start_python);
    if (start_status == DYNAMO_OK) pthread_once(&ready_once, check_python_side);
    if (start_status != DYNAMO_OK) return dyn_fail(start_status, "%s", start_message);
    return DYNAMO_OK;
}
