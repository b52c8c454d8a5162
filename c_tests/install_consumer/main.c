/* A downstream program built against an installed library (find_package or pkg-config):
 * streams a reply of the embedded demo model, or with --mock three chunks of the built-in
 * mock endpoint. Exit 0 only for a non-empty stream that ends normally. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dynamo_llm.h>

static int fail(const char* what, dynamo_status_t st) {
    fprintf(stderr, "consumer: %s: %s: %s\n", what, dynamo_status_str(st), dynamo_last_error());
    return 1;
}

int main(int argc, char** argv) {
    int mock = argc > 1 && strcmp(argv[1], "--mock") == 0;
    if (atoi(dynamo_llm_version()) != DYNAMO_LLM_VERSION_MAJOR) {
        fprintf(stderr, "consumer: library %s, header major %d\n", dynamo_llm_version(), DYNAMO_LLM_VERSION_MAJOR);
        return 1;
    }
    dynamo_runtime_t* rt = NULL;
    const char* config = mock ? "{\"serve_model\": false, \"mock_endpoint\": \"a.b.c\"}" : "{}";
    dynamo_status_t st = dynamo_runtime_create(config, &rt);
    if (st != DYNAMO_OK) return fail("dynamo_runtime_create", st);
    dynamo_stream_t* s = NULL;
    st = mock ? dynamo_generate(rt, "a.b.c", "{\"n\": 3}", &s)
              : dynamo_chat_completion(rt, "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello, who are you?\"}],"
                                           "\"max_tokens\":24}", &s);
    if (st != DYNAMO_OK) { dynamo_runtime_destroy(rt); return fail("submit", st); }
    dynamo_chunk_t c;
    int chunks = 0;
    size_t text = 0;
    while ((st = dynamo_stream_poll(s, 60000, &c)) == DYNAMO_OK) {
        chunks++;
        if (c.text) { fwrite(c.text, 1, c.text_len, stdout); text += c.text_len; }
    }
    dynamo_stream_free(s);
    dynamo_runtime_destroy(rt);
    printf("\nconsumer: %d chunks, %zu text bytes, %s\n", chunks, text, dynamo_status_str(st));
    if (st != DYNAMO_END) return fail("dynamo_stream_poll", st);
    return mock ? (chunks == 3 ? 0 : 1) : (text > 0 ? 0 : 1);
}
