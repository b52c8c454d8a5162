/* The header alone, included twice; compiled as C and as C++ by ctest with -Werror -pedantic. */
#include "dynamo_llm.h"
#include "dynamo_llm.h"

int main(void) {
    dynamo_chunk_t chunk = {0, 0, 0, 0, 0, 0, DYNAMO_FINISH_NONE, 0};
    dynamo_status_t st = DYNAMO_OK;
    (void)chunk;
    return (int)st + DYNAMO_LLM_VERSION_NUMBER * 0 + DYNAMO_LLM_ABI_VERSION * 0;
}
