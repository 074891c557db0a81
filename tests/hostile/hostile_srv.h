#ifndef AIFLEET_HOSTILE_SRV_H
#define AIFLEET_HOSTILE_SRV_H

/*
 * A lying Tair KVCache API (DescribeTairKVCacheInferInstances, RPC GET
 * /<region>/?RegionId=..&PageNumber=..&PageSize=..) on 127.0.0.1, on
 * libmicrohttpd with one thread per connection. It does not verify
 * signatures, but it checks the request's shape and counts the ones that
 * are not what the collector should send.
 *
 * Region HS_GOOD_REGION always answers honestly (HS_GOOD_ITEMS instances).
 * Region HS_BAD_REGION answers honestly (HS_BAD_ITEMS instances) while the
 * mode is HS_HONEST, and with the mode's lie otherwise.
 *
 * Bounds: at most HS_MAX_ARRIVALS requests are recorded (later ones get a
 * 503 and are counted as overflow); a dripped answer sends at most
 * HS_DRIP_MAX_BYTES bytes, one per HS_DRIP_INTERVAL_MS; nothing else waits.
 */

#include <stdbool.h>
#include <stddef.h>

#define HS_GOOD_REGION "cn-hangzhou"
#define HS_BAD_REGION  "cn-beijing"
#define HS_GOOD_ITEMS  30
#define HS_BAD_ITEMS   150
/* The item of the bad region that the item-level lies are put on (page 2). */
#define HS_EVIL_ITEM        120
#define HS_EVIL_ID          "tk-bj-0120"
#define HS_MAX_ARRIVALS     512
#define HS_DRIP_INTERVAL_MS 200
#define HS_DRIP_MAX_BYTES   60 /* 12 s per connection at most */
#define HS_HUGE_NAME_BYTES  ((size_t)20 * 1024 * 1024)
#define HS_DEEP_NESTING     100000
/* Every lying page carries a RequestId starting with this. */
#define HS_HOSTILE_RID "HOSTILE-"

typedef enum hs_mode {
	HS_HONEST,
	HS_API_ERROR,         /* 200 {"Code":"InternalError",...,"RequestId":"R-1"}, no list */
	HS_PAGE2_EMPTY,       /* page 2 (and later) empty, TotalCount 150 */
	HS_PAGE2_SHORT,       /* page 2 holds 20 items, page 3 none, TotalCount 150 */
	HS_TOTAL_SMALL,       /* TotalCount 10 while page 1 holds 100 items */
	HS_REPEAT_PAGE1,      /* every page is page 1, TotalCount 150 */
	HS_TOTAL_DRIFT,       /* TotalCount 150 on page 1, 170 on later pages */
	HS_CAPACITY_1E400,    /* "Capacity": 1e400 on HS_EVIL_ITEM */
	HS_NAME_20MB,         /* a 20 MB InstanceName on HS_EVIL_ITEM */
	HS_CAPACITY_DOT,      /* "Capacity": 256. on HS_EVIL_ITEM */
	HS_HTML_502,          /* text/html error page, HTTP 502 */
	HS_HTML_200,          /* text/html page, HTTP 200 */
	HS_REDIRECT,          /* 302 to /elsewhere/..., which answers an empty list */
	HS_GZIP_BOMB,         /* Content-Encoding: gzip, inflates to > 1 GiB */
	HS_SLOW_DRIP,         /* the honest page, one byte every 200 ms */
	HS_DEEP_NESTING_100K, /* Tags.Tag is [[[[...]]]] 100k deep on HS_EVIL_ITEM */
	HS_BAD_STRINGS,       /* \u0000 and invalid UTF-8 in InstanceName and a tag value */
	HS_TOTAL_NEGATIVE,    /* TotalCount -150 */
	HS_TOTAL_STRING,      /* TotalCount "150" */
	HS_TOTAL_FRACTION,    /* TotalCount 150.5 */
	HS_DROP_ONCE,         /* the first request (page 1): connection closed, no answer;
	                         every answer of the phase closes its connection
	                         (Connection: close), so the dropped request came on a
	                         fresh connection */
	HS_DROP_ONCE_REUSED,  /* the first page-2 request: connection closed, no answer;
	                         connections are kept alive, so it came on a connection
	                         that page 1 already used */
} hs_mode;

typedef struct hs_arrival {
	int phase; /* hs_set_phase() number when it arrived */
	char path[128];
	char region[32]; /* RegionId */
	int page;        /* PageNumber (0 if missing) */
	char nonce[80];  /* x-acs-signature-nonce */
	bool dropped;    /* answered by closing the connection */
	int client_port; /* the client's TCP port: which connection it came on */
} hs_arrival;

typedef struct hs_server hs_server;

/* `bomb`/`bomb_len`: the gzip body for HS_GZIP_BOMB (borrowed; must outlive
 * the server). Returns NULL if the daemon cannot start. */
hs_server *hs_start(const unsigned char *bomb, size_t bomb_len);
void hs_stop(hs_server *s);
int hs_port(const hs_server *s);
/* Starts phase `phase` (one aifleet run); `mode` applies to HS_BAD_REGION. */
void hs_set_phase(hs_server *s, int phase, hs_mode mode);
/* Copies up to `max` arrivals; returns how many were recorded in total. */
size_t hs_arrivals(hs_server *s, hs_arrival *out, size_t max);
/* Requests whose shape was wrong (path, RegionId, action, signature
 * headers) and requests beyond HS_MAX_ARRIVALS. */
int hs_bad_requests(hs_server *s);

#endif
