/* Helpers shared by the C programs of `python -m pyimpl.bench capi` (define BENCH_NAME first). */
#ifndef DYN_BENCH_UTIL_H
#define DYN_BENCH_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dynamo_llm.h"

static inline long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline void die(const char* what, dynamo_status_t st) {
    fprintf(stderr, "%s: %s: %s: %s\n", BENCH_NAME, what, dynamo_status_str(st), dynamo_last_error());
    exit(1);
}
static inline int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}
#endif
