/*
 * fleetgen: a deterministic synthetic fleet for the loader benchmark.
 *
 *   fleetgen --dsn DSN [--instances N] [--seed S] [--migrate] [--dry-run]
 *            [--change PCT --delete PCT --new PCT]
 *   fleetgen --csv DIR [--instances N] [--seed S] [--change ...]
 *
 * Each instance has 2 services, 4 resources per service and 2 of its own;
 * so 100k instances = 100k + 200k + 1M rows. Instances are spread over 12
 * scopes. With a mutation, an instance is deleted or renamed when a hash of
 * (seed, index) falls in the given percentage, and new ones are appended.
 * The expected effect (derived from this selection, not from the loader) is
 * printed as expect_* so the benchmark can compare it with what the loader
 * reports. --csv writes the final rows as COPY text files for the raw
 * baseline instead of loading them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/store.h"
#include "store_internal.h"

#define NSCOPES 12

static const char *const providers[3] = {AF_PROVIDER_ALIBABA, AF_PROVIDER_TENCENT,
					 AF_PROVIDER_ALIBABA};
static const char *const products[3] = {"tair_kvcache", "tione", "hologres"};
static const char *const regions[4] = {"cn-beijing", "cn-shanghai", "ap-guangzhou", "ap-singapore"};
static const char *const gpus[3] = {"A10", "T4", "L20"};
static const char *const svc_kinds[4] = {"cpu_cores", "memory_gib", "gpu_count", "gpu_memory_gib"};
static const char *const svc_units[4] = {"cores", "GiB", "cards", "GiB"};

typedef struct opts {
	const char *dsn, *csv;
	long instances;
	uint64_t seed;
	double change, del, add;
	int migrate, dry;
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

static enum fate fate_of(const opts *o, long i)
{
	double r = (double)(mix(o->seed * 7919 + (uint64_t)i) % 1000000) / 10000.0; /* [0,100) */

	if (r < o->del)
		return DELETE;
	if (r < o->del + o->change)
		return CHANGE;
	return KEEP;
}

static af_scope scope_of(long i)
{
	int s = (int)(i % NSCOPES);
	af_scope sc = {providers[s % 3], "bench", regions[s / 3], products[s % 3]};

	return sc;
}

typedef struct gen {
	const opts *o;
	af_record_sink sink;
	FILE *f_inst, *f_svc, *f_res; /* --csv */
	af_buf line;
	uint64_t rows;
} gen;

/* One instance with its services and resources, to the sink or to files. */
static int emit(gen *g, long i, bool changed)
{
	char id[32], name[48], svc_id[2][40], raw[256], sraw[2][160];
	af_scope sc = scope_of(i);
	af_instance in;
	int err = 0, s, k;
	double cards = (double)(1 + i % 4);

	snprintf(id, sizeof(id), "in-%08ld", i);
	snprintf(name, sizeof(name), "%s-%ld", changed ? "renamed" : "node", i);
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
	if (g->f_inst) {
		af_buf *b = &g->line;

		af_buf_reset(b);
		af_store_copy_text(b, sc.provider), af_store_copy_sep(b);
		af_store_copy_text(b, sc.account), af_store_copy_sep(b);
		af_store_copy_text(b, sc.region), af_store_copy_sep(b);
		af_store_copy_text(b, sc.product), af_store_copy_sep(b);
		af_store_copy_text(b, id), af_store_copy_sep(b);
		af_store_copy_text(b, name), af_store_copy_sep(b);
		af_store_copy_text(b, in.status), af_store_copy_sep(b);
		af_store_copy_text(b, in.charge_type), af_store_copy_sep(b);
		af_store_copy_time(b, in.created_at), af_store_copy_sep(b);
		af_store_copy_text(b, in.tags_json), af_store_copy_sep(b);
		af_store_copy_text(b, raw), af_store_copy_eol(b);
		fwrite(af_buf_data(b), 1, af_buf_len(b), g->f_inst);
		for (s = 0; s < 2; s++) {
			af_buf_reset(b);
			af_store_copy_text(b, sc.provider), af_store_copy_sep(b);
			af_store_copy_text(b, sc.account), af_store_copy_sep(b);
			af_store_copy_text(b, sc.region), af_store_copy_sep(b);
			af_store_copy_text(b, sc.product), af_store_copy_sep(b);
			af_store_copy_text(b, svc_id[s]), af_store_copy_sep(b);
			af_store_copy_text(b, id), af_store_copy_sep(b);
			af_store_copy_text(b, "qwen-7b"), af_store_copy_sep(b);
			af_store_copy_num(b, (af_num){2, true}), af_store_copy_sep(b);
			af_store_copy_text(b, sraw[s]), af_store_copy_eol(b);
			fwrite(af_buf_data(b), 1, af_buf_len(b), g->f_svc);
			for (k = 0; k < 4; k++) {
				af_buf_reset(b);
				af_store_copy_text(b, sc.provider), af_store_copy_sep(b);
				af_store_copy_text(b, sc.account), af_store_copy_sep(b);
				af_store_copy_text(b, sc.region), af_store_copy_sep(b);
				af_store_copy_text(b, sc.product), af_store_copy_sep(b);
				af_store_copy_text(b, "service"), af_store_copy_sep(b);
				af_store_copy_text(b, svc_id[s]), af_store_copy_sep(b);
				af_store_copy_text(b, svc_kinds[k]), af_store_copy_sep(b);
				af_store_copy_num(b, (af_num){cards * (k + 1), true}), af_store_copy_sep(b);
				af_store_copy_text(b, svc_units[k]), af_store_copy_sep(b);
				af_store_copy_text(b, k >= 2 ? gpus[i % 3] : NULL), af_store_copy_eol(b);
				fwrite(af_buf_data(b), 1, af_buf_len(b), g->f_res);
			}
		}
		for (k = 0; k < 2; k++) {
			af_buf_reset(b);
			af_store_copy_text(b, sc.provider), af_store_copy_sep(b);
			af_store_copy_text(b, sc.account), af_store_copy_sep(b);
			af_store_copy_text(b, sc.region), af_store_copy_sep(b);
			af_store_copy_text(b, sc.product), af_store_copy_sep(b);
			af_store_copy_text(b, "instance"), af_store_copy_sep(b);
			af_store_copy_text(b, id), af_store_copy_sep(b);
			af_store_copy_text(b, k ? "vnodes" : "compute_units"), af_store_copy_sep(b);
			af_store_copy_num(b, (af_num){(double)(8 + k), true}), af_store_copy_sep(b);
			af_store_copy_text(b, k ? "vnodes" : "compute_units"), af_store_copy_sep(b);
			af_store_copy_text(b, NULL), af_store_copy_eol(b);
			fwrite(af_buf_data(b), 1, af_buf_len(b), g->f_res);
		}
		g->rows += 13;
		return 0;
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
	g->rows += 13;
	return 0;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static FILE *open_out(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "w"))) {
		fprintf(stderr, "fleetgen: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return f;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dsn", required_argument, NULL, 'd'},      {"csv", required_argument, NULL, 'c'},
		{"instances", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 's'},
		{"change", required_argument, NULL, 'C'},   {"delete", required_argument, NULL, 'D'},
		{"new", required_argument, NULL, 'N'},      {"migrate", no_argument, NULL, 'm'},
		{"dry-run", no_argument, NULL, 'y'},        {NULL, 0, NULL, 0},
	};
	opts o = {NULL, NULL, 100000, 42, 0, 0, 0, 0, 0};
	af_store *store = NULL;
	af_loader *l = NULL;
	af_load_summary sum;
	gen g;
	long i, nnew, changed = 0, deleted = 0;
	double t0, t1;
	struct rusage ru;
	int c, err = 0;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dsn = optarg; break;
		case 'c': o.csv = optarg; break;
		case 'n': o.instances = strtol(optarg, NULL, 10); break;
		case 's': o.seed = strtoull(optarg, NULL, 10); break;
		case 'C': o.change = strtod(optarg, NULL); break;
		case 'D': o.del = strtod(optarg, NULL); break;
		case 'N': o.add = strtod(optarg, NULL); break;
		case 'm': o.migrate = 1; break;
		case 'y': o.dry = 1; break;
		default: fprintf(stderr, "usage: see the comment in fleetgen.c\n"); return 2;
		}
	}
	if (!o.dsn == !o.csv) {
		fprintf(stderr, "fleetgen: give exactly one of --dsn or --csv\n");
		return 2;
	}
	af_log_setup(AF_LOG_WARN, AF_LOG_TEXT);
	memset(&g, 0, sizeof(g));
	g.o = &o;
	af_buf_init(&g.line, 0);
	nnew = (long)((double)o.instances * o.add / 100.0);
	t0 = now_s();
	if (o.csv) {
		g.f_inst = open_out(o.csv, "instance.tsv");
		g.f_svc = open_out(o.csv, "service.tsv");
		g.f_res = open_out(o.csv, "resource.tsv");
	} else {
		af_run_options ro = {o.dry != 0, true, "fleetgen", NULL};

		if ((err = af_store_connect(&store, o.dsn)) < 0)
			goto done;
		if (o.migrate && (err = af_store_migrate(store, NULL)) < 0)
			goto done;
		t0 = now_s();
		if ((err = af_loader_begin(&l, store, &ro)) < 0)
			goto done;
		g.sink = af_loader_sink(l);
	}
	for (i = 0; i < o.instances + nnew; i++) {
		enum fate f = i < o.instances ? fate_of(&o, i) : KEEP;

		if (f == DELETE) {
			deleted++;
			continue;
		}
		changed += f == CHANGE;
		if ((err = emit(&g, i, f == CHANGE)) < 0)
			goto done;
	}
	if (l) {
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
	}
	t1 = now_s();
	getrusage(RUSAGE_SELF, &ru);
	printf("instances=%ld rows=%" PRIu64 " seconds=%.3f rss_kib=%ld\n", o.instances + nnew - deleted,
	       g.rows, t1 - t0, ru.ru_maxrss);
	/* The mutation's effect, from the selection above: a renamed instance is
	 * one updated row; a deleted or new one is 1 + 2 + 10 rows. */
	printf("expect_updated=%ld expect_deleted=%ld expect_created=%ld expect_history=%ld\n", changed,
	       13 * deleted, 13 * nnew, changed + 13 * deleted + 13 * nnew);
	if (l)
		printf("got_created=%" PRIu64 " got_updated=%" PRIu64 " got_deleted=%" PRIu64
		       " got_restored=%" PRIu64 " got_unchanged=%" PRIu64 " got_history=%" PRIu64
		       " copy_seconds=%.3f merge_seconds=%.3f\n",
		       sum.instances.created + sum.services.created + sum.resources.created,
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
	if (g.f_inst) {
		fclose(g.f_inst);
		fclose(g.f_svc);
		fclose(g.f_res);
	}
	af_buf_free(&g.line);
	return err < 0 ? 1 : 0;
}
