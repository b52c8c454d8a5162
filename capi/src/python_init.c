/* Starts the embedded interpreter ourselves, before cffi would: isolated
 * config, the Python environment found relative to the library (python_home.c),
 * libpython promoted to RTLD_GLOBAL for dlopen(RTLD_LOCAL) hosts, and failures
 * as status codes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dyn_internal.h"
#include "dyn_build_paths.h" /* DYN_LIBPYTHON: the soname of libpython (generated) */
#include "python_home.h"

static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static dynamo_status_t start_status = DYNAMO_OK;
static char start_message[8400];

static void fail_start(const char* fmt, const char* a, const char* b) {
    start_status = DYNAMO_ERR_PYTHON_INIT;
    snprintf(start_message, sizeof start_message, fmt, a ? a : "", b ? b : "");
}

/* ---- the host's signals: never taken, never delivered to a library thread ---- */

/* Every call into Python runs with all asynchronous signals blocked in the calling host thread, so
 * the threads Python starts meanwhile (the loop thread, which starts executor and torch threads in
 * turn) inherit a mask that blocks them: a signal sent to the process lands on a host thread. Any
 * disposition changed during the call is put back (importing Python's signal module installs a
 * SIGINT handler when SIGINT is at SIG_DFL, which took Ctrl-C away from the host). */
typedef struct {
    sigset_t mask;                 /* the host thread's mask before the call */
    struct sigaction actions[NSIG];
} host_signals;

static void enter_python(host_signals* saved) {
    sigset_t all;
    sigfillset(&all);
    static const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++) sigdelset(&all, synchronous[i]);
    pthread_sigmask(SIG_BLOCK, &all, &saved->mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigaction(sig, NULL, &saved->actions[sig]) != 0) saved->actions[sig].sa_handler = SIG_ERR;
}

static void leave_python(const host_signals* saved) {
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction now;
        const struct sigaction* before = &saved->actions[sig];
        if (before->sa_handler == SIG_ERR || sigaction(sig, NULL, &now) != 0) continue;
        if (now.sa_handler != before->sa_handler || now.sa_flags != before->sa_flags) sigaction(sig, before, NULL);
    }
    pthread_sigmask(SIG_SETMASK, &saved->mask, NULL);
}

/* ---- a host that already runs another CPython ---- */

/* Our Py_* calls bind to the first libpython in the process's global scope: in a host running
 * another CPython version (a python3.12 loading the library through ctypes) that is the host's,
 * whose ABI differs (it spun at 100% CPU). Py_GetVersion is safe to call before initialisation. */
static int foreign_python(void) {
    const char* (*get_version)(void) = NULL;
    void* sym = dlsym(RTLD_DEFAULT, "Py_GetVersion");
    memcpy(&get_version, &sym, sizeof sym);
    if (!get_version) return 0;
    const char* version = get_version();
    char ours[32];
    snprintf(ours, sizeof ours, "%d.%d.", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    if (!version || strncmp(version, ours, strlen(ours)) == 0) return 0;
    char running[64];
    snprintf(running, sizeof running, "%.*s", (int)strcspn(version, " "), version);
    snprintf(start_message, sizeof start_message,
             "This process already runs Python %s, but the library embeds Python %d.%d: one process cannot "
             "host both. Load the library from a Python %d.%d process or from a process without Python.",
             running, PY_MAJOR_VERSION, PY_MINOR_VERSION, PY_MAJOR_VERSION, PY_MINOR_VERSION);
    start_status = DYNAMO_ERR_PYTHON_INIT;
    return 1;
}

static dyn_python_home_t python_home;

/* python.cfg's `path` (the Python side installed beside the library) goes first on sys.path. */
static int prepend_sys_path(const char* dir) {
    PyObject* path = PySys_GetObject("path"); /* borrowed */
    PyObject* item = PyUnicode_DecodeFSDefault(dir);
    int ok = path && item && PyList_Insert(path, 0, item) == 0;
    Py_XDECREF(item);
    if (!ok) PyErr_Clear();
    return ok;
}

static void start_python(void) {
    if (foreign_python()) return;
    if (!dlopen(DYN_LIBPYTHON, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL)) {
        fail_start("cannot promote %s to RTLD_GLOBAL: %s", DYN_LIBPYTHON, dlerror());
        return;
    }
    if (Py_IsInitialized()) return; /* a Python host: reuse its interpreter */

    char why[sizeof start_message - 64];
    if (!dyn_python_home_find(&python_home, why, sizeof why)) { fail_start("%s%s", why, NULL); return; }
    const char* program = python_home.program;

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
    if (PyStatus_Exception(st)) {
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
    int path_ok = !python_home.path[0] || prepend_sys_path(python_home.path);
    PyEval_SaveThread(); /* the loop thread and cffi take the GIL when they need it */
    if (!path_ok) fail_start("cannot put %s on sys.path%s", python_home.path, NULL);
}

/* Runs cffi's init code (import of pyimpl.capi.bridge); a failure there leaves the
 * extern "Python" functions unattached, which cffi would answer with 0 = DYNAMO_OK. */
static void check_python_side(void) {
    if (dyn_py_ready() != 1)
        fail_start("the Python side of the C ABI (pyimpl.capi.bridge) could not be loaded with %s%s; "
                   "its traceback went to stderr", python_home.program[0] ? python_home.program
                                                                           : "the host's interpreter", "");
}
static pthread_once_t ready_once = PTHREAD_ONCE_INIT;

dynamo_status_t dyn_python_start(void) {
    host_signals saved;
    enter_python(&saved);
    pthread_once(&start_once, start_python);
    if (start_status == DYNAMO_OK) pthread_once(&ready_once, check_python_side);
    leave_python(&saved);
    if (start_status != DYNAMO_OK) return dyn_fail(start_status, "%s", start_message);
    return DYNAMO_OK;
}

dynamo_status_t dyn_python_create(uint64_t runtime, const char* config_json) {
    host_signals saved;
    enter_python(&saved);
    int st = dyn_py_runtime_create(runtime, config_json);
    leave_python(&saved);
    return (dynamo_status_t)st;
}

static dynamo_status_t call_python(int (*python_side)(uint64_t), uint64_t runtime) {
    host_signals saved;
    enter_python(&saved);
    int st = python_side(runtime);
    leave_python(&saved);
    return (dynamo_status_t)st;
}

int dyn_python_call(int (*fn)(void*), void* arg) {
    host_signals saved;
    enter_python(&saved);
    int st = fn(arg);
    leave_python(&saved);
    return st;
}

dynamo_status_t dyn_python_destroy(uint64_t runtime) { return call_python(dyn_py_runtime_destroy, runtime); }
dynamo_status_t dyn_python_stats(uint64_t runtime) { return call_python(dyn_py_runtime_stats, runtime); }
