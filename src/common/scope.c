#include "aifleet/record.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

char *af_scope_name(char *out, size_t n, const af_scope *sc)
{
	snprintf(out, n, "%s/%s/%s/%s", sc->provider ? sc->provider : "?",
		 sc->account ? sc->account : "?", sc->region ? sc->region : "?",
		 sc->product ? sc->product : "?");
	return out;
}

/* SHA-256 of the four fields, each followed by a unit separator (0x1f,
 * which none of them holds): the first 8 bytes, big-endian. SHA-256 for
 * no secrecy, only because it is fixed forever and everywhere. */
uint64_t af_scope_hash(const af_scope *sc)
{
	const char *fields[4] = {sc->provider, sc->account, sc->region, sc->product};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t h = 0;

	if (!ctx)
		return 0;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; i < 4; i++) {
		const char *f = fields[i] ? fields[i] : "";

		EVP_DigestUpdate(ctx, f, strlen(f));
		EVP_DigestUpdate(ctx, "\x1f", 1);
	}
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	for (size_t i = 0; i < 8 && i < len; i++)
		h = h << 8 | md[i];
	return h;
}
