/* Helpers shared by the ctest cases: configs, model paths, draining a stream. */
#ifndef DYN_TEST_UTIL_H
#define DYN_TEST_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dynamo_llm.h"

#define MOCK_CONFIG "{\"serve_model\": false, \"mock_endpoint\": \"test.mock.stream\"}"
#define MOCK_ENDPOINT "test.mock.stream"

/* A config serving the tiny test model: python (argv[1] of the test) prints its path.
 * The repository root is read from $DYNAMO_TEST_REPO_ROOT (set by ctest). */
static inline char* tiny_model_config(const char* python, const char* engine) {
    char cmd[4096];
    const char* root = getenv("DYNAMO_TEST_REPO_ROOT");
    snprintf(cmd, sizeof cmd,
             "%s -c 'import sys; sys.path.insert(0, \"%s\"); from pyimpl.models import tiny_model_path; "
             "print(tiny_model_path())'", python, root ? root : ".");
    FILE* p = popen(cmd, "r");
    CHECK(p != NULL);
    char path[2048] = {0};
    CHECK(fgets(path, sizeof path, p) != NULL);
    CHECK(pclose(p) == 0);
    path[strcspn(path, "\n")] = '\0';
    char* config = malloc(strlen(path) + 128);
    sprintf(config, "{\"model\": \"%s\", \"model_name\": \"tiny\", \"engine\": \"%s\"}", path, engine);
    return config;
}

/* Poll a stream to its end; returns the final status, counts chunks. */
static inline dynamo_status_t drain(dynamo_stream_t* s, int* chunks) {
    dynamo_chunk_t c;
    dynamo_status_t st;
    *chunks = 0;
    while ((st = dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) (*chunks)++;
    return st;
}

/* The integer after "key": in json, or -1. */
static inline long json_int(const char* json, const char* key) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char* at = strstr(json, pattern);
    return at ? strtol(at + strlen(pattern), NULL, 10) : -1;
}
#endif
