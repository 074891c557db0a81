/*
 * fleetgen: a deterministic synthetic fleet for the loader benchmarks
 * (tests/bench/loader-bench.sh, tests/bench/read-bench.sh).
 *
 *   fleetgen --dsn DSN [--instances N] [--seed S] [--migrate] [--dry-run]
 *            [--change PCT] [--delete PCT] [--new PCT] [--scopes K]
 *            [--run R] [--no-direct]
 *   fleetgen --generate-only [--instances N] [the same mutation options]
 *   fleetgen --hash-only [--instances N] [the same mutation options]
 *
 * Each instance has 2 services, 4 resources per service and 2 of its own,
 * 13 rows in all; so 100k instances = 100k + 200k + 1M rows. Instance i is
 * in scope i % 12 (12 scopes: 3 products x 4 regions). It goes to the
 * database through the loader's public API only (af_loader_begin, its sink,
 * af_loader_scope_done for every scope as complete, af_loader_commit).
 *
 * A mutation: an instance is deleted or renamed when a hash of (seed, index)
 * falls in the given percentage, and PCT% new ones are appended.
 * --scopes K restricts all of it to the instances of the first K of the 12
 * scopes (the percentages are then of those instances, the new instances go
 * to those scopes, the other scopes are emitted exactly as before).
 *
 * --run R (R >= 1) is one run of a history: run r of the sequence renames
 * --change PCT% of the instances, chosen by a hash of (seed + r, index), and
 * an instance's name records the last run that renamed it. So run R emits
 * the fleet as it is after runs 1..R, and against the database as run R-1
 * left it, exactly the instances chosen at R change (no instance changes
 * back), whatever seed the runs before used for their own choice. --run
 * takes --change only (no --delete or --new). Without --run the fleet is the
 * same as --run 0: nothing renamed.
 *
 * The expected effect (derived from this selection, not from the loader) is
 * printed as expect_* so that the benchmarks can compare it with what the
 * loader reports (got_*) and with what the database holds.
 *
 * --generate-only builds the same records but hands them to a sink that
 * does nothing (no database, no loader): its seconds are the generator's
 * own share of a load, to tell apart from the loader's.
 *
 * --hash-only also does to every record what the loader must do before it
 * can know that a scope is unchanged -- check it (af_record_problem) and
 * hash its content (af_content_hash, SHA-256), as the loader's sink does
 * first -- and stores nothing: the C floor of an identical reload.
 *
 * --no-direct loads accounts new to the database through staging and the
 * merge (af_run_options.no_direct) instead of the first-load path: the
 * benchmark compares the two.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/store.h"
#include "columns.h"

#define NSCOPES 12
#define ROWS_PER_INSTANCE 13 /* 1 instance + 2 services + 2 x 4 + 2 resources */

static const char *const providers[3] = {AF_PROVIDER_ALIBABA, AF_PROVIDER_TENCENT,
					 AF_PROVIDER_ALIBABA};
static const char *const products[3] = {"tair_kvcache", "tione", "hologres"};
static const char *const regions[4] = {"cn-beijing", "cn-shanghai", "ap-guangzhou", "ap-singapore"};
static const char *const gpus[3] = {"A10", "T4", "L20"};
static const char *const svc_kinds[4] = {"cpu_cores", "memory_gib", "gpu_count", "gpu_memory_gib"};
static const char *const svc_units[4] = {"cores", "GiB", "cards", "GiB"};

typedef struct opts {
	const char *dsn;
	long instances;
	uint64_t seed;
	double change, del, add;
	long scopes; /* mutate only the instances of scopes [0, scopes) */
	long run;    /* --run R: the fleet after runs 1..R of a history */
	int migrate, dry, generate_only, hash_only;
} opts;

static uint64_t mix(uint64_t x)
{
	/* splitmix64 finalizer: a well-spread deterministic hash */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

enum fate { KEEP, CHANGE, DELETE };

static bool mutable_instance(const opts *o, long i)
{
	return i % NSCOPES < o->scopes;
}

static enum fate fate_of(const opts *o, uint64_t seed, long i)
{
	double r = (double)(mix(seed * 7919 + (uint64_t)i) % 1000000) / 10000.0; /* [0,100) */

	if (!mutable_instance(o, i))
		return KEEP;
	if (r < o->del)
		return DELETE;
	if (r < o->del + o->change)
		return CHANGE;
	return KEEP;
}

/* --run: the last run in 1..o->run that renamed instance i, 0 if none. */
static long last_rename(const opts *o, long i)
{
	long r;

	for (r = o->run; r >= 1; r--)
		if (fate_of(o, o->seed + (uint64_t)r, i) == CHANGE)
			return r;
	return 0;
}

static af_scope scope_of(long i)
{
	int s = (int)(i % NSCOPES);
	af_scope sc = {providers[s % 3], "bench", regions[s / 3], products[s % 3]};

	return sc;
}

typedef struct gen {
	af_record_sink sink;
	uint64_t rows;
} gen;

/* One instance with its services and resources, to the loader's sink. */
static int emit(gen *g, long i, const char *name)
{
	char id[32], svc_id[2][40], raw[256], sraw[2][160];
	af_scope sc = scope_of(i);
	af_instance in;
	int err = 0, s, k;
	double cards = (double)(1 + i % 4);

	snprintf(id, sizeof(id), "in-%08ld", i);
	snprintf(raw, sizeof(raw),
		 "{\"InstanceId\": \"%s\", \"Spec\": \"gpu.x%ld\", \"Nodes\": %ld,"
		 " \"Network\": {\"VpcId\": \"vpc-%ld\", \"VSwitchId\": \"vsw-%ld\"}}",
		 id, 1 + i % 8, 1 + i % 5, i % 97, i % 997);
	memset(&in, 0, sizeof(in));
	in.native_id = id;
	in.name = name;
	in.status = "running";
	in.status_raw = "Running";
	in.charge_type = i % 2 ? "prepaid" : "postpaid";
	in.charge_type_raw = i % 2 ? "PrePaid" : "PostPaid";
	in.zone = sc.region;
	in.spec = "gpu.large";
	in.model = NULL;
	in.created_at = 1700000000000000LL + (int64_t)i * 1000000;
	in.updated_at = AF_TIME_NULL;
	in.expires_at = AF_TIME_NULL;
	in.tags_json = "{\"env\": \"prod\", \"team\": \"inference\"}";
	in.raw_json = raw;
	for (s = 0; s < 2; s++) {
		snprintf(svc_id[s], sizeof(svc_id[s]), "%s-svc%d", id, s);
		snprintf(sraw[s], sizeof(sraw[s]),
			 "{\"ServiceId\": \"%s\", \"Replicas\": 2, \"Image\": \"ccr/llm:%d\"}",
			 svc_id[s], s);
	}
	if ((err = g->sink.instance(g->sink.ctx, &sc, &in)) < 0)
		return err;
	for (s = 0; s < 2; s++) {
		af_service sv;

		memset(&sv, 0, sizeof(sv));
		sv.instance_id = id;
		sv.native_id = svc_id[s];
		sv.name = svc_id[s];
		sv.model = "qwen-7b";
		sv.status = "running";
		sv.replicas = (af_num){2, true};
		sv.created_at = in.created_at;
		sv.updated_at = AF_TIME_NULL;
		sv.raw_json = sraw[s];
		if ((err = g->sink.service(g->sink.ctx, &sc, &sv)) < 0)
			return err;
		for (k = 0; k < 4; k++) {
			af_resource r;

			memset(&r, 0, sizeof(r));
			r.owner_kind = AF_OWNER_SERVICE;
			r.owner_id = svc_id[s];
			r.kind = svc_kinds[k];
			r.unit = svc_units[k];
			r.capacity = (af_num){cards * (k + 1), true};
			r.gpu_model = k >= 2 ? gpus[i % 3] : NULL;
			r.basis = "reported";
			if ((err = g->sink.resource(g->sink.ctx, &sc, &r)) < 0)
				return err;
		}
	}
	for (k = 0; k < 2; k++) {
		af_resource r;

		memset(&r, 0, sizeof(r));
		r.owner_kind = AF_OWNER_INSTANCE;
		r.owner_id = id;
		r.kind = k ? "vnodes" : "compute_units";
		r.unit = r.kind;
		r.capacity = (af_num){(double)(8 + k), true};
		r.basis = "reported";
		if ((err = g->sink.resource(g->sink.ctx, &sc, &r)) < 0)
			return err;
	}
	g->rows += ROWS_PER_INSTANCE;
	return 0;
}

/* --hash-only: each record checked and hashed, then dropped. */
typedef struct hasher {
	EVP_MD_CTX *md;
	json_tokener *tok;
	unsigned char fold[AF_CONTENT_HASH_LEN]; /* kept, so no work is optimized away */
} hasher;

static int hash_record(hasher *h, const af_entity *e, const af_scope *sc, const void *rec)
{
	unsigned char hash[AF_CONTENT_HASH_LEN];
	char msg[160];
	const char *why;
	int err;

	if (!af_scope_valid(sc))
		return af_error_set(AF_ERR_DATA, "fleetgen made an invalid scope");
	if ((why = af_record_problem(e, rec, h->tok, msg, sizeof(msg))) != NULL)
		return af_error_set(AF_ERR_DATA, "fleetgen made an invalid record: %s", why);
	if ((err = af_content_hash(h->md, e, sc, rec, hash)) < 0)
		return err;
	for (size_t i = 0; i < sizeof(hash); i++)
		h->fold[i] ^= hash[i];
	return 0;
}

static int hash_instance(void *ctx, const af_scope *sc, const af_instance *in)
{
	return hash_record(ctx, &af_entities[AF_ENTITY_INSTANCE], sc, in);
}

static int hash_service(void *ctx, const af_scope *sc, const af_service *sv)
{
	return hash_record(ctx, &af_entities[AF_ENTITY_SERVICE], sc, sv);
}

static int hash_resource(void *ctx, const af_scope *sc, const af_resource *rs)
{
	return hash_record(ctx, &af_entities[AF_ENTITY_RESOURCE], sc, rs);
}

/* --generate-only: the records go nowhere. */
static int discard_instance(void *ctx, const af_scope *sc, const af_instance *in)
{
	return 0;
}

static int discard_service(void *ctx, const af_scope *sc, const af_service *sv)
{
	return 0;
}

static int discard_resource(void *ctx, const af_scope *sc, const af_resource *rs)
{
	return 0;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* User and system time of the whole process (connecting and migrating
 * included: next to nothing on a reload). */
static double cpu_s(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
	       (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

static int usage(const char *msg)
{
	fprintf(stderr, "fleetgen: %s (usage: see the comment in tests/bench/fleetgen.c)\n", msg);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dsn", required_argument, NULL, 'd'},       {"instances", required_argument, NULL, 'n'},
		{"seed", required_argument, NULL, 's'},      {"change", required_argument, NULL, 'C'},
		{"delete", required_argument, NULL, 'D'},    {"new", required_argument, NULL, 'N'},
		{"scopes", required_argument, NULL, 'K'},    {"run", required_argument, NULL, 'R'},
		{"migrate", no_argument, NULL, 'm'},         {"dry-run", no_argument, NULL, 'y'},
		{"generate-only", no_argument, NULL, 'G'},   {"no-direct", no_argument, NULL, 'P'},
		{"hash-only", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	opts o = {NULL, 100000, 42, 0, 0, 0, NSCOPES, 0, 0, 0, 0, 0};
	hasher h = {NULL, NULL, {0}};
	af_run_options ro = {.wait_for_lock = true, .trigger = "fleetgen"};
	af_store *store = NULL;
	af_loader *l = NULL;
	af_load_summary sum;
	gen g;
	long i, nnew, added = 0, nmutable = 0, changed = 0, deleted = 0;
	double t0, t1;
	struct rusage ru;
	int c, err = 0;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dsn = optarg; break;
		case 'n': o.instances = strtol(optarg, NULL, 10); break;
		case 's': o.seed = strtoull(optarg, NULL, 10); break;
		case 'C': o.change = strtod(optarg, NULL); break;
		case 'D': o.del = strtod(optarg, NULL); break;
		case 'N': o.add = strtod(optarg, NULL); break;
		case 'K': o.scopes = strtol(optarg, NULL, 10); break;
		case 'R': o.run = strtol(optarg, NULL, 10); break;
		case 'm': o.migrate = 1; break;
		case 'y': o.dry = 1; break;
		case 'G': o.generate_only = 1; break;
		case 'H': o.generate_only = o.hash_only = 1; break;
		case 'P': ro.no_direct = true; break;
		default: return usage("unknown option");
		}
	}
	if (!o.dsn && !o.generate_only)
		return usage("--dsn is required");
	if (o.generate_only && (o.migrate || o.dry))
		return usage("--generate-only and --hash-only take no --migrate or --dry-run");
	if (o.instances < 0 || o.scopes < 1 || o.scopes > NSCOPES || o.run < 0)
		return usage("--instances >= 0, --scopes 1..12 and --run >= 0");
	if (o.change < 0 || o.del < 0 || o.add < 0 || o.change + o.del > 100)
		return usage("percentages must be >= 0 and --change + --delete <= 100");
	if (o.run > 0 && (o.del > 0 || o.add > 0))
		return usage("--run takes --change only");
	ro.dry_run = o.dry != 0;
	af_log_setup(AF_LOG_WARN, AF_LOG_TEXT);
	memset(&g, 0, sizeof(g));
	memset(&sum, 0, sizeof(sum));
	for (i = 0; i < o.instances; i++)
		nmutable += mutable_instance(&o, i);
	nnew = (long)((double)nmutable * o.add / 100.0);

	if (o.hash_only) {
		h.md = EVP_MD_CTX_new();
		h.tok = json_tokener_new();
		if (!h.md || !h.tok) {
			err = af_error_oom();
			goto done;
		}
		g.sink = (af_record_sink){hash_instance, hash_service, hash_resource, &h};
		t0 = now_s();
	} else if (o.generate_only) {
		g.sink = (af_record_sink){discard_instance, discard_service, discard_resource, NULL};
		t0 = now_s();
	} else {
		if ((err = af_store_connect(&store, o.dsn)) < 0)
			goto done;
		if (o.migrate && (err = af_store_migrate(store, NULL)) < 0)
			goto done;
		t0 = now_s();
		if ((err = af_loader_begin(&l, store, &ro)) < 0)
			goto done;
		g.sink = af_loader_sink(l);
	}
	for (i = 0; i < o.instances; i++) {
		char name[64];

		if (o.run > 0) {
			long v = last_rename(&o, i);

			changed += v == o.run;
			if (v)
				snprintf(name, sizeof(name), "node-%ld-r%ld", i, v);
			else
				snprintf(name, sizeof(name), "node-%ld", i);
		} else {
			enum fate f = fate_of(&o, o.seed, i);

			if (f == DELETE) {
				deleted++;
				continue;
			}
			changed += f == CHANGE;
			snprintf(name, sizeof(name), "%s-%ld", f == CHANGE ? "renamed" : "node", i);
		}
		if ((err = emit(&g, i, name)) < 0)
			goto done;
	}
	/* New instances: the next indexes that fall in a mutable scope. */
	for (i = o.instances; added < nnew; i++) {
		char name[64];

		if (!mutable_instance(&o, i))
			continue;
		snprintf(name, sizeof(name), "node-%ld", i);
		if ((err = emit(&g, i, name)) < 0)
			goto done;
		added++;
	}
	if (o.generate_only) {
		t1 = now_s();
		getrusage(RUSAGE_SELF, &ru);
		printf("%s instances=%ld rows=%" PRIu64 " seconds=%.3f cpu_seconds=%.3f"
		       " us_per_row=%.3f fold=%02x\n",
		       o.hash_only ? "hash_only" : "generate_only", o.instances + added - deleted,
		       g.rows, t1 - t0, cpu_s(&ru), g.rows ? (t1 - t0) * 1e6 / (double)g.rows : 0.0,
		       h.fold[0]);
		goto done;
	}
	for (i = 0; i < NSCOPES; i++) {
		af_scope_report rep;

		memset(&rep, 0, sizeof(rep));
		rep.scope = scope_of(i);
		rep.state = AF_SCOPE_COMPLETE;
		if ((err = af_loader_scope_done(l, &rep)) < 0)
			goto done;
	}
	if ((err = af_loader_commit(l, &sum)) < 0)
		goto done;
	t1 = now_s();
	getrusage(RUSAGE_SELF, &ru);
	printf("instances=%ld rows=%" PRIu64 " seconds=%.3f rss_kib=%ld cpu_seconds=%.3f\n",
	       o.instances + added - deleted, g.rows, t1 - t0, ru.ru_maxrss, cpu_s(&ru));
	printf("mutated_scopes=%ld mutable_instances=%ld changed=%ld deleted=%ld new=%ld run=%ld\n",
	       o.scopes, nmutable, changed, deleted, added, o.run);
	/* The mutation's effect, from the selection above: a renamed instance is
	 * one updated row; a deleted or new one is 1 + 2 + 10 rows. */
	printf("expect_updated=%ld expect_deleted=%ld expect_created=%ld expect_history=%ld\n", changed,
	       ROWS_PER_INSTANCE * deleted, ROWS_PER_INSTANCE * added,
	       changed + ROWS_PER_INSTANCE * (deleted + added));
	printf("run_id=%" PRId64 " got_created=%" PRIu64 " got_updated=%" PRIu64 " got_deleted=%" PRIu64
	       " got_restored=%" PRIu64 " got_unchanged=%" PRIu64 " got_history=%" PRIu64
	       " copy_seconds=%.3f merge_seconds=%.3f\n",
	       sum.run_id, sum.instances.created + sum.services.created + sum.resources.created,
	       sum.instances.updated + sum.services.updated + sum.resources.updated,
	       sum.instances.deleted + sum.services.deleted + sum.resources.deleted,
	       sum.instances.restored + sum.services.restored + sum.resources.restored,
	       sum.instances.unchanged + sum.services.unchanged + sum.resources.unchanged,
	       sum.history_rows, sum.copy_seconds, sum.merge_seconds);
done:
	if (err < 0)
		fprintf(stderr, "fleetgen: %s\n", af_error_last());
	af_loader_free(l);
	af_store_free(store);
	EVP_MD_CTX_free(h.md);
	if (h.tok)
		json_tokener_free(h.tok);
	return err < 0 ? 1 : 0;
}
