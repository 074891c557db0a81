/*
 * The services the simulator answers besides the products: STS and the
 * instance metadata services, which hand out the temporary credentials the
 * products' APIs then accept. The one list of them; each claims its own
 * requests (sim_service.claims) before the server routes to the products.
 */
#include <stdio.h>

#include "sim.h"

static const sim_service *const services[] = {
    &sim_service_ecs_metadata,
    &sim_service_cvm_metadata,
    &sim_service_alibaba_sts,
    &sim_service_tencent_sts,
};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

const sim_service *sim_service_find(const sim_req *r)
{
	for (size_t i = 0; i < NSERVICES; i++)
		if (services[i]->claims(r))
			return services[i];
	return NULL;
}

void sim_service_count(af_sim *s, const char *service, const char *action)
{
	char key[128];
	snprintf(key, sizeof(key), "%s %s", service, action);
	pthread_mutex_lock(&s->lock);
	sim_stats_count(&s->stats.by_service, &s->stats.nby_service, key);
	pthread_mutex_unlock(&s->lock);
}
