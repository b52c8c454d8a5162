/* Version macros = library version; every status has a static name. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "dynamo_llm.h"

int main(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", DYNAMO_LLM_VERSION_MAJOR, DYNAMO_LLM_VERSION_MINOR,
             DYNAMO_LLM_VERSION_PATCH);
    CHECK(strcmp(dynamo_llm_version(), expected) == 0);
    CHECK(dynamo_llm_abi_version() == DYNAMO_LLM_ABI_VERSION);
    CHECK(DYNAMO_LLM_VERSION_NUMBER == DYNAMO_LLM_VERSION_MAJOR * 10000 + DYNAMO_LLM_VERSION_MINOR * 100 + DYNAMO_LLM_VERSION_PATCH);
    CHECK(DYNAMO_OK == 0 && DYNAMO_TIMEOUT > 0 && DYNAMO_END > 0);
    CHECK(strcmp(dynamo_status_str(DYNAMO_OK), "DYNAMO_OK") == 0);
    CHECK(strcmp(dynamo_status_str(DYNAMO_ERR_INVALID_HANDLE), "DYNAMO_ERR_INVALID_HANDLE") == 0);
    for (int s = DYNAMO_ERR_OUT_OF_MEMORY; s <= DYNAMO_END; s++)
        CHECK(strcmp(dynamo_status_str((dynamo_status_t)s), "DYNAMO_UNKNOWN_STATUS") != 0);
    CHECK(strcmp(dynamo_status_str((dynamo_status_t)12345), "DYNAMO_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(dynamo_last_error(), "") == 0);
    puts("ok");
    return 0;
}
