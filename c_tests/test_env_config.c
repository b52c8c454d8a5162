/* The runtime's DYN_* variables fill in what config_json leaves out: with DYN_DISCOVERY_BACKEND=file,
 * DYN_REQUEST_PLANE=tcp and DYN_FILE_KV set, a runtime created from "{}" joins the file deployment over
 * tcp (with mem discovery, the default, it would see only itself): it streams from the mock endpoint
 * that another runtime of the same deployment serves. The variables are set before the first call
 * (the embedded interpreter reads the environment when it starts). A bad migration_limit is refused. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>

#include "test_util.h"

int main(void) {
    char dir[] = "/tmp/dyn_env_config_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK(setenv("DYN_DISCOVERY_BACKEND", "file", 1) == 0);
    CHECK(setenv("DYN_REQUEST_PLANE", "tcp", 1) == 0);
    CHECK(setenv("DYN_FILE_KV", dir, 1) == 0);

    dynamo_runtime_t *server = NULL, *host = NULL;
    /* the config's migration_limit key: a whole number >= 0 */
    CHECK_STATUS(dynamo_runtime_create("{\"migration_limit\": -1}", &host), DYNAMO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dynamo_last_error(), "migration_limit") != NULL && host == NULL);
    CHECK_STATUS(dynamo_runtime_create("{\"mock_endpoint\": \"" MOCK_ENDPOINT "\"}", &server), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_create("{}", &host), DYNAMO_OK);
    const char* stats = NULL;
    CHECK_STATUS(dynamo_runtime_stats_json(host, &stats), DYNAMO_OK);
    CHECK(strstr(stats, "\"models\":[]") != NULL); /* a distributed runtime serves no model by default */

    dynamo_stream_t* s = NULL;
    CHECK_STATUS(dynamo_generate(host, MOCK_ENDPOINT, "{\"n\": 5}", &s), DYNAMO_OK);
    int chunks = 0;
    CHECK_STATUS(drain(s, &chunks), DYNAMO_END);
    CHECK(chunks == 5);
    CHECK_STATUS(dynamo_stream_free(s), DYNAMO_OK);

    CHECK_STATUS(dynamo_runtime_destroy(host), DYNAMO_OK);
    CHECK_STATUS(dynamo_runtime_destroy(server), DYNAMO_OK);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    puts("ok");
    return 0;
}
