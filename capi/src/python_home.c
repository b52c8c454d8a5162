/* Finds the Python environment of this library relative to the library file itself
 * (dladdr), so an installed or relocated copy never depends on the build tree:
 *   1. $DYNAMO_LLM_PYTHONHOME (a venv or Python prefix), else $DYNAMO_LLM_VENV (a venv);
 *   2. `home =` in dynamo_llm/python.cfg beside the library (written by cmake, editable);
 *   3. the venv (pyvenv.cfg) or Python prefix (PREFIX/lib/pythonX.Y/...) that holds the library
 *      (a wheel installed with pip).
 * `path =` in python.cfg goes first on sys.path (the Python side installed with the library).
 * The libpython the loader picked must be the home's own build (pyvenv.cfg `version`). */
#define _GNU_SOURCE
#include "python_home.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h> /* PY_MAJOR_VERSION, PY_MINOR_VERSION of the headers built against; Py_GetVersion */

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define PY_XY STR(PY_MAJOR_VERSION) "." STR(PY_MINOR_VERSION)

/* snprintf into a path buffer; 0 (and "") if it did not fit */
static int path_fmt(char* out, size_t n, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= n) { out[0] = '\0'; return 0; }
    return 1;
}

static int is_dir(const char* p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_file(const char* dir, const char* rel, int mode) {
    char p[PATH_MAX];
    return path_fmt(p, sizeof p, "%s/%s", dir, rel) && access(p, mode) == 0;
}

/* value relative to base unless absolute */
static void join(char* out, size_t n, const char* base, const char* value) {
    if (value[0] == '/') path_fmt(out, n, "%s", value);
    else path_fmt(out, n, "%s/%s", base, value);
}

static char* trim(char* s) {
    while (*s == ' ' || *s == '\t') s++;
    char* e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
    return s;
}

/* the value of "key = value" in a pyvenv.cfg-style file; 0 if absent */
static int cfg_value(const char* file, const char* want, char* out, size_t n) {
    char line[PATH_MAX + 32];
    FILE* f = fopen(file, "r");
    int found = 0;
    if (!f) return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char* eq = strchr(line, '=');
        char* key = trim(line);
        if (*key == '#' || !eq) continue;
        *eq = '\0';
        char* value = trim(eq + 1);
        found = strcmp(trim(key), want) == 0 && *value && path_fmt(out, n, "%s", value);
    }
    fclose(f);
    return found;
}

/* dynamo_llm/python.cfg beside the library: "home = DIR" and "path = DIR", relative to its folder. */
static void read_cfg(const char* libdir, dyn_python_home_t* out, char* cfg_home, size_t n) {
    char dir[PATH_MAX], file[PATH_MAX], value[PATH_MAX];
    if (!path_fmt(dir, sizeof dir, "%s/dynamo_llm", libdir) || !path_fmt(file, sizeof file, "%s/python.cfg", dir))
        return;
    if (cfg_value(file, "home", value, sizeof value)) join(cfg_home, n, dir, value);
    if (cfg_value(file, "path", value, sizeof value)) join(out->path, sizeof out->path, dir, value);
}

/* A venv home records its Python's version; a libpython of another build of X.Y (Debian's in
 * ld.so.cache under a pyenv venv) fails later on undefined symbols in the home's extensions. */
static int libpython_matches(const dyn_python_home_t* home, char* err, size_t errlen) {
    char cfg[PATH_MAX], want[64], base[PATH_MAX];
    if (!path_fmt(cfg, sizeof cfg, "%s/pyvenv.cfg", home->home)) return 1;
    if (!cfg_value(cfg, "version", want, sizeof want) && !cfg_value(cfg, "version_info", want, sizeof want)) return 1;
    const char* running = Py_GetVersion();
    size_t len = strspn(running, "0123456789."); /* "3.11.7" of "3.11.7+ (main, ...)" */
    size_t want_len = strspn(want, "0123456789.");
    if (want_len > 0 && want[want_len - 1] == '.') want_len--;
    if (len == want_len && strncmp(running, want, len) == 0) return 1;
    Dl_info info;
    const char* loaded = dladdr((void*)&Py_GetVersion, &info) && info.dli_fname ? info.dli_fname : "?";
    if (!cfg_value(cfg, "home", base, sizeof base)) snprintf(base, sizeof base, "its base Python's bin");
    snprintf(err, errlen, "the libpython loaded (%.*s, %s) is not the one of the Python home %s (%.*s, from %s): "
             "make %s/../lib come first (the rpath that the CMake package DynamoLLM and dynamo_llm.pc add, "
             "or LD_LIBRARY_PATH)", (int)len, running, loaded, home->home, (int)want_len, want, home->source, base);
    return 0;
}

/* the nearest ancestor of libfile that is a venv, or a prefix whose lib/pythonX.Y holds it */
static int holder_env(const char* libfile, char* home, size_t n) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", libfile);
    for (char* slash = strrchr(dir, '/'); slash && slash != dir; slash = strrchr(dir, '/')) {
        *slash = '\0';
        char lib[PATH_MAX];
        int inside = path_fmt(lib, sizeof lib, "%s/lib/python" PY_XY "/", dir) && strncmp(libfile, lib, strlen(lib)) == 0;
        if ((has_file(dir, "pyvenv.cfg", R_OK) || inside) && has_file(dir, "bin/python3", X_OK)) {
            snprintf(home, n, "%s", dir);
            return 1;
        }
    }
    return 0;
}

int dyn_python_home_find(dyn_python_home_t* out, char* err, size_t errlen) {
    memset(out, 0, sizeof *out);
    Dl_info info;
    char libfile[PATH_MAX];
    if (!dladdr((void*)&dyn_python_home_find, &info) || !info.dli_fname || !realpath(info.dli_fname, libfile)) {
        snprintf(err, errlen, "cannot locate the library file of libdynamo_llm_capi (dladdr)");
        return 0;
    }
    char libdir[PATH_MAX];
    snprintf(libdir, sizeof libdir, "%s", libfile);
    *strrchr(libdir, '/') = '\0';
    char cfg_home[PATH_MAX] = "";
    read_cfg(libdir, out, cfg_home, sizeof cfg_home);

    const char* env_home = getenv("DYNAMO_LLM_PYTHONHOME");
    const char* env_venv = getenv("DYNAMO_LLM_VENV");
    if (env_home && *env_home) {
        snprintf(out->home, sizeof out->home, "%s", env_home);
        out->source = "DYNAMO_LLM_PYTHONHOME";
    } else if (env_venv && *env_venv) {
        if (!has_file(env_venv, "pyvenv.cfg", R_OK)) {
            snprintf(err, errlen, "DYNAMO_LLM_VENV=%s has no pyvenv.cfg", env_venv);
            return 0;
        }
        snprintf(out->home, sizeof out->home, "%s", env_venv);
        out->source = "DYNAMO_LLM_VENV";
    } else if (cfg_home[0]) {
        snprintf(out->home, sizeof out->home, "%s", cfg_home);
        out->source = "dynamo_llm/python.cfg beside the library";
    } else if (holder_env(libfile, out->home, sizeof out->home)) {
        out->source = "the environment that holds the library";
    } else {
        snprintf(err, errlen, "cannot find the Python environment of %s: it lies in no venv or Python prefix and "
                 "has no dynamo_llm/python.cfg beside it; set DYNAMO_LLM_PYTHONHOME to a venv where "
                 "dynamo-llm-capi is installed", libfile);
        return 0;
    }
    snprintf(out->program, sizeof out->program, "%s/bin/python3", out->home);
    if (access(out->program, X_OK) != 0) {
        snprintf(err, errlen, "Python home %s (from %s) has no bin/python3", out->home, out->source);
        return 0;
    }
    char stdlib[PATH_MAX + 32];
    snprintf(stdlib, sizeof stdlib, "%s/lib/python" PY_XY, out->home);
    if (!is_dir(stdlib)) {
        snprintf(err, errlen, "Python home %s (from %s) is not a Python " PY_XY " environment (no lib/python" PY_XY
                 "); this library was built for Python " PY_XY, out->home, out->source);
        return 0;
    }
    if (!libpython_matches(out, err, errlen)) return 0;
    if (out->path[0] && !is_dir(out->path)) {
        snprintf(err, errlen, "the Python side directory %s named in %s/dynamo_llm/python.cfg is missing",
                 out->path, libdir);
        return 0;
    }
    return 1;
}
