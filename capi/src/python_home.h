/* Where the embedded interpreter comes from: found relative to the library file at
 * run time (nothing about the build machine is compiled in). Rule: README "Install". */
#ifndef DYN_PYTHON_HOME_H
#define DYN_PYTHON_HOME_H

#include <stddef.h>

typedef struct {
    char home[4096];      /* a venv or Python prefix: home/bin/python3 starts the interpreter */
    char program[4200];   /* home/bin/python3 (program_name and sys.executable) */
    char path[4096];      /* a directory put first on sys.path (the installed Python side), or "" */
    const char* source;   /* which rule chose home, for messages */
} dyn_python_home_t;

/* Fills out, or writes why not into err and returns 0. */
int dyn_python_home_find(dyn_python_home_t* out, char* err, size_t errlen);

#endif
