/*
 * dynamo_llm.h - the C ABI of dynamo-llm-capi (libdynamo_llm_capi.so).
 *
 * A C or C++ host creates a runtime, submits requests and polls streamed
 * responses. Behind this header an embedded CPython runs the runtime and the
 * engine; nothing here exposes a Python type.
 *
 * Conventions (they hold for every function below unless it says otherwise):
 *  - Every fallible call returns a dynamo_status_t; results go through out
 *    parameters, which are written only when the call returns DYNAMO_OK.
 *  - On an error, dynamo_last_error() on the same thread describes it.
 *  - Strings passed in are NUL-terminated UTF-8, borrowed for the call only.
 *  - Handles are opaque tokens, never pointers to memory: a freed, forged or
 *    stale handle gives DYNAMO_ERR_INVALID_HANDLE, never a crash. A NULL
 *    handle is DYNAMO_ERR_INVALID_ARGUMENT (dynamo_stream_fd: -1), except
 *    where a function says NULL is a no-op.
 *  - Error messages (dynamo_last_error) are plain English sentences.
 *  - Every function may be called from any thread.
 *  - In the child of a fork() taken after the library was first used, every
 *    call returns DYNAMO_ERR_FORKED (the embedded interpreter cannot follow).
 *
 * The embedded interpreter ignores PYTHONHOME, PYTHONPATH and the python3 on
 * PATH. It finds its Python relative to the library file itself, first of:
 *   1. $DYNAMO_LLM_PYTHONHOME=DIR (a venv or Python prefix; DIR/bin/python3),
 *      or $DYNAMO_LLM_VENV=DIR (a venv): dynamo-llm-capi must be importable there;
 *   2. `home = DIR` in dynamo_llm/python.cfg beside the library (cmake writes it:
 *      the build's venv; `path = DIR` there goes first on sys.path: the Python
 *      side that cmake --install puts beside the library);
 *   3. the venv or Python prefix that holds the library (pip install dynamo-llm-capi).
 * That environment must be the Python X.Y the library was built for; its
 * libpythonX.Y.so.1.0 is a load-time dependency found by the dynamic loader
 * (LD_LIBRARY_PATH, the library's RUNPATH = the build Python's LIBDIR, ld.so.cache;
 * the CMake package and dynamo_llm.pc link consumers to the home's own with an
 * rpath); a venv whose Python is another build than the loaded libpython fails.
 * In a program linked with libdynamo_llm_capi.a the library file is the program
 * (python.cfg beside the executable), else it sets DYNAMO_LLM_PYTHONHOME.
 * Other variables read by the library:
 *   PYTHONMALLOC=malloc   let valgrind/ASan see Python's allocations
 * The runtime's own DYN_* variables (see docs) fill in what config_json leaves out.
 * A host that already runs Python (ctypes, cffi) shares its interpreter.
 */
#ifndef DYNAMO_LLM_H
#define DYNAMO_LLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DYNAMO_API __attribute__((visibility("default")))
#else
#define DYNAMO_API
#endif

/* ---- versions ----------------------------------------------------------- */

#define DYNAMO_LLM_VERSION_MAJOR 0
#define DYNAMO_LLM_VERSION_MINOR 4 /* 2: dynamo_chunk_t.choice_index; 3: the host API (text, model
                                      info, completions, embeddings, logging, callbacks, sampling struct),
                                      Dynamo's KV-event functions, serving an endpoint from C;
                                      4: dynamo_responses_create (OpenAI Responses events as chunks) */
#define DYNAMO_LLM_VERSION_PATCH 0
/* MAJOR*10000 + MINOR*100 + PATCH, for #if comparisons. */
#define DYNAMO_LLM_VERSION_NUMBER \
    (DYNAMO_LLM_VERSION_MAJOR * 10000 + DYNAMO_LLM_VERSION_MINOR * 100 + DYNAMO_LLM_VERSION_PATCH)
/* Bumped on every incompatible change; it is the soname's number
 * (libdynamo_llm_capi.so.<ABI_VERSION>). */
#define DYNAMO_LLM_ABI_VERSION 0

/* ---- status codes -------------------------------------------------------- */

/* Values are part of the ABI: never renumbered, new codes get new numbers. */
typedef enum dynamo_status {
    DYNAMO_OK                   = 0,
    DYNAMO_TIMEOUT              = 1,   /* poll: no chunk within timeout_ms (not an error) */
    DYNAMO_END                  = 2,   /* poll: the stream ended normally (not an error) */

    DYNAMO_ERR_INVALID_ARGUMENT = -1,  /* NULL, bad UTF-8, malformed JSON, unknown key, too large */
    DYNAMO_ERR_INVALID_HANDLE   = -2,  /* freed, double-freed, forged or wrong-kind handle */
    DYNAMO_ERR_NOT_FOUND        = -3,  /* unknown model or endpoint */
    DYNAMO_ERR_UNAVAILABLE      = -4,  /* no instances, connection lost */
    DYNAMO_ERR_CANCELLED        = -5,  /* the stream was cancelled */
    DYNAMO_ERR_ENGINE           = -6,  /* the engine or a remote handler failed */
    DYNAMO_ERR_SHUTDOWN         = -7,  /* the runtime was destroyed */
    DYNAMO_ERR_FORKED           = -8,  /* called from a child after fork() */
    DYNAMO_ERR_INTERNAL         = -9,  /* a bug: please report the message */
    DYNAMO_ERR_PYTHON_INIT      = -10, /* the embedded interpreter could not start */
    DYNAMO_ERR_OUT_OF_MEMORY    = -11  /* an allocation or a handle table is exhausted */
} dynamo_status_t;

/* finish_reason of a chunk. */
#define DYNAMO_FINISH_NONE       0  /* more chunks follow */
#define DYNAMO_FINISH_STOP       1  /* EOS or a stop string/token */
#define DYNAMO_FINISH_LENGTH     2  /* max_tokens or the context length */
#define DYNAMO_FINISH_TOOL_CALLS 3  /* the model called a tool */
#define DYNAMO_FINISH_CANCELLED  4  /* the serving side cut the request short (engine abort, worker
                                      shutdown or loss with no migration left): the last chunk of
                                      each unfinished choice of a chat stream carries it, and the poll
                                      after those chunks returns DYNAMO_ERR_UNAVAILABLE (never
                                      DYNAMO_END). A host's own dynamo_stream_cancel gives no such
                                      chunk (see there) */
#define DYNAMO_FINISH_ERROR      5  /* the request failed; the chunk's json says why */

/* ---- handles and chunks --------------------------------------------------- */

typedef struct dynamo_runtime dynamo_runtime_t; /* opaque, never dereferenced */
typedef struct dynamo_stream  dynamo_stream_t;  /* opaque, never dereferenced */

/* One streamed response. Every pointer is borrowed from the stream: valid
 * until the next dynamo_stream_poll or dynamo_stream_free of that stream.
 *
 * ABI: choice_index (since 0.2) lives in what was the struct's tail padding on
 * 64-bit targets (the only ones the library is built for), so sizeof and every
 * other offset are those of 0.1 and a host compiled against 0.1 keeps working
 * (it never reads the field); the ABI version stays 0. A host that reads
 * choice_index must check at run time that dynamo_llm_version() is 0.2 or later
 * (a 0.1 library leaves those bytes unwritten). Later fields will not be
 * appended: hosts allocate this struct themselves. */
typedef struct dynamo_chunk {
    const char*     json;          /* the whole chunk as JSON, NUL-terminated */
    size_t          json_len;
    const char*     text;          /* text delta of a chat/completion stream, else NULL (NUL-terminated;
                                      a model may generate U+0000, so the text can hold NUL bytes:
                                      text_len, not strlen, is its length) */
    size_t          text_len;
    const uint32_t* token_ids;     /* token ids carried by this chunk, else NULL. Chat: the ids the
                                      chunk's delta was decoded from (also its json's choice
                                      "token_ids"); ids whose text is held back (part of a UTF-8
                                      character or of a possible stop string) come with that choice's
                                      next chunk, so over a choice they are every generated id, once
                                      (EOS included). dynamo_generate: the response's "token_ids" */
    size_t          num_token_ids;
    int32_t         finish_reason; /* DYNAMO_FINISH_* of this chunk's choice */
    int32_t         choice_index;  /* the choice (0..n-1) this chunk belongs to: a chat request with
                                      "n" > 1 interleaves its choices, one choice per chunk, and each
                                      choice ends with its own finish_reason and no chunk of it
                                      follows; -1 for a chunk of no choice (the final usage chunk
                                      of "stream_options": {"include_usage": true}); 0 for
                                      dynamo_generate streams */
} dynamo_chunk_t;

/* ---- library ------------------------------------------------------------- */

/* The library's DYNAMO_LLM_ABI_VERSION. Thread-safe, never fails, no GIL. */
DYNAMO_API uint32_t dynamo_llm_abi_version(void);

/* The library's "MAJOR.MINOR.PATCH". Static string: never free it.
 * Thread-safe, never fails, no GIL. */
DYNAMO_API const char* dynamo_llm_version(void);

/* A static English name for a status ("DYNAMO_ERR_INVALID_HANDLE", ...);
 * "DYNAMO_UNKNOWN_STATUS" for other values. Never free it. Thread-safe. */
DYNAMO_API const char* dynamo_status_str(dynamo_status_t status);

/* The message of the last error returned on the calling thread, "" if none.
 * Thread-local: valid until this thread's next dynamo_* call. Never free it. */
DYNAMO_API const char* dynamo_last_error(void);

/* ---- runtime ------------------------------------------------------------- */

/* Create a runtime. config_json NULL or "{}" is the embedded default: mem
 * discovery, inproc request plane and an in-process engine serving the demo
 * model (unless DYN_* variables name a deployment: see "discovery").
 * config_json is at most 1 MiB (1048576 bytes); a longer one is
 * DYNAMO_ERR_INVALID_ARGUMENT. Keys (unknown keys are DYNAMO_ERR_INVALID_ARGUMENT):
 *   "model": "DIR", "model_name": "...", "engine": "torch"|"mock"
 *       serve this Hugging Face folder in-process instead of the demo model;
 *   "serve_model": false             serve no model in this process;
 *   "discovery": "mem"|"file"|"nats", "nats_url": "nats://...",
 *   "request_plane": "inproc"|"tcp"|"nats", "file_kv_dir": "DIR"
 *       join a deployment whose workers run elsewhere (serve_model then
 *       defaults to false; request_plane to "nats" with "nats" discovery,
 *       else "tcp"); a deployment that cannot be reached (no NATS server at
 *       nats_url) is DYNAMO_ERR_UNAVAILABLE. Keys left out come from the
 *       runtime's variables DYN_DISCOVERY_BACKEND, DYN_REQUEST_PLANE,
 *       NATS_SERVER and DYN_FILE_KV when set (a bad value is
 *       DYNAMO_ERR_INVALID_ARGUMENT naming the variable);
 *   "migration_limit": N             how many times a chat request whose
 *       worker is lost (crash, disconnect, shutdown) is re-sent to another
 *       worker of the model with the tokens generated so far, the stream
 *       continuing with no gap and no duplicate (N >= 0; 0: off; left out:
 *       DYN_MIGRATION_LIMIT, else 3: a request survives a worker's loss, and
 *       one that kills every worker it reaches takes down at most 4);
 *   "router_mode": "round-robin"|"random"|"kv", "kv_overlap_score_weight": W,
 *   "router_temperature": T, "no_kv_events": true, "kv_cache_block_size": B
 *       how a request's worker is chosen, as the HTTP frontend's flags of the
 *       same names: "kv" sends it to the worker that already caches the
 *       longest prefix of its prompt, weighed against that worker's load
 *       (cost W x prefill blocks + decode blocks; T 0: the cheapest, > 0:
 *       sampled), from the KV events workers publish ("no_kv_events":
 *       predicted from its own decisions); defaults "round-robin" (or
 *       DYN_ROUTER_MODE), 1, 0, false, the model card's block size;
 *   "mock_endpoint": "ns.comp.ep"    also serve a built-in test generator
 *       there: request {"n": N, "interval_us": U, "busy_ms": B}, chunks
 *       {"index": i, "token_ids": [i], "t_ns": CLOCK_MONOTONIC ns}.
 * The first call starts the embedded interpreter (from the Python environment
 * found as described at the top of this header); a failure is
 * DYNAMO_ERR_PYTHON_INIT and sticks for the life of the process.
 * Ownership: *out belongs to the caller; release it with
 * dynamo_runtime_destroy. Thread-safe; blocks while the runtime starts
 * (loading a model takes seconds). Several runtimes may live at once, each
 * its own world: with "mem" discovery (the default) a runtime sees only its
 * own models and endpoints; runtimes see each other only when they join the
 * same "file" or "nats" deployment. A stream whose worker goes away before
 * the response is complete, with no migration left (migration_limit) or no
 * other worker to go to, ends with an error (DYNAMO_ERR_UNAVAILABLE), never
 * like a finished one. */
DYNAMO_API dynamo_status_t dynamo_runtime_create(const char* config_json, dynamo_runtime_t** out);

/* Shut a runtime down and release it. Its live streams end with
 * DYNAMO_ERR_SHUTDOWN (they must still be freed). NULL: no-op, DYNAMO_OK.
 * Every resource goes back: threads, fds and memory (100 create("{}") /
 * destroy cycles keep RSS within 10% of the first). The memory of its model
 * is freed by one full collection of the interpreter (~0.2-0.5 s), run when no
 * stream of any runtime is live, or at most 30 s later.
 * Blocks until the runtime has stopped. Thread-safe, but no other call may
 * use rt once this one has started. */
DYNAMO_API dynamo_status_t dynamo_runtime_destroy(dynamo_runtime_t* rt);

/* A JSON object describing the runtime, for monitoring and tests:
 * {"live_streams": n, "models": [...], "engine": {"num_running", "num_waiting",
 *  "kv_blocks_used", "kv_blocks_total", "abort_count"} or null}.
 * Ownership: *out is thread-local, valid until this thread's next dynamo_*
 * call; never free it. Thread-safe; takes the interpreter lock briefly. */
DYNAMO_API dynamo_status_t dynamo_runtime_stats_json(dynamo_runtime_t* rt, const char** out);

/* ---- requests -------------------------------------------------------------- */

/* Start an OpenAI chat completion (a JSON chat request; "stream" is implied,
 * "model" may be omitted when one model is served). Each chunk's json is an
 * OpenAI chat.completion.chunk of one choice; text is its content delta
 * ("n" > 1: the choices' chunks interleave, see dynamo_chunk_t.choice_index).
 * Checked here: NULL, UTF-8, JSON syntax, size (<= 8 MiB). Errors the runtime
 * finds (unknown model, a request key that is not one of the OpenAI chat keys
 * the runtime implements, no workers) are returned by the first
 * dynamo_stream_poll that reaches them; the message names the key.
 * Never waits for the interpreter: the request is queued in C.
 * Ownership: *out belongs to the caller; release it with dynamo_stream_free.
 * Thread-safe. */
DYNAMO_API dynamo_status_t dynamo_chat_completion(dynamo_runtime_t* rt, const char* request_json,
                                                  dynamo_stream_t** out);

/* Send request_json (a JSON object) to the endpoint "namespace.component.endpoint"
 * and stream its responses: each chunk's json is one response as JSON and
 * token_ids its "token_ids" field, if any. Checks and ownership as in
 * dynamo_chat_completion; an unknown endpoint is reported by the first poll
 * (DYNAMO_ERR_NOT_FOUND or DYNAMO_ERR_UNAVAILABLE). Thread-safe. */
DYNAMO_API dynamo_status_t dynamo_generate(dynamo_runtime_t* rt, const char* endpoint_path,
                                           const char* request_json, dynamo_stream_t** out);

/* ---- streams --------------------------------------------------------------- */

/* Take the next chunk. timeout_ms: 0 never blocks, -1 waits forever.
 * Returns DYNAMO_OK with *out filled, DYNAMO_TIMEOUT, DYNAMO_END once after
 * the last chunk, or an error (DYNAMO_ERR_CANCELLED after a cancel,
 * DYNAMO_ERR_SHUTDOWN, ...). END and errors are sticky.
 * Ownership: out's pointers are borrowed (see dynamo_chunk_t).
 * Never takes the interpreter lock. Thread-safe: a dynamo_stream_free on
 * another thread, before or during this call (even while it waits), makes it
 * return DYNAMO_ERR_INVALID_HANDLE; a poll that got there first returns as
 * usual (a chunk's pointers then die with the free). One stream should have
 * one poller at a time: every poll of a stream ends the borrow of its
 * previous chunk. */
DYNAMO_API dynamo_status_t dynamo_stream_poll(dynamo_stream_t* stream, int32_t timeout_ms, dynamo_chunk_t* out);

/* Ask the stream to stop; the runtime and the engine abort the request and
 * free its resources. Chunks not yet polled are dropped; later polls return
 * DYNAMO_ERR_CANCELLED (unless the stream had already ended).
 * Idempotent, never blocks, never takes the interpreter lock. Any thread. */
DYNAMO_API dynamo_status_t dynamo_stream_cancel(dynamo_stream_t* stream);

/* A file descriptor that is readable when a dynamo_stream_poll with
 * timeout 0 would not return DYNAMO_TIMEOUT (level-triggered: register it
 * with epoll/poll/libuv/asio, then poll until DYNAMO_TIMEOUT).
 * Ownership: the stream's; valid until dynamo_stream_free, never close it.
 * Returns -1 for an invalid handle. Never blocks. Any thread. */
DYNAMO_API int dynamo_stream_fd(dynamo_stream_t* stream);

/* Release a stream (cancelling it first if it is still running). The handle,
 * its fd and every chunk pointer become invalid. NULL: no-op, DYNAMO_OK.
 * Never blocks, never takes the interpreter lock. Any thread, once, even
 * while other threads poll, cancel or wait on the stream: those calls then
 * return DYNAMO_ERR_INVALID_HANDLE (dynamo_stream_fd: -1). */
DYNAMO_API dynamo_status_t dynamo_stream_free(dynamo_stream_t* stream);

/* ---- KV events of a C/C++ engine (Dynamo's C bindings, source-compatible) ---------------------
 *
 * The functions of NVIDIA Dynamo's lib/bindings/c, with its names, signatures and semantics: a C++ engine
 * written against Dynamo's dynamo_llm.h compiles and links against this library unchanged. They publish
 * the engine's KV cache events so the KV-aware router sends each request to the worker that already holds
 * its prefix. State is per process (as in Dynamo): one publisher, initialised once.
 *
 * The deployment comes from the DYN_* environment as for every runtime (DYN_DISCOVERY_BACKEND,
 * DYN_REQUEST_PLANE, DYN_EVENT_PLANE, NATS_SERVER, DYN_FILE_KV; see docs): with none set, events stay in
 * this process. Events go out on the event plane subject "{namespace}.{component}.kv_events" as
 * pyimpl/llm/kv_router/protocol.py's KvEventBatch. Their worker id is the instance id of the runtime that
 * serves namespace.component.endpoint in this process with dynamo_endpoint_serve (the instance the router
 * picks), once one does; until then that of the publisher's own runtime. The publisher keeps the blocks
 * stored and not removed, and answers a router that starts late with them (endpoint
 * "{namespace}.{component}.kv_snapshot").
 *
 * Unlike Dynamo's, dynamo_llm_init does not wait until some model is registered in discovery (a C engine
 * that registers its own model after init would wait forever): it returns once the publisher is ready. */

/* 0 = OK, 1 = ERR, as Dynamo's DynamoLlmResult (a uint32_t). The reason of an ERR goes to
 * dynamo_last_error() (on the calling thread) and, as in Dynamo, to stderr.
 * Dynamo's header is C++ (cbindgen) and names the values OK and ERR, unprefixed: C++11 hosts get exactly
 * that enum (code written for Dynamo compiles unchanged), unless they define DYNAMO_LLM_NO_DYNAMO_NAMES
 * before including this header (an OK macro of their own would clash). C and other hosts: a uint32_t. */
#if defined(__cplusplus) && __cplusplus >= 201103L && !defined(DYNAMO_LLM_NO_DYNAMO_NAMES)
enum dynamo_llm_result_t : uint32_t { OK = 0, ERR = 1 };
#else
typedef uint32_t dynamo_llm_result_t;
#endif
#define DYNAMO_LLM_RESULT_OK  ((dynamo_llm_result_t)0)
#define DYNAMO_LLM_RESULT_ERR ((dynamo_llm_result_t)1)

/* Start the process's KV-event publisher for the engine serving namespace.component.endpoint, whose KV
 * blocks hold kv_block_size tokens. namespace and endpoint: required, UTF-8, trimmed of white space, not
 * empty (NULL, "", "  " or invalid UTF-8: ERR); component: NULL, empty or invalid means "backend";
 * kv_block_size 0: ERR. Called again with the same (trimmed) arguments: OK, nothing changes; with
 * different ones: ERR (the first stay). After dynamo_llm_shutdown: ERR (the publisher is once per process).
 * A deployment that cannot be reached (no NATS server at NATS_SERVER): ERR.
 * Starts the embedded interpreter if no runtime did (a failure: ERR). Blocks until the publisher is ready
 * (its runtime connected). Thread-safe: concurrent calls are serialised. Strings are borrowed for the call. */
DYNAMO_API dynamo_llm_result_t dynamo_llm_init(const char* namespace_name, const char* component_name,
                                               const char* endpoint_name, uint32_t kv_block_size);

/* Stop the publisher: events queued before the call are published first, then its runtime shuts down
 * (its discovery keys go). Before any successful dynamo_llm_init: ERR. Again after a shutdown: OK.
 * Blocks until done. Thread-safe. */
DYNAMO_API dynamo_llm_result_t dynamo_llm_shutdown(void);

/* Does nothing and returns OK (as in Dynamo: load metrics are published by the runtime). */
DYNAMO_API dynamo_llm_result_t dynamo_llm_load_publisher_create(void);

/* Publish that the engine stored num_blocks KV blocks, each a full block of one sequence, in order:
 * block i holds num_block_tokens[i] tokens, token_ids holds the blocks' tokens back to back, block_ids[i]
 * is the engine's own id (hash) for block i. parent_hash: the id of the block before block 0 in its
 * sequence, NULL if block 0 starts the sequence. lora_name: the adapter the blocks were computed with, NULL
 * (or "") for the base model; its blocks are hashed with the name, so they never match the base model's.
 * Each block is indexed by the hash of its own tokens (engine/block_hash.local_block_hash: XXH3-64, seed
 * 1337, over the little-endian uint32 tokens) chained from parent_hash; as in Dynamo, publishing stops at
 * the first block whose token count is not kv_block_size (the blocks before it still go; a warning is
 * logged at most 3 times per process) and the call returns OK.
 * ERR: before dynamo_llm_init succeeded or after dynamo_llm_shutdown; num_blocks > 0 with token_ids,
 * num_block_tokens or block_ids NULL; lora_name not UTF-8.
 * The arrays are read during the call only (copied). Never waits for the interpreter: the event is queued
 * and published in order by a library thread, batched with the events queued meanwhile.
 * Thread-safe; calls from several threads are published in the order they took the publisher's lock. */
DYNAMO_API dynamo_llm_result_t dynamo_kv_event_publish_stored(uint64_t event_id, const uint32_t* token_ids,
                                                              const size_t* num_block_tokens,
                                                              const uint64_t* block_ids, size_t num_blocks,
                                                              const uint64_t* parent_hash,
                                                              const char* lora_name);

/* Publish that the engine evicted the blocks block_ids[0..num_blocks) (ids as given when stored).
 * ERR: before dynamo_llm_init succeeded or after dynamo_llm_shutdown; num_blocks > 0 with block_ids NULL.
 * Copied during the call, queued, never waits for the interpreter. Thread-safe. */
DYNAMO_API dynamo_llm_result_t dynamo_kv_event_publish_removed(uint64_t event_id, const uint64_t* block_ids,
                                                               size_t num_blocks);

/* ---- serving an endpoint from C --------------------------------------------------------------------
 *
 * A C/C++ engine serves "namespace.component.endpoint" of a runtime: requests reach it like any other
 * endpoint's (from Python clients, the HTTP frontend, dynamo_generate), its answers stream back to them.
 * A host that speaks the worker's token protocol (pyimpl/llm/backend/model_server.py's wire format: token
 * ids and sampling options in, token ids out) serves a model: it publishes the model's card with
 * dynamo_model_register and the HTTP frontend of the deployment serves it (see examples/c/engine.c). */

typedef struct dynamo_server    dynamo_server_t;    /* opaque handle, never dereferenced */
typedef struct dynamo_responder dynamo_responder_t; /* opaque handle, never dereferenced */

/* Called by the library with one request: request_json is the request as a JSON object (NUL-terminated,
 * request_len bytes without the NUL), borrowed until the handler returns (copy what you keep). responder
 * belongs to the host from now on: answer with dynamo_responder_send, now or later, from any thread, and
 * end with dynamo_responder_finish exactly once.
 * Threading: each server has one library thread that calls its handler, one request at a time, in
 * arrival order; while a call runs no other request of that server is handed over, so return quickly and
 * do the work on the host's threads (or answer inline for trivial work). The handler runs without the
 * interpreter lock; it may call any dynamo_* function (dynamo_server_stop of its own server too: see there). */
typedef void (*dynamo_request_handler_t)(void* user_data, const char* request_json, size_t request_len,
                                         dynamo_responder_t* responder);

/* Serve endpoint_path ("namespace.component.endpoint", UTF-8) on rt with handler; *out is the server.
 * The endpoint is registered in rt's discovery when the call returns (clients of the deployment see it
 * as an instance with rt's instance id). user_data is passed to every handler call, untouched, until
 * dynamo_server_stop (or the runtime's destroy) returns.
 * DYNAMO_ERR_INVALID_ARGUMENT: NULL rt/endpoint_path/handler/out, bad path, or rt already serves that
 * path (from C or in Python); DYNAMO_ERR_INVALID_HANDLE: rt is not a live runtime; DYNAMO_ERR_OUT_OF_MEMORY:
 * 64 servers are live already. Ownership: *out belongs to the caller, released by dynamo_server_stop or
 * with its runtime by dynamo_runtime_destroy. Thread-safe; blocks until registered. */
DYNAMO_API dynamo_status_t dynamo_endpoint_serve(dynamo_runtime_t* rt, const char* endpoint_path,
                                                 dynamo_request_handler_t handler, void* user_data,
                                                 dynamo_server_t** out);

/* Publish a model card for the server's endpoint, so frontends of the deployment serve the model from it
 * (OpenAI requests are tokenized there and reach the handler as token-protocol requests). card_json is a
 * JSON object: "name" (the OpenAI model name) and "model_path" (a folder with the tokenizer and chat
 * template, readable where the frontends run) are required; optional: "context_length" (4096),
 * "kv_block_size" (16), "eos_token_ids" ([]), "model_type" ("chat" | "completions"), "tool_call_parser",
 * "reasoning_parser". The card's endpoint is the server's path. Why a call and not a config key: the card
 * belongs to the endpoint that serves it, and goes with it: dynamo_server_stop withdraws it.
 * DYNAMO_ERR_INVALID_ARGUMENT: NULL, bad JSON, an unknown key, a wrong type, a missing name/model_path,
 * or a second card on the same server; DYNAMO_ERR_INVALID_HANDLE: not a live server. Thread-safe; blocks
 * until published. */
DYNAMO_API dynamo_status_t dynamo_model_register(dynamo_server_t* server, const char* card_json);

/* Stream one response to the responder's client: json is a JSON object of json_len bytes (no NUL needed;
 * at most 8 MiB), copied during the call (the client receives it as a parsed object: the token protocol's
 * {"token_ids": [...], "finish_reason": null|"stop"|"length"}). Never waits for the interpreter or the
 * client: responses are queued in order (one responder should be sent to by one thread at a time, or the
 * host orders them), without a bound: a host that produces much faster than its clients read should pace
 * itself (the token protocol's one chunk per step does). DYNAMO_ERR_CANCELLED: the client went away or the server is stopping (the response
 * is dropped; still call finish); DYNAMO_ERR_INVALID_ARGUMENT: NULL, bad UTF-8 or not a JSON object;
 * DYNAMO_ERR_INVALID_HANDLE: a finished, forged or expired responder. Any thread. */
DYNAMO_API dynamo_status_t dynamo_responder_send(dynamo_responder_t* responder, const char* json,
                                                 size_t json_len);

/* End the response: error_message NULL ends it normally, else (UTF-8 text) the client's stream fails with
 * that message (an engine error). Exactly once per responder, also for a cancelled one: the handle is
 * invalid afterwards (a second finish: DYNAMO_ERR_INVALID_HANDLE). Never blocks. Any thread.
 * A responder the host never finishes keeps its client waiting until dynamo_server_stop (or the runtime's
 * destroy) gives up on it after the drain (then the client's stream fails and the handle expires). */
DYNAMO_API dynamo_status_t dynamo_responder_finish(dynamo_responder_t* responder, const char* error_message);

/* 1 if the host should stop working on this response: the client went away (an HTTP client
 * disconnected, a stream was cancelled or freed), the server is stopping after its drain, or responder is
 * not a live responder (NULL, finished, forged: dynamo_last_error says so); else 0. Never blocks, never
 * takes the interpreter lock. Any thread. */
DYNAMO_API int dynamo_responder_is_cancelled(dynamo_responder_t* responder);

/* Stop serving: the endpoint is deregistered from discovery at once (no new requests), requests queued
 * but not yet handed to the handler fail, then the call waits for the responders already handed over to
 * be finished, up to the runtime's grace period (DYN_GRACE_PERIOD, default 5 s); those still open then
 * are cancelled, their clients' streams fail and their handles expire. When it returns the handler is
 * never called again and user_data is no longer used. NULL: no-op, DYNAMO_OK. DYNAMO_ERR_INVALID_HANDLE:
 * a stopped, forged or expired server (its runtime's destroy stops it too). Called from the server's own
 * handler, it cannot wait for that handler call (its caller) to return: the handler must not touch
 * user_data after it. Thread-safe; blocks. */
DYNAMO_API dynamo_status_t dynamo_server_stop(dynamo_server_t* server);


/* ---- memory returned to the host ----------------------------------------------- */

/* Release what a dynamo_* function below handed over with "free it with dynamo_free": token id
 * arrays, strings, dynamo_embeddings_t results. NULL: no-op. Each pointer once. Never pass it a
 * pointer that is borrowed (a chunk's fields, dynamo_last_error, dynamo_runtime_stats_json's string).
 * Never blocks, never takes the interpreter lock. Any thread. */
DYNAMO_API void dynamo_free(void* ptr);

/* ---- text: the model's tokenizer and chat template ------------------------------ */

/* Every function of this section and the next two names a model: model NULL or "" is the runtime's
 * only model (DYNAMO_ERR_INVALID_ARGUMENT when it serves several or, DYNAMO_ERR_NOT_FOUND, none);
 * an unknown name is DYNAMO_ERR_NOT_FOUND. They block the calling thread until the answer is
 * there (the tokenizer loads on first use: seconds), take the interpreter lock briefly and do the
 * work on the runtime's own thread (a long text off it), so other streams keep running. The
 * model's tokenizer must be readable here: its folder is on this machine (a model served by a
 * worker elsewhere is readable when that folder is shared). Thread-safe. */

/* The token ids of text (NUL-terminated UTF-8, at most 8 MiB) with the model's tokenizer;
 * add_special != 0 adds the tokenizer's special tokens (BOS and the like) as a completions prompt
 * gets them; 0 gives the bare text's ids (what a chat template's output needs).
 * Ownership: *ids is a malloc'd array of *n ids (NULL when *n is 0), the caller's: free it with
 * dynamo_free. */
DYNAMO_API dynamo_status_t dynamo_tokenize(dynamo_runtime_t* rt, const char* model, const char* text,
                                           int add_special, uint32_t** ids, size_t* n);

/* The text of n token ids (ids may be NULL when n is 0; an id outside the vocabulary is
 * DYNAMO_ERR_INVALID_ARGUMENT); skip_special != 0 leaves special tokens (EOS, ...) out, as a
 * chat stream does. Ownership: *text is a malloc'd NUL-terminated UTF-8 string, the caller's:
 * free it with dynamo_free. */
DYNAMO_API dynamo_status_t dynamo_detokenize(dynamo_runtime_t* rt, const char* model, const uint32_t* ids,
                                             size_t n, int skip_special, char** text);

/* The prompt text a chat request would give the model: messages_json is a JSON array of OpenAI
 * chat messages, or a whole chat request object (its "messages" and "tools" are used, its "model"
 * if model is NULL); add_generation_prompt != 0 appends the assistant turn's opening, as a chat
 * completion does. A model without a chat template, or a template that rejects the messages, is
 * DYNAMO_ERR_INVALID_ARGUMENT with the template's message. Tokenize the result with add_special 0.
 * Ownership: *prompt is a malloc'd NUL-terminated UTF-8 string: free it with dynamo_free. */
DYNAMO_API dynamo_status_t dynamo_apply_chat_template(dynamo_runtime_t* rt, const char* model,
                                                      const char* messages_json, int add_generation_prompt,
                                                      char** prompt);

/* ---- model info ------------------------------------------------------------------ */

#define DYNAMO_MODEL_INFO_MAX_EOS 8

/* What a host asks about a model before it builds prompts (since 0.3).
 * ABI: the caller sets struct_size = sizeof(dynamo_model_info_t) before the call; the library
 * writes only the fields that fit in struct_size and leaves the rest alone, so a host built
 * against this header works with later libraries (which may use the reserved words) and a
 * later host's bigger struct works with this library (its newer fields stay as the host set them). */
typedef struct dynamo_model_info {
    uint32_t struct_size;        /* in: sizeof(dynamo_model_info_t) */
    uint32_t context_length;     /* tokens the serving engine accepts (prompt + completion) */
    uint32_t vocab_size;         /* the model's vocabulary (0: unknown) */
    uint32_t num_eos_ids;        /* ids in eos_ids (at most DYNAMO_MODEL_INFO_MAX_EOS; the JSON has all) */
    uint32_t eos_ids[DYNAMO_MODEL_INFO_MAX_EOS]; /* ids that end generation, the model's own first */
    uint32_t kv_block_size;      /* tokens per KV cache block (0: unknown) */
    uint32_t kv_total_blocks;    /* KV cache capacity in blocks of the engine in this process (0: unknown,
                                    e.g. a worker elsewhere) */
    int32_t  is_embedding;       /* 1: an embedding model (dynamo_embeddings), 0: a generative model */
    uint32_t reserved0;
    char     name[128];          /* the served model name, NUL-terminated (truncated if longer) */
    char     architecture[64];   /* config.json's architectures[0], e.g. "LlamaForCausalLM"; "" if unknown */
    char     dtype[16];          /* config.json's dtype ("bfloat16", "float32", ...); "" if not given (the
                                    engine may compute in another where the device lacks it) */
    uint64_t reserved[8];        /* zero; later versions' fields */
} dynamo_model_info_t;

/* The model's facts as a JSON object: {"name", "model_type", "context_length", "vocab_size",
 * "eos_token_ids": [...], "architecture", "dtype", "kv_block_size", "kv_total_blocks",
 * "has_chat_template", "model_path"} (unknown values are null).
 * Ownership: *json is malloc'd, NUL-terminated, the caller's: free it with dynamo_free. */
DYNAMO_API dynamo_status_t dynamo_model_info_json(dynamo_runtime_t* rt, const char* model, char** json);

/* The same facts in a struct: info->struct_size must be set (at least offsetof(dynamo_model_info_t,
 * context_length) + 4, else DYNAMO_ERR_INVALID_ARGUMENT). Nothing to free. */
DYNAMO_API dynamo_status_t dynamo_model_info(dynamo_runtime_t* rt, const char* model, dynamo_model_info_t* info);

/* ---- more request kinds ------------------------------------------------------------- */

/* Start an OpenAI text completion ({"prompt": "..." or [token ids], ...}, "stream" implied; "model"
 * may be omitted when one model is served). Each chunk's json is an OpenAI text_completion chunk of
 * one choice; text is its text delta; choice_index as for chat. Checks, errors, ownership and
 * threads as dynamo_chat_completion. */
DYNAMO_API dynamo_status_t dynamo_completion(dynamo_runtime_t* rt, const char* request_json, dynamo_stream_t** out);

/* Run a chat completion to its end and return the whole reply: an OpenAI chat.completion object
 * (choices with message and finish_reason, usage). Errors as the first poll of a stream would
 * return them (DYNAMO_ERR_NOT_FOUND for an unknown model, DYNAMO_ERR_INVALID_ARGUMENT naming the
 * bad key, ...). Blocks the calling thread until the reply is complete (at most 10 minutes, then
 * DYNAMO_ERR_UNAVAILABLE); it cannot be cancelled: use dynamo_chat_completion for that.
 * Ownership: *response_json is malloc'd, NUL-terminated, the caller's: free it with dynamo_free.
 * Thread-safe; waits without holding the interpreter lock. */
DYNAMO_API dynamo_status_t dynamo_chat_completion_sync(dynamo_runtime_t* rt, const char* request_json,
                                                       char** response_json);

/* Embeddings of an embedding model (a runtime created with {"model": "<sentence-transformers folder>"}). */
typedef struct dynamo_embeddings {
    const float* data;    /* count * dims floats, row i (input i) at data + i * dims */
    size_t       count;   /* inputs embedded */
    size_t       dims;    /* floats per embedding */
    uint32_t     prompt_tokens;
    uint32_t     reserved0;
    const char*  model;   /* the model that answered, NUL-terminated */
} dynamo_embeddings_t;

/* Embed request_json, an OpenAI embeddings request ({"input": "text" or ["text", ...] or token
 * ids, "model"?}; "encoding_format" is ignored: the floats come as floats). Blocks until done.
 * Ownership: *result is one allocation (the struct, its floats and its model string): free it
 * with dynamo_free(*result); every pointer in it dies then. Thread-safe. */
DYNAMO_API dynamo_status_t dynamo_embeddings(dynamo_runtime_t* rt, const char* request_json,
                                             dynamo_embeddings_t** result);

/* ---- hosted models (config "models") ----------------------------------------------------------
 *
 * A runtime created with {"models": [{"name": "...", "path": "DIR", "aliases": ["..."], "params": {...}}, ...],
 * "max_loaded_models": N (default 1)} serves several models and keeps at most N loaded (BodhiApp's load
 * strategies): a request naming a model (or an alias; "params" are its request defaults) that is not
 * loaded loads it (Load); one for a loaded model goes on (Continue); at the limit, the least recently used
 * model is unloaded first, once its requests in flight have finished (DropAndLoad). Requests wait (their
 * first poll blocks) while their model loads; a failed load ends them with DYNAMO_ERR_ENGINE naming the
 * cause, and a later request tries again. "models" replaces "model"; "engine" applies to each of them.
 * The blocking calls above (dynamo_tokenize, dynamo_model_info, ...) see a model while it is loaded. */

#define DYNAMO_MODEL_UNLOADED  0
#define DYNAMO_MODEL_LOADING   1
#define DYNAMO_MODEL_LOADED    2
#define DYNAMO_MODEL_UNLOADING 3
#define DYNAMO_MODEL_FAILED    4  /* message says why */

/* model: the model's configured name; message: NULL except for DYNAMO_MODEL_FAILED. Both borrowed for the call. */
typedef void (*dynamo_model_state_callback_t)(dynamo_runtime_t* rt, const char* model, int32_t state,
                                              const char* message, void* user_data);

/* Hear every state change of rt's hosted models, in order, on one library thread (never the runtime's own
 * loop, never with the interpreter lock held: cb may call any dynamo_* function except destroying rt).
 * cb NULL stops the calls. Once this returns, the previous callback is not running and never runs again.
 * A runtime without "models" never calls it. DYNAMO_ERR_INVALID_HANDLE for a dead runtime. Thread-safe. */
DYNAMO_API dynamo_status_t dynamo_runtime_set_state_callback(dynamo_runtime_t* rt, dynamo_model_state_callback_t cb,
                                                             void* user_data);

/* ---- typed sampling parameters (llama.h style) ----------------------------------------- */

/* The sampling fields of a chat or completion request as a struct, for hosts that prefer one
 * to JSON. Start from dynamo_sampling_params_default() (the values the engine uses when the JSON
 * leaves a field out), change fields, then dynamo_sampling_params_apply() writes them into a
 * request's JSON: the values then meet exactly the validation the JSON fields meet (an out-of-range
 * temperature is DYNAMO_ERR_INVALID_ARGUMENT from the first poll, naming "temperature").
 * ABI: struct_size is set by dynamo_sampling_params_default(); fields are only ever added at the
 * end, and apply() reads only the fields that struct_size covers. */
typedef struct dynamo_sampling_params {
    uint32_t struct_size;        /* set by dynamo_sampling_params_default() */
    int32_t  max_tokens;         /* 0: up to the model's context */
    int32_t  min_tokens;         /* 0 */
    int32_t  top_k;              /* 0 or -1: off */
    float    temperature;        /* 1.0; 0: greedy */
    float    top_p;              /* 1.0 */
    float    min_p;              /* 0.0 */
    float    repetition_penalty; /* 1.0 */
    float    presence_penalty;   /* 0.0 */
    float    frequency_penalty;  /* 0.0 */
    int32_t  has_seed;           /* 0: a random seed per request; 1: seed below */
    int32_t  ignore_eos;         /* 0 */
    int64_t  seed;
} dynamo_sampling_params_t;

/* The defaults, by value. Never fails. Thread-safe, no interpreter. */
DYNAMO_API dynamo_sampling_params_t dynamo_sampling_params_default(void);

/* A copy of request_json (a JSON object, as dynamo_chat_completion takes) with the sampling fields
 * of params set: "max_tokens" (left out when 0), "min_tokens", "top_k", "temperature", "top_p",
 * "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty", "seed" (when has_seed),
 * "ignore_eos". They replace the request's own keys of those names. A NaN or infinite float is
 * DYNAMO_ERR_INVALID_ARGUMENT (JSON cannot carry it); ranges are checked where the JSON's are.
 * Ownership: *out_json is malloc'd, NUL-terminated, the caller's: free it with dynamo_free.
 * Never blocks, no interpreter. Thread-safe. */
DYNAMO_API dynamo_status_t dynamo_sampling_params_apply(const dynamo_sampling_params_t* params,
                                                        const char* request_json, char** out_json);

/* ---- logging ---------------------------------------------------------------------------- */

/* Levels (Python's logging numbers). */
#define DYNAMO_LOG_DEBUG    10
#define DYNAMO_LOG_INFO     20
#define DYNAMO_LOG_WARNING  30
#define DYNAMO_LOG_ERROR    40
#define DYNAMO_LOG_CRITICAL 50

/* logger: where it came from ("pyimpl.llm.engine...", "py.warnings", "stderr"); message: the text,
 * with a traceback appended when there is one. Both borrowed for the call. */
typedef void (*dynamo_log_callback_t)(int32_t level, const char* logger, const char* message, void* user_data);

/* Send everything the library would print to cb instead of stderr: its log records at or above
 * the level (dynamo_set_log_level), Python warnings, tracebacks of failures no call could report,
 * and anything written to the interpreter's sys.stderr (at DYNAMO_LOG_WARNING, logger "stderr",
 * one call per line). cb NULL restores the default: stderr, as without a callback (records of
 * WARNING and above). May be set before the first runtime exists.
 * cb runs on whichever thread logs: a library thread, or the host's own thread inside a dynamo_*
 * call that logs (several at once are possible: it must be thread-safe), never with the
 * interpreter lock held; it must return promptly and must not call
 * dynamo_* functions other than dynamo_status_str, dynamo_llm_version and dynamo_free.
 * Once this call returns, the previous callback is not running and never runs again (user_data
 * may be released). A Python host sharing its interpreter gets its sys.stderr redirected while a
 * callback is set. Thread-safe; returns DYNAMO_OK, or DYNAMO_ERR_FORKED. */
DYNAMO_API dynamo_status_t dynamo_set_log_callback(dynamo_log_callback_t cb, void* user_data);

/* The lowest level sent to the log callback (default DYNAMO_LOG_WARNING). Any int32 is accepted
 * (values between levels work as in Python's logging). Thread-safe. */
DYNAMO_API dynamo_status_t dynamo_set_log_level(int32_t level);

/* ---- callback streaming ------------------------------------------------------------------- */

/* Called once per chunk (status DYNAMO_OK, chunk filled), then once at the end (status DYNAMO_END
 * or the stream's error, chunk NULL). chunk's pointers are valid during the call only. */
typedef void (*dynamo_stream_callback_t)(dynamo_stream_t* stream, dynamo_status_t status,
                                         const dynamo_chunk_t* chunk, void* user_data);

/* Deliver a stream's chunks to cb instead of dynamo_stream_poll (an alternative to poll/fd).
 * The rules:
 *  - cb runs on a library thread (one for all streams of the process: a slow callback delays the
 *    others), never on the host's thread, never with the interpreter lock held;
 *  - calls for one stream are ordered and never concurrent; the chunks already queued when this is
 *    called come first;
 *  - the terminal call (DYNAMO_END or an error, chunk NULL) comes exactly once, and nothing after it;
 *  - inside cb the host may call dynamo_stream_cancel (the terminal call DYNAMO_ERR_CANCELLED
 *    follows) and dynamo_stream_free (nothing more is delivered for the stream, not even the
 *    terminal call; freeing at the terminal call is the usual way); from another thread it may
 *    cancel at any time, but may free only after the terminal call (or from inside cb): a free
 *    racing a callback would pull the chunk from under it;
 *  - after this call the host must not poll the stream; dynamo_stream_fd stays the library's.
 * Once per stream: a second call is DYNAMO_ERR_INVALID_ARGUMENT, as is cb NULL; a stream that
 * ended before this call still gets its queued chunks and its terminal call.
 * Returns without waiting. Thread-safe. */
DYNAMO_API dynamo_status_t dynamo_stream_set_callback(dynamo_stream_t* stream, dynamo_stream_callback_t cb,
                                                      void* user_data);

/* ---- OpenAI Responses (since 0.4) --------------------------------------------------------- */

/* Run an OpenAI Responses request (request_json: the body of POST /v1/responses: "model", "input" as a
 * string or items, "instructions", "tools", "tool_choice", "text", "max_output_tokens", "store",
 * "previous_response_id", ...; "stream" is ignored: the events always stream; "model" may be omitted when
 * one model is served) on rt's models, by the same path as the HTTP route, and stream its events.
 * Each chunk is one event, in the order and with the "sequence_number" (0, 1, 2, ...) POST /v1/responses
 * streams them: response.created, response.in_progress, per output item response.output_item.added,
 * its part and delta events (response.output_text.delta ..., response.function_call_arguments.delta
 * ...) and response.output_item.done, and last one of response.completed, response.incomplete,
 * response.failed. The chunk's fields:
 *   json           the event as JSON: exactly the "data:" of its server-sent event ({"type": ...,
 *                  "sequence_number": n, ...}); the terminal event's "response" is the whole response
 *                  (its "id" is what a later request's "previous_response_id" names);
 *   text           the "delta" of a response.output_text.delta event (the reply's text, NUL-terminated,
 *                  text_len bytes), else NULL;
 *   token_ids      NULL (num_token_ids 0);
 *   finish_reason  DYNAMO_FINISH_NONE, except on the terminal event: response.completed
 *                  DYNAMO_FINISH_STOP (DYNAMO_FINISH_TOOL_CALLS when its output holds a function_call
 *                  item), response.incomplete DYNAMO_FINISH_LENGTH, response.failed DYNAMO_FINISH_ERROR;
 *   choice_index   0.
 * After the terminal event the next poll returns DYNAMO_END: a failure after the response started
 * (an engine error, a worker lost for good) is a response.failed event whose "response"."error" says
 * why, then DYNAMO_END, as the HTTP stream ends.
 * Blocks until the response has started (its first event is queued: the model's first output, so the
 * prompt's prefill, or a hosted model's load, is waited for; at most 10 minutes, then
 * DYNAMO_ERR_UNAVAILABLE), so that the errors POST answers before its stream are this call's status,
 * with dynamo_last_error saying which field or id: DYNAMO_ERR_INVALID_ARGUMENT for NULL, bad UTF-8,
 * malformed JSON, more than 8 MiB, or a request the Responses API refuses (a missing or ill-typed field,
 * a value out of range: HTTP 400); DYNAMO_ERR_NOT_FOUND for an unknown model or an unknown (or not
 * stored) previous_response_id (HTTP 404); DYNAMO_ERR_UNAVAILABLE when no worker serves the model;
 * DYNAMO_ERR_INVALID_HANDLE for a dead runtime; DYNAMO_ERR_SHUTDOWN when rt is destroyed meanwhile.
 * Conversations: a response is kept (unless the request says "store": false) in rt's own store, in
 * memory (the 10,000 newest, 256 MiB at most), for "previous_response_id" of later calls on rt; it goes
 * with rt. Streams: dynamo_stream_poll/fd/cancel/free/set_callback work as for a chat stream (a cancel or
 * free aborts the generation, later polls return DYNAMO_ERR_CANCELLED; a cancelled response is not
 * stored; rt's destroy ends the stream with DYNAMO_ERR_SHUTDOWN).
 * Ownership: *out belongs to the caller; release it with dynamo_stream_free. Thread-safe: any number of
 * threads may create responses on one runtime at once; waits without holding the interpreter lock. */
DYNAMO_API dynamo_status_t dynamo_responses_create(dynamo_runtime_t* rt, const char* request_json,
                                                   dynamo_stream_t** out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DYNAMO_LLM_H */
