// chat_cpp: the C example through a small RAII wrapper. Exceptions stay on the
// C++ side: the wrapper turns status codes into exceptions after each C call.
//   usage: chat_cpp "your prompt" [max_tokens]
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "dynamo_llm.h"

namespace dynamo {

struct Error : std::runtime_error {
    dynamo_status_t status;
    Error(dynamo_status_t st, const std::string& what)
        : std::runtime_error(what + ": " + dynamo_status_str(st) + ": " + dynamo_last_error()), status(st) {}
};

inline void check(dynamo_status_t st, const char* what) {
    if (st != DYNAMO_OK) throw Error(st, what);
}

class Stream {
  public:
    explicit Stream(dynamo_stream_t* s) : s_(s) {}
    Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    ~Stream() { dynamo_stream_free(s_); }

    // The next chunk, or false at the end; throws on a stream error.
    bool next(dynamo_chunk_t& chunk, int32_t timeout_ms = -1) {
        for (;;) {
            dynamo_status_t st = dynamo_stream_poll(s_, timeout_ms, &chunk);
            if (st == DYNAMO_OK) return true;
            if (st == DYNAMO_END) return false;
            if (st != DYNAMO_TIMEOUT) throw Error(st, "dynamo_stream_poll");
        }
    }
    void cancel() noexcept { dynamo_stream_cancel(s_); }

  private:
    dynamo_stream_t* s_;
};

class Runtime {
  public:
    explicit Runtime(const char* config_json = nullptr) { check(dynamo_runtime_create(config_json, &rt_), "dynamo_runtime_create"); }
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;
    ~Runtime() { dynamo_runtime_destroy(rt_); }

    Stream chat(const std::string& request_json) {
        dynamo_stream_t* s = nullptr;
        check(dynamo_chat_completion(rt_, request_json.c_str(), &s), "dynamo_chat_completion");
        return Stream(s);
    }

  private:
    dynamo_runtime_t* rt_ = nullptr;
};

inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { out += '\\'; out += c; }
        else if (static_cast<unsigned char>(c) < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
        else out += c;
    }
    return out + "\"";
}

}  // namespace dynamo

int main(int argc, char** argv) {
    const char* prompt = argc > 1 ? argv[1] : "Hello, who are you?";
    int max_tokens = argc > 2 ? std::atoi(argv[2]) : 64;
    try {
        dynamo::Runtime rt(std::getenv("DYNAMO_LLM_CONFIG"));
        dynamo::Stream stream = rt.chat("{\"messages\":[{\"role\":\"user\",\"content\":" + dynamo::json_string(prompt) +
                                        "}],\"max_tokens\":" + std::to_string(max_tokens) + "}");
        dynamo_chunk_t chunk;
        while (stream.next(chunk)) {
            if (chunk.text) std::cout.write(chunk.text, static_cast<std::streamsize>(chunk.text_len)).flush();
        }
        std::cout << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "chat_cpp: " << e.what() << "\n";
        return 1;
    }
}
