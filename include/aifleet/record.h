#ifndef AIFLEET_RECORD_H
#define AIFLEET_RECORD_H

/*
 * Normalized records: the contract between the normalizers (which produce
 * them from provider pages) and the loader (which stores them).
 *
 * Every string is borrowed: it is valid only for the duration of the call
 * that hands the record over (normalizers point into the parsed page; the
 * loader copies what it keeps). NULL means "unknown / not reported" and is
 * stored as SQL NULL.
 *
 * Entities and their natural keys (provider, account, product, native_id):
 *   instance  anything that holds capacity: a Tair KVCache instance, a TI-ONE
 *             service group, a Hologres AI node.
 *   service   a model service on an instance: a TI-ONE service, a Hologres
 *             model service, the model of a KVCache instance.
 *   resource  one quantity (cpu_cores, memory_gib, gpu_count, ...) of one
 *             instance or service; key = owner's key + kind.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Provider names as stored in the database. A product's name is its
 * descriptor's (aifleet/product.h). */
#define AF_PROVIDER_ALIBABA "alibaba"
#define AF_PROVIDER_TENCENT "tencent"

/* Microseconds since the Unix epoch, UTC; AF_TIME_NULL when unknown. */
typedef int64_t af_time;
#define AF_TIME_NULL INT64_MIN

/* One unit of collection: account x region x product. */
typedef struct af_scope {
	const char *provider; /* AF_PROVIDER_* */
	const char *account;  /* account label from the configuration */
	const char *region;   /* e.g. cn-beijing, ap-guangzhou */
	const char *product;  /* a registered product's name (aifleet/product.h) */
} af_scope;

/* How one scope's collection ended, as the collector judged it (the
 * loader may still demote it: aifleet/store.h). */
typedef enum af_scope_state {
	AF_SCOPE_COMPLETE = 0, /* every page fetched and every item normalized */
	AF_SCOPE_PARTIAL = 1,  /* some data arrived, not all: nothing tombstoned */
	AF_SCOPE_FAILED = 2,   /* nothing usable arrived: nothing tombstoned */
} af_scope_state;

typedef struct af_scope_report {
	af_scope scope;
	af_scope_state state;
	const char *error;     /* first error, or NULL; never holds a secret */
	uint64_t pages;
	uint64_t items;        /* items fetched (after de-duplication) */
	uint64_t duplicates;   /* items seen twice while paging */
	uint64_t rejected;     /* items the normalizer rejected */
	uint64_t requests;
	uint64_t retries;
	uint64_t throttled;
	double seconds;
} af_scope_report;

/* "provider/account/region/product", as messages, --allow-deletes and
 * 'aifleet status' name a scope; cut to fit `n`. Returns `out`. */
char *af_scope_name(char *out, size_t n, const af_scope *scope);

/* A scope's stable 64-bit hash: the same for the same four fields on every
 * machine and in every version (the first 8 bytes of a SHA-256 of them,
 * big-endian). --shard K/N takes the scopes whose hash % N is K; the run's
 * advisory lock on a scope is the hash as a bigint. 0 only when out of
 * memory. */
uint64_t af_scope_hash(const af_scope *scope);

/* An optional number: `set` is false when the provider did not report it. */
typedef struct af_num {
	double value;
	bool set;
} af_num;

typedef struct af_instance {
	const char *native_id;       /* required: tk-..., ms-..., aiInstanceId */
	const char *name;
	const char *status;          /* normalized: see docs/mapping.md */
	const char *status_raw;      /* exactly as the provider said */
	const char *charge_type;     /* normalized: prepaid | postpaid | hybrid | unknown */
	const char *charge_type_raw;
	const char *zone;
	const char *spec;            /* instance class / type / aiSpec */
	const char *model;           /* model served, when one per instance */
	af_time created_at;
	af_time updated_at;          /* provider's last update, if reported */
	af_time expires_at;          /* end of a subscription, if any */
	const char *tags_json;       /* JSON object of string values, or NULL */
	const char *raw_json;        /* provider payload minus secrets, JSON */
} af_instance;

typedef struct af_service {
	const char *instance_id;     /* native id of the owning instance (required) */
	const char *native_id;       /* required, unique within the product */
	const char *name;
	const char *model;
	const char *model_version;
	const char *status;
	const char *status_raw;
	const char *charge_type;
	const char *charge_type_raw;
	af_num replicas;
	af_time created_at;
	af_time updated_at;
	const char *tags_json;
	const char *raw_json;
} af_service;

typedef enum af_owner_kind {
	AF_OWNER_INSTANCE = 0,
	AF_OWNER_SERVICE = 1,
} af_owner_kind;

typedef struct af_resource {
	af_owner_kind owner_kind;
	const char *owner_id;        /* native id of the instance or service (required) */
	const char *kind;            /* cpu_cores, memory_gib, gpu_count, gpu_memory_gib,
	                                kv_capacity, compute_units, vnodes, ... (required) */
	af_num capacity;             /* total (for services: all replicas together) */
	af_num used;                 /* where the provider reports usage */
	af_num per_replica;          /* where the provider reports per-replica sizes */
	const char *unit;            /* cores, GiB, cards, compute_units, ... (required) */
	const char *gpu_model;       /* A10, T4, ... for GPU kinds */
	const char *basis;           /* how capacity was derived: reported,
	                                per_replica_x_replicas, resource_total */
} af_resource;

/*
 * Where normalized records go. Each callback returns 0 or a negative
 * af_error_class; a failure stops the producer.
 */
typedef struct af_record_sink {
	int (*instance)(void *ctx, const af_scope *scope, const af_instance *inst);
	int (*service)(void *ctx, const af_scope *scope, const af_service *svc);
	int (*resource)(void *ctx, const af_scope *scope, const af_resource *res);
	void *ctx;
} af_record_sink;

#endif
