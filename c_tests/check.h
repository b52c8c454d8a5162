/* Tiny assertion helpers shared by the ctest cases (active in every build type). */
#ifndef DYN_TEST_CHECK_H
#define DYN_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
                    dynamo_last_error());                                                        \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

#define CHECK_STATUS(expr, expected)                                                             \
    do {                                                                                         \
        dynamo_status_t st_ = (expr);                                                            \
        if (st_ != (expected)) {                                                                 \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s; last error: %s\n", __FILE__,       \
                    __LINE__, #expr, dynamo_status_str(st_), dynamo_status_str(expected),        \
                    dynamo_last_error());                                                        \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)
#endif
