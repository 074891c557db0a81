/*
 * INI configuration loading and validation.
 *
 *   [database] conninfo, wait_for_lock, history_retention
 *   [sync]     concurrency, detail_concurrency, max_attempts, retry_budget,
 *              connect_timeout_ms, timeout_ms, max_response_mb, ca_bundle,
 *              max_pages, max_delete_fraction, max_delete_min, metrics_file
 *   [account NAME] provider, credentials, *_env, credentials_file, profile,
 *              role_name, metadata_endpoint, credentials_uri, role_arn, source, role_session_name,
 *              external_id, duration_seconds, policy, sts_endpoint, intl, regions,
 *              products, <product>_endpoint,
 *              <product>_rate_limit, <product>_burst, <product>_page_size
 */
#include "aifleet/config.h"
#include "aifleet/error.h"
#include "aifleet/record.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A section header or key already seen, to refuse a second one. */
typedef struct seen_entry {
	char *section; /* "sync", "database", "account LABEL" */
	char *key;     /* canonical key name; NULL for an [account] header */
	char *given;   /* the key as written (an alias may differ from key) */
	int line;
} seen_entry;

typedef struct parse_state {
	af_config *cfg;
	int err;      /* first error class, 0 if none */
	int err_line; /* its line */
	char msg[512];
	/*
	 * inih tells the handler neither the line nor where a section starts,
	 * so the reader (read_line) follows the file line by line itself.
	 */
	FILE *f;
	int line;          /* line of the text inih is parsing now */
	char *section;     /* the last [section] header, in full */
	bool prev_key;     /* a key since that header: inih continues it on an indented line */
	bool continuation; /* the current line is such a continuation */
	seen_entry *seen;
	size_t nseen;
} parse_state;

void af_config_init(af_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->concurrency = 4;
	cfg->detail_concurrency = 4;
	cfg->max_attempts = 4;
	cfg->retry_budget = 200;
	cfg->connect_timeout_ms = 5000;
	cfg->timeout_ms = 30000;
	cfg->max_response_mb = 32;
	cfg->max_pages = 10000;
	cfg->max_delete_fraction = 0.5;
	cfg->max_delete_min = 10;
}

static void account_free(af_account_config *a)
{
	free(a->name);
	free(a->provider);
	free(a->id_env);
	free(a->secret_env);
	free(a->token_env);
	free(a->cred_file);
	free(a->profile);
	free(a->role_name);
	free(a->metadata_endpoint);
	free(a->credentials_uri);
	free(a->role_arn);
	free(a->role_session_name);
	free(a->external_id);
	free(a->policy);
	free(a->source);
	free(a->sts_endpoint);
	for (size_t i = 0; i < a->nregions; i++)
		free(a->regions[i]);
	for (size_t i = 0; i < AF_PRODUCTS_MAX; i++)
		free(a->products[i].endpoint);
}

void af_config_free(af_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->naccounts; i++)
		account_free(&cfg->accounts[i]);
	free(cfg->accounts);
	free(cfg->path);
	free(cfg->db_conninfo);
	free(cfg->ca_bundle);
	free(cfg->metrics_file);
	free(cfg->history_retention);
	af_config_init(cfg);
}

af_product_config *af_account_product(af_account_config *a, const char *product)
{
	int i = af_product_index(product);

	return i < 0 ? NULL : &a->products[i];
}

const af_product_config *af_account_product_const(const af_account_config *a,
						  const char *product)
{
	int i = af_product_index(product);

	return i < 0 ? NULL : &a->products[i];
}

static int fail(parse_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parse_state *st, const char *fmt, ...)
{
	va_list ap;

	if (!st->err) {
		va_start(ap, fmt);
		vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
		va_end(ap);
		st->err = AF_ERR_CONFIG;
		st->err_line = st->line;
	}
	return 0; /* inih: stop with this line's number */
}

static int nomem(parse_state *st)
{
	if (!st->err) {
		st->err = AF_ERR_NOMEM;
		st->err_line = st->line;
	}
	return 0;
}

static const seen_entry *seen_find(const parse_state *st, const char *section, const char *key)
{
	for (size_t i = 0; i < st->nseen; i++) {
		const seen_entry *e = &st->seen[i];

		if (strcmp(e->section, section) == 0 &&
		    (key ? e->key && strcmp(e->key, key) == 0 : !e->key))
			return e;
	}
	return NULL;
}

static int seen_add(parse_state *st, const char *section, const char *key, const char *given)
{
	seen_entry *n = realloc(st->seen, (st->nseen + 1) * sizeof(*n));

	if (!n)
		return nomem(st);
	st->seen = n;
	n = &n[st->nseen];
	memset(n, 0, sizeof(*n));
	n->line = st->line;
	if (!(n->section = strdup(section)) || (key && !(n->key = strdup(key))) ||
	    (given && !(n->given = strdup(given)))) {
		free(n->section);
		free(n->key);
		return nomem(st);
	}
	st->nseen++;
	return 1;
}

static void seen_free(parse_state *st)
{
	for (size_t i = 0; i < st->nseen; i++) {
		free(st->seen[i].section);
		free(st->seen[i].key);
		free(st->seen[i].given);
	}
	free(st->seen);
	free(st->section);
	st->seen = NULL;
	st->section = NULL;
	st->nseen = 0;
}

/* The label of an "account LABEL" section, as the handler reads it. */
static const char *account_label(const char *section)
{
	if (strncmp(section, "account ", 8) != 0)
		return NULL;
	section += 8;
	while (*section == ' ')
		section++;
	return section;
}

/* One name per section, whatever the spacing: "[account  a]" is account a. */
static char *scope_name(const char *section)
{
	const char *label = account_label(section);
	char *s;

	if (!label)
		return strdup(section);
	if ((s = malloc(strlen(label) + 9)))
		sprintf(s, "account %s", label);
	return s;
}

/* A [section] header line: an account may be defined only once, or two
 * people editing one file silently merge (or override) each other's. */
static int section_header(parse_state *st, const char *name, size_t len)
{
	const seen_entry *e;
	char *scope;
	int ok;

	free(st->section);
	st->prev_key = false;
	if (!(st->section = strndup(name, len)))
		return nomem(st);
	if (!account_label(st->section))
		return 1; /* [sync] and [database] may repeat; their keys may not */
	if (!(scope = scope_name(st->section)))
		return nomem(st);
	if ((e = seen_find(st, scope, NULL)))
		ok = fail(st, "account '%s' is defined twice (first at line %d)", scope + 8,
			  e->line);
	else
		ok = seen_add(st, scope, NULL, NULL);
	free(scope);
	return ok;
}

/* Keys that set the same field count as one key. */
static const char *canonical_key(const char *name)
{
	static const char *const alias[][2] = {
		{"secret_id_env", "access_key_id_env"},
		{"secret_key_env", "access_key_secret_env"},
		{"session_token_env", "security_token_env"},
	};

	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (strcmp(name, alias[i][0]) == 0)
			return alias[i][1];
	return name;
}

/* A key given twice in one section (or in two sections of the same name)
 * would silently override, or for lists extend, the first one. */
static int check_key_once(parse_state *st, const char *section, const char *name)
{
	const char *key = canonical_key(name);
	const seen_entry *e;
	char *scope;
	int ok;

	if (st->continuation)
		return 1; /* inih hands an indented line over as more of the same key */
	st->prev_key = true;
	if (!(scope = scope_name(section)))
		return nomem(st);
	if ((e = seen_find(st, scope, key))) {
		if (strcmp(e->given, name) == 0)
			ok = fail(st, "key '%s' given twice in [%s] (first at line %d)", name, scope,
				  e->line);
		else
			ok = fail(st, "key '%s' given twice in [%s] (first at line %d, as '%s')",
				  name, scope, e->line, e->given);
	} else {
		ok = seen_add(st, scope, key, name);
	}
	free(scope);
	return ok;
}

/* As inih finds the end of a section name: the first ']', unless an inline
 * comment (';' after whitespace) comes first. */
static const char *section_end(const char *s)
{
	bool was_space = false;

	for (; *s && *s != ']' && !(was_space && *s == ';'); s++)
		was_space = isspace((unsigned char)*s);
	return *s == ']' ? s : NULL;
}

/*
 * inih's reader, fgets-like, one line per call. It numbers the lines and
 * sees the section headers, which the handler never does; it mirrors inih's
 * rules for comments, continuations (an indented line after a key) and
 * headers. A line longer than inih's buffer would be cut in two and parsed
 * as two lines; it is refused instead.
 */
static char *read_line(char *buf, int num, void *stream)
{
	parse_state *st = stream;
	const char *p = buf, *end;
	size_t len;
	bool lead;
	int c;

	if (st->err || !fgets(buf, num, st->f))
		return NULL;
	st->line++;
	st->continuation = false;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] != '\n' && (c = getc(st->f)) != EOF) {
		ungetc(c, st->f);
		fail(st, "line longer than %d characters", num - 3);
		return NULL;
	}
	if (st->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3; /* UTF-8 BOM, skipped by inih */
	lead = isspace((unsigned char)*p);
	while (isspace((unsigned char)*p))
		p++;
	if (!*p || *p == ';' || *p == '#')
		return buf;
	if (lead && st->prev_key) {
		st->continuation = true;
		return buf;
	}
	if (*p == '[' && (end = section_end(p + 1)) && !section_header(st, p + 1, end - p - 1))
		return NULL;
	return buf;
}

static int set_string(parse_state *st, char **dst, const char *value)
{
	char *copy = strdup(value);

	if (!copy) {
		st->err = AF_ERR_NOMEM;
		return 0;
	}
	free(*dst);
	*dst = *value ? copy : NULL;
	if (!*value)
		free(copy);
	return 1;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") || !strcasecmp(v, "on"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0") ||
		 !strcasecmp(v, "off"))
		*out = false;
	else
		return false;
	return true;
}

static bool parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		return false;
	*out = n;
	return true;
}

static bool parse_double(const char *v, double min, double max, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= min && d <= max))
		return false;
	*out = d;
	return true;
}

/* Splits "a, b ,c" into trimmed, non-empty items; calls `add` for each. */
static int split_list(parse_state *st, const char *value, const char *key,
		      int (*add)(parse_state *, void *, const char *, const char *), void *target)
{
	char *copy = strdup(value), *save = NULL, *tok;
	int ok = 1;

	if (!copy) {
		st->err = AF_ERR_NOMEM;
		return 0;
	}
	for (tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
		char *end;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok)
			ok = add(st, target, tok, key);
	}
	free(copy);
	return ok;
}

static int add_region(parse_state *st, void *target, const char *item, const char *key)
{
	af_account_config *a = target;

	for (const char *p = item; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return fail(st, "account %s: %s: invalid region '%s'", a->name, key, item);
	if (a->nregions == AF_CONFIG_MAX_REGIONS)
		return fail(st, "account %s: more than %d regions", a->name, AF_CONFIG_MAX_REGIONS);
	for (size_t i = 0; i < a->nregions; i++)
		if (strcmp(a->regions[i], item) == 0)
			return fail(st, "account %s: region %s listed twice", a->name, item);
	if (!(a->regions[a->nregions] = strdup(item))) {
		st->err = AF_ERR_NOMEM;
		return 0;
	}
	a->nregions++;
	return 1;
}

static int add_product(parse_state *st, void *target, const char *item, const char *key)
{
	af_account_config *a = target;
	af_product_config *p = af_account_product(a, item);
	char known[256];

	if (!p) {
		af_product_names(known, sizeof(known));
		return fail(st, "account %s: %s: unknown product '%s' (%s)", a->name, key, item,
			    known);
	}
	p->enabled = true;
	return 1;
}

static af_account_config *find_or_add_account(parse_state *st, const char *name)
{
	af_config *cfg = st->cfg;
	af_account_config *accounts, *a;

	for (size_t i = 0; i < cfg->naccounts; i++)
		if (strcmp(cfg->accounts[i].name, name) == 0)
			return &cfg->accounts[i];
	accounts = realloc(cfg->accounts, (cfg->naccounts + 1) * sizeof(*accounts));
	if (!accounts) {
		st->err = AF_ERR_NOMEM;
		return NULL;
	}
	cfg->accounts = accounts;
	a = &accounts[cfg->naccounts];
	memset(a, 0, sizeof(*a));
	if (!(a->name = strdup(name))) {
		st->err = AF_ERR_NOMEM;
		return NULL;
	}
	cfg->naccounts++;
	return a;
}

static bool valid_account_name(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static int product_key(parse_state *st, af_account_config *a, const char *name, const char *value)
{
	for (size_t i = 0; i < af_product_count(); i++) {
		const char *product = af_product_at(i)->name;
		size_t n = strlen(product);
		af_product_config *p = &a->products[i];
		const char *suffix;
		long l;

		if (strncmp(name, product, n) != 0 || name[n] != '_')
			continue;
		suffix = name + n + 1;
		if (strcmp(suffix, "endpoint") == 0) {
			if (*value && strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
				return fail(st, "account %s: %s must start with http:// or https://",
					    a->name, name);
			return set_string(st, &p->endpoint, value);
		}
		if (strcmp(suffix, "rate_limit") == 0) {
			if (!parse_double(value, 0.01, 10000, &p->rate_limit))
				return fail(st, "account %s: %s must be a number of requests per second "
						"between 0.01 and 10000", a->name, name);
			return 1;
		}
		if (strcmp(suffix, "burst") == 0) {
			if (!parse_double(value, 1, 10000, &p->burst))
				return fail(st, "account %s: %s must be between 1 and 10000", a->name, name);
			return 1;
		}
		if (strcmp(suffix, "page_size") == 0) {
			if (!parse_long(value, 1, 1000, &l))
				return fail(st, "account %s: %s must be between 1 and 1000", a->name, name);
			p->page_size = (int)l;
			return 1;
		}
	}
	return -1; /* not a product key */
}

/* The AssumeRole keys; -1 for another key. */
static int role_key(parse_state *st, af_account_config *a, const char *name, const char *value)
{
	long l;

	if (strcmp(name, "role_arn") == 0)
		return set_string(st, &a->role_arn, value);
	if (strcmp(name, "role_session_name") == 0)
		return set_string(st, &a->role_session_name, value);
	if (strcmp(name, "external_id") == 0)
		return set_string(st, &a->external_id, value);
	if (strcmp(name, "policy") == 0)
		return set_string(st, &a->policy, value);
	if (strcmp(name, "source") == 0)
		return set_string(st, &a->source, value);
	if (strcmp(name, "duration_seconds") == 0) {
		if (!parse_long(value, 900, 43200, &l))
			return fail(st, "account %s: duration_seconds must be between 900 and 43200",
				    a->name);
		a->duration_seconds = (int)l;
		return 1;
	}
	if (strcmp(name, "sts_endpoint") == 0) {
		if (*value && strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
			return fail(st, "account %s: sts_endpoint must start with http:// or https://",
				    a->name);
		return set_string(st, &a->sts_endpoint, value);
	}
	return -1;
}

/* The credential sources by their names in the file, and the provider
 * whose accounts may use each (NULL: either). */
static const struct {
	const char *name;
	af_cred_source source;
	const char *provider;
} cred_sources[] = {
	{"env", AF_CRED_ENV, NULL},
	{"default", AF_CRED_DEFAULT, NULL},
	{"aliyun-cli", AF_CRED_ALIYUN_CLI, AF_PROVIDER_ALIBABA},
	{"alibabacloud-file", AF_CRED_ALIBABACLOUD_FILE, AF_PROVIDER_ALIBABA},
	{"tencent-file", AF_CRED_TENCENT_FILE, AF_PROVIDER_TENCENT},
	{"ecs-ram-role", AF_CRED_ECS_RAM_ROLE, AF_PROVIDER_ALIBABA},
	{"cvm-role", AF_CRED_CVM_ROLE, AF_PROVIDER_TENCENT},
	{"oidc", AF_CRED_OIDC, AF_PROVIDER_ALIBABA},
	{"tke-oidc", AF_CRED_TKE_OIDC, AF_PROVIDER_TENCENT},
	{"credentials-uri", AF_CRED_URI, NULL},
};
#define NCRED_SOURCES (sizeof(cred_sources) / sizeof(cred_sources[0]))

const char *af_cred_source_name(af_cred_source source)
{
	for (size_t i = 0; i < NCRED_SOURCES; i++)
		if (cred_sources[i].source == source)
			return cred_sources[i].name;
	return "?";
}

static int credentials_key(parse_state *st, af_account_config *a, const char *value)
{
	char names[256];
	size_t used = 0;

	for (size_t i = 0; i < NCRED_SOURCES; i++)
		if (strcmp(value, cred_sources[i].name) == 0) {
			a->cred_source = cred_sources[i].source;
			return 1;
		}
	for (size_t i = 0; i < NCRED_SOURCES && used < sizeof(names); i++)
		used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
					 i == 0 ? "" : i + 1 == NCRED_SOURCES ? " or " : ", ",
					 cred_sources[i].name);
	return fail(st, "account %s: credentials must be %s, not '%s'", a->name, names, value);
}

static int account_key(parse_state *st, af_account_config *a, const char *name, const char *value)
{
	int r;

	if (strcmp(name, "provider") == 0) {
		if (strcmp(value, AF_PROVIDER_ALIBABA) && strcmp(value, AF_PROVIDER_TENCENT))
			return fail(st, "account %s: provider must be alibaba or tencent, not '%s'",
				    a->name, value);
		return set_string(st, &a->provider, value);
	}
	if (strcmp(name, "credentials") == 0)
		return credentials_key(st, a, value);
	if (strcmp(name, "access_key_id_env") == 0 || strcmp(name, "secret_id_env") == 0)
		return set_string(st, &a->id_env, value);
	if (strcmp(name, "access_key_secret_env") == 0 || strcmp(name, "secret_key_env") == 0)
		return set_string(st, &a->secret_env, value);
	if (strcmp(name, "security_token_env") == 0 || strcmp(name, "session_token_env") == 0)
		return set_string(st, &a->token_env, value);
	if (strcmp(name, "credentials_file") == 0)
		return set_string(st, &a->cred_file, value);
	if (strcmp(name, "profile") == 0)
		return set_string(st, &a->profile, value);
	if (strcmp(name, "role_name") == 0)
		return set_string(st, &a->role_name, value);
	if ((r = role_key(st, a, name, value)) >= 0)
		return r;
	if (strcmp(name, "credentials_uri") == 0) {
		if (*value && strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
			return fail(st, "account %s: credentials_uri must start with http:// or "
					"https://", a->name);
		return set_string(st, &a->credentials_uri, value);
	}
	if (strcmp(name, "metadata_endpoint") == 0) {
		if (*value && strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
			return fail(st, "account %s: metadata_endpoint must start with http:// or "
					"https://", a->name);
		return set_string(st, &a->metadata_endpoint, value);
	}
	if (strcmp(name, "intl") == 0) {
		if (!parse_bool(value, &a->intl))
			return fail(st, "account %s: intl must be true or false", a->name);
		return 1;
	}
	if (strcmp(name, "regions") == 0)
		return split_list(st, value, name, add_region, a);
	if (strcmp(name, "products") == 0)
		return split_list(st, value, name, add_product, a);
	if ((r = product_key(st, a, name, value)) >= 0)
		return r;
	return fail(st, "account %s: unknown key '%s'", a->name, name);
}

static int sync_key(parse_state *st, const char *name, const char *value)
{
	af_config *cfg = st->cfg;
	long l;

	struct {
		const char *name;
		long min, max;
		void *dst;
		bool is_int;
	} keys[] = {
		{"concurrency", 1, 64, &cfg->concurrency, true},
		{"detail_concurrency", 1, 64, &cfg->detail_concurrency, true},
		{"max_attempts", 1, 20, &cfg->max_attempts, true},
		{"retry_budget", 0, 100000, &cfg->retry_budget, true},
		{"max_pages", 1, 10000000, &cfg->max_pages, true},
		{"connect_timeout_ms", 100, 600000, &cfg->connect_timeout_ms, false},
		{"timeout_ms", 100, 3600000, &cfg->timeout_ms, false},
		{"max_response_mb", 1, 4096, &cfg->max_response_mb, false},
	};

	if (strcmp(name, "ca_bundle") == 0)
		return set_string(st, &cfg->ca_bundle, value);
	if (strcmp(name, "metrics_file") == 0)
		return set_string(st, &cfg->metrics_file, value);
	/* The mass-delete guard: a fraction of a scope's live items, and a
	 * floor below which deleting is never suspicious. */
	if (strcmp(name, "max_delete_fraction") == 0) {
		double d;

		if (!parse_double(value, 0, 1, &d) || !(d > 0))
			return fail(st, "[sync] max_delete_fraction must be a number greater than 0 "
					"and at most 1 (a fraction of a scope's live items)");
		cfg->max_delete_fraction = d;
		return 1;
	}
	if (strcmp(name, "max_delete_min") == 0) {
		if (!parse_long(value, 0, INT_MAX, &l))
			return fail(st, "[sync] max_delete_min must be a whole number of items, 0 or "
					"more");
		cfg->max_delete_min = (int)l;
		return 1;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(name, keys[i].name) != 0)
			continue;
		if (!parse_long(value, keys[i].min, keys[i].max, &l))
			return fail(st, "[sync] %s must be an integer between %ld and %ld", name,
				    keys[i].min, keys[i].max);
		if (keys[i].is_int)
			*(int *)keys[i].dst = (int)l;
		else
			*(long *)keys[i].dst = l;
		return 1;
	}
	return fail(st, "[sync]: unknown key '%s'", name);
}

static int handle_line(void *user, const char *section, const char *name, const char *value)
{
	parse_state *st = user;

	if (st->err)
		return 0;
	/* inih cuts long section names short: two accounts could become one */
	if (strcmp(section, st->section ? st->section : "") != 0)
		return fail(st, "section name [%s...] is too long", section);
	if ((strcmp(section, "database") == 0 || strcmp(section, "sync") == 0) &&
	    !check_key_once(st, section, name))
		return 0;
	if (strcmp(section, "database") == 0) {
		if (strcmp(name, "conninfo") == 0)
			return set_string(st, &st->cfg->db_conninfo, value);
		if (strcmp(name, "history_retention") == 0)
			return set_string(st, &st->cfg->history_retention, value);
		if (strcmp(name, "wait_for_lock") == 0) {
			if (!parse_bool(value, &st->cfg->wait_for_lock))
				return fail(st, "[database] wait_for_lock must be true or false");
			return 1;
		}
		return fail(st, "[database]: unknown key '%s'", name);
	}
	if (strcmp(section, "sync") == 0)
		return sync_key(st, name, value);
	if (strncmp(section, "account ", 8) == 0) {
		const char *label = section + 8;
		af_account_config *a;

		while (*label == ' ')
			label++;
		if (!valid_account_name(label))
			return fail(st, "[%s]: account names use letters, digits, '-', '_', '.'",
				    section);
		if (!check_key_once(st, section, name))
			return 0;
		if (!(a = find_or_add_account(st, label)))
			return 0;
		return account_key(st, a, name, value);
	}
	return fail(st, "unknown section [%s]", section);
}

static int default_env(char **dst, const char *name)
{
	if (*dst)
		return 0;
	if (!(*dst = strdup(name)))
		return af_error_oom();
	return 0;
}

static const char *provider_title(const char *provider)
{
	return strcmp(provider, AF_PROVIDER_ALIBABA) == 0 ? "an Alibaba Cloud" : "a Tencent Cloud";
}

/* No products listed means every product of the account's provider; a
 * product of the other provider cannot be signed for with its keys. */
static int check_products(const af_config *cfg, af_account_config *a)
{
	size_t n = af_product_count();
	bool any = false;

	for (size_t i = 0; i < n; i++)
		any |= a->products[i].enabled;
	for (size_t i = 0; i < n; i++) {
		const af_product *p = af_product_at(i);
		bool same = strcmp(p->provider, a->provider) == 0;

		if (!any)
			a->products[i].enabled = same;
		else if (a->products[i].enabled && !same)
			return af_error_set(AF_ERR_CONFIG, "%s: account %s: %s is %s product",
					    cfg->path, a->name, p->name, provider_title(p->provider));
	}
	return 0;
}

/* True when another account assumes its role with this one's credentials. */
static bool is_source(const af_config *cfg, const af_account_config *a)
{
	for (size_t i = 0; i < cfg->naccounts; i++)
		if (cfg->accounts[i].source && strcmp(cfg->accounts[i].source, a->name) == 0)
			return true;
	return false;
}

/* Fills defaults and checks what only makes sense account-wide. */
static int validate_account(af_config *cfg, af_account_config *a)
{
	bool ali;
	int err;

	if (!a->provider)
		return af_error_set(AF_ERR_CONFIG, "%s: account %s: provider is required",
				    cfg->path, a->name);
	ali = strcmp(a->provider, AF_PROVIDER_ALIBABA) == 0;
	/* An identity that only assumes roles for others collects nothing. */
	if (a->nregions == 0 && !is_source(cfg, a))
		return af_error_set(AF_ERR_CONFIG, "%s: account %s: regions is required", cfg->path,
				    a->name);
	if ((err = check_products(cfg, a)) < 0)
		return err;
	for (size_t i = 0; i < NCRED_SOURCES; i++)
		if (cred_sources[i].source == a->cred_source && cred_sources[i].provider &&
		    strcmp(cred_sources[i].provider, a->provider) != 0)
			return af_error_set(AF_ERR_CONFIG, "%s: account %s: %s credentials on %s "
					    "account", cfg->path, a->name, cred_sources[i].name,
					    ali ? "an Alibaba" : "a Tencent");
	if (a->cred_source == AF_CRED_ENV) {
		if ((err = default_env(&a->id_env, ali ? "ALIBABA_CLOUD_ACCESS_KEY_ID"
						       : "TENCENTCLOUD_SECRET_ID")) < 0 ||
		    (err = default_env(&a->secret_env, ali ? "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
							   : "TENCENTCLOUD_SECRET_KEY")) < 0 ||
		    (err = default_env(&a->token_env, ali ? "ALIBABA_CLOUD_SECURITY_TOKEN"
							  : "TENCENTCLOUD_SESSION_TOKEN")) < 0)
			return err;
	}
	return 0;
}

const af_account_config *af_config_account(const af_config *cfg, const char *label)
{
	for (size_t i = 0; label && i < cfg->naccounts; i++)
		if (strcmp(cfg->accounts[i].name, label) == 0)
			return &cfg->accounts[i];
	return NULL;
}

/* A `source` names another account of the same provider, and following
 * sources ends within AF_CONFIG_MAX_ROLE_HOPS without a loop. */
static int validate_source(const af_config *cfg, const af_account_config *a)
{
	const af_account_config *at = a;

	if (a->source && !a->role_arn)
		return af_error_set(AF_ERR_CONFIG, "%s: account %s: source needs a role_arn to "
				    "assume", cfg->path, a->name);
	for (int hops = 0; at->source; hops++) {
		const af_account_config *next = af_config_account(cfg, at->source);

		if (!next)
			return af_error_set(AF_ERR_CONFIG, "%s: account %s: source '%s' is no "
					    "account of this file", cfg->path, at->name, at->source);
		if (strcmp(next->provider, at->provider) != 0)
			return af_error_set(AF_ERR_CONFIG, "%s: account %s: source '%s' is a %s "
					    "account", cfg->path, at->name, next->name,
					    next->provider);
		if (hops + 1 >= AF_CONFIG_MAX_ROLE_HOPS || next == a)
			return af_error_set(AF_ERR_CONFIG, "%s: account %s: its sources loop or "
					    "chain more than %d roles", cfg->path, a->name,
					    AF_CONFIG_MAX_ROLE_HOPS);
		at = next;
	}
	return 0;
}

int af_config_load(af_config *cfg, const char *path)
{
	parse_state st = {.cfg = cfg};
	struct stat sb;
	FILE *f;
	int line, err;

	if (!(cfg->path = strdup(path)))
		return af_error_oom();
	f = fopen(path, "r");
	if (!f)
		return af_error_set(AF_ERR_CONFIG, "cannot open configuration %s: %s", path,
				    strerror(errno));
	/* The file holds no secrets, but it decides where requests (and
	 * signatures) go: refuse one that anybody could have rewritten. */
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		fclose(f);
		return af_error_set(AF_ERR_CONFIG, "%s is writable by group or others; "
				    "run chmod go-w %s", path, path);
	}
	st.f = f;
	line = ini_parse_stream(read_line, &st, handle_line, &st);
	fclose(f);
	seen_free(&st);
	if (st.err == AF_ERR_NOMEM)
		return af_error_oom();
	/* inih goes on after a syntax error; the first problem is the one to fix */
	if (st.err && !(line > 0 && line < st.err_line))
		return af_error_set(AF_ERR_CONFIG, "%s:%d: %s", path, st.err_line, st.msg);
	if (line != 0)
		return af_error_set(AF_ERR_CONFIG, "%s:%d: syntax error", path, line);
	for (size_t i = 0; i < cfg->naccounts; i++)
		if ((err = validate_account(cfg, &cfg->accounts[i])) < 0)
			return err;
	for (size_t i = 0; i < cfg->naccounts; i++)
		if ((err = validate_source(cfg, &cfg->accounts[i])) < 0)
			return err;
	return 0;
}
