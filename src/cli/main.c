/*
 * aifleet: the command-line tool. A thin layer over the core library:
 * parse arguments, load the configuration, call sync / migrate / status,
 * map the outcome to a documented exit code.
 */
#include "aifleet/clock.h"
#include "aifleet/config.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/metrics.h"
#include "aifleet/prune.h"
#include "aifleet/report.h"
#include "aifleet/store.h"
#include "aifleet/sync.h"
#include "aifleet/version.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* Exit codes (documented in README.md). */
enum {
	EXIT_OK = 0,        /* every scope complete */
	EXIT_FAILED = 1,    /* nothing committed, or no scope complete */
	EXIT_PARTIAL = 2,   /* committed: some scopes complete, some not (or held) */
	EXIT_USAGE = 64,    /* EX_USAGE */
	EXIT_TEMPFAIL = 75, /* EX_TEMPFAIL: lock held, database or cloud unreachable */
	EXIT_CONFIG = 78,   /* EX_CONFIG: configuration or authentication */
};

typedef struct cli {
	const char *command;
	const char *config_path;
	const char *db;
	const char *only;
	const char *save_raw;
	const char *metrics_file;
	const char *older_than;  /* prune */
	const char *before;      /* prune */
	const char *from_raw;
	bool dry_run;
	bool wait;
	bool progress;
	bool progress_set;
	int runs;
	const char *allow_deletes[64]; /* --allow-deletes, repeatable (points into argv) */
	size_t nallow_deletes;
	const char *accounts[256];     /* --account, repeatable (points into argv) */
	size_t naccounts;
	unsigned shard_index, shard_count; /* --shard K/N; shard_count 0: none */
	const char *format;      /* --format, for report and status */
	af_report_format report_format;
	bool status_json;
	const char *since;
	const char *stale_after;
	bool no_record;
	const char *report_only; /* the first option of report given, for the usage check */
} cli;

/* Options of report (outside parse_args' own enum, so report_option can
 * name them). */
enum { OPT_FORMAT = 512, OPT_SINCE, OPT_STALE_AFTER, OPT_NO_RECORD };

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: aifleet [OPTIONS] COMMAND\n"
		"\n"
		"Keeps an exact, historical inventory of an AI inference fleet on Alibaba Cloud\n"
		"and Tencent Cloud in PostgreSQL (the products are listed below).\n"
		"\n"
		"Commands:\n"
		"  sync        collect every configured scope, normalize, and load it\n"
		"              (applies pending migrations first)\n"
		"  migrate     apply pending schema migrations\n"
		"  status      show recent runs and per-scope freshness and errors\n"
		"  report      summarize the fleet now, GPU-hours of the last 7 days, the\n"
		"              changes since the last report and stale or failing scopes\n"
		"  prune       delete the history versions that ended before a cutoff\n"
		"              (--older-than DURATION, --before TIME, or [database]\n"
		"              history_retention); as-of answers after it stay the same\n"
		"  check-config\n"
		"              parse the configuration, check every account's credential\n"
		"              source without calling a cloud, list the scopes a sync\n"
		"              would collect (for deploy pipelines; exit 0 or 78)\n"
		"  version     print the version\n"
		"  help        print this help\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE      INI configuration (default: $AIFLEET_CONFIG);\n"
		"                         required by sync, optional for the other commands\n"
		"      --db CONNINFO      libpq conninfo or URI; overrides [database] conninfo;\n"
		"                         without either, the PG* environment is used.\n"
		"                         Keep passwords out of it: use PGPASSWORD or ~/.pgpass\n"
		"      --log-format FMT   text (default) or json, on stderr\n"
		"      --log-level LEVEL  debug, info (default), warn, error\n"
		"  -v, --verbose          same as --log-level debug\n"
		"  -q, --quiet            same as --log-level error, and no progress line\n"
		"  -h, --help             print this help\n"
		"  -V, --version          print the version\n"
		"\n"
		"Options of sync:\n"
		"  -n, --dry-run          collect, normalize and compute the changes; print\n"
		"                         the plan; write nothing\n"
		"      --only PRODUCT     only this product (one of Products, below)\n"
		"      --account LABEL    only this account of the configuration; repeatable\n"
		"      --shard K/N        only the scopes in shard K of N (0 <= K < N): those\n"
		"                         whose stable hash modulo N is K. Runs over disjoint\n"
		"                         scopes run side by side; a scope another run holds\n"
		"                         is skipped (not complete: exit 2, or 75 when every\n"
		"                         scope is held), or waited for with --wait\n"
		"      --save-raw DIR     also write every response page under DIR\n"
		"                         (the Hologres apiKey is removed first)\n"
		"      --from-raw DIR     replay pages saved by --save-raw; no network\n"
		"      --wait             wait for the scopes another run holds instead of\n"
		"                         skipping them\n"
		"      --allow-deletes SCOPE\n"
		"                         accept the tombstones the mass-delete guard held in\n"
		"                         SCOPE (provider/account/region/product, as 'status'\n"
		"                         shows it) or in every scope ('all'); repeatable\n"
		"      --metrics-file PATH\n"
		"                         after the run, failed ones too, write its metrics\n"
		"                         for Prometheus's textfile collector to PATH\n"
		"                         (atomically; overrides [sync] metrics_file; not\n"
		"                         for a dry run)\n"
		"      --progress         redraw a progress line (default when stderr is a TTY)\n"
		"      --no-progress      never draw it\n"
		"\n"
		"Options of status:\n"
		"      --runs N           how many recent runs to show (default 10)\n"
		"      --format FMT       text (default) or json (one document, for scripts)\n"
		"\n"
		"Options of prune:\n"
		"      --older-than DURATION\n"
		"                         the cutoff, back from now: 180d, '6 months' (default:\n"
		"                         [database] history_retention)\n"
		"      --before TIME      the cutoff as a time: 2026-01-01, 2026-01-01T00:00Z\n"
		"  -n, --dry-run          count what would be deleted; delete nothing\n"
		"      --wait             wait for the scopes a sync holds instead of leaving\n"
		"                         their history for the next prune\n"
		"\n"
		"Options of report:\n"
		"      --format FMT       text (default), markdown or json\n"
		"      --since TIME       the changes since TIME: ISO 8601 (2026-05-01T08:00Z)\n"
		"                         or a duration back from now (24h, 7d, 30min);\n"
		"                         default: where the last recorded report ended, or\n"
		"                         the last 24 hours before the first\n"
		"      --stale-after DURATION\n"
		"                         list scopes not completed for longer (default 26h)\n"
		"      --no-record        do not record this report (a cron report run later\n"
		"                         still starts where the last recorded one ended)\n"
		"\n"
		"Products (products = ... in the configuration, --only):\n");
	for (size_t i = 0; i < af_product_count(); i++)
		fprintf(out, "  %-14s %s (%s)\n", af_product_at(i)->name, af_product_at(i)->title,
			af_product_at(i)->provider);
	fprintf(out,
		"\n"
		"Exit codes:\n"
		"  0   success: every scope complete\n"
		"  1   failure: nothing was committed, or no scope was complete (or held)\n"
		"  2   partial: committed; some scopes complete or held by the mass-delete\n"
		"      guard, others not (nothing was deleted in those)\n"
		"  64  usage error\n"
		"  75  temporary failure: other runs hold every scope of the run, or the\n"
		"      database is unreachable; try again later\n"
		"  78  configuration, authentication or TLS verification error\n"
		"\n"
		"Secrets are read from environment variables or the official CLIs' files,\n"
		"never from the command line. See README.md and deploy/aifleet.example.ini.\n");
}

static int exit_code_for(int err)
{
	switch (err) {
	case 0: return EXIT_OK;
	case AF_ERR_LOCKED:
	case AF_ERR_TRANSIENT: return EXIT_TEMPFAIL;
	case AF_ERR_CONFIG:
	case AF_ERR_AUTH: return EXIT_CONFIG;
	default: return EXIT_FAILED;
	}
}

/* Options of report: 1 taken, 0 not one of them, -1 a bad value. */
static int report_option(cli *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_FORMAT:
		c->format = arg; /* judged once the command is known: check_format */
		return 1;
	case OPT_SINCE:
		c->report_only = "--since";
		c->since = arg;
		return 1;
	case OPT_STALE_AFTER:
		c->report_only = "--stale-after";
		c->stale_after = arg;
		return 1;
	case OPT_NO_RECORD:
		c->report_only = "--no-record";
		c->no_record = true;
		return 1;
	default: return 0;
	}
}

/* --shard K/N: 0 <= K < N <= 4096, as Kubernetes' completion index and
 * completions give them. */
static int parse_shard(cli *c, const char *arg)
{
	const char *slash;
	unsigned long k, n;
	char *end;

	errno = 0;
	k = strtoul(arg, &end, 10);
	if (end == arg || *end != '/' || errno || !isdigit((unsigned char)arg[0]))
		goto bad;
	slash = end;
	n = strtoul(slash + 1, &end, 10);
	if (end == slash + 1 || *end || errno || !isdigit((unsigned char)slash[1]) || n == 0 ||
	    n > 4096 || k >= n)
		goto bad;
	c->shard_index = (unsigned)k;
	c->shard_count = (unsigned)n;
	return 0;
bad:
	return af_error_set(AF_ERR_CONFIG, "--shard wants K/N with 0 <= K < N <= 4096 (e.g. 0/3), "
					   "not '%s'", arg);
}

static int parse_args(cli *c, int argc, char **argv)
{
	enum {
		OPT_DB = 256, OPT_LOG_FORMAT, OPT_LOG_LEVEL, OPT_ONLY, OPT_SAVE_RAW, OPT_FROM_RAW,
		OPT_WAIT, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_RUNS, OPT_ALLOW_DELETES, OPT_METRICS_FILE,
		OPT_SHARD, OPT_ACCOUNT, OPT_OLDER_THAN, OPT_BEFORE,
	};
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"db", required_argument, NULL, OPT_DB},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"dry-run", no_argument, NULL, 'n'},
		{"only", required_argument, NULL, OPT_ONLY},
		{"save-raw", required_argument, NULL, OPT_SAVE_RAW},
		{"from-raw", required_argument, NULL, OPT_FROM_RAW},
		{"wait", no_argument, NULL, OPT_WAIT},
		{"progress", no_argument, NULL, OPT_PROGRESS},
		{"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
		{"runs", required_argument, NULL, OPT_RUNS},
		{"allow-deletes", required_argument, NULL, OPT_ALLOW_DELETES},
		{"metrics-file", required_argument, NULL, OPT_METRICS_FILE},
		{"shard", required_argument, NULL, OPT_SHARD},
		{"account", required_argument, NULL, OPT_ACCOUNT},
		{"older-than", required_argument, NULL, OPT_OLDER_THAN},
		{"before", required_argument, NULL, OPT_BEFORE},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"since", required_argument, NULL, OPT_SINCE},
		{"stale-after", required_argument, NULL, OPT_STALE_AFTER},
		{"no-record", no_argument, NULL, OPT_NO_RECORD},
		{NULL, 0, NULL, 0},
	};
	af_log_level level = AF_LOG_INFO;
	af_log_format format = AF_LOG_TEXT;
	int opt, taken;

	while ((opt = getopt_long(argc, argv, "c:vqhVn", options, NULL)) != -1) {
		switch (opt) {
		case 'c': c->config_path = optarg; break;
		case OPT_DB: c->db = optarg; break;
		case OPT_LOG_FORMAT:
			if (af_log_parse_format(&format, optarg) < 0)
				goto bad;
			break;
		case OPT_LOG_LEVEL:
			if (af_log_parse_level(&level, optarg) < 0)
				goto bad;
			break;
		case 'v': level = AF_LOG_DEBUG; break;
		case 'q':
			level = AF_LOG_ERROR;
			c->progress = false;
			c->progress_set = true;
			break;
		case 'h': c->command = "help"; break;
		case 'V': c->command = "version"; break;
		case 'n': c->dry_run = true; break;
		case OPT_ONLY: c->only = optarg; break;
		case OPT_SAVE_RAW: c->save_raw = optarg; break;
		case OPT_FROM_RAW: c->from_raw = optarg; break;
		case OPT_WAIT: c->wait = true; break;
		case OPT_METRICS_FILE: c->metrics_file = optarg; break;
		case OPT_OLDER_THAN: c->older_than = optarg; break;
		case OPT_BEFORE: c->before = optarg; break;
		case OPT_SHARD:
			if (parse_shard(c, optarg) < 0)
				goto bad;
			break;
		case OPT_ACCOUNT:
			if (c->naccounts == sizeof(c->accounts) / sizeof(c->accounts[0])) {
				fprintf(stderr, "aifleet: too many --account (give them a "
						"configuration of their own, or use --shard)\n");
				return -1;
			}
			c->accounts[c->naccounts++] = optarg;
			break;
		case OPT_ALLOW_DELETES:
			if (c->nallow_deletes == sizeof(c->allow_deletes) / sizeof(c->allow_deletes[0])) {
				fprintf(stderr, "aifleet: too many --allow-deletes (say 'all')\n");
				return -1;
			}
			c->allow_deletes[c->nallow_deletes++] = optarg;
			break;
		case OPT_PROGRESS: c->progress = c->progress_set = true; break;
		case OPT_NO_PROGRESS:
			c->progress = false;
			c->progress_set = true;
			break;
		case OPT_RUNS:
			c->runs = atoi(optarg);
			if (c->runs <= 0) {
				af_error_set(AF_ERR_CONFIG, "--runs needs a positive number");
				goto bad;
			}
			break;
		default:
			if ((taken = report_option(c, opt, optarg)) > 0)
				break;
			if (taken < 0)
				goto bad;
			fprintf(stderr, "Try 'aifleet --help'.\n");
			return -1;
		}
	}
	af_log_setup(level, format);
	if (!c->command) {
		if (optind >= argc) {
			fprintf(stderr, "aifleet: no command given\n");
			usage(stderr);
			return -1;
		}
		c->command = argv[optind++];
	}
	if (optind < argc) {
		fprintf(stderr, "aifleet: unexpected argument '%s'\nTry 'aifleet --help'.\n",
			argv[optind]);
		return -1;
	}
	if (!c->config_path) {
		const char *env = getenv("AIFLEET_CONFIG");

		if (env && *env)
			c->config_path = env;
	}
	if (c->save_raw && c->from_raw) {
		fprintf(stderr, "aifleet: --save-raw and --from-raw exclude each other\n");
		return -1;
	}
	if (!c->progress_set)
		c->progress = isatty(STDERR_FILENO);
	return 0;
bad:
	fprintf(stderr, "aifleet: %s\n", af_error_last());
	return -1;
}

/* Is `command` a word of `list` ("sync and prune")? */
static bool command_in(const char *command, const char *list)
{
	size_t n = strlen(command);

	for (const char *p = list; (p = strstr(p, command)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}

/* An option the command does not read is a usage error, not a silent
 * no-op: `aifleet status --shard 0/2` would otherwise look like it worked.
 * (--format has its own rules: check_format.) */
static int check_option_commands(const cli *c)
{
	const struct {
		bool given;
		const char *option, *commands;
	} rules[] = {
		{c->nallow_deletes > 0, "--allow-deletes", "sync"},
		{c->metrics_file != NULL, "--metrics-file", "sync"},
		{c->save_raw != NULL, "--save-raw", "sync"},
		{c->from_raw != NULL, "--from-raw", "sync"},
		{c->naccounts > 0, "--account", "sync and check-config"},
		{c->shard_count > 0, "--shard", "sync and check-config"},
		{c->only != NULL, "--only", "sync and check-config"},
		{c->dry_run, "--dry-run", "sync and prune"},
		{c->wait, "--wait", "sync and prune"},
		{c->older_than != NULL, "--older-than", "prune"},
		{c->before != NULL, "--before", "prune"},
		{c->runs > 0, "--runs", "status"},
		{c->report_only != NULL, c->report_only, "report"},
	};

	if (strcmp(c->command, "help") == 0 || strcmp(c->command, "version") == 0)
		return 0;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].given && !command_in(c->command, rules[i].commands)) {
			fprintf(stderr, "aifleet: %s is an option of %s\n", rules[i].option,
				rules[i].commands);
			return -1;
		}
	return 0;
}

/* --format is report's (text, markdown, json) and status's (text, json). */
static int check_format(cli *c)
{
	if (!c->format)
		return 0;
	if (strcmp(c->command, "report") == 0) {
		if (af_report_parse_format(&c->report_format, c->format) == 0)
			return 0;
		fprintf(stderr, "aifleet: --format: %s\n", af_error_last());
		return -1;
	}
	if (strcmp(c->command, "status") == 0) {
		if (strcmp(c->format, "text") == 0 || strcmp(c->format, "json") == 0) {
			c->status_json = strcmp(c->format, "json") == 0;
			return 0;
		}
		fprintf(stderr, "aifleet: --format: status shows text or json, not '%s'\n",
			c->format);
		return -1;
	}
	fprintf(stderr, "aifleet: --format is an option of report and status\n");
	return -1;
}

static int cmd_migrate(const cli *c, const af_config *cfg)
{
	af_store *store = NULL;
	int applied = 0, err;

	if ((err = af_store_connect(&store, c->db ? c->db : cfg->db_conninfo)) < 0 ||
	    (err = af_store_migrate(store, &applied)) < 0)
		goto done;
	printf("migrate: %d migration(s) applied, schema is current\n", applied);
done:
	af_store_free(store);
	return err;
}

static int cmd_status(const cli *c, const af_config *cfg)
{
	af_store *store = NULL;
	int err;

	if ((err = af_store_connect(&store, c->db ? c->db : cfg->db_conninfo)) < 0 ||
	    (err = (c->status_json ? af_store_print_status_json
				   : af_store_print_status)(store, stdout, c->runs > 0 ? c->runs : 10)) < 0)
		goto done;
done:
	af_store_free(store);
	return err;
}

/* A value of an option that only PostgreSQL could judge (AF_ERR_PARAM:
 * --since, --older-than, ...) is the user's mistake: told here, exit 64. */
static int usage_if_param(int err, int *exit_code)
{
	if (err != AF_ERR_PARAM)
		return err;
	fprintf(stderr, "aifleet: %s\nTry 'aifleet --help'.\n", af_error_last());
	*exit_code = EXIT_USAGE;
	return 0;
}

/* The report is recorded only once it was written out, so that a report
 * that did not reach its reader is covered again by the next one. A
 * --since or --stale-after that PostgreSQL cannot read is a usage error
 * (64), found only once the database is asked. */
static int cmd_report(const cli *c, const af_config *cfg, int *exit_code)
{
	af_report_options opts = {0};
	af_store *store = NULL;
	af_report *report = NULL;
	int err;

	opts.since = c->since;
	opts.stale_after = c->stale_after;
	if ((err = af_store_connect(&store, c->db ? c->db : cfg->db_conninfo)) < 0 ||
	    (err = af_report_gather(&report, store, &opts)) < 0 ||
	    (err = af_report_render(report, c->report_format, stdout)) < 0)
		goto done;
	if (!c->no_record)
		err = af_report_record(store, report, c->report_format, NULL);
done:
	err = usage_if_param(err, exit_code);
	af_report_free(report);
	af_store_free(store);
	return err;
}

static int sync_exit_code(const af_sync_result *result)
{
	/* A refused key or an unverifiable certificate fails the same way next
	 * time: say so (78) before anything else, so that it alerts. */
	if (result->auth_failures || result->config_failures)
		return EXIT_CONFIG;
	if (result->complete == result->scopes)
		return EXIT_OK;
	/* a held scope was collected completely: it waits for an operator */
	if (result->complete + result->held > 0)
		return EXIT_PARTIAL;
	return EXIT_FAILED;
}

/* Written however the run ended; a file that cannot be written is told
 * but does not change the run's exit code: the data is in, and the file
 * going stale is what alerts (docs/operations.md). */
static void write_metrics(const char *path, const af_sync_result *result, int exit_code)
{
	if (af_metrics_write(path, result, exit_code, af_clock_unix()) < 0)
		af_err("aifleet", "%s", af_error_last());
}

/* What selects the scopes: --only, --account, --shard (sync, check-config). */
static void select_options(const cli *c, af_sync_options *opts)
{
	opts->only = c->only;
	opts->accounts = c->accounts;
	opts->naccounts = c->naccounts;
	opts->shard_index = c->shard_index;
	opts->shard_count = c->shard_count;
}

static int cmd_prune(const cli *c, const af_config *cfg, int *exit_code)
{
	af_prune_options opts = {0};
	af_prune_result r;
	af_store *store = NULL;
	int err;

	opts.older_than = c->older_than;
	opts.before = c->before;
	if (!opts.older_than && !opts.before)
		opts.older_than = cfg->history_retention;
	opts.dry_run = c->dry_run;
	opts.wait = c->wait || cfg->wait_for_lock;
	if ((err = af_store_connect(&store, c->db ? c->db : cfg->db_conninfo)) < 0)
		goto done;
	err = af_prune(store, &opts, &r);
	if (err == 0 || r.batches > 0) {
		printf("prune: %s %" PRIu64 " versions and %" PRIu64 " deletion markers that ended "
		       "before %s",
		       c->dry_run ? "dry run: would delete" : err < 0 ? "stopped after deleting"
								 : "deleted",
		       r.versions, r.markers, r.cutoff);
		if (!c->dry_run)
			printf(", in %" PRIu64 " batches", r.batches);
		printf(" (%zu scopes; %zu held by a sync, left as they were)\n", r.scopes, r.busy);
	}
	if (err == 0 && r.busy > 0)
		*exit_code = EXIT_PARTIAL;
done:
	err = usage_if_param(err, exit_code);
	af_store_free(store);
	return err;
}

static int cmd_check_config(const cli *c, const af_config *cfg)
{
	af_sync_options opts = {0};

	select_options(c, &opts);
	return af_sync_check_config(cfg, &opts, stdout);
}

static int cmd_sync(const cli *c, const af_config *cfg, int *exit_code)
{
	const char *metrics = c->dry_run ? NULL : c->metrics_file ? c->metrics_file
								  : cfg->metrics_file;
	af_sync_options opts = {0};
	af_sync_result result;
	int err;

	opts.db_conninfo = c->db;
	select_options(c, &opts);
	opts.dry_run = c->dry_run;
	opts.wait_for_lock = c->wait;
	opts.progress = c->progress;
	opts.raw.save_dir = c->save_raw;
	opts.raw.replay_dir = c->from_raw;
	opts.trigger = c->from_raw ? "aifleet sync --from-raw" : "aifleet sync";
	opts.plan_out = stdout;
	opts.allow_deletes = c->allow_deletes;
	opts.nallow_deletes = c->nallow_deletes;
	opts.outcomes = metrics != NULL;

	/* a path that cannot work fails now, not after the collection */
	if (metrics && (err = af_metrics_check_path(metrics)) < 0)
		return err;
	if ((err = af_sync_run(cfg, &opts, &result)) < 0) {
		/* told before the metrics are written, which may fail too */
		af_err("aifleet", "%s", af_error_last());
		*exit_code = exit_code_for(err);
	} else {
		af_sync_print_summary(stdout, &result, c->dry_run);
		*exit_code = sync_exit_code(&result);
	}
	if (metrics)
		write_metrics(metrics, &result, *exit_code);
	af_sync_result_free(&result);
	return 0;
}

/* Keys and tokens live in this process's memory: no core file may carry
 * them to disk, and no other process of the same user may read them
 * through ptrace or /proc/PID/mem. */
static void protect_memory(void)
{
	struct rlimit none = {0, 0};

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		af_warn("cli", "cannot disable core dumps (prctl): %s", strerror(errno));
	if (setrlimit(RLIMIT_CORE, &none) != 0)
		af_warn("cli", "cannot disable core dumps (RLIMIT_CORE): %s", strerror(errno));
}

int main(int argc, char **argv)
{
	cli c = {0};
	af_config cfg;
	int err = 0, code = EXIT_OK;

	protect_memory();
	af_config_init(&cfg);
	if (parse_args(&c, argc, argv) < 0)
		return EXIT_USAGE;
	if (check_option_commands(&c) < 0 || check_format(&c) < 0)
		return EXIT_USAGE;

	if (strcmp(c.command, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(c.command, "version") == 0) {
		printf("aifleet %s (%s)\n", AIFLEET_VERSION, curl_version());
		return EXIT_OK;
	}
	if (strcmp(c.command, "sync") && strcmp(c.command, "migrate") &&
	    strcmp(c.command, "status") && strcmp(c.command, "report") &&
	    strcmp(c.command, "check-config") && strcmp(c.command, "prune")) {
		fprintf(stderr, "aifleet: unknown command '%s'\nTry 'aifleet --help'.\n", c.command);
		return EXIT_USAGE;
	}
	if (c.db && strstr(c.db, "password")) {
		/* argv is visible to every user of the machine (ps, /proc). */
		af_warn("cli", "--db contains a password, which other users can see in the process "
			       "list; prefer PGPASSWORD or ~/.pgpass");
	}
	if (c.config_path) {
		if ((err = af_config_load(&cfg, c.config_path)) < 0)
			goto done;
	} else if (strcmp(c.command, "sync") == 0 || strcmp(c.command, "check-config") == 0) {
		fprintf(stderr, "aifleet: %s needs a configuration: --config FILE or "
				"AIFLEET_CONFIG (see deploy/aifleet.example.ini)\n", c.command);
		return EXIT_USAGE;
	}

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(c.command, "migrate") == 0)
		err = cmd_migrate(&c, &cfg);
	else if (strcmp(c.command, "status") == 0)
		err = cmd_status(&c, &cfg);
	else if (strcmp(c.command, "report") == 0)
		err = cmd_report(&c, &cfg, &code);
	else if (strcmp(c.command, "prune") == 0)
		err = cmd_prune(&c, &cfg, &code);
	else if (strcmp(c.command, "check-config") == 0)
		err = cmd_check_config(&c, &cfg);
	else
		err = cmd_sync(&c, &cfg, &code);
	curl_global_cleanup();

done:
	if (err < 0) {
		af_err("aifleet", "%s", af_error_last());
		code = exit_code_for(err);
	}
	af_config_free(&cfg);
	return code;
}
