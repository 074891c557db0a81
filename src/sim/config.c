/* Accounts and per product/account limits: built-in demo set or an INI file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "aifleet/error.h"
#include "aifleet/record.h"
#include "sim.h"

/* The demo fleet used when no --config is given. The keys are fake and only
 * mean something to this simulator (documented in docs/simulator.md). */
static const struct {
	const char *label;
	const char *provider;
	const char *key_id, *secret, *token;
	const char *regions;
} demo[] = {
    {"demo-ali", AF_PROVIDER_ALIBABA, "LTAI5tSimDemoAli0000001", "sim-demo-ali-secret-NOT-REAL",
     NULL, "cn-hangzhou,cn-beijing"},
    {"demo-ali-sts", AF_PROVIDER_ALIBABA, "STS.SimDemoAliSts000001", "sim-demo-sts-secret-NOT-REAL",
     "sim-demo-sts-token-NOT-REAL", "cn-shanghai"},
    {"demo-tc", AF_PROVIDER_TENCENT, "AKIDSimDemoTencent000000001", "sim-demo-tc-secret-NOT-REAL",
     NULL, "ap-guangzhou,ap-shanghai"},
    /* Last: a scope's key hashes the account's index, so an account added
     * before the others would change their fleets. Read through the role
     * aifleet-inventory; its own keys are there only for completeness. */
    {"demo-ali-member", AF_PROVIDER_ALIBABA, "LTAI5tSimDemoAliMember01",
     "sim-demo-ali-member-secret-NOT-REAL", NULL, "cn-hangzhou"},
};

/* The demo roles: the member account read by demo-ali through STS (or by
 * an ECS instance, or an RRSA pod); demo-tc's own fleet through a CAM role
 * (AssumeRole by demo-tc itself, a CVM instance, a TKE pod). */
static const struct {
	const char *name, *arn, *account, *trust, *oidc_provider, *oidc_token;
} demo_roles[] = {
    {"aifleet-inventory", "acs:ram::1234567890123456:role/aifleet-inventory", "demo-ali-member",
     "demo-ali", "acs:ram::1234567890123456:oidc-provider/aifleet-sim",
     "sim-demo-oidc-token-NOT-REAL"},
    {"aifleet-inventory-tc", "qcs::cam::uin/100000000001:roleName/aifleet-inventory-tc", "demo-tc",
     "demo-tc", "aifleet-sim-oidc", "sim-demo-web-identity-token-NOT-REAL"},
};

typedef struct limit_entry {
	int product;
	char *account; /* NULL = every account */
	char *key, *value;
} limit_entry;

typedef struct parse_ctx {
	af_sim *s;
	limit_entry *lim;
	size_t nlim;
	int err;
	char msg[256];
} parse_ctx;

static void limits_default(sim_limits *l, const sim_product *p)
{
	memset(l, 0, sizeof(*l));
	l->hang_ms = 30000;
	l->rate_limit = p->rate_limit;
}

static int set_regions(sim_account *a, const char *list)
{
	char *dup = strdup(list), *save = NULL;
	if (!dup)
		return AF_ERR_NOMEM;
	for (char *t = strtok_r(dup, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (a->nregions >= SIM_MAX_REGIONS)
			break;
		a->regions[a->nregions++] = strdup(t);
	}
	free(dup);
	return 0;
}

static sim_account *account_add(af_sim *s, const char *label)
{
	sim_account *n = realloc(s->accounts, (s->naccounts + 1) * sizeof(*n));
	if (!n)
		return NULL;
	s->accounts = n;
	n = &s->accounts[s->naccounts++];
	memset(n, 0, sizeof(*n));
	n->label = strdup(label);
	/* a config account names its provider; until it does, alibaba */
	n->provider = AF_PROVIDER_ALIBABA;
	for (size_t p = 0; p < sim_product_count(); p++)
		limits_default(&n->limits[p], sim_product_at(p));
	return n;
}

static int limit_apply(sim_limits *l, const char *key, const char *value)
{
	int k = sim_fault_parse(key);
	if (k > 0) {
		l->rate[k] = atof(value);
		return 0;
	}
	if (strcmp(key, "latency_ms") == 0)
		l->latency_ms = atoi(value);
	else if (strcmp(key, "rate_limit") == 0)
		l->rate_limit = atoi(value);
	else if (strcmp(key, "hang_ms") == 0)
		l->hang_ms = atoi(value);
	else
		return -1;
	return 0;
}

static sim_role *role_add(af_sim *s, const char *name)
{
	sim_role *n;
	for (size_t i = 0; i < s->nroles; i++)
		if (strcmp(s->roles[i].name, name) == 0)
			return &s->roles[i];
	if (!(n = realloc(s->roles, (s->nroles + 1) * sizeof(*n))))
		return NULL;
	s->roles = n;
	n = &s->roles[s->nroles++];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	n->account = -1;
	return n;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = *v ? strdup(v) : NULL;
	return 1;
}

static bool is_true(const char *v)
{
	return strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0;
}

static int on_role(sim_role *ro, const char *name, const char *value)
{
	if (strcmp(name, "arn") == 0)
		return set_str(&ro->arn, value);
	if (strcmp(name, "account") == 0)
		return set_str(&ro->account_label, value);
	if (strcmp(name, "trust") == 0)
		return set_str(&ro->trust, value);
	if (strcmp(name, "external_id") == 0)
		return set_str(&ro->external_id, value);
	if (strcmp(name, "oidc_provider_arn") == 0 || strcmp(name, "oidc_provider") == 0)
		return set_str(&ro->oidc_provider, value);
	if (strcmp(name, "oidc_token") == 0)
		return set_str(&ro->oidc_token, value);
	if (strcmp(name, "instance") == 0) {
		ro->instance = is_true(value);
		return 1;
	}
	return 0;
}

/* [simulator]: what the command line may also say (the command line wins). */
static int on_simulator(af_sim *s, const char *name, const char *value)
{
	long v;
	if (strcmp(name, "credential_ttl") == 0) {
		if (sim_parse_long(&v, value) < 0 || v < 1 || v > SIM_DURATION_MAX)
			return 0;
		if (s->opt.credential_ttl <= 0)
			s->opt.credential_ttl = (int)v;
		return 1;
	}
	if (strcmp(name, "imdsv2_required") == 0) {
		s->opt.imdsv2_required = s->opt.imdsv2_required || is_true(value);
		return 1;
	}
	return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	parse_ctx *c = user;
	af_sim *s = c->s;
	if (strncmp(section, "role ", 5) == 0 && section[5]) {
		sim_role *ro = role_add(s, section + 5);
		if (!ro)
			return 0;
		if (on_role(ro, name, value))
			return 1;
		goto bad;
	}
	if (strcmp(section, "simulator") == 0) {
		if (on_simulator(s, name, value))
			return 1;
		goto bad;
	}
	if (strncmp(section, "account ", 8) == 0) {
		const char *label = section + 8;
		int i = sim_account_by_label(s, label);
		sim_account *a = i >= 0 ? &s->accounts[i] : account_add(s, label);
		if (!a)
			return 0;
		if (strcmp(name, "provider") == 0) {
			const char *provider = sim_provider_find(value);
			if (!provider)
				goto bad;
			a->provider = provider;
		} else if (strcmp(name, "access_key_id") == 0 || strcmp(name, "secret_id") == 0) {
			free(a->key_id);
			a->key_id = strdup(value);
		} else if (strcmp(name, "access_key_secret") == 0 ||
		           strcmp(name, "secret_key") == 0) {
			free(a->secret);
			a->secret = strdup(value);
		} else if (strcmp(name, "security_token") == 0) {
			free(a->token);
			a->token = *value ? strdup(value) : NULL;
		} else if (strcmp(name, "regions") == 0) {
			set_regions(a, value);
		} else if (strcmp(name, "items") == 0) {
			a->items = atoi(value);
		} else {
			goto bad;
		}
		return 1;
	}
	if (strncmp(section, "limits ", 7) == 0) {
		char prod[32] = "";
		const char *sp = strchr(section + 7, ' ');
		size_t plen = sp ? (size_t)(sp - section - 7) : strlen(section + 7);
		limit_entry *n;
		if (plen >= sizeof(prod))
			goto bad;
		memcpy(prod, section + 7, plen);
		prod[plen] = '\0';
		if (sim_product_index(prod) < 0)
			goto bad;
		n = realloc(c->lim, (c->nlim + 1) * sizeof(*n));
		if (!n)
			return 0;
		c->lim = n;
		n[c->nlim].product = sim_product_index(prod);
		n[c->nlim].account = sp ? strdup(sp + 1) : NULL;
		n[c->nlim].key = strdup(name);
		n[c->nlim].value = strdup(value);
		c->nlim++;
		return 1;
	}
bad:
	/* Only the key name goes into the message: values may be secrets. */
	snprintf(c->msg, sizeof(c->msg), "[%s] %s: unknown section, key or value", section, name);
	c->err = 1;
	return 0;
}

static int load_demo(af_sim *s)
{
	for (size_t i = 0; i < sizeof(demo) / sizeof(demo[0]); i++) {
		sim_account *a = account_add(s, demo[i].label);
		if (!a)
			return af_error_oom();
		a->provider = demo[i].provider;
		a->key_id = strdup(demo[i].key_id);
		a->secret = strdup(demo[i].secret);
		a->token = demo[i].token ? strdup(demo[i].token) : NULL;
		set_regions(a, demo[i].regions);
	}
	for (size_t i = 0; i < sizeof(demo_roles) / sizeof(demo_roles[0]); i++) {
		sim_role *ro = role_add(s, demo_roles[i].name);
		if (!ro)
			return af_error_oom();
		ro->arn = strdup(demo_roles[i].arn);
		ro->account_label = strdup(demo_roles[i].account);
		ro->trust = strdup(demo_roles[i].trust);
		ro->oidc_provider = strdup(demo_roles[i].oidc_provider);
		ro->oidc_token = strdup(demo_roles[i].oidc_token);
		ro->instance = true;
	}
	return 0;
}

/* Every role names an ARN and an account that exists; the accounts it
 * trusts exist and are of that provider. */
static int resolve_roles(af_sim *s, const char *path)
{
	for (size_t i = 0; i < s->nroles; i++) {
		sim_role *ro = &s->roles[i];
		if (!ro->arn || !ro->account_label)
			return af_error_set(AF_ERR_CONFIG, "%s: role %s needs arn and account",
			                    path, ro->name);
		if ((ro->account = sim_account_by_label(s, ro->account_label)) < 0)
			return af_error_set(AF_ERR_CONFIG, "%s: role %s: no account %s", path,
			                    ro->name, ro->account_label);
		for (const char *p = ro->trust; p && *p;) {
			char label[128];
			size_t len;
			int t;
			while (*p == ' ' || *p == ',')
				p++;
			if (!(len = strcspn(p, ", ")))
				break;
			snprintf(label, sizeof(label), "%.*s", (int)len, p);
			p += len;
			t = sim_account_by_label(s, label);
			if (t < 0 ||
			    strcmp(s->accounts[t].provider, s->accounts[ro->account].provider))
				return af_error_set(
				    AF_ERR_CONFIG,
				    "%s: role %s: trust names %s, not an account of "
				    "its provider",
				    path, ro->name, label);
		}
	}
	return 0;
}

/* An account read only through roles needs no keys of its own. */
static bool read_by_role(const af_sim *s, const char *label)
{
	for (size_t i = 0; i < s->nroles; i++)
		if (s->roles[i].account_label && strcmp(s->roles[i].account_label, label) == 0)
			return true;
	return false;
}

/* Product-wide limits first, then the per-account ones override them. */
static int apply_limits(af_sim *s, const parse_ctx *c, const char *path)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t j = 0; j < c->nlim; j++) {
			const limit_entry *e = &c->lim[j];
			if ((pass == 0) != (e->account == NULL))
				continue;
			for (size_t i = 0; i < s->naccounts; i++) {
				if (e->account && strcmp(e->account, s->accounts[i].label) != 0)
					continue;
				if (limit_apply(&s->accounts[i].limits[e->product], e->key,
				                e->value) < 0)
					return af_error_set(AF_ERR_CONFIG,
					                    "%s: unknown limit key %s", path,
					                    e->key);
			}
		}
	}
	return 0;
}

static int load_file(af_sim *s, parse_ctx *c, const char *path)
{
	int rc = ini_parse(path, on_entry, c), err;
	if (rc < 0)
		return af_error_set(AF_ERR_CONFIG, "%s: cannot open", path);
	if (c->err || rc > 0)
		return af_error_set(AF_ERR_CONFIG, "%s: line %d: %s", path, rc,
		                    c->err ? c->msg : "syntax error");
	for (size_t i = 0; i < s->naccounts; i++) {
		sim_account *a = &s->accounts[i];
		bool keyless = !a->key_id && !a->secret && read_by_role(s, a->label);
		if ((!keyless && (!a->key_id || !a->secret)) || a->nregions == 0)
			return af_error_set(
			    AF_ERR_CONFIG, "%s: account %s needs access_key_id, secret and regions",
			    path, a->label);
	}
	if (s->naccounts == 0)
		return af_error_set(AF_ERR_CONFIG, "%s: no [account NAME] section", path);
	if ((err = resolve_roles(s, path)) < 0)
		return err;
	return apply_limits(s, c, path);
}

/* The rate limiters' windows, for the limits as configured. */
static int alloc_windows(af_sim *s)
{
	for (size_t i = 0; i < s->naccounts; i++) {
		sim_account *a = &s->accounts[i];
		for (size_t p = 0; p < sim_product_count(); p++) {
			int lim = a->limits[p].rate_limit;
			if (lim <= 0)
				continue;
			if (!(a->window[p] = calloc((size_t)lim, sizeof(int64_t))))
				return af_error_oom();
			for (int k = 0; k < lim; k++)
				a->window[p][k] = INT64_MIN / 2;
		}
	}
	return 0;
}

int sim_config_load(af_sim *s, const char *path)
{
	parse_ctx c = {.s = s};
	int err = path ? load_file(s, &c, path) : load_demo(s);

	if (err == 0 && !path)
		err = resolve_roles(s, "built-in demo");
	if (err == 0)
		err = alloc_windows(s);
	for (size_t j = 0; j < c.nlim; j++) {
		free(c.lim[j].account);
		free(c.lim[j].key);
		free(c.lim[j].value);
	}
	free(c.lim);
	return err;
}

void sim_config_free(af_sim *s)
{
	for (size_t i = 0; i < s->naccounts; i++) {
		sim_account *a = &s->accounts[i];
		free(a->label);
		free(a->key_id);
		if (a->secret)
			OPENSSL_cleanse(a->secret, strlen(a->secret));
		free(a->secret);
		if (a->token)
			OPENSSL_cleanse(a->token, strlen(a->token));
		free(a->token);
		for (int r = 0; r < a->nregions; r++)
			free(a->regions[r]);
		for (size_t p = 0; p < SIM_PRODUCTS_MAX; p++)
			free(a->window[p]);
	}
	free(s->accounts);
	s->accounts = NULL;
	s->naccounts = 0;
	for (size_t i = 0; i < s->nroles; i++) {
		sim_role *ro = &s->roles[i];
		free(ro->name);
		free(ro->arn);
		free(ro->account_label);
		free(ro->trust);
		free(ro->external_id);
		free(ro->oidc_provider);
		if (ro->oidc_token)
			OPENSSL_cleanse(ro->oidc_token, strlen(ro->oidc_token));
		free(ro->oidc_token);
	}
	free(s->roles);
	s->roles = NULL;
	s->nroles = 0;
}

int sim_account_by_key(const af_sim *s, const char *provider, const char *key_id)
{
	for (size_t i = 0; i < s->naccounts; i++)
		if (s->accounts[i].key_id && strcmp(s->accounts[i].provider, provider) == 0 &&
		    strcmp(s->accounts[i].key_id, key_id) == 0)
			return (int)i;
	return -1;
}

int sim_account_by_label(const af_sim *s, const char *label)
{
	for (size_t i = 0; i < s->naccounts; i++)
		if (strcmp(s->accounts[i].label, label) == 0)
			return (int)i;
	return -1;
}

int sim_account_region(const sim_account *a, const char *region)
{
	for (int i = 0; i < a->nregions; i++)
		if (strcmp(a->regions[i], region) == 0)
			return i;
	return -1;
}
