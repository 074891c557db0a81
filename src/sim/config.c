/* Accounts and per product/account limits: built-in demo set or an INI file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "aifleet/error.h"
#include "sim.h"

/* The demo fleet used when no --config is given. The keys are fake and only
 * mean something to this simulator (documented in docs/simulator.md). */
static const struct {
	const char *label;
	sim_provider provider;
	const char *key_id, *secret, *token;
	const char *regions;
} demo[] = {
    {"demo-ali", SIM_ALIBABA, "LTAI5tSimDemoAli0000001", "sim-demo-ali-secret-NOT-REAL", NULL,
     "cn-hangzhou,cn-beijing"},
    {"demo-ali-sts", SIM_ALIBABA, "STS.SimDemoAliSts000001", "sim-demo-sts-secret-NOT-REAL",
     "sim-demo-sts-token-NOT-REAL", "cn-shanghai"},
    {"demo-tc", SIM_TENCENT, "AKIDSimDemoTencent000000001", "sim-demo-tc-secret-NOT-REAL", NULL,
     "ap-guangzhou,ap-shanghai"},
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

static void limits_default(sim_limits *l, sim_product p)
{
	memset(l, 0, sizeof(*l));
	l->hang_ms = 30000;
	/* TI-ONE documents 20 requests/s for this API; the Alibaba APIs publish
	 * no figure, so they are unlimited unless configured. */
	l->rate_limit = p == SIM_TIONE ? 20 : 0;
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
	for (int p = 0; p < SIM_NPRODUCTS; p++)
		limits_default(&n->limits[p], p);
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

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	parse_ctx *c = user;
	af_sim *s = c->s;
	if (strncmp(section, "account ", 8) == 0) {
		const char *label = section + 8;
		int i = sim_account_by_label(s, label);
		sim_account *a = i >= 0 ? &s->accounts[i] : account_add(s, label);
		if (!a)
			return 0;
		if (strcmp(name, "provider") == 0) {
			if (strcasecmp(value, "alibaba") == 0 || strcasecmp(value, "aliyun") == 0)
				a->provider = SIM_ALIBABA;
			else if (strcasecmp(value, "tencent") == 0)
				a->provider = SIM_TENCENT;
			else
				goto bad;
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
		if (sim_product_parse(prod) < 0)
			goto bad;
		n = realloc(c->lim, (c->nlim + 1) * sizeof(*n));
		if (!n)
			return 0;
		c->lim = n;
		n[c->nlim].product = sim_product_parse(prod);
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

int sim_config_load(af_sim *s, const char *path)
{
	parse_ctx c = {.s = s};
	int err = 0;

	if (!path) {
		for (size_t i = 0; i < sizeof(demo) / sizeof(demo[0]); i++) {
			sim_account *a = account_add(s, demo[i].label);
			if (!a)
				return af_error_set(AF_ERR_NOMEM, "out of memory");
			a->provider = demo[i].provider;
			a->key_id = strdup(demo[i].key_id);
			a->secret = strdup(demo[i].secret);
			a->token = demo[i].token ? strdup(demo[i].token) : NULL;
			set_regions(a, demo[i].regions);
		}
		goto resolve;
	}
	int rc = ini_parse(path, on_entry, &c);
	if (rc < 0) {
		err = af_error_set(AF_ERR_CONFIG, "%s: cannot open", path);
		goto done;
	}
	if (c.err || rc > 0) {
		err = af_error_set(AF_ERR_CONFIG, "%s: line %d: %s", path, rc,
		                   c.err ? c.msg : "syntax error");
		goto done;
	}
	for (size_t i = 0; i < s->naccounts; i++) {
		sim_account *a = &s->accounts[i];
		if (!a->key_id || !a->secret || a->nregions == 0) {
			err = af_error_set(AF_ERR_CONFIG,
			                   "%s: account %s needs access_key_id, secret and regions",
			                   path, a->label);
			goto done;
		}
	}
	if (s->naccounts == 0) {
		err = af_error_set(AF_ERR_CONFIG, "%s: no [account NAME] section", path);
		goto done;
	}
	/* product-wide limits first, then the per-account ones override them */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t j = 0; j < c.nlim; j++) {
			limit_entry *e = &c.lim[j];
			if ((pass == 0) != (e->account == NULL))
				continue;
			for (size_t i = 0; i < s->naccounts; i++) {
				if (e->account && strcmp(e->account, s->accounts[i].label) != 0)
					continue;
				if (limit_apply(&s->accounts[i].limits[e->product], e->key,
				                e->value) < 0) {
					err =
					    af_error_set(AF_ERR_CONFIG, "%s: unknown limit key %s",
					                 path, e->key);
					goto done;
				}
			}
		}
	}
resolve:
	for (size_t i = 0; i < s->naccounts; i++) {
		sim_account *a = &s->accounts[i];
		for (int p = 0; p < SIM_NPRODUCTS; p++) {
			if (a->limits[p].rate_limit > 0) {
				a->window[p] =
				    calloc((size_t)a->limits[p].rate_limit, sizeof(int64_t));
				if (!a->window[p]) {
					err = af_error_set(AF_ERR_NOMEM, "out of memory");
					goto done;
				}
				for (int k = 0; k < a->limits[p].rate_limit; k++)
					a->window[p][k] = INT64_MIN / 2;
			}
		}
	}
done:
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
		for (int p = 0; p < SIM_NPRODUCTS; p++)
			free(a->window[p]);
	}
	free(s->accounts);
	s->accounts = NULL;
	s->naccounts = 0;
}

int sim_account_by_key(const af_sim *s, sim_provider p, const char *key_id)
{
	for (size_t i = 0; i < s->naccounts; i++)
		if (s->accounts[i].provider == p && strcmp(s->accounts[i].key_id, key_id) == 0)
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
