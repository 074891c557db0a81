/*
 * The product registry: the built-in products, in the order their scopes
 * are listed and run, and the ones a program registers before a run.
 */
#include "aifleet/product.h"
#include "aifleet/error.h"

#include <stdio.h>
#include <string.h>

extern const af_product af_product_tair;
extern const af_product af_product_hologres;
extern const af_product af_product_tione;

/* The one list of built-in products: a new product is one line here. */
static const af_product *products[AF_PRODUCTS_MAX] = {
	&af_product_tair,
	&af_product_hologres,
	&af_product_tione,
};

static size_t nproducts(void)
{
	size_t n = 0;

	while (n < AF_PRODUCTS_MAX && products[n])
		n++;
	return n;
}

size_t af_product_count(void)
{
	return nproducts();
}

const af_product *af_product_at(size_t index)
{
	return index < AF_PRODUCTS_MAX ? products[index] : NULL;
}

int af_product_index(const char *name)
{
	for (size_t i = 0; name && i < AF_PRODUCTS_MAX && products[i]; i++)
		if (strcmp(products[i]->name, name) == 0)
			return (int)i;
	return -1;
}

const af_product *af_product_find(const char *name)
{
	int i = af_product_index(name);

	return i < 0 ? NULL : products[i];
}

static bool valid_name(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

int af_product_register(const af_product *p)
{
	size_t n = nproducts();

	if (!p || !valid_name(p->name))
		return af_error_set(AF_ERR_CONFIG, "a product name is [a-z0-9_]+, at most 64 bytes");
	if (af_product_find(p->name))
		return af_error_set(AF_ERR_CONFIG, "product %s is already registered", p->name);
	if (!p->provider || !p->title || !p->collect || !p->normalize || !p->default_endpoint)
		return af_error_set(AF_ERR_CONFIG, "product %s: provider, title, collect, normalize "
				    "and default_endpoint are required", p->name);
	if (p->default_page_size < 0 || p->max_page_size < p->default_page_size ||
	    !(p->default_rate > 0))
		return af_error_set(AF_ERR_CONFIG, "product %s: page sizes must be 0 <= default <= "
				    "max, and the default rate above 0", p->name);
	if (n == AF_PRODUCTS_MAX)
		return af_error_set(AF_ERR_LIMIT, "more than %d products", AF_PRODUCTS_MAX);
	products[n] = p;
	return 0;
}

void af_product_names(char *out, size_t n)
{
	size_t used = 0;

	if (n == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < AF_PRODUCTS_MAX && products[i]; i++) {
		int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "", products[i]->name);

		if (w < 0 || (size_t)w >= n - used)
			return;
		used += (size_t)w;
	}
}

int af_default_endpoint(char *out, size_t n, const char *product, const char *region, bool intl)
{
	const af_product *p = af_product_find(product);
	int err;

	if (!p)
		return af_error_set(AF_ERR_CONFIG, "no default endpoint for product %s",
				    product ? product : "(none)");
	if ((err = p->default_endpoint(out, n, region, intl)) < 0)

	if (err < 0)
		return af_error_prefix(err, "%s: ", p->name);
	return 0;
}
