#include "aifleet/collect.h"

#include <string.h>

extern const af_collector af_collector_tair;
extern const af_collector af_collector_tione;
extern const af_collector af_collector_hologres;

const af_collector *const af_collectors[] = {
	&af_collector_tair,
	&af_collector_hologres,
	&af_collector_tione,
	NULL,
};

const af_collector *af_collector_find(const char *product)
{
	for (size_t i = 0; af_collectors[i]; i++)
		if (strcmp(af_collectors[i]->product, product) == 0)
			return af_collectors[i];
	return NULL;
}
