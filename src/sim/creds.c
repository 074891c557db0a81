/*
 * Roles and the temporary credentials the simulator issues for them (STS,
 * the instance metadata services). The table is bounded (a ring of
 * SIM_ISSUED_MAX: the oldest set makes room) and shared by the server's
 * threads under s->lock; whoever verifies a request gets a copy, wiped
 * after use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "aifleet/error.h"
#include "aifleet/record.h"
#include "sim.h"

int64_t sim_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_random_alnum(char *out, size_t n)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char b[256];
	size_t len = n ? n - 1 : 0;

	if (len > sizeof(b))
		len = sizeof(b);
	if (RAND_bytes(b, (int)len) != 1) {
		uint64_t st = (uint64_t)sim_wall_ms();
		for (size_t i = 0; i < len; i++)
			b[i] = (unsigned char)sim_rng(&st);
	}
	/* 248 = 4 * 62: no bias from the modulo */
	for (size_t i = 0; i < len; i++) {
		while (b[i] >= 248 && RAND_bytes(&b[i], 1) == 1)
			;
		out[i] = set[b[i] % 62];
	}
	if (n)
		out[len] = '\0';
	OPENSSL_cleanse(b, sizeof(b));
}

void sim_iso_time(char out[24], int64_t ms)
{
	sim_fmt_time(out, 24, "%Y-%m-%dT%H:%M:%SZ", ms / 1000);
}

int sim_role_by_arn(const af_sim *s, const char *provider, const char *arn)
{
	for (size_t i = 0; arn && i < s->nroles; i++)
		if (strcmp(s->roles[i].arn, arn) == 0 &&
		    strcmp(sim_role_provider(s, &s->roles[i]), provider) == 0)
			return (int)i;
	return -1;
}

const char *sim_role_provider(const af_sim *s, const sim_role *role)
{
	return s->accounts[role->account].provider;
}

bool sim_role_trusts(const sim_role *role, const char *label)
{
	size_t n = strlen(label);
	for (const char *p = role->trust; p && *p;) {
		size_t len;
		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ", ");
		if (len == n && len && strncmp(p, label, n) == 0)
			return true;
		p += len;
	}
	return false;
}

int sim_issue(af_sim *s, sim_issued *out, int role, int duration)
{
	const sim_role *ro = &s->roles[role];
	const char *provider = sim_role_provider(s, ro);
	bool ali = strcmp(provider, AF_PROVIDER_ALIBABA) == 0;
	int ttl = duration;
	sim_issued *slot;

	if (s->opt.credential_ttl > 0 && s->opt.credential_ttl < ttl)
		ttl = s->opt.credential_ttl;
	memset(out, 0, sizeof(*out));
	out->provider = provider;
	out->account = ro->account;
	out->role = role;
	if (ali) {
		/* STS. and 20 letters and digits; the token is opaque, CAIS.. */
		memcpy(out->key_id, "STS.", 4);
		sim_random_alnum(out->key_id + 4, 21);
		sim_random_alnum(out->secret, 45);
		memcpy(out->token, "CAIS", 4);
		sim_random_alnum(out->token + 4, 121);
	} else {
		memcpy(out->key_id, "AKID", 4);
		sim_random_alnum(out->key_id + 4, 33);
		sim_random_alnum(out->secret, 45);
		sim_random_alnum(out->token, 129);
	}
	out->expires_ms = sim_wall_ms() + (int64_t)ttl * 1000;
	pthread_mutex_lock(&s->lock);
	if (!s->issued && !(s->issued = calloc(SIM_ISSUED_MAX, sizeof(*s->issued)))) {
		pthread_mutex_unlock(&s->lock);
		sim_issued_wipe(out);
		return af_error_oom();
	}
	slot = &s->issued[s->issued_next];
	s->issued_next = (s->issued_next + 1) % SIM_ISSUED_MAX;
	sim_issued_wipe(slot);
	*slot = *out;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int sim_issued_find(af_sim *s, sim_issued *out, const char *provider, const char *key_id)
{
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; s->issued && i < SIM_ISSUED_MAX; i++) {
		const sim_issued *e = &s->issued[i];
		if (e->provider && strcmp(e->provider, provider) == 0 &&
		    strcmp(e->key_id, key_id) == 0) {
			*out = *e;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void sim_issued_wipe(sim_issued *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
	c->provider = NULL;
}

void sim_issued_free(af_sim *s)
{
	if (s->issued) {
		OPENSSL_cleanse(s->issued, SIM_ISSUED_MAX * sizeof(*s->issued));
		free(s->issued);
	}
	s->issued = NULL;
	OPENSSL_cleanse(s->md_tokens, sizeof(s->md_tokens));
}
