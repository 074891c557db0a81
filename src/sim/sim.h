#ifndef AIFLEET_SIM_INTERNAL_H
#define AIFLEET_SIM_INTERNAL_H

/*
 * aifleet-sim internals, shared by the files of src/sim/ and by the tests
 * in tests/sim/ (which run the server in-process). Not a public header: the
 * simulator is a tool, its contract is the HTTP surface in docs/simulator.md.
 *
 * Every fact about one simulated product is in its sim_product descriptor,
 * defined in that product's file (tair.c, hologres.c, tione.c) and listed
 * once in registry.c. The rest of the simulator (routing, accounts, limits,
 * faults, the fleet's scopes, the control API) reaches products only through
 * the registry, by index: nothing else names a product or counts them.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "aifleet/buf.h"
#include "aifleet/product.h"
#include "aifleet/sign.h"

struct MHD_Connection;
struct MHD_Daemon;

typedef struct af_sim af_sim;
typedef struct sim_req sim_req;
typedef struct sim_resp sim_resp;
typedef struct sim_scope sim_scope;
typedef struct sim_slot sim_slot;

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

/* ---- product descriptors ---- */

/* How a product's requests are signed and routed, and how it answers errors. */
typedef enum sim_style {
	/* Alibaba RPC: GET /?RegionId=.. with x-acs-action, ACS3-HMAC-SHA256;
	 * errors {"RequestId","HostId","Code","Message","Recommend"} */
	SIM_ACS3_RPC,
	/* Alibaba ROA: one path per action under the product's root,
	 * ACS3-HMAC-SHA256; the same errors with lowercase keys */
	SIM_ACS3_ROA,
	/* Tencent API 3.0: POST / with a JSON body and X-TC-Action,
	 * TC3-HMAC-SHA256; errors HTTP 200 {"Response":{"Error":{..},"RequestId"}} */
	SIM_TC3,
} sim_style;

/* One API action of a product. */
typedef struct sim_action {
	/* x-acs-action / X-TC-Action; also the name in /_sim/stats and in
	 * scripted faults ("action") */
	const char *name;
	const char *method; /* "GET", "POST" */
	/* SIM_ACS3_ROA: the path after the product's roa_root, where "{name}"
	 * is one non-empty segment, handed to the handler (sim_req.instance).
	 * Other styles: NULL (they are all on "/"). */
	const char *path;
	/* --fixtures: the API page's example, tests/fixtures/api/<fixture> */
	const char *fixture;
	/* Answers one authenticated request that no fault took (r->fault may
	 * hold a fault it renders). */
	int (*handle)(af_sim *s, sim_req *r, sim_resp *resp);
	/* Paged answers: the 1-based page the request asks for, matched by the
	 * "page" of scripted faults. NULL: not paged (the page faults that need
	 * pages or a TotalCount do not apply). */
	int (*page)(const sim_req *r);
	/* Answers a list (short_page and empty_page cut it even unpaged). */
	bool list;
	/* The members the data faults spoil in the answer's first item, as a
	 * path "a/b/c" (an array on the way stands for its first element):
	 * a number the normalizer reads (out_of_range) and a name it stores
	 * (oversized). */
	const char *huge_number;
	const char *long_name;
} sim_action;

#define SIM_ACTIONS_MAX 4 /* per product */

typedef struct sim_product {
	/* The aifleet product this simulates (src/collect/<product>.c): its
	 * name (in /_sim/ requests, scripted faults and [limits NAME]), title
	 * and provider (which accounts see it). */
	const af_product *product;

	sim_style style;
	const char *version;     /* x-acs-version / X-TC-Version */
	const char *tc3_service; /* SIM_TC3: the credential-scope service */
	/* SIM_ACS3_ROA: the path every action starts with, after an optional
	 * one-segment region prefix ("/cn-hangzhou/api/v1/..."), and the
	 * Host prefix that names the region (<host><region>.aliyuncs.com). */
	const char *roa_root;
	const char *roa_host;

	const sim_action *actions;
	size_t nactions;

	/* The prefix of the id that identifies an item (the decodable one:
	 * sim_fleet_lookup, InstanceIds, GetInstanceModel), "tk-". */
	const char *id_prefix;
	/* The id the control API reports for an item (/_sim/fleet "id",
	 * /_sim/mutate's ids) when it is not the decodable one; NULL: it is. */
	void (*public_id)(char *out, size_t n, const af_sim *s, const sim_scope *sc,
	                  uint32_t serial);

	/* The page size the API answers with when none is asked for; 0 for an
	 * unpaged product. The most it accepts is the product's
	 * max_page_size (aifleet/product.h). */
	int default_page_size;
	/* Requests per second per account by default (the API's documented
	 * limit); 0: unlimited. [limits NAME] rate_limit overrides it. */
	int rate_limit;

	/* One item as its list shows it, generated from (seed, scope, slot). */
	json_object *(*render)(const af_sim *s, const sim_scope *sc, const sim_slot *sl);
	/* The ground truth /_sim/fleet adds to an item after product, account,
	 * region and version: at least "id", then what tests check. */
	void (*truth)(json_object *o, const af_sim *s, const sim_scope *sc, const sim_slot *sl);
} sim_product;

/* The most products the simulator knows: a scope key has 4 bits for one. */
#define SIM_PRODUCTS_MAX 16

/* registry.c: the simulated products, in a fixed order (the fleet's scopes
 * and so the generated ids depend on a product's index). */
size_t sim_product_count(void);
const sim_product *sim_product_at(size_t index); /* NULL past the end */
int sim_product_index(const char *name);         /* -1 when unknown */
const char *sim_product_name(int index);         /* "?" when unknown */
/* The provider as the products spell it ("alibaba", "tencent"; "aliyun"
 * for alibaba), or NULL when no product has it. */
const char *sim_provider_find(const char *name);

/* ---- accounts, fleet, faults ---- */

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
	const char *provider; /* as the products spell it: sim_provider_find() */
	char *key_id;
	char *secret;
	char *token; /* when set, requests must carry this security token */
	char *regions[SIM_MAX_REGIONS];
	int nregions;
	int items; /* per product per region; 0 = the global --items */
	/* by product index */
	sim_limits limits[SIM_PRODUCTS_MAX];
	/* rate limiter: times (ms) of the last rate_limit accepted requests */
	int64_t *window[SIM_PRODUCTS_MAX];
	int wpos[SIM_PRODUCTS_MAX];
	uint64_t fault_counter[SIM_PRODUCTS_MAX];
} sim_account;

struct sim_slot {
	uint32_t serial;  /* identity: the id is a bijection of (scope, serial) */
	uint32_t version; /* bumped by every update; mutable fields hash it */
};

struct sim_scope {
	int account;
	int region;
	int product; /* registry index */
	uint32_t key;
	sim_slot *slots; /* sorted by serial */
	size_t n, cap;
	uint32_t next_serial;
};

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
	/* issued credentials last at most this many seconds (0: as asked, up to
	 * the vendors' 43200); [simulator] credential_ttl when 0 here */
	int credential_ttl;
	/* the ECS metadata service refuses calls without a session token
	 * (IMDSv2 only); also [simulator] imdsv2_required */
	bool imdsv2_required;
} sim_options;

typedef struct sim_fault {
	int product; /* registry index, -1 = any */
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
	uint64_t by_action[SIM_PRODUCTS_MAX][SIM_ACTIONS_MAX];
	sim_counter *by_scope; /* "action account region" */
	size_t nby_scope;
	uint64_t rejected_signatures;
	sim_counter *auth_errors; /* by error code */
	size_t nauth_errors;
	uint64_t throttled;
	uint64_t faults[SIM_F_NKINDS];
	uint64_t control;
	sim_counter *by_service; /* "service action", e.g. "alibaba-sts AssumeRole" */
	size_t nby_service;
	int in_flight, in_flight_max;
} sim_stats;

typedef struct sim_nonce {
	char *nonce;
	int64_t at;
} sim_nonce;

/* ---- roles and the credentials issued for them (creds.c) ---- */

/* A [role NAME] section: a role whose temporary credentials read the APIs
 * of one account, and who may have them. */
typedef struct sim_role {
	char *name; /* the section's NAME: the role name the metadata services list */
	char *arn;  /* acs:ram::<uid>:role/<name>, qcs::cam::uin/<uin>:roleName/<name> */
	char *account_label;
	int account;         /* index of that account (resolved once the file is read) */
	char *trust;         /* comma list of the account labels that may AssumeRole it */
	char *external_id;   /* when set, AssumeRole must pass this ExternalId */
	char *oidc_provider; /* Alibaba OIDCProviderArn / Tencent ProviderId */
	char *oidc_token;    /* the one token AssumeRoleWithOIDC / ..WebIdentity accepts */
	bool instance;       /* the metadata service hands it out */
} sim_role;

/* One set of temporary credentials the simulator handed out. */
typedef struct sim_issued {
	const char *provider; /* NULL: a free entry */
	char key_id[40];      /* STS.<20> / AKID<32> */
	char secret[48];
	char token[160];
	int account; /* whose APIs they read */
	int role;
	int64_t expires_ms; /* wall clock, ms since the epoch */
} sim_issued;

/* The table is a ring: the oldest entry makes room for a new one. */
#define SIM_ISSUED_MAX   4096
#define SIM_MD_TOKENS    256 /* ECS metadata session tokens kept */
#define SIM_DURATION_MIN 900
#define SIM_DURATION_MAX 43200
#define SIM_DURATION_DEF 3600

typedef struct sim_md_token {
	char token[64];
	int64_t expires_ms;
} sim_md_token;

struct af_sim {
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
	sim_role *roles;
	size_t nroles;
	sim_issued *issued; /* SIM_ISSUED_MAX entries, allocated on first use */
	size_t issued_next;
	sim_md_token md_tokens[SIM_MD_TOKENS];
	size_t md_next;
	pthread_mutex_t lock;
	volatile int stopping;
	struct MHD_Daemon *daemon;
	uint16_t port;
};

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
struct sim_req {
	struct MHD_Connection *conn;
	char *raw_uri; /* exactly as in the request line */
	char *path;    /* raw (undecoded) path */
	char *query;   /* raw query string, "" when none */
	af_kv *params; /* decoded query parameters, owned */
	size_t nparams;
	const char *method;
	af_buf body;
	json_object *json; /* SIM_TC3: the parsed body, owned */
	char request_id[37];
	/* set by the router */
	int product;              /* registry index; -1 until known */
	const sim_action *action; /* NULL until known */
	int account;
	char region[64];
	int page;                    /* for scripted faults; -1 = n/a */
	const char *instance;        /* the "{name}" segment of a ROA path */
	int fault;                   /* a fault the handler renders, SIM_F_NONE if none */
	int64_t fault_arg;           /* its sim_fault.arg */
	af_kv hdrs[SIM_MAX_HEADERS]; /* borrowed from MHD, filled on demand */
	size_t nhdrs;
};

struct sim_resp {
	int status;
	af_buf body;
	const char *content_type; /* NULL: application/json;charset=utf-8 */
	char retry_after[24];     /* x-acs-retry-after when non-empty */
	bool drop;                /* close the connection without answering */
};

/* server.c */
int af_sim_start(af_sim **out, const sim_options *opt);
uint16_t af_sim_port(const af_sim *s);
void af_sim_stop(af_sim *s);
void sim_options_defaults(sim_options *o);
const char *sim_req_header(const sim_req *r, const char *name);
const char *sim_req_param(const sim_req *r, const char *name);
/* Splits r->raw_uri into raw path, raw query and decoded parameters. */
int sim_req_parse_uri(sim_req *r);
/* A percent-decoded copy of s[0..len), or NULL. */
char *sim_unescape(const char *s, size_t len);

/* route.c: which product and action a request is for, the checks every
 * product of a style shares, then faults and the action's handler. */
void sim_route_acs3(af_sim *s, sim_req *r, sim_resp *resp);
void sim_route_tc3(af_sim *s, sim_req *r, sim_resp *resp);

/* ---- services: what the simulator answers besides the products ----
 *
 * STS and the instance metadata services hand out the credentials the
 * products' APIs accept; they are not aifleet products (no fleet, no
 * faults, no limits), so they are not in the product registry. Each is a
 * sim_service, listed once in services.c; the server asks each whether a
 * request is its own before it routes to the products. */
typedef struct sim_service {
	const char *name; /* in /_sim/stats by_service: "<name> <action>" */
	/* answers with x-acs-request-id (Alibaba) */
	bool acs_request_id;
	bool (*claims)(const sim_req *r);
	void (*handle)(af_sim *s, sim_req *r, sim_resp *resp);
} sim_service;

/* services.c: the service that claims r, or NULL (then it is a product's) */
const sim_service *sim_service_find(const sim_req *r);
/* counts one call of a service's action in /_sim/stats by_service */
void sim_service_count(af_sim *s, const char *service, const char *action);

/* creds.c */
int sim_role_by_arn(const af_sim *s, const char *provider, const char *arn);
/* the role's provider: its account's */
const char *sim_role_provider(const af_sim *s, const sim_role *role);
/* true when the account (label) is in the role's trust list */
bool sim_role_trusts(const sim_role *role, const char *label);
/* Issues credentials of a role for `duration` seconds (capped by
 * --credential-ttl) into *out; 0, or -1 (out of memory). */
int sim_issue(af_sim *s, sim_issued *out, int role, int duration);
/* The issued credentials of that key id, copied into *out (wipe it with
 * sim_issued_wipe): 0, or -1 when none were issued (or they were dropped). */
int sim_issued_find(af_sim *s, sim_issued *out, const char *provider, const char *key_id);
void sim_issued_wipe(sim_issued *c);
void sim_issued_free(af_sim *s);
int64_t sim_wall_ms(void);
/* n - 1 random letters and digits, NUL-terminated */
void sim_random_alnum(char *out, size_t n);
/* ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ", of a wall-clock time in ms */
void sim_iso_time(char out[24], int64_t ms);

/* sts.c, metadata.c: the services */
extern const sim_service sim_service_alibaba_sts;
extern const sim_service sim_service_tencent_sts;
extern const sim_service sim_service_ecs_metadata;
extern const sim_service sim_service_cvm_metadata;

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
/* An error in the style of r's product: `status` for Alibaba (Tencent
 * answers errors with HTTP 200). */
int sim_error(sim_resp *resp, const sim_req *r, int status, const char *code, const char *msg);
const char *sim_fault_name(int k);
int sim_fault_parse(const char *s);
/* strtol of a whole decimal string: 0, or -1 when it is not one. */
int sim_parse_long(long *out, const char *s);

/* config.c */
int sim_config_load(af_sim *s, const char *path);
void sim_config_free(af_sim *s);
int sim_account_by_key(const af_sim *s, const char *provider, const char *key_id);
int sim_account_by_label(const af_sim *s, const char *label);
int sim_account_region(const sim_account *a, const char *region);

/* fleet.c: scopes of {serial, version} slots and the ids derived from them */
int sim_fleet_init(af_sim *s);
void sim_fleet_free(af_sim *s);
sim_scope *sim_fleet_scope(af_sim *s, int account, const char *region, int product);
/* The live slot of a decodable id (the product's id_prefix), or NULL. */
const sim_slot *sim_fleet_lookup(const af_sim *s, const sim_scope *sc, const char *id);
/* The 64-bit value an id encodes: a bijection of (seed, scope, serial). */
uint64_t sim_fleet_idval(const af_sim *s, const sim_scope *sc, uint32_t serial);
/* The decodable id: the product's id_prefix and the value in base 36. */
void sim_fleet_id(char *out, size_t n, const af_sim *s, const sim_scope *sc, uint32_t serial);
/* The generator state of an item's stable fields; its mutable ones use
 * sim_hash(state, version + 1). */
uint64_t sim_item_state(const af_sim *s, const sim_scope *sc, const sim_slot *sl);
/* The region name of a scope. */
const char *sim_scope_region(const af_sim *s, const sim_scope *sc);
/* Renders slots [start, start + count) of a scope (clipped) into list with
 * the product's render. */
void sim_fleet_render(json_object *list, const af_sim *s, const sim_scope *sc, size_t start,
                      size_t count);
int sim_fleet_mutate(af_sim *s, json_object **out, json_object *req);
int sim_fleet_dump(af_sim *s, json_object **out, const char *product, const char *account,
                   const char *region);

/* Generator helpers shared by the product files. */
#define SIM_T0 1704067200 /* 2024-01-01T00:00:00Z: the fleet's epoch */
extern const char *const sim_models[];
extern const size_t sim_nmodels;
const char *sim_pick(uint64_t *st, const char *const *arr, size_t n);
#define SIM_PICK(st, arr) sim_pick(st, arr, sizeof(arr) / sizeof(arr[0]))
/* a macro so that strftime sees literal formats (-Wformat-nonliteral) */
#define sim_fmt_time(out, n, fmt, t)                                                               \
	do {                                                                                       \
		time_t tt_ = (time_t)(t);                                                          \
		struct tm tm_;                                                                     \
		gmtime_r(&tt_, &tm_);                                                              \
		strftime(out, n, fmt, &tm_);                                                       \
	} while (0)
static inline void sim_set_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}
static inline void sim_set_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

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
/* The credential-scope service of a TC3 Authorization header. */
int sim_auth_tc3_service(char *out, size_t n, const char *auth);
/* Full verification for r's product (its provider's accounts, its style),
 * incl. tokens and nonces: 0 = verified (r->account set); 1 = rejected
 * (resp filled) */
int sim_auth_acs3(af_sim *s, sim_req *r, sim_resp *resp);
int sim_auth_tc3(af_sim *s, sim_req *r, sim_resp *resp);
/* The same for a service's request: the provider's accounts and issued
 * credentials; ACS3 RPC errors, or TC3 with that credential-scope service. */
int sim_auth_acs3_as(af_sim *s, sim_req *r, sim_resp *resp, const char *provider);
int sim_auth_tc3_as(af_sim *s, sim_req *r, sim_resp *resp, const char *provider,
                    const char *service);
void sim_nonces_free(af_sim *s);

/* faults.c */
/* For r's product and action: 0 = go on; 1 = resp filled by a fault or
 * limit; kind of a post-render fault in *post */
int sim_faults_apply(af_sim *s, sim_req *r, sim_resp *resp, int *post);
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
