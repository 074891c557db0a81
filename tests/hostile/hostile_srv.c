/*
 * The lying Tair KVCache API of test_hostile (see hostile_srv.h).
 */
#include "hostile_srv.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/buf.h"
#include "testutil.h"

#define TAIR_ACTION   "DescribeTairKVCacheInferInstances"
#define REDIRECT_PATH "/elsewhere/"

struct hs_server {
	struct MHD_Daemon *d;
	pthread_mutex_t mu;
	int port;
	int phase;
	hs_mode mode;
	bool dropped_in_phase;
	unsigned long seq;
	hs_arrival arrivals[HS_MAX_ARRIVALS];
	size_t n;
	int bad_requests;
	atomic_bool stopping;
	const unsigned char *bomb;
	size_t bomb_len;
};

/* What one request is answered with. */
typedef struct answer {
	unsigned status;
	char *body; /* malloc'd, or NULL for the bomb */
	size_t len;
	const char *content_type;
	char location[256];
	bool gzip_bomb;
	bool drip;
	bool drop;
	bool close;
} answer;

/* How one page is built. */
typedef struct page_spec {
	const char *region;
	int page, size;
	int first, count;  /* items [first, first + count) of the region */
	const char *total; /* TotalCount, as JSON text */
	char request_id[96];
	hs_mode evil; /* item-level lie for HS_EVIL_ITEM, or HS_HONEST */
} page_spec;

static const char *mode_name(hs_mode m)
{
	static const char *const names[] = {
	    "honest",       "api-error",        "page2-empty",    "page2-short",  "total-small",
	    "repeat-page1", "total-drift",      "cap-1e400",      "name-20mb",    "cap-dot",
	    "html-502",     "html-200",         "redirect",       "gzip-bomb",    "slow-drip",
	    "deep-nesting", "bad-strings",      "total-negative", "total-string", "total-fraction",
	    "drop-once",    "drop-once-reused",
	};

	return (size_t)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

static void oom(void)
{
	fputs("hostile_srv: out of memory\n", stderr);
	abort();
}

static void put(af_buf *b, const char *s)
{
	if (af_buf_puts(b, s) < 0)
		oom();
}

static int region_items(const char *region)
{
	if (strcmp(region, HS_GOOD_REGION) == 0)
		return HS_GOOD_ITEMS;
	if (strcmp(region, HS_BAD_REGION) == 0)
		return HS_BAD_ITEMS;
	return -1;
}

static const char *region_tag(const char *region)
{
	return strcmp(region, HS_BAD_REGION) == 0 ? "bj" : "hz";
}

/* One TairInferInstanceDTO, shaped like the API page's example. */
static void put_item(af_buf *b, const char *region, int i, hs_mode evil)
{
	const char *tag = region_tag(region);
	char tmp[1024];

	snprintf(tmp, sizeof(tmp), "{\"InstanceId\":\"tk-%s-%04d\",\"InstanceName\":", tag, i);
	put(b, tmp);
	if (evil == HS_NAME_20MB) {
		put(b, "\"");
		for (size_t k = 0; k < HS_HUGE_NAME_BYTES / 1024; k++) {
			char chunk[1024];

			memset(chunk, 'n', sizeof(chunk));
			if (af_buf_append(b, chunk, sizeof(chunk)) < 0)
				oom();
		}
		put(b, "\"");
	} else if (evil == HS_BAD_STRINGS) {
		/* JSON escape \u0000 plus raw bytes that are not UTF-8 */
		put(b, "\"kvcache-\\u0000-\xff\xfe-\xc0\xaf-bj\"");
	} else {
		snprintf(tmp, sizeof(tmp), "\"kvcache-%s-%d\"", tag, i);
		put(b, tmp);
	}
	snprintf(tmp, sizeof(tmp),
	         ",\"InstanceStatus\":\"%s\",\"InstanceType\":\"TairInfer\","
	         "\"InstanceClass\":\"kvcache.cu.g4b.%d\",\"Model\":\"%s\",\"ModelServiceNum\":1,"
	         "\"ComputeUnitNum\":%d,\"Capacity\":",
	         i % 7 == 3 ? "Changing" : "Normal", 1 + i % 4,
	         i % 2 ? "Qwen3-32B" : "DeepSeek-OCR", 1 + i % 3);
	put(b, tmp);
	if (evil == HS_CAPACITY_1E400)
		put(b, "1e400");
	else if (evil == HS_CAPACITY_DOT)
		put(b, "256.");
	else
		put(b, i % 4 == 0 ? "256" : "512");
	snprintf(tmp, sizeof(tmp),
	         ",\"VNodeName\":\"tv-%s%04d\",\"VNodeCount\":%d,\"FixedVNodeCount\":0,"
	         "\"ElasticVNodeCount\":0,\"ChargeType\":\"%s\",\"NetworkType\":\"VPC\","
	         "\"RegionId\":\"%s\",\"ZoneId\":\"%s-g\",\"VpcId\":\"vpc-2zef5w848p4j5g%04d\","
	         "\"VSwitchId\":\"vsw-8vbf0ksk774ai6q1d%04d\",\"ResourceGroupId\":\"rg-"
	         "acfm4bdru5z0001\","
	         "\"PrivateIp\":\"172.16.%d.%d\",\"CreateTime\":\"2025-04-07T04:46Z\","
	         "\"EndTime\":\"2026-11-04T02:09:26Z\",\"Tags\":",
	         tag, i, 2 + i % 2, i % 5 ? "PostPaid" : "PrePaid", region, region, i, i, i / 200,
	         i % 200 + 1);
	put(b, tmp);
	if (evil == HS_DEEP_NESTING_100K) {
		char *deep = malloc(2 * HS_DEEP_NESTING + 1);

		if (!deep)
			oom();
		memset(deep, '[', HS_DEEP_NESTING);
		memset(deep + HS_DEEP_NESTING, ']', HS_DEEP_NESTING);
		deep[2 * HS_DEEP_NESTING] = '\0';
		put(b, "{\"Tag\":");
		put(b, deep);
		put(b, "}");
		free(deep);
	} else if (evil == HS_BAD_STRINGS) {
		put(b, "{\"Tag\":[{\"Key\":\"team\",\"Value\":\"infra-\xc3\x28-\\u0000x\"}]}");
	} else {
		snprintf(tmp, sizeof(tmp), "{\"Tag\":[{\"Key\":\"team\",\"Value\":\"infra-%d\"}]}",
		         i % 9);
		put(b, tmp);
	}
	put(b, "}");
}

static void put_page(af_buf *b, const page_spec *p)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp),
	         "{\"RequestId\":\"%s\",\"TotalCount\":%s,\"PageNumber\":%d,\"PageSize\":%d,"
	         "\"Instances\":{\"TairInferInstanceDTO\":[",
	         p->request_id, p->total, p->page, p->size);
	put(b, tmp);
	for (int k = 0; k < p->count; k++) {
		int i = p->first + k;

		if (k)
			put(b, ",");
		put_item(b, p->region, i,
		         strcmp(p->region, HS_BAD_REGION) == 0 && i == HS_EVIL_ITEM ? p->evil
		                                                                    : HS_HONEST);
	}
	put(b, "]}}");
}

static void set_body(answer *a, af_buf *b)
{
	a->len = af_buf_len(b);
	a->body = af_buf_detach(b);
	if (!a->body)
		oom();
}

static void json_answer(answer *a, unsigned status, const char *text)
{
	a->status = status;
	a->content_type = "application/json";
	a->len = strlen(text);
	if (!(a->body = strdup(text)))
		oom();
}

/* The honest page, then the lie of `mode` on top (bad region only). */
static void plan_page(answer *a, hs_mode mode, const char *region, int page, int size,
                      unsigned long seq, int port)
{
	int n = region_items(region);
	page_spec p = {
	    .region = region, .page = page, .size = size, .total = "", .evil = HS_HONEST};
	char total[32];
	bool hostile = false;
	af_buf b;

	af_buf_init(&b, 0);
	snprintf(total, sizeof(total), "%d", n);
	p.total = total;
	p.first = (page - 1) * size;
	p.count = p.first >= n ? 0 : (n - p.first < size ? n - p.first : size);
	a->status = 200;
	a->content_type = "application/json";

	switch (mode) {
	case HS_HONEST:
	case HS_DROP_ONCE:
	case HS_DROP_ONCE_REUSED:
	case HS_SLOW_DRIP:
		break;
	case HS_API_ERROR:
		json_answer(a, 200,
		            "{\"Code\":\"InternalError\",\"Message\":\"boom\","
		            "\"RequestId\":\"R-1\"}");
		return;
	case HS_PAGE2_EMPTY:
		if (page >= 2) {
			p.count = 0;
			hostile = true;
		}
		break;
	case HS_PAGE2_SHORT:
		if (page == 2 && p.count > 20)
			p.count = 20;
		else if (page >= 3)
			p.count = 0;
		hostile = page >= 2;
		break;
	case HS_TOTAL_SMALL:
		p.total = "10";
		hostile = true;
		break;
	case HS_REPEAT_PAGE1:
		p.first = 0;
		p.count = n < size ? n : size;
		hostile = page >= 2;
		break;
	case HS_TOTAL_DRIFT:
		if (page >= 2) {
			p.total = "170";
			hostile = true;
		}
		break;
	case HS_CAPACITY_1E400:
	case HS_NAME_20MB:
	case HS_CAPACITY_DOT:
	case HS_DEEP_NESTING_100K:
	case HS_BAD_STRINGS:
		p.evil = mode;
		hostile = HS_EVIL_ITEM >= p.first && HS_EVIL_ITEM < p.first + p.count;
		break;
	case HS_HTML_502:
	case HS_HTML_200: {
		static const char html[] =
		    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
		    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n"
		    "</body>\r\n</html>\r\n";

		a->status = mode == HS_HTML_502 ? 502 : 200;
		a->content_type = "text/html";
		a->len = strlen(html);
		if (!(a->body = strdup(html)))
			oom();
		return;
	}
	case HS_REDIRECT:
		a->status = 302;
		a->content_type = "text/html";
		snprintf(a->location, sizeof(a->location),
		         "http://127.0.0.1:%d" REDIRECT_PATH
		         "?RegionId=%s&PageNumber=%d&PageSize=%d",
		         port, region, page, size);
		if (!(a->body = strdup("<html><body>Found</body></html>")))
			oom();
		a->len = strlen(a->body);
		return;
	case HS_GZIP_BOMB:
		a->gzip_bomb = true;
		return;
	case HS_TOTAL_NEGATIVE:
		p.total = "-150";
		hostile = true;
		break;
	case HS_TOTAL_STRING:
		p.total = "\"150\"";
		hostile = true;
		break;
	case HS_TOTAL_FRACTION:
		p.total = "150.5";
		hostile = true;
		break;
	}
	if (hostile)
		snprintf(p.request_id, sizeof(p.request_id), HS_HOSTILE_RID "%s-p%d-%lu",
		         mode_name(mode), page, seq);
	else
		snprintf(p.request_id, sizeof(p.request_id), "honest-%s-p%d-%lu",
		         region_tag(region), page, seq);
	put_page(&b, &p);
	set_body(a, &b);
	a->drip = mode == HS_SLOW_DRIP;
}

static int parse_int(const char *s, int lo, int hi)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi)
		return -1;
	return (int)v;
}

/* Decides the answer; records the arrival. Called with the lock held. */
static void plan(hs_server *s, struct MHD_Connection *conn, const char *url, const char *method,
                 answer *a)
{
	const char *region = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "RegionId");
	const char *nonce =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-acs-signature-nonce");
	const char *action = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-acs-action");
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	int page = parse_int(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "PageNumber"),
	                     1, 10000);
	int size =
	    parse_int(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "PageSize"), 1, 100);
	bool redirected = strncmp(url, REDIRECT_PATH, strlen(REDIRECT_PATH) - 1) == 0;
	char want_path[64];
	hs_arrival *r;

	if (s->n >= HS_MAX_ARRIVALS) {
		s->bad_requests++;
		json_answer(a, 503,
		            "{\"Code\":\"ServiceUnavailable\",\"Message\":\"arrival log full\","
		            "\"RequestId\":\"OVERFLOW\"}");
		return;
	}
	r = &s->arrivals[s->n++];
	memset(r, 0, sizeof(*r));
	r->phase = s->phase;
	snprintf(r->path, sizeof(r->path), "%s", url);
	snprintf(r->region, sizeof(r->region), "%s", region ? region : "");
	snprintf(r->nonce, sizeof(r->nonce), "%s", nonce ? nonce : "");
	r->page = page > 0 ? page : 0;
	{
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
			r->client_port =
			    ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port);
	}

	snprintf(want_path, sizeof(want_path), "/%s", region ? region : "");
	if (strcmp(method, "GET") != 0 || !region || region_items(region) < 0 || page < 0 ||
	    size < 0 || !nonce || !*nonce || !action || strcmp(action, TAIR_ACTION) != 0 || !auth ||
	    strncmp(auth, "ACS3-HMAC-SHA256 Credential=", 28) != 0 ||
	    (!redirected && strcmp(url, want_path) != 0 &&
	     !(strncmp(url, want_path, strlen(want_path)) == 0 &&
	       strcmp(url + strlen(want_path), "/") == 0))) {
		s->bad_requests++;
		json_answer(a, 400,
		            "{\"Code\":\"InvalidParameter\",\"Message\":\"unexpected request "
		            "shape\",\"RequestId\":\"BAD-REQUEST\"}");
		return;
	}
	s->seq++;
	if (redirected) {
		/* The target of HS_REDIRECT: an honest-looking empty list. Reaching
		 * it at all means the client followed the redirect. */
		char body[256];

		snprintf(body, sizeof(body),
		         "{\"RequestId\":\"REDIRECTED\",\"TotalCount\":0,\"PageNumber\":%d,"
		         "\"PageSize\":%d,\"Instances\":{\"TairInferInstanceDTO\":[]}}",
		         page, size);
		json_answer(a, 200, body);
		return;
	}
	a->close = s->mode == HS_DROP_ONCE;
	if (strcmp(region, HS_BAD_REGION) == 0 && !s->dropped_in_phase &&
	    ((s->mode == HS_DROP_ONCE && page == 1) ||
	     (s->mode == HS_DROP_ONCE_REUSED && page == 2))) {
		s->dropped_in_phase = true;
		r->dropped = true;
		a->drop = true;
		return;
	}
	plan_page(a, strcmp(region, HS_BAD_REGION) == 0 ? s->mode : HS_HONEST, region, page, size,
	          s->seq, s->port);
}

typedef struct drip_state {
	hs_server *s;
	char *body;
	size_t len;
	int sent;
} drip_state;

static ssize_t drip_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	drip_state *d = cls;

	if (pos >= d->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (d->sent >= HS_DRIP_MAX_BYTES || atomic_load(&d->s->stopping))
		return MHD_CONTENT_READER_END_WITH_ERROR;
	for (int i = 0; i < HS_DRIP_INTERVAL_MS / 20; i++) {
		if (atomic_load(&d->s->stopping))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		af_test_sleep_ms(20);
	}
	if (max < 1)
		return 0;
	buf[0] = d->body[pos];
	d->sent++;
	return 1;
}

static void drip_free(void *cls)
{
	drip_state *d = cls;

	free(d->body);
	free(d);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
	static int marker;
	hs_server *s = cls;
	struct MHD_Response *resp;
	answer a = {0};
	enum MHD_Result ret;

	(void)version;
	(void)upload_data;
	if (!*con_cls) {
		*con_cls = &marker; /* headers are in; answer on the next call */
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* a GET has no body; ignore one */
		return MHD_YES;
	}
	pthread_mutex_lock(&s->mu);
	plan(s, conn, url, method, &a);
	pthread_mutex_unlock(&s->mu);

	if (a.drop)
		return MHD_NO; /* close the connection without an answer */
	if (a.gzip_bomb) {
		resp = MHD_create_response_from_buffer(s->bomb_len, (void *)s->bomb,
		                                       MHD_RESPMEM_PERSISTENT);
	} else if (a.drip) {
		drip_state *d = calloc(1, sizeof(*d));

		if (!d)
			oom();
		d->s = s;
		d->body = a.body;
		d->len = a.len;
		resp = MHD_create_response_from_callback(a.len, 256, drip_read, d, drip_free);
		if (!resp)
			drip_free(d);
	} else {
		resp = MHD_create_response_from_buffer(a.len, a.body, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(a.body);
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type",
	                        a.content_type ? a.content_type : "application/json");
	if (a.gzip_bomb)
		MHD_add_response_header(resp, "Content-Encoding", "gzip");
	if (a.location[0])
		MHD_add_response_header(resp, "Location", a.location);
	if (a.close)
		MHD_add_response_header(resp, "Connection", "close");
	ret = MHD_queue_response(conn, a.status ? a.status : 200u, resp);
	MHD_destroy_response(resp);
	return ret;
}

hs_server *hs_start(const unsigned char *bomb, size_t bomb_len)
{
	hs_server *s = calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa;

	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->stopping, false);
	s->bomb = bomb;
	s->bomb_len = bomb_len;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0; /* the kernel picks a free port */
	s->d = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler,
	    s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
	if (!s->d) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	return s;
}

void hs_stop(hs_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stopping, true);
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int hs_port(const hs_server *s)
{
	return s->port;
}

void hs_set_phase(hs_server *s, int phase, hs_mode mode)
{
	pthread_mutex_lock(&s->mu);
	s->phase = phase;
	s->mode = mode;
	s->dropped_in_phase = false;
	pthread_mutex_unlock(&s->mu);
}

size_t hs_arrivals(hs_server *s, hs_arrival *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	memcpy(out, s->arrivals, (n < max ? n : max) * sizeof(*out));
	pthread_mutex_unlock(&s->mu);
	return n;
}

int hs_bad_requests(hs_server *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->bad_requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}
