/*
 * The simulated products: the one list of them. A product is its file
 * (its generator, rendering, handlers and sim_product descriptor) and one
 * line here. The order is part of the fleet: a scope's key, and so every id
 * and value generated in it, hashes the product's index, so a product is
 * added at the end.
 */
#include <string.h>
#include <strings.h>

#include "aifleet/record.h"
#include "sim.h"

/* defined in each product's file */
extern const sim_product sim_product_tair;
extern const sim_product sim_product_hologres;
extern const sim_product sim_product_tione;

static const sim_product *const products[] = {
    &sim_product_tair,
    &sim_product_hologres,
    &sim_product_tione,
};
#define NPRODUCTS (sizeof(products) / sizeof(products[0]))
_Static_assert(NPRODUCTS <= SIM_PRODUCTS_MAX, "a scope key has 4 bits for the product");

size_t sim_product_count(void)
{
	return NPRODUCTS;
}

const sim_product *sim_product_at(size_t index)
{
	return index < NPRODUCTS ? products[index] : NULL;
}

int sim_product_index(const char *name)
{
	for (size_t i = 0; name && i < NPRODUCTS; i++)
		if (strcmp(products[i]->product->name, name) == 0)
			return (int)i;
	return -1;
}

const char *sim_product_name(int index)
{
	return index >= 0 && (size_t)index < NPRODUCTS ? products[index]->product->name : "?";
}

const char *sim_provider_find(const char *name)
{
	/* the console's and the SDKs' other name for Alibaba Cloud */
	if (name && strcasecmp(name, "aliyun") == 0)
		name = AF_PROVIDER_ALIBABA;
	for (size_t i = 0; name && i < NPRODUCTS; i++)
		if (strcasecmp(products[i]->product->provider, name) == 0)
			return products[i]->product->provider;
	return NULL;
}
