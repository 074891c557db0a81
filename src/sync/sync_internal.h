#ifndef AIFLEET_SYNC_INTERNAL_H
#define AIFLEET_SYNC_INTERNAL_H

/*
 * What sync.c shares with check.c (`aifleet check-config`), which must
 * see the configuration exactly as a run would: the same scopes, the same
 * endpoints, the same credential sources. Not part of the public contract.
 */

#include <stdbool.h>
#include <stddef.h>

#include "aifleet/config.h"
#include "aifleet/creds.h"
#include "aifleet/http.h"

#include "aifleet/sync.h"

/* Is scope (account, product, region index) one `o` selects: the product
 * enabled for the account and not excluded by --only, the account one of
 * --account's, the scope in --shard's share? */
bool af_sync_scope_wanted(const af_sync_options *o, const af_account_config *a, size_t product,
			  size_t region);

/* Does `o` select any scope of the account? */
bool af_sync_account_wanted(const af_sync_options *o, const af_account_config *a);

/* --only, --account and --shard make sense for this configuration. */
int af_sync_check_selection(const af_config *cfg, const af_sync_options *o);

/* The account's endpoint for a product in a region: its override, or the
 * vendor's default. */
int af_sync_endpoint(char *out, size_t n, const af_account_config *a, size_t product,
		     const char *region);

/* The account's own credentials, from its configured source (not the
 * role it may assume). The instance role, URI and OIDC sources ask a
 * server through `session`. */
int af_sync_load_credentials(af_credentials *out, const af_account_config *a,
			     af_session *session);

#endif
