#ifndef AIFLEET_PRODUCT_H
#define AIFLEET_PRODUCT_H

/*
 * Product descriptors: every fact about one cloud product that the rest
 * of aifleet needs, in one struct defined next to the product's collector
 * (src/collect/<product>.c), and one registry that lists them
 * (src/collect/registry.c). Configuration, transport, the sync engine and
 * the simulator learn about products only from here: nothing else
 * compares product names or counts products.
 *
 * Adding a product is a collector file that defines its descriptor, a
 * normalizer, their tests, and one line in the registry;
 * docs/adding-a-product.md walks through it. A program may also register
 * a product of its own at run time (af_product_register), before it loads
 * a configuration: the test suite proves the seam that way.
 */

#include <stdbool.h>
#include <stddef.h>

#include "aifleet/normalize.h"

typedef struct af_job af_job;

typedef struct af_product {
	/* Stored in the database's product column, named in the config
	 * (products = ..., and the prefix of <name>_endpoint, _rate_limit,
	 * _burst, _page_size) and by --only. [a-z0-9_], unique. */
	const char *name;
	const char *provider; /* AF_PROVIDER_*: who signs, which accounts */
	const char *title;    /* for people: "Tair KVCache" */

	/* The endpoint (https://host) of a region when the account does not
	 * configure one; `intl`: the account's intl option. Use
	 * af_endpoint_expand() (aifleet/http.h) on a "{region}" template: it
	 * refuses a missing region, and one that is not [a-z0-9-]+.
	 * AF_ERR_CONFIG or AF_ERR_LIMIT. */
	int (*default_endpoint)(char *out, size_t n, const char *region, bool intl);

	/* Paging: what a page asks for when the account sets no page_size,
	 * and the most the API accepts (a larger page_size is capped to it).
	 * Both 0 for a product that is not paged. */
	int default_page_size;
	int max_page_size;

	/* Requests per second per account when the account sets no
	 * rate_limit (the provider's published limit, or a safe guess). */
	double default_rate;

	/* Collects one scope: see aifleet/collect.h. */
	int (*collect)(af_job *job);

	/* Maps one page (as af_job_emit_page hands it over) to records. */
	af_page_normalizer normalize;

	/* The RAM/CAM actions the collector calls, NULL-terminated: what the
	 * least-privilege policies in deploy/ grant, and a test checks that
	 * they grant exactly these. */
	const char *const *permissions;

	/* Member names in this product's answers that hold secrets,
	 * NULL-terminated (NULL: none). The secret policy (aifleet/secret.h)
	 * must recognise every one; the tests check that it does. */
	const char *const *secret_fields;
} af_product;

/* The most products one program knows: built in plus registered. */
#define AF_PRODUCTS_MAX 32

/* Products in registry order (the order scopes are listed and run in). */
size_t af_product_count(void);
const af_product *af_product_at(size_t index);

/* By name; NULL / -1 when unknown. The index is also the index of the
 * product's settings in af_account_config.products. */
const af_product *af_product_find(const char *name);
int af_product_index(const char *name);

/*
 * Adds a product after the built-in ones. Not thread-safe: call it before
 * loading a configuration and starting a run. AF_ERR_CONFIG for a name
 * already known or not [a-z0-9_]+, a missing provider, collector,
 * normalizer or endpoint, a max_page_size below default_page_size;
 * AF_ERR_LIMIT past AF_PRODUCTS_MAX.
 */
int af_product_register(const af_product *p);

/* "tair_kvcache, hologres, tione": the known names, for messages and
 * --help. Truncated to fit `n`. */
void af_product_names(char *out, size_t n);

/* The default endpoint (https://host) of a product by name, for a region:
 * the descriptor's default_endpoint, with the product named in its errors.
 * AF_ERR_CONFIG for an unknown product or a bad or missing region the
 * product needs, AF_ERR_LIMIT if `n` is too small. */
int af_default_endpoint(char *out, size_t n, const char *product, const char *region, bool intl);

#endif
