// A C++ host with its own OK/ERR macros opts out of Dynamo's unprefixed dynamo_llm_result_t names
// (DYNAMO_LLM_NO_DYNAMO_NAMES) and uses the prefixed ones; the header must compile warning-free.
#define OK 0
#define ERR (-1)
#define DYNAMO_LLM_NO_DYNAMO_NAMES
#include "dynamo_llm.h"

int uses_prefixed_names(void);
int uses_prefixed_names(void) {
    return dynamo_llm_load_publisher_create() == DYNAMO_LLM_RESULT_OK ? OK : ERR;
}
