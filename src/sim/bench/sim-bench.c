/*
 * aifleet-sim-bench: start-up time and serving rate of the simulator with a
 * large fleet (not run by ctest). Runs the server in-process on a free port
 * and pages through it over real HTTP with signed requests.
 *
 *   aifleet-sim-bench [ITEMS]     (default 100000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "aifleet/error.h"
#include "aifleet/sign.h"
#include "sim.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	*(size_t *)ud += sz * n;
	return sz * n;
}

/* One signed Alibaba GET; returns the HTTP status, adds the body size. */
static long ali_get(CURL *c, uint16_t port, const char *path, const char *action,
                    const char *version, const af_kv *q, size_t nq, size_t *bytes)
{
	char host[32], date[21], nonce[33], sha[65], url[1024], hh[8][256];
	af_buf qs = AF_BUF_INIT;
	af_sign_steps st;
	struct curl_slist *h = NULL;
	long status = 0;
	snprintf(host, sizeof(host), "127.0.0.1:%u", port);
	af_acs3_format_date(date, (int64_t)time(NULL));
	af_sign_nonce(nonce);
	af_sha256_hex(sha, "", 0);
	af_kv kv[] = {
	    {"host", host},       {"x-acs-action", action},         {"x-acs-version", version},
	    {"x-acs-date", date}, {"x-acs-signature-nonce", nonce}, {"x-acs-content-sha256", sha}};
	af_canonical_query(&qs, q, nq);
	af_sign_steps_init(&st);
	af_acs3_input in = {.method = "GET",
	                    .canonical_uri = path,
	                    .query = q,
	                    .nquery = nq,
	                    .headers = kv,
	                    .nheaders = 6,
	                    .payload_hash = sha,
	                    .access_key_id = "LTAI5tSimDemoAli0000001",
	                    .access_key_secret = "sim-demo-ali-secret-NOT-REAL"};
	if (af_acs3_sign(&st, &in) < 0)
		goto done;
	for (int i = 1; i < 6; i++) {
		snprintf(hh[i], sizeof(hh[i]), "%s: %s", kv[i].key, kv[i].value);
		h = curl_slist_append(h, hh[i]);
	}
	snprintf(hh[0], sizeof(hh[0]), "Authorization: %s", af_buf_data(&st.authorization));
	h = curl_slist_append(h, hh[0]);
	snprintf(url, sizeof(url), "http://%s%s%s%s", host, path, af_buf_len(&qs) ? "?" : "",
	         af_buf_data(&qs) ? af_buf_data(&qs) : "");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, bytes);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
done:
	curl_slist_free_all(h);
	af_sign_steps_free(&st);
	af_buf_free(&qs);
	return status;
}

static long tc_post(CURL *c, uint16_t port, const char *body, size_t *bytes)
{
	char host[32], sha[65], h[4][256];
	const char *ct = "application/json";
	int64_t ts = (int64_t)time(NULL);
	af_sign_steps st;
	struct curl_slist *hl = NULL;
	long status = 0;
	snprintf(host, sizeof(host), "127.0.0.1:%u", port);
	af_sha256_hex(sha, body, strlen(body));
	af_sign_steps_init(&st);
	af_tc3_input in = {.method = "POST",
	                   .content_type = ct,
	                   .host = host,
	                   .payload_hash = sha,
	                   .service = "tione",
	                   .timestamp = ts,
	                   .secret_id = "AKIDSimDemoTencent000000001",
	                   .secret_key = "sim-demo-tc-secret-NOT-REAL"};
	if (af_tc3_sign(&st, &in) < 0)
		goto done;
	snprintf(h[0], sizeof(h[0]), "Authorization: %s", af_buf_data(&st.authorization));
	snprintf(h[1], sizeof(h[1]), "X-TC-Timestamp: %lld", (long long)ts);
	snprintf(h[2], sizeof(h[2]), "Content-Type: %s", ct);
	snprintf(h[3], sizeof(h[3]), "X-TC-Region: ap-guangzhou");
	for (int i = 0; i < 4; i++)
		hl = curl_slist_append(hl, h[i]);
	hl = curl_slist_append(hl, "X-TC-Action: DescribeModelServiceGroups");
	snprintf(h[0], sizeof(h[0]), "http://%s/", host);
	curl_easy_setopt(c, CURLOPT_URL, h[0]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, bytes);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
done:
	curl_slist_free_all(hl);
	af_sign_steps_free(&st);
	return status;
}

int main(int argc, char **argv)
{
	int items = argc > 1 ? atoi(argv[1]) : 100000;
	sim_options o;
	af_sim *s = NULL;
	double t0, t1;
	size_t bytes = 0;
	int pages = 0;
	CURL *c;

	sim_options_defaults(&o);
	o.port = 0;
	o.items = items;
	t0 = now();
	if (af_sim_start(&s, &o) < 0) {
		fprintf(stderr, "sim-bench: %s\n", af_error_last());
		return 1;
	}
	t1 = now();
	printf("start-up with %d items per product per account and region: %.1f ms\n", items,
	       (t1 - t0) * 1e3);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	t0 = now();
	for (int page = 1;; page++) {
		char pn[16];
		size_t before = bytes;
		snprintf(pn, sizeof(pn), "%d", page);
		af_kv q[] = {{"PageNumber", pn}, {"PageSize", "100"}, {"RegionId", "cn-beijing"}};
		long st = ali_get(c, af_sim_port(s), "/", "DescribeTairKVCacheInferInstances",
		                  "2015-01-01", q, 3, &bytes);
		if (st != 200) {
			fprintf(stderr, "sim-bench: page %d: HTTP %ld\n", page, st);
			break;
		}
		pages++;
		if (bytes - before < 200) /* an empty page */
			break;
	}
	t1 = now();
	printf("Tair: %d pages of 100 (%zu bytes) in %.2f s: %.0f pages/s, %.0f items/s\n", pages,
	       bytes, t1 - t0, pages / (t1 - t0), (double)items / (t1 - t0));

	/* TI-ONE: lift the 20/s limit of the demo account to measure the server */
	for (size_t i = 0; i < s->naccounts; i++)
		for (size_t p = 0; p < sim_product_count(); p++)
			s->accounts[i].limits[p].rate_limit = 0;
	bytes = 0;
	pages = 0;
	t0 = now();
	for (int off = 0; off < items; off += 100) {
		char body[64];
		snprintf(body, sizeof(body), "{\"Offset\":%d,\"Limit\":100}", off);
		if (tc_post(c, af_sim_port(s), body, &bytes) != 200)
			break;
		pages++;
	}
	t1 = now();
	printf("TI-ONE: %d pages of 100 (%zu bytes) in %.2f s: %.0f pages/s\n", pages, bytes,
	       t1 - t0, pages / (t1 - t0));

	bytes = 0;
	t0 = now();
	long st = ali_get(c, af_sim_port(s), "/cn-hangzhou/api/v1/instances/rpc/listInstanceModel",
	                  "ListInstanceModel", "2022-06-01", NULL, 0, &bytes);
	t1 = now();
	printf("Hologres ListInstanceModel with %d nodes: HTTP %ld, %zu bytes in %.2f s\n", items,
	       st, bytes, t1 - t0);

	curl_easy_cleanup(c);
	curl_global_cleanup();
	t0 = now();
	af_sim_stop(s);
	printf("shutdown: %.1f ms\n", (now() - t0) * 1e3);
	return 0;
}
