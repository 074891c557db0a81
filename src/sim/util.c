/* Small helpers of the simulator: deterministic hashing, ids, errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "sim.h"

/* splitmix64's finalizer: a bijection on 64 bits, so ids derived from
 * (scope, serial) never collide and can be decoded back. */
#define M1 0xbf58476d1ce4e5b9ULL
#define M2 0x94d049bb133111ebULL

uint64_t sim_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= M1;
	x ^= x >> 27;
	x *= M2;
	x ^= x >> 31;
	return x;
}

static uint64_t unxorshift(uint64_t x, int k)
{
	uint64_t r = x;
	for (int i = k; i < 64; i += k)
		r = x ^ (r >> k);
	return r;
}

static uint64_t inverse_odd(uint64_t a)
{
	uint64_t x = a; /* Newton: each step doubles the correct low bits */
	for (int i = 0; i < 6; i++)
		x *= 2 - a * x;
	return x;
}

uint64_t sim_unmix64(uint64_t x)
{
	x = unxorshift(x, 31);
	x *= inverse_odd(M2);
	x = unxorshift(x, 27);
	x *= inverse_odd(M1);
	x = unxorshift(x, 30);
	return x;
}

uint64_t sim_hash(uint64_t a, uint64_t b)
{
	return sim_mix64(a ^ sim_mix64(b + 0x9e3779b97f4a7c15ULL));
}

uint64_t sim_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return sim_mix64(h);
}

uint64_t sim_rng(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return sim_mix64(*state);
}

static const char b36[] = "0123456789abcdefghijklmnopqrstuvwxyz";

void sim_base36(char out[14], uint64_t v)
{
	for (int i = 12; i >= 0; i--) {
		out[i] = b36[v % 36];
		v /= 36;
	}
	out[13] = '\0';
}

int sim_unbase36(uint64_t *out, const char *s)
{
	unsigned __int128 v = 0;
	if (strlen(s) != 13)
		return -1;
	for (; *s; s++) {
		const char *p = strchr(b36, *s);
		if (!p || !*s)
			return -1;
		v = v * 36 + (unsigned)(p - b36);
	}
	if (v > UINT64_MAX)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

void sim_request_id(char out[37], bool upper)
{
	unsigned char b[16];
	const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t o = 0;
	if (RAND_bytes(b, sizeof(b)) != 1)
		memset(b, 0x5a, sizeof(b));
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

int64_t sim_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps in small steps so that a shutdown is never held up by a hang. */
void sim_sleep_ms(af_sim *s, int ms)
{
	int64_t end = sim_now_ms() + ms;
	while (!s->stopping) {
		int64_t left = end - sim_now_ms();
		if (left <= 0)
			break;
		struct timespec ts = {0, (left > 20 ? 20 : left) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

int sim_json_out(sim_resp *resp, int status, json_object *o)
{
	const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                        JSON_C_TO_STRING_NOSLASHESCAPE);
	int err;
	resp->status = status;
	af_buf_reset(&resp->body);
	if ((err = af_buf_puts(&resp->body, txt)) < 0) {
		/* never a silent empty 200: say what happened */
		resp->status = 500;
		af_buf_reset(&resp->body);
		af_buf_puts(&resp->body,
		            "{\"Code\":\"InternalError\",\"Message\":\"response too large\"}");
	}
	json_object_put(o);
	return err;
}

int sim_ali_error(sim_resp *resp, const sim_req *r, int status, bool roa, const char *code,
                  const char *msg)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, roa ? "requestId" : "RequestId",
	                       json_object_new_string(r->request_id));
	json_object_object_add(o, roa ? "hostId" : "HostId", json_object_new_string("aifleet-sim"));
	json_object_object_add(o, roa ? "code" : "Code", json_object_new_string(code));
	json_object_object_add(o, roa ? "message" : "Message", json_object_new_string(msg));
	json_object_object_add(o, roa ? "recommend" : "Recommend",
	                       json_object_new_string("https://api.aliyun.com/troubleshoot"));
	return sim_json_out(resp, status, o);
}

int sim_tc_error(sim_resp *resp, const sim_req *r, const char *code, const char *msg)
{
	json_object *o = json_object_new_object(), *in = json_object_new_object(),
	            *e = json_object_new_object();
	json_object_object_add(e, "Code", json_object_new_string(code));
	json_object_object_add(e, "Message", json_object_new_string(msg));
	json_object_object_add(in, "Error", e);
	json_object_object_add(in, "RequestId", json_object_new_string(r->request_id));
	json_object_object_add(o, "Response", in);
	return sim_json_out(resp, 200, o);
}

int sim_error(sim_resp *resp, const sim_req *r, int status, const char *code, const char *msg)
{
	const sim_product *p = sim_product_at((size_t)r->product);
	if (p && p->style == SIM_TC3)
		return sim_tc_error(resp, r, code, msg);
	return sim_ali_error(resp, r, status, p && p->style == SIM_ACS3_ROA, code, msg);
}

static const char *kinds[] = {"none",        "http500",      "throttle",   "drop",
                              "timeout",     "malformed",    "truncated",  "auth",
                              "error_body",  "short_page",   "empty_page", "lying_total",
                              "repeat_page", "out_of_range", "oversized"};
_Static_assert(sizeof(kinds) / sizeof(kinds[0]) == SIM_F_NKINDS, "a name for every fault kind");

const char *sim_fault_name(int k)
{
	return k >= 0 && k < SIM_F_NKINDS ? kinds[k] : "?";
}

int sim_fault_parse(const char *s)
{
	for (int i = 1; i < SIM_F_NKINDS; i++)
		if (strcmp(s, kinds[i]) == 0)
			return i;
	return -1;
}

int sim_parse_long(long *out, const char *s)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno)
		return -1;
	*out = v;
	return 0;
}
