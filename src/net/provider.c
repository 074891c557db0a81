/*
 * Credentials that renew themselves: one holder per account, shared by the
 * scope workers. Temporary credentials (instance roles, STS) are fetched
 * again when 180 s or less remain, as the official SDKs do, and once more
 * when an answer says the token expired anyway (a clock that drifted, a
 * revoked session). The holder's lock is held while fetching, so that
 * workers hitting the same expiry fetch once and all use the result.
 */
#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFRESH_MARGIN_S 180

struct af_cred_provider {
	pthread_mutex_t lock;
	af_credentials current;
	af_cred_fetch fetch; /* NULL: static credentials, never renewed */
	void *ctx;
	const char *label;   /* for the log: the account */
	unsigned refreshes;
};

int af_cred_provider_new(af_cred_provider **out, af_credentials *initial, af_cred_fetch fetch,
			 void *ctx, const char *label)
{
	af_cred_provider *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return af_error_oom();
	pthread_mutex_init(&p->lock, NULL);
	p->current = *initial; /* takes ownership */
	memset(initial, 0, sizeof(*initial));
	p->fetch = fetch;
	p->ctx = ctx;
	p->label = label;
	*out = p;
	return 0;
}

void af_cred_provider_free(af_cred_provider *p)
{
	if (!p)
		return;
	af_credentials_clear(&p->current);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Under p->lock: replaces the current credentials by fresh ones. */
static int renew(af_cred_provider *p, struct af_session *s, const char *why)
{
	af_credentials fresh;
	int err;

	if ((err = p->fetch(p->ctx, s, &fresh)) < 0)
		return af_error_prefix(err, "renewing the credentials of %s: ", p->label);
	af_credentials_clear(&p->current);
	p->current = fresh;
	p->refreshes++;
	af_info("creds", "%s: temporary credentials renewed (%s)", p->label, why);
	return 0;
}

static bool expiring(const af_credentials *c)
{
	return c->expires_at != 0 && c->expires_at - (int64_t)time(NULL) <= REFRESH_MARGIN_S;
}

int af_cred_provider_get(af_cred_provider *p, struct af_session *s, af_credentials *out)
{
	int err = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	if (p->fetch && expiring(&p->current))
		err = renew(p, s, "180 s or less were left");
	if (err == 0)
		err = af_credentials_copy(out, &p->current);
	pthread_mutex_unlock(&p->lock);
	return err;
}

int af_cred_provider_expired(af_cred_provider *p, struct af_session *s, const af_credentials *used)
{
	int err = 0;

	if (!p->fetch)
		return af_error_set(AF_ERR_AUTH, "%s: the credentials were refused as expired and "
				    "cannot be renewed", p->label);
	pthread_mutex_lock(&p->lock);
	/* Another worker may have renewed them since `used` was taken. */
	if (!p->current.access_key_id || !used->access_key_id ||
	    strcmp(p->current.access_key_id, used->access_key_id) == 0)
		err = renew(p, s, "the provider said the token expired");
	pthread_mutex_unlock(&p->lock);
	return err;
}

unsigned af_cred_provider_refreshes(af_cred_provider *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->refreshes;
	pthread_mutex_unlock(&p->lock);
	return n;
}

bool af_credentials_expired_code(const char *code)
{
	static const char *const codes[] = {
		"InvalidSecurityToken.Expired", /* Alibaba */
		"AuthFailure.TokenFailure",     /* Tencent: expired or invalid token */
		NULL,
	};

	for (size_t i = 0; code && codes[i]; i++)
		if (strcmp(code, codes[i]) == 0)
			return true;
	return false;
}
