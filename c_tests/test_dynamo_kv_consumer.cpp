// A C++ engine written against Dynamo's C bindings (lib/bindings/c/include/dynamo_llm.h): it uses only
// Dynamo's names (dynamo_llm_result_t, OK, ERR, dynamo_llm_init, dynamo_kv_event_publish_*), compiles
// against this library's header unchanged and checks every error path of Dynamo's semantics.
#include <cstdio>
#include <cstdlib>

#include "dynamo_llm.h"

#define EXPECT(expr, want)                                                                          \
    do {                                                                                            \
        dynamo_llm_result_t got_ = (expr);                                                          \
        if (got_ != (want)) {                                                                       \
            std::fprintf(stderr, "%s:%d: %s returned %u, expected %s\n", __FILE__, __LINE__, #expr, \
                         (unsigned)got_, #want);                                                    \
            std::exit(1);                                                                           \
        }                                                                                           \
    } while (0)

static dynamo_llm_result_t init(const char* ns, const char* component, const char* endpoint, uint32_t size) {
    return dynamo_llm_init(ns, component, endpoint, size);
}

int main() {
    uint32_t tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t counts[2] = {4, 4};
    size_t partial[2] = {4, 3};
    uint64_t ids[2] = {101, 102};
    uint64_t parent = 100;

    // publishing and shutdown before init
    EXPECT(dynamo_kv_event_publish_stored(1, tokens, counts, ids, 2, nullptr, nullptr), ERR);
    EXPECT(dynamo_kv_event_publish_removed(1, ids, 2), ERR);
    EXPECT(dynamo_llm_shutdown(), ERR);
    EXPECT(dynamo_llm_load_publisher_create(), OK);

    // namespace and endpoint: NULL, empty, blank, invalid UTF-8; block size 0
    const char* bad[] = {nullptr, "", "  ", "\xff"};
    for (const char* b : bad) {
        EXPECT(init(b, nullptr, "generate", 4), ERR);
        EXPECT(init("test", nullptr, b, 4), ERR);
    }
    EXPECT(init("test", nullptr, "generate", 0), ERR);
    EXPECT(dynamo_kv_event_publish_removed(1, ids, 2), ERR);  // still not initialised

    // init; again with the same arguments (trimmed, component defaulted): OK; with others: ERR
    EXPECT(init("test", nullptr, "generate", 4), OK);
    EXPECT(init(" test ", "backend", "generate", 4), OK);
    EXPECT(init("test", "  ", "generate", 4), OK);
    EXPECT(init("test", "\xff", "generate", 4), OK);
    EXPECT(init("test", nullptr, "different", 4), ERR);
    EXPECT(init("test", nullptr, "generate", 8), ERR);
    EXPECT(init("test", "other", "generate", 4), ERR);
    EXPECT(init("other", nullptr, "generate", 4), ERR);

    // stored: full blocks, a chain continued from a parent, a LoRA adapter, nothing, a partial block
    EXPECT(dynamo_kv_event_publish_stored(2, tokens, counts, ids, 2, nullptr, nullptr), OK);
    EXPECT(dynamo_kv_event_publish_stored(3, tokens, counts, ids, 1, &parent, nullptr), OK);
    EXPECT(dynamo_kv_event_publish_stored(4, tokens, counts, ids, 2, nullptr, "adapter"), OK);
    EXPECT(dynamo_kv_event_publish_stored(5, nullptr, nullptr, nullptr, 0, nullptr, nullptr), OK);
    EXPECT(dynamo_kv_event_publish_stored(6, tokens, partial, ids, 2, nullptr, nullptr), OK);
    EXPECT(dynamo_kv_event_publish_stored(7, nullptr, counts, ids, 2, nullptr, nullptr), ERR);
    EXPECT(dynamo_kv_event_publish_stored(7, tokens, nullptr, ids, 2, nullptr, nullptr), ERR);
    EXPECT(dynamo_kv_event_publish_stored(7, tokens, counts, nullptr, 2, nullptr, nullptr), ERR);
    EXPECT(dynamo_kv_event_publish_stored(7, tokens, counts, ids, 2, nullptr, "\xff"), ERR);

    // removed
    EXPECT(dynamo_kv_event_publish_removed(8, nullptr, 1), ERR);
    EXPECT(dynamo_kv_event_publish_removed(8, nullptr, 0), OK);
    EXPECT(dynamo_kv_event_publish_removed(9, ids, 2), OK);

    // shutdown is terminal: again OK, init and publishing ERR
    EXPECT(dynamo_llm_shutdown(), OK);
    EXPECT(dynamo_llm_shutdown(), OK);
    EXPECT(init("test", nullptr, "generate", 4), ERR);
    EXPECT(init("test", nullptr, "different", 8), ERR);
    EXPECT(dynamo_kv_event_publish_stored(10, tokens, counts, ids, 2, nullptr, nullptr), ERR);
    EXPECT(dynamo_kv_event_publish_removed(10, ids, 2), ERR);
    std::puts("ok");
    return 0;
}
