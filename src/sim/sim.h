#ifndef AIFLEET_SIM_INTERNAL_H
#define AIFLEET_SIM_INTERNAL_H

/*
 * aifleet-sim internals, shared by the files of src/sim/ and by the tests
 * in tests/sim/ (which run the server in-process). Not a public header: the
 * simulator is a tool, its contract is the HTTP surface in docs/simulator.md.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "aifleet/buf.h"
#include "aifleet/sign.h"

struct MHD_Connection;
struct MHD_Daemon;

typedef enum sim_product {
	SIM_TAIR = 0,
	SIM_HOLO = 1,
	SIM_TIONE = 2,
	SIM_NPRODUCTS = 3
} sim_product;
typedef enum sim_provider { SIM_ALIBABA = 0, SIM_TENCENT = 1 } sim_provider;

typedef enum sim_fault_kind {
	SIM_F_NONE = 0,
	SIM_F_HTTP500,
	SIM_F_THROTTLE,
	SIM_F_DROP,
	SIM_F_TIMEOUT,
	SIM_F_MALFORMED,
	SIM_F_TRUNCATED,
	SIM_F_AUTH,
	/* Answers that parse and look fine but are wrong in the data. error_body
	 * is answered by sim_faults_apply; the others are rendered by the API
	 * handlers (sim_fault_page, sim_fault_item). */
	SIM_F_ERROR_BODY,
	SIM_F_SHORT_PAGE,
	SIM_F_EMPTY_PAGE,
	SIM_F_LYING_TOTAL,
	SIM_F_REPEAT_PAGE,
	SIM_F_OUT_OF_RANGE,
	SIM_F_OVERSIZED,
	SIM_F_NKINDS
} sim_fault_kind;

/* oversized: the default length of the long name (under the client's 32 MiB
 * default response cap, with the rest of a page) and the most one may ask */
#define SIM_OVERSIZED_DEFAULT   ((int64_t)20 * 1024 * 1024)
#define SIM_OVERSIZED_MAX       ((int64_t)256 * 1024 * 1024)
#define SIM_LYING_TOTAL_DEFAULT 10

enum { SIM_ACT_TAIR = 0, SIM_ACT_HOLO_LIST, SIM_ACT_HOLO_GET, SIM_ACT_TIONE, SIM_NACTIONS };

/* Faults and limits of one product for one account. */
typedef struct sim_limits {
	int latency_ms;
	double rate[SIM_F_NKINDS]; /* probability per request of each fault kind */
	int rate_limit;            /* requests per second, 0 = unlimited */
	int hang_ms;               /* how long a "timeout" fault hangs */
} sim_limits;

#define SIM_MAX_REGIONS 16

typedef struct sim_account {
	char *label;
	sim_provider provider;
	char *key_id;
	char *secret;
	char *token; /* when set, requests must carry this security token */
	char *regions[SIM_MAX_REGIONS];
	int nregions;
	int items; /* per product per region; 0 = the global --items */
	sim_limits limits[SIM_NPRODUCTS];
	/* rate limiter: times (ms) of the last rate_limit accepted requests */
	int64_t *window[SIM_NPRODUCTS];
	int wpos[SIM_NPRODUCTS];
	uint64_t fault_counter[SIM_NPRODUCTS];
} sim_account;

typedef struct sim_slot {
	uint32_t serial;  /* identity: the id is a bijection of (scope, serial) */
	uint32_t version; /* bumped by every update; mutable fields hash it */
} sim_slot;

typedef struct sim_scope {
	int account;
	int region;
	sim_product product;
	uint32_t key;
	sim_slot *slots; /* sorted by serial */
	size_t n, cap;
	uint32_t next_serial;
} sim_scope;

typedef struct sim_options {
	char *listen_host; /* default 127.0.0.1 */
	int port;          /* 0 = any free port */
	char *port_file;
	char *config_file;
	uint64_t seed;
	int items;
	bool fixtures;
	int latency_ms;
	int threads; /* 0 = one thread per connection */
	bool verbose;
} sim_options;

typedef struct sim_fault {
	int product; /* -1 = any */
	char *account;
	char *region;
	char *action;
	int page; /* -1 = any */
	char *instance;
	sim_fault_kind kind;
	int times; /* remaining; -1 = forever */
	int hang_ms;
	int64_t arg; /* short_page "items", lying_total "total", oversized "bytes"; -1 = default */
} sim_fault;

typedef struct sim_counter {
	char *key;
	uint64_t n;
} sim_counter;

typedef struct sim_stats {
	uint64_t requests;
	uint64_t by_action[SIM_NACTIONS];
	sim_counter *by_scope; /* "action account region" */
	size_t nby_scope;
	uint64_t rejected_signatures;
	sim_counter *auth_errors; /* by error code */
	size_t nauth_errors;
	uint64_t throttled;
	uint64_t faults[SIM_F_NKINDS];
	uint64_t control;
	int in_flight, in_flight_max;
} sim_stats;

typedef struct sim_nonce {
	char *nonce;
	int64_t at;
} sim_nonce;

typedef struct af_sim {
	sim_options opt;
	sim_account *accounts;
	size_t naccounts;
	sim_scope *scopes;
	size_t nscopes;
	sim_fault *faults;
	size_t nfaults;
	sim_stats stats;
	sim_nonce *nonces; /* open addressing, power-of-two size */
	size_t nonce_cap, nonce_len;
	pthread_mutex_t lock;
	volatile int stopping;
	struct MHD_Daemon *daemon;
	uint16_t port;
} af_sim;

#define SIM_MAX_HEADERS 128

/* What arrived on the wire, as the verifiers see it. */
typedef struct sim_wire {
	const char *method;
	const char *path;    /* raw, as in the request line */
	const af_kv *params; /* the raw query, percent-decoded */
	size_t nparams;
	const af_kv *headers; /* every received header */
	size_t nheaders;
	const char *body;
	size_t body_len;
} sim_wire;

typedef struct sim_verdict {
	int status; /* HTTP status for Alibaba; 200 for Tencent */
	const char *code;
	const char *message;
} sim_verdict;

/* One HTTP request as it arrived on the wire. */
typedef struct sim_req {
	struct MHD_Connection *conn;
	char *raw_uri; /* exactly as in the request line */
	char *path;    /* raw (undecoded) path */
	char *query;   /* raw query string, "" when none */
	af_kv *params; /* decoded query parameters, owned */
	size_t nparams;
	const char *method;
	af_buf body;
	char request_id[37];
	/* set by the dispatcher */
	int account;
	char region[64];
	int action;
	int page;                    /* for scripted faults; -1 = n/a */
	const char *instance;        /* Hologres Get: holoInstanceId */
	int fault;                   /* a fault the handler renders, SIM_F_NONE if none */
	int64_t fault_arg;           /* its sim_fault.arg */
	af_kv hdrs[SIM_MAX_HEADERS]; /* borrowed from MHD, filled on demand */
	size_t nhdrs;
} sim_req;

typedef struct sim_resp {
	int status;
	af_buf body;
	char retry_after[24]; /* x-acs-retry-after when non-empty */
	bool drop;            /* close the connection without answering */
} sim_resp;

/* server.c */
int af_sim_start(af_sim **out, const sim_options *opt);
uint16_t af_sim_port(const af_sim *s);
void af_sim_stop(af_sim *s);
void sim_options_defaults(sim_options *o);
const char *sim_req_header(const sim_req *r, const char *name);
const char *sim_req_param(const sim_req *r, const char *name);
/* Splits r->raw_uri into raw path, raw query and decoded parameters. */
int sim_req_parse_uri(sim_req *r);

/* util.c */
uint64_t sim_mix64(uint64_t x);
uint64_t sim_unmix64(uint64_t x);
uint64_t sim_hash(uint64_t a, uint64_t b);
uint64_t sim_hash_str(const char *s);
uint64_t sim_rng(uint64_t *state);
void sim_base36(char out[14], uint64_t v);
int sim_unbase36(uint64_t *out, const char *s);
void sim_request_id(char out[37], bool upper);
int64_t sim_now_ms(void);
void sim_sleep_ms(af_sim *s, int ms);
int sim_json_out(sim_resp *resp, int status, json_object *o);
int sim_ali_error(sim_resp *resp, const sim_req *r, int status, bool roa, const char *code,
                  const char *msg);
int sim_tc_error(sim_resp *resp, const sim_req *r, const char *code, const char *msg);
const char *sim_product_name(int p);
int sim_product_parse(const char *s);
const char *sim_fault_name(int k);
int sim_fault_parse(const char *s);
const char *sim_action_name(int a);

/* config.c */
int sim_config_load(af_sim *s, const char *path);
void sim_config_free(af_sim *s);
int sim_account_by_key(const af_sim *s, sim_provider p, const char *key_id);
int sim_account_by_label(const af_sim *s, const char *label);
int sim_account_region(const sim_account *a, const char *region);

/* fleet.c */
int sim_fleet_init(af_sim *s);
void sim_fleet_free(af_sim *s);
sim_scope *sim_fleet_scope(af_sim *s, int account, const char *region, sim_product p);
/* The live slot of an id (tk-/ms-/hgpostcn-cn-), or NULL. */
const sim_slot *sim_fleet_lookup(const af_sim *s, const sim_scope *sc, const char *id);
int sim_fleet_mutate(af_sim *s, json_object **out, json_object *req);
int sim_fleet_dump(af_sim *s, json_object **out, const char *product, const char *account,
                   const char *region);

/* Generated items: compact, rendered on demand. */
typedef struct sim_tair {
	char id[32], name[48], status[16], klass[32], model[40], charge[16], zone[40], vnode[24];
	char vpc[32], vsw[32], ip[20], rg[32], ack[40], create[24], end[24], destroy[24];
	int services, cu, vnodes, fixed, elastic;
	int64_t capacity;
	int ntags;
	struct {
		const char *key;
		char value[24];
		bool numeric;
	} tags[3];
} sim_tair;
void sim_tair_gen(sim_tair *t, const af_sim *s, const sim_scope *sc, const sim_slot *sl);
json_object *sim_tair_json(const sim_tair *t, const char *region);

typedef struct sim_tione_svc {
	char id[48], status[16], charge[24], itype[40], gpu_type[8], model[40], model_version[48];
	char model_id[32], cluster[24];
	int replicas, ready, cpu, mem, gpu, weight;
	bool model_null, total_present;
} sim_tione_svc;
typedef struct sim_tione {
	char id[32], name[48], status[16], created_by[16], uin[16], create[24], update[24];
	int nsvc, tags_mode; /* 0 null, 1 [], 2 one tag */
	sim_tione_svc svc[3];
} sim_tione;
void sim_tione_gen(sim_tione *g, const af_sim *s, const sim_scope *sc, const sim_slot *sl);
json_object *sim_tione_json(const sim_tione *g, const char *region);

typedef struct sim_holo_svc {
	char model_name[40], model_type[32], provider[16], status[16], task[16], version[12];
	char message[16], api_key[40];
	int cpu, gpu, gpu_mem, mem, count;
} sim_holo_svc;
typedef struct sim_holo {
	char ai_id[48], holo_id[32], holo_name[48], spec[32], rtype[12], status[20], charge[12];
	char commodity[40], expire[48];
	int cpu, cpu_used, gpu, gpu_used, gpu_mem, gpu_mem_used, mem, mem_used, nodes;
	bool auto_renew;
	int nsvc;
	sim_holo_svc svc[3];
} sim_holo;
void sim_holo_gen(sim_holo *h, const af_sim *s, const sim_scope *sc, const sim_slot *sl);
json_object *sim_holo_json(const sim_holo *h, const char *region, bool detail);

/* handlers */
int sim_tair_handle(af_sim *s, sim_req *r, sim_resp *resp);
int sim_holo_handle(af_sim *s, sim_req *r, sim_resp *resp);
int sim_tione_handle(af_sim *s, sim_req *r, sim_resp *resp, json_object *body);
int sim_control_handle(af_sim *s, sim_req *r, sim_resp *resp);

/* auth.c: the signature checks alone, pure functions of what arrived, the
 * secret and the clock: 0 = verified, -1 = rejected with *v filled. */
int sim_acs3_check(sim_verdict *v, const sim_wire *w, const char *key_id, const char *secret,
                   int64_t now);
int sim_tc3_check(sim_verdict *v, const sim_wire *w, const char *secret_id, const char *secret,
                  const char *service, int64_t now);
const char *sim_wire_header(const sim_wire *w, const char *name);
/* The AK / SecretId of an ACS3 or TC3 Authorization header. */
int sim_auth_credential(char *out, size_t n, const char *auth);
/* Full verification incl. accounts, tokens and nonces:
 * 0 = verified (r->account set); 1 = rejected (resp filled) */
int sim_auth_acs3(af_sim *s, sim_req *r, sim_resp *resp, bool roa);
int sim_auth_tc3(af_sim *s, sim_req *r, sim_resp *resp);
void sim_nonces_free(af_sim *s);

/* faults.c */
/* 0 = go on; 1 = resp filled by a fault or limit; kind of a post-render fault in *post */
int sim_faults_apply(af_sim *s, sim_req *r, sim_resp *resp, sim_product p, int *post);
void sim_faults_post(sim_resp *resp, int kind);
/* Render-time faults (r->fault), for the handlers of paged lists: where a
 * page starts (repeat_page), then, on the rendered page, how many items stay
 * (short_page, empty_page), the first item's fields (out_of_range, oversized)
 * and the TotalCount reported (lying_total). */
size_t sim_fault_start(const sim_req *r, size_t start);
void sim_fault_page(const sim_req *r, json_object *list, int64_t *total);
/* How many of n items a short_page or empty_page fault leaves. */
size_t sim_fault_keep(const sim_req *r, size_t n);
/* out_of_range and oversized on one item of r's action. */
void sim_fault_item(const sim_req *r, json_object *item);
int sim_faults_add(af_sim *s, json_object *arr);
void sim_faults_clear(af_sim *s);
json_object *sim_faults_json(af_sim *s);
void sim_stats_count(sim_counter **arr, size_t *n, const char *key);
json_object *sim_stats_json(af_sim *s);
void sim_stats_reset(af_sim *s);

/* embedded fixtures (generated) */
typedef struct sim_fixture {
	const char *name;
	const char *data;
	size_t len;
} sim_fixture;
const sim_fixture *sim_fixture_get(const char *name);

#endif
