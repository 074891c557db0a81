/* aifleet-sim: command line front end of the cloud API simulator. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "sim.h"

static void usage(FILE *f)
{
	fputs("Usage: aifleet-sim [OPTIONS]\n"
	      "Simulates, on one HTTP port and with real ACS3/TC3 signature verification:\n",
	      f);
	for (size_t i = 0; i < sim_product_count(); i++) {
		const sim_product *p = sim_product_at(i);
		fprintf(f, "  %-18s", p->product->title);
		for (size_t a = 0; a < p->nactions; a++)
			fprintf(f, "%s%s", a ? ", " : " ", p->actions[a].name);
		fputc('\n', f);
	}
	fputs("\n"
	      "  --listen ADDR:PORT  listen address (default 127.0.0.1:8089; port 0 = any free)\n"
	      "  --port-file PATH    write the bound port to PATH once ready\n"
	      "  --config FILE       accounts and limits (INI); default: the demo accounts\n"
	      "  --seed N            fleet seed (default 1)\n"
	      "  --items N           items per product per account and region (default 50)\n"
	      "  --fixtures          serve the API pages' examples verbatim\n"
	      "  --latency-ms MS     added latency for every API request (default 0)\n"
	      "  --threads N         thread pool of N (default 0: one thread per connection)\n"
	      "  --credential-ttl S  issued temporary credentials last at most S seconds\n"
	      "  --imdsv2-required   the ECS metadata service refuses calls without a token\n"
	      "  --verbose           log one line per request to stderr (never secrets)\n"
	      "  --help              this text\n\n"
	      "Also STS (Alibaba AssumeRole, AssumeRoleWithOIDC; Tencent AssumeRole,\n"
	      "AssumeRoleWithWebIdentity) and the ECS and CVM instance metadata services.\n"
	      "Control API (unauthenticated): GET /_sim/health, GET "
	      "/_sim/fleet?product=&account=&region=,\n"
	      "POST /_sim/mutate, GET|POST|DELETE /_sim/faults, GET /_sim/stats, POST "
	      "/_sim/stats/reset.\n"
	      "Fault kinds: http500 throttle drop timeout malformed truncated auth error_body\n"
	      "short_page empty_page lying_total repeat_page out_of_range oversized.\n"
	      "See docs/simulator.md for the config file, demo keys and control API.\n",
	      f);
}

static int parse_listen(sim_options *o, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	char *end = NULL;
	long port;
	if (!colon)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || colon == arg)
		return -1;
	free(o->listen_host);
	o->listen_host = strndup(arg, (size_t)(colon - arg));
	o->port = (int)port;
	return 0;
}

/* Reads the command line into o: -1 to go on, else the exit code. */
static int parse_args(sim_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
	                                         {"port-file", required_argument, NULL, 'p'},
	                                         {"config", required_argument, NULL, 'c'},
	                                         {"seed", required_argument, NULL, 's'},
	                                         {"items", required_argument, NULL, 'n'},
	                                         {"fixtures", no_argument, NULL, 'f'},
	                                         {"latency-ms", required_argument, NULL, 'L'},
	                                         {"threads", required_argument, NULL, 't'},
	                                         {"verbose", no_argument, NULL, 'v'},
	                                         {"credential-ttl", required_argument, NULL, 'T'},
	                                         {"imdsv2-required", no_argument, NULL, 'I'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (parse_listen(o, optarg) < 0) {
				fprintf(stderr, "aifleet-sim: --listen wants ADDR:PORT\n");
				return 1;
			}
			break;
		case 'p':
			o->port_file = optarg;
			break;
		case 'c':
			o->config_file = optarg;
			break;
		case 's':
			o->seed = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			o->items = atoi(optarg);
			break;
		case 'f':
			o->fixtures = true;
			break;
		case 'L':
			o->latency_ms = atoi(optarg);
			break;
		case 't':
			o->threads = atoi(optarg);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'T': {
			long v;
			if (sim_parse_long(&v, optarg) < 0 || v < 1 || v > SIM_DURATION_MAX) {
				fprintf(stderr,
				        "aifleet-sim: --credential-ttl wants 1..%d seconds\n",
				        SIM_DURATION_MAX);
				return 2;
			}
			o->credential_ttl = (int)v;
			break;
		}
		case 'I':
			o->imdsv2_required = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	sim_options o;
	af_sim *s = NULL;
	sigset_t set;
	int sig = 0, rc;

	sim_options_defaults(&o);
	o.listen_host = strdup("127.0.0.1");
	if ((rc = parse_args(&o, argc, argv)) >= 0)
		goto done;
	rc = 1;
	/* Signals are taken synchronously by sigwait below; block them before
	 * the server threads start so that they inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (af_sim_start(&s, &o) < 0) {
		fprintf(stderr, "aifleet-sim: %s\n", af_error_last());
		goto done;
	}
	if (o.port_file) {
		FILE *f = fopen(o.port_file, "w");
		if (!f || fprintf(f, "%u\n", af_sim_port(s)) < 0 || fclose(f) != 0) {
			fprintf(stderr, "aifleet-sim: cannot write %s\n", o.port_file);
			goto done;
		}
	}
	printf("aifleet-sim: listening on http://%s:%u\n", o.listen_host, af_sim_port(s));
	fflush(stdout);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			break;
		if (sig == SIGHUP) {
			/* SIGHUP only reports; mutations go through POST /_sim/mutate */
			fprintf(stderr, "aifleet-sim: SIGHUP ignored (use POST /_sim/mutate)\n");
			continue;
		}
		break;
	}
	rc = 0;
done:
	af_sim_stop(s);
	free(o.listen_host);
	return rc;
}
