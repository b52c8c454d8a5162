/* The Python side of libdynamo_llm_capi replaced by stubs, for programs that exercise the C parts
 * alone (c_tests/stress_streams.c, c_tests/fuzz/): a runtime is just a handle and nothing runs
 * behind a stream unless the program plays the loop thread itself (dyn_next_event, dyn_stream_push*). */
#include "dyn_internal.h"

dynamo_status_t dyn_python_start(void) { return DYNAMO_OK; }
int dyn_py_ready(void) { return 1; }
int dyn_py_runtime_create(uint64_t runtime, const char* config_json) { (void)runtime; (void)config_json; return 0; }
int dyn_py_runtime_destroy(uint64_t runtime) { (void)runtime; return 0; }
int dyn_py_runtime_stats(uint64_t runtime) { (void)runtime; dyn_set_result("{}"); return 0; }
/* the same seams as python_init.c names them (with the host's signals blocked) */
dynamo_status_t dyn_python_create(uint64_t runtime, const char* config_json) { return dyn_py_runtime_create(runtime, config_json); }
dynamo_status_t dyn_python_destroy(uint64_t runtime) { return dyn_py_runtime_destroy(runtime); }
dynamo_status_t dyn_python_stats(uint64_t runtime) { return dyn_py_runtime_stats(runtime); }
/* C/C++ engines (kv_events_c.c, endpoint_serve.c): the Python side accepts everything */
int dyn_python_call(int (*fn)(void*), void* arg) { return fn(arg); }
int dyn_py_llm_init(const char* ns, const char* component, const char* endpoint, uint32_t kv_block_size) {
    (void)ns; (void)component; (void)endpoint; (void)kv_block_size; return 0;
}
int dyn_py_llm_shutdown(void) { return 0; }
int dyn_py_endpoint_serve(uint64_t runtime, uint64_t server, const char* path) { (void)runtime; (void)server; (void)path; return 0; }
int dyn_py_model_register(uint64_t server, const char* card_json) { (void)server; (void)card_json; return 0; }
int dyn_py_server_stop(uint64_t server) { (void)server; return 0; }
