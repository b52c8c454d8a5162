/* Links against the installed library and streams from the built-in mock endpoint. */
#include <stdio.h>
#include <string.h>

#include <dynamo_llm.h>

int main(void) {
    if (strcmp(dynamo_llm_version(), "0.1.0") != 0 && DYNAMO_LLM_VERSION_MAJOR == 0) return 1;
    dynamo_runtime_t* rt = NULL;
    if (dynamo_runtime_create("{\"serve_model\": false, \"mock_endpoint\": \"a.b.c\"}", &rt) != DYNAMO_OK) {
        fprintf(stderr, "create: %s\n", dynamo_last_error());
        return 1;
    }
    dynamo_stream_t* s = NULL;
    dynamo_chunk_t c;
    int n = 0;
    dynamo_status_t st = dynamo_generate(rt, "a.b.c", "{\"n\": 3}", &s);
    while (st == DYNAMO_OK && (st = dynamo_stream_poll(s, 30000, &c)) == DYNAMO_OK) n++;
    dynamo_stream_free(s);
    dynamo_runtime_destroy(rt);
    printf("consumer: %d chunks, %s\n", n, dynamo_status_str(st));
    return st == DYNAMO_END && n == 3 ? 0 : 1;
}
