/* Private to endpoint_serve.c (servers, their handler threads) and responders.c (responder handles and
 * the responder API): one mutex guards both tables, every critical section is a few field updates. */
#ifndef DYN_SERVE_TABLES_H
#define DYN_SERVE_TABLES_H

#include "stream_slot.h"

enum { TAG_SERVER = 0x3, TAG_RESPONDER = 0x7 };

extern pthread_mutex_t dyn_serve_mu;

/* ---- responders.c (every *_locked call under dyn_serve_mu) ---- */
uint64_t dyn_responder_new_locked(uint32_t server);  /* a live responder of server index; 0: table full/no memory */
int  dyn_responder_state_locked(uint64_t h);         /* -1 not live, 0 live, 1 live and cancelled */
/* end live responder h: its server told (dyn_server_response_done_locked), the client told through the
 * outbox (error NULL: a normal end), the handle expired */
void dyn_responder_end_locked(uint64_t h, const char* error);
void dyn_responders_expire_locked(uint32_t server, const char* error); /* end every live one of server */

/* ---- endpoint_serve.c ---- */
void dyn_server_response_done_locked(uint32_t server); /* one fewer open responder (a stop may be waiting) */

#endif
