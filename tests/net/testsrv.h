#ifndef AIFLEET_TESTSRV_H
#define AIFLEET_TESTSRV_H

/*
 * A scripted HTTP server on loopback (libmicrohttpd, one thread per
 * connection): answers arrival i with script[i] (then with the default
 * reply) and records every arrival with its monotonic time, method, path,
 * decoded query, headers and body.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aifleet/http.h"
#include "aifleet/sign.h"

/* Default answer: acceptable to both the Alibaba and the Tencent checks. */
#define TS_DEFAULT_BODY "{\"Response\":{\"RequestId\":\"d\"}}"

typedef struct ts_reply {
	int status;              /* 0 -> 200 */
	const char *body;        /* NULL -> TS_DEFAULT_BODY */
	const char *retry_after; /* x-acs-retry-after header value, or NULL */
	const char *request_id;  /* x-acs-request-id header value, or NULL */
	int delay_ms;            /* sleep before answering */
	bool drop;               /* close the connection without an answer */
	size_t filler_bytes;     /* > 0: answer this many bytes instead of body */
} ts_reply;

typedef struct ts_arrival {
	double t;    /* CLOCK_MONOTONIC seconds at arrival */
	double done; /* when the answer was queued */
	char method[16];
	char path[1024];
	af_kv *args; /* decoded query parameters */
	size_t nargs;
	af_kv *headers;
	size_t nheaders;
	char *body;
	size_t body_len;
} ts_arrival;

typedef struct testsrv testsrv;

testsrv *ts_start(const ts_reply *script, size_t n);
void ts_stop(testsrv *s);
uint16_t ts_port(testsrv *s);
/* "http://127.0.0.1:<port>" */
const char *ts_url(testsrv *s);
size_t ts_count(testsrv *s);
/* Valid until ts_stop. */
const ts_arrival *ts_get(testsrv *s, size_t i);
/* Highest number of requests being answered at the same time. */
int ts_max_in_flight(testsrv *s);
const char *ts_header(const ts_arrival *a, const char *name);
double ts_now(void);

/* A client for calls through the transport to the server: short retry
 * delays (5 to 20 ms) and one session. For cmocka: ts_client_setup puts a
 * ts_client in *state (log level error), ts_client_teardown frees it. */
typedef struct ts_client {
	af_client *client;
	af_session *session;
} ts_client;

int ts_client_setup(void **state);
int ts_client_teardown(void **state);

#endif
