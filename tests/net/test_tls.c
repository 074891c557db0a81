/*
 * TLS verification of the real aifleet binary against a real TLS server.
 *
 * At start the test makes two self-signed certificates with OpenSSL's C API
 * (EC P-256 keys, X509v3, CA:TRUE, subjectAltName IP:127.0.0.1 only): "the
 * CA" (CN aifleet-test-tls-ca) and "another CA" (CN aifleet-test-tls-other),
 * written as PEM to a temporary directory. A libmicrohttpd server in TLS
 * mode (GnuTLS in Debian's build) on 127.0.0.1 presents one of them and
 * answers an honest Tair KVCache page (DescribeTairKVCacheInferInstances,
 * the body shape of SPEC.md section 4): TS_ITEMS instances per RegionId.
 * It counts accepted TCP connections and completed HTTP requests: a
 * connection without a request is a TLS handshake the client gave up.
 *
 * aifleet runs with credentials = env (dummy keys: the server does not
 * verify signatures), one product (tair_kvcache), a fresh database each.
 *
 * | case                                  | expected                                  |
 * |---------------------------------------|-------------------------------------------|
 * | a) no ca_bundle (system CAs only)     | exit 78, stderr names ca_bundle, no       |
 * |                                       | instance loaded, 0 HTTP requests served   |
 * | b) ca_bundle = the CA                 | exit 0, the TS_ITEMS instances loaded,    |
 * |                                       | scope complete (so a) and c) failed on    |
 * |                                       | verification, not on the server)          |
 * | c1) ca_bundle = another CA            | exit 78, ca_bundle named, nothing loaded  |
 * | c2) the CA, endpoint                  | exit 78 (host name mismatch: the cert     |
 * |     https://localhost:PORT            | has only IP:127.0.0.1), ca_bundle and     |
 * |                                       | localhost named, nothing loaded           |
 * | d) two regions, both unverifiable     | exit 78 (not 1, not 2), both scopes       |
 * |    (another CA): every scope fails    | failed and named, nothing loaded          |
 * | e) two accounts, one server each; the | exit 78; the verifiable account's         |
 * |    second presents another CA's cert  | scopes complete and loaded; the other's   |
 * |                                       | failed, its server served 0 requests      |
 * | f) ca_bundle = a file that does not   | exit 78, ca_bundle named, nothing loaded  |
 * |    exist                              |                                           |
 *
 * Bounds and cleanup: every aifleet run is killed after RUN_LIMIT_S and dies
 * with the test (PR_SET_PDEATHSIG); servers, databases and the per-test
 * directory are removed in teardown, also when an assertion failed; the
 * certificate directory in the group teardown.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "testdb.h"
#include "testutil.h"

#define AIFLEET_BIN AF_BINARY_DIR "/src/cli/aifleet"
#define RUN_LIMIT_S 60
#define TS_ITEMS    4
#define ACCOUNT     "tls-ali"
#define ACCOUNT2    "tls-ali-other"

/* ---- certificates -------------------------------------------------------- */

typedef struct pem_cert {
	char *key_pem;  /* PKCS#8 private key, for the server */
	char *cert_pem; /* the certificate, for the server */
	char path[600]; /* the certificate as a file: a ca_bundle */
} pem_cert;

static char *cert_dir;
static pem_cert the_ca, other_ca;

static char *bio_text(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = n > 0 ? malloc((size_t)n + 1) : NULL;

	if (s) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	return s;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A self-signed certificate for IP:127.0.0.1 (and nothing else) with a fresh
 * P-256 key; PEM in memory and in cert_dir/<file>. */
static int make_cert(pem_cert *out, const char *cn, const char *file)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	BIGNUM *serial = BN_new();
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	FILE *f;
	int rc = -1;

	if (!key || !x || !serial || !kb || !cb)
		goto done;
	if (!X509_set_version(x, 2) || !BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400) || !X509_set_pubkey(x, key))
		goto done;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	                                (const unsigned char *)"aifleet test_tls", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                                0) ||
	    !X509_set_issuer_name(x, name))
		goto done;
	if (add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, NID_subject_alt_name, "IP:127.0.0.1") < 0)
		goto done;
	if (!X509_sign(x, key, EVP_sha256()))
		goto done;
	if (!PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, x))
		goto done;
	out->key_pem = bio_text(kb);
	out->cert_pem = bio_text(cb);
	if (!out->key_pem || !out->cert_pem)
		goto done;
	snprintf(out->path, sizeof(out->path), "%s/%s", cert_dir, file);
	f = fopen(out->path, "w");
	if (!f)
		goto done;
	fputs(out->cert_pem, f);
	if (fclose(f) != 0)
		goto done;
	rc = 0;
done:
	BIO_free(kb);
	BIO_free(cb);
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static void cert_free(pem_cert *c)
{
	if (c->key_pem)
		OPENSSL_cleanse(c->key_pem, strlen(c->key_pem));
	free(c->key_pem);
	free(c->cert_pem);
	memset(c, 0, sizeof(*c));
}

/* ---- the TLS Tair server ------------------------------------------------- */

typedef struct tls_srv {
	struct MHD_Daemon *d;
	int port;
	char tag[8]; /* in the instance ids: which server answered */
	atomic_int connections;
	atomic_int requests;
} tls_srv;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	tls_srv *s = cls;

	(void)conn;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&s->connections, 1);
}

static void put_page(af_buf *b, const tls_srv *s, const char *region, int page, int size)
{
	int first = (page - 1) * size;

	af_buf_printf(b,
	              "{\"RequestId\":\"TLS-%s-%s-p%d\",\"TotalCount\":%d,\"PageNumber\":%d,"
	              "\"PageSize\":%d,\"Instances\":{\"TairInferInstanceDTO\":[",
	              s->tag, region, page, TS_ITEMS, page, size);
	for (int i = first, k = 0; i < TS_ITEMS && k < size; i++, k++)
		af_buf_printf(
		    b,
		    "%s{\"InstanceId\":\"tk-%s-%s-%03d\",\"InstanceName\":\"kvcache-tls-%d\","
		    "\"InstanceStatus\":\"Normal\",\"InstanceType\":\"TairInfer\","
		    "\"InstanceClass\":\"kvcache.cu.g4b.2\",\"Model\":\"Qwen3-32B\","
		    "\"ModelServiceNum\":1,\"ComputeUnitNum\":2,\"Capacity\":256,"
		    "\"VNodeName\":\"tv-tls%03d\",\"VNodeCount\":2,\"FixedVNodeCount\":0,"
		    "\"ElasticVNodeCount\":0,\"ChargeType\":\"PostPaid\",\"NetworkType\":\"VPC\","
		    "\"RegionId\":\"%s\",\"ZoneId\":\"%s-g\",\"VpcId\":\"vpc-tls\","
		    "\"VSwitchId\":\"vsw-tls\",\"ResourceGroupId\":\"rg-tls\","
		    "\"PrivateIp\":\"172.16.0.%d\",\"CreateTime\":\"2025-04-07T04:46Z\","
		    "\"EndTime\":\"2026-11-04T02:09:26Z\","
		    "\"Tags\":{\"Tag\":[{\"Key\":\"team\",\"Value\":\"tls\"}]}}",
		    k ? "," : "", s->tag, region, i, i, i, region, region, i + 1);
	af_buf_puts(b, "]}}");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
	static int marker;
	tls_srv *s = cls;
	const char *region, *page_s, *size_s;
	int page, size;
	af_buf b = AF_BUF_INIT;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)url;
	(void)version;
	(void)upload;
	if (!*con_cls) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&s->requests, 1);
	region = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "RegionId");
	page_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "PageNumber");
	size_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "PageSize");
	page = page_s ? atoi(page_s) : 1;
	size = size_s ? atoi(size_s) : 30;
	if (strcmp(method, "GET") != 0 || !region || strlen(region) > 32 || page < 1 ||
	    page > 100 || size < 1 || size > 100) {
		af_buf_puts(&b, "{\"RequestId\":\"TLS-BAD\",\"Code\":\"InvalidParameter\","
		                "\"Message\":\"unexpected request\"}");
		resp = MHD_create_response_from_buffer(af_buf_len(&b), (void *)af_buf_data(&b),
						       MHD_RESPMEM_MUST_COPY);
		af_buf_free(&b);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Type", "application/json");
		ret = MHD_queue_response(conn, 400, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	put_page(&b, s, region, page, size);
	if (!af_buf_data(&b))
		return MHD_NO;
	resp = MHD_create_response_from_buffer(af_buf_len(&b), (void *)af_buf_data(&b),
						       MHD_RESPMEM_MUST_COPY);
	af_buf_free(&b);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static tls_srv *srv_start(const pem_cert *cert, const char *tag)
{
	tls_srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	if (!s)
		return NULL;
	snprintf(s->tag, sizeof(s->tag), "%s", tag);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->d = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL,
	    NULL, handler, s, MHD_OPTION_HTTPS_MEM_KEY, cert->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
	    cert->cert_pem, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!s->d) {
		free(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	if (!s->port) {
		MHD_stop_daemon(s->d);
		free(s);
		return NULL;
	}
	return s;
}

static void srv_stop(tls_srv *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}

/* ---- per test: database, servers, directory, runs ------------------------ */

typedef struct env {
	af_testdb db;
	bool db_made;
	tls_srv *srv[2];
	char *dir;
	char config[700];
	af_test_run_result run; /* the last one */
} env;

typedef struct account_spec {
	const char *label;
	const char *host; /* the endpoint is https://<host>:<port of srv> */
	const tls_srv *srv;
	const char *regions;
} account_spec;

static int group_setup(void **state)
{
	(void)state;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		fprintf(stderr, "test_tls: this libmicrohttpd has no TLS support\n");
		return -1;
	}
	cert_dir = af_test_tempdir();
	if (make_cert(&the_ca, "aifleet-test-tls-ca", "ca.pem") < 0 ||
	    make_cert(&other_ca, "aifleet-test-tls-other", "other-ca.pem") < 0) {
		fprintf(stderr, "test_tls: cannot make the certificates\n");
		return -1;
	}
	/* Dummy keys: the server does not verify signatures. */
	setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tTlsDummy0000000001", 1);
	setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "tls-dummy-secret-NOT-REAL", 1);
	unsetenv("ALIBABA_CLOUD_SECURITY_TOKEN");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cert_free(&the_ca);
	cert_free(&other_ca);
	af_test_rmtree(cert_dir);
	free(cert_dir);
	cert_dir = NULL;
	return 0;
}

static int setup(void **state)
{
	env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	env *e = *state;

	if (!e)
		return 0;
	srv_stop(e->srv[0]);
	srv_stop(e->srv[1]);
	if (e->db_made)
		af_testdb_drop(&e->db);
	af_test_rmtree(e->dir);
	free(e->dir);
	af_test_run_free(&e->run);
	free(e);
	return 0;
}

/* Database, directory and one server per certificate given (NULL: none). */
static void env_up(env *e, const pem_cert *c0, const pem_cert *c1)
{
	e->dir = af_test_tempdir();
	af_testdb_create(&e->db);
	e->db_made = true;
	if (c0 && !(e->srv[0] = srv_start(c0, "s0")))
		fail_msg("cannot start the TLS server");
	if (c1 && !(e->srv[1] = srv_start(c1, "s1")))
		fail_msg("cannot start the second TLS server");
}

/* `ca_bundle` NULL: no such key. */
static void write_config(env *e, const char *ca_bundle, const account_spec *acc, size_t nacc)
{
	FILE *f;

	snprintf(e->config, sizeof(e->config), "%s/aifleet.ini", e->dir);
	f = fopen(e->config, "w");
	assert_non_null(f);
	fprintf(f,
	        "[database]\nconninfo = %s\n\n"
	        "[sync]\nconcurrency = 2\nmax_attempts = 2\nretry_budget = 10\n"
	        "connect_timeout_ms = 2000\ntimeout_ms = 5000\n",
	        e->db.conninfo);
	if (ca_bundle)
		fprintf(f, "ca_bundle = %s\n", ca_bundle);
	for (size_t i = 0; i < nacc; i++) {
		fprintf(f,
		        "\n[account %s]\nprovider = alibaba\ncredentials = env\n"
		        "regions = %s\nproducts = tair_kvcache\ntair_kvcache_endpoint = ",
		        acc[i].label, acc[i].regions);
		fprintf(f, "https://%s:%d", acc[i].host, acc[i].srv->port);
		fprintf(f, "\ntair_kvcache_rate_limit = 100\ntair_kvcache_burst = 10\n"
		           "tair_kvcache_page_size = 100\n");
	}
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(e->config, 0600), 0);
}

/* `aifleet --config ... --no-progress sync`, killed after RUN_LIMIT_S. */
static int run_sync(env *e)
{
	const char *argv[] = {AIFLEET_BIN, "--config", e->config, "--no-progress", "sync", NULL};

	if (af_test_run(AIFLEET_BIN, argv, e->dir, RUN_LIMIT_S, &e->run) < 0)
		fail_msg("aifleet did not finish within %d s", RUN_LIMIT_S);
	return e->run.code;
}

static void check(bool ok, const env *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(bool ok, const env *e, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("--- aifleet stdout ---\n%s--- aifleet stderr ---\n%s---\n",
	       e->run.out ? e->run.out : "", e->run.err ? e->run.err : "");
	fflush(stdout);
	fail_msg("%s", msg);
}

static long long instances(const env *e, const char *account)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM aifleet.instance%s%s%s",
	         account ? " WHERE account = '" : "", account ? account : "", account ? "'" : "");
	return af_testdb_query_int(&e->db, sql);
}

/* How many scopes of `account` are in `state`; -1 if there is no
 * scope_state table (the run did not get as far as the schema). */
static long long scopes_in(const env *e, const char *account, const char *state)
{
	char sql[384];

	if (af_testdb_query_int(&e->db, "SELECT count(*) FROM pg_tables WHERE schemaname = "
	                                "'aifleet' AND tablename = 'scope_state'") == 0)
		return -1;
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM aifleet.scope_state WHERE account = '%s' AND last_state = "
	         "'%s'",
	         account, state);
	return af_testdb_query_int(&e->db, sql);
}

/* The first stderr line naming `needle`, for the log. */
static void said(const env *e, const char *label, const char *needle)
{
	const char *bol = strstr(e->run.err, needle), *eol;
	size_t len;

	if (!bol)
		return;
	while (bol > e->run.err && bol[-1] != '\n')
		bol--;
	eol = strchr(bol, '\n');
	len = eol ? (size_t)(eol - bol) : strlen(bol);
	print_message("[tls] %s: said: %.*s\n", label, (int)(len > 600 ? 600 : len), bol);
}

static void report(const env *e, const char *label)
{
	print_message("[tls] %s: exit %d (%.2f s), instances %lld, server s0 %d connection(s) / "
	              "%d request(s)%s",
	              label, e->run.code, e->run.seconds, instances(e, NULL),
	              e->srv[0] ? atomic_load(&e->srv[0]->connections) : -1,
	              e->srv[0] ? atomic_load(&e->srv[0]->requests) : -1, e->srv[1] ? "" : "\n");
	if (e->srv[1])
		print_message(", s1 %d / %d\n", atomic_load(&e->srv[1]->connections),
		              atomic_load(&e->srv[1]->requests));
}

/* Exit 78 naming ca_bundle; nothing loaded; the server was reached (a TCP
 * connection) but no HTTP request got through the handshake. */
static void expect_refused(const env *e, const char *label)
{
	check(e->run.code == 78, e, "%s: exit %d, expected 78", label, e->run.code);
	check(strstr(e->run.err, "ca_bundle") != NULL, e, "%s: stderr does not name ca_bundle",
	      label);
	check(instances(e, NULL) == 0, e, "%s: %lld instances loaded, expected 0", label,
	      instances(e, NULL));
	check(atomic_load(&e->srv[0]->requests) == 0, e,
	      "%s: %d HTTP request(s) got through the handshake", label,
	      atomic_load(&e->srv[0]->requests));
	check(atomic_load(&e->srv[0]->connections) >= 1, e,
	      "%s: the client never connected: not a verification failure", label);
	check(scopes_in(e, ACCOUNT, "complete") <= 0, e, "%s: a scope is complete", label);
}

/* ---- the cases ------------------------------------------------------------ */

/* The first server's single account at `host` (regions `regions`), with
 * [sync] ca_bundle = `ca` (NULL: none): syncs and reports under `label`. */
static void sync_one_account(env *e, const char *host, const char *regions, const char *ca,
                             const char *label)
{
	account_spec acc = {ACCOUNT, host, NULL, regions};

	env_up(e, &the_ca, NULL);
	acc.srv = e->srv[0];
	write_config(e, ca, &acc, 1);
	run_sync(e);
	report(e, label);
}

static void test_a_no_ca_bundle_refused(void **state)
{
	env *e = *state;

	sync_one_account(e, "127.0.0.1", "cn-hangzhou", NULL, "a) no ca_bundle");
	said(e, "a) no ca_bundle", "ca_bundle");
	expect_refused(e, "a) no ca_bundle");
}

static void test_b_right_ca_loads(void **state)
{
	env *e = *state;

	sync_one_account(e, "127.0.0.1", "cn-hangzhou", the_ca.path, "b) ca_bundle = the CA");
	check(e->run.code == 0, e, "b): exit %d, expected 0", e->run.code);
	check(instances(e, ACCOUNT) == TS_ITEMS, e, "b): %lld instances, expected %d",
	      instances(e, ACCOUNT), TS_ITEMS);
	check(af_testdb_query_int(&e->db,
	                          "SELECT count(*) FROM aifleet.instance WHERE native_id "
	                          "LIKE 'tk-s0-cn-hangzhou-%' AND deleted_at IS NULL") == TS_ITEMS,
	      e, "b): the instances are not the server's");
	check(scopes_in(e, ACCOUNT, "complete") == 1, e, "b): the scope is not complete");
	check(atomic_load(&e->srv[0]->requests) >= 1, e, "b): the server served no request");
	check(strstr(e->run.err, "ca_bundle") == NULL, e, "b): stderr complains about ca_bundle");
}

static void test_c1_other_ca_refused(void **state)
{
	env *e = *state;

	sync_one_account(e, "127.0.0.1", "cn-hangzhou", other_ca.path, "c1) ca_bundle = another CA");
	said(e, "c1) ca_bundle = another CA", "ca_bundle");
	expect_refused(e, "c1) ca_bundle = another CA");
}

static void test_c2_host_name_mismatch_refused(void **state)
{
	env *e = *state;

	sync_one_account(e, "localhost", "cn-hangzhou", the_ca.path, "c2) the CA, https://localhost");
	said(e, "c2) the CA, https://localhost", "ca_bundle");
	expect_refused(e, "c2) the CA, https://localhost");
	/* curl's text names the host it could not match */
	check(strstr(e->run.err, "localhost") != NULL, e, "c2): stderr does not name localhost");
}

static void test_d_every_scope_unverifiable(void **state)
{
	env *e = *state;

	sync_one_account(e, "127.0.0.1", "cn-hangzhou, cn-beijing", other_ca.path, "d) both regions unverifiable");
	said(e, "d) both regions unverifiable", "ca_bundle");
	check(e->run.code != 1 && e->run.code != 2, e,
	      "d): exit %d: every scope failed verification, "
	      "which is a configuration error (78)",
	      e->run.code);
	expect_refused(e, "d) both regions unverifiable");
	check(strstr(e->run.err, "alibaba/" ACCOUNT "/cn-hangzhou/tair_kvcache") != NULL, e,
	      "d): stderr does not name the cn-hangzhou scope");
	check(strstr(e->run.err, "alibaba/" ACCOUNT "/cn-beijing/tair_kvcache") != NULL, e,
	      "d): stderr does not name the cn-beijing scope");
	check(scopes_in(e, ACCOUNT, "failed") == 2, e,
	      "d): %lld scope(s) recorded failed, expected both", scopes_in(e, ACCOUNT, "failed"));
	check(atomic_load(&e->srv[0]->connections) >= 2, e,
	      "d): %d connection(s): both regions should have tried",
	      atomic_load(&e->srv[0]->connections));
}

static void test_e_one_account_refused_other_loaded(void **state)
{
	env *e = *state;
	account_spec acc[2] = {
	    {ACCOUNT, "127.0.0.1", NULL, "cn-hangzhou, cn-beijing"},
	    {ACCOUNT2, "127.0.0.1", NULL, "cn-hangzhou, cn-beijing"},
	};

	env_up(e, &the_ca, &other_ca);
	acc[0].srv = e->srv[0];
	acc[1].srv = e->srv[1];
	write_config(e, the_ca.path, acc, 2);
	run_sync(e);
	report(e, "e) one account unverifiable");
	said(e, "e) one account unverifiable", "ca_bundle");
	check(e->run.code == 78, e, "e): exit %d, expected 78", e->run.code);
	check(strstr(e->run.err, "ca_bundle") != NULL, e, "e): stderr does not name ca_bundle");
	check(instances(e, ACCOUNT) == 2 * TS_ITEMS, e,
	      "e): %lld " ACCOUNT " instances, expected %d", instances(e, ACCOUNT), 2 * TS_ITEMS);
	check(instances(e, ACCOUNT2) == 0, e, "e): %lld " ACCOUNT2 " instances, expected 0",
	      instances(e, ACCOUNT2));
	check(scopes_in(e, ACCOUNT, "complete") == 2, e, "e): " ACCOUNT " scopes not complete");
	check(scopes_in(e, ACCOUNT2, "failed") == 2, e, "e): " ACCOUNT2 " scopes not failed");
	check(atomic_load(&e->srv[1]->requests) == 0, e,
	      "e): %d request(s) got through the other CA's handshake",
	      atomic_load(&e->srv[1]->requests));
	check(atomic_load(&e->srv[1]->connections) >= 2, e, "e): the other server was not tried");
	check(strstr(e->run.err, "alibaba/" ACCOUNT2 "/cn-beijing/tair_kvcache") != NULL, e,
	      "e): stderr does not name the refused scope");
}

static void test_f_missing_ca_bundle_file(void **state)
{
	env *e = *state;
	account_spec acc = {ACCOUNT, "127.0.0.1", NULL, "cn-hangzhou"};
	char missing[700];

	env_up(e, &the_ca, NULL);
	acc.srv = e->srv[0];
	snprintf(missing, sizeof(missing), "%s/no-such-ca.pem", e->dir);
	write_config(e, missing, &acc, 1);
	run_sync(e);
	report(e, "f) ca_bundle file missing");
	said(e, "f) ca_bundle file missing", "ca_bundle");
	check(e->run.code == 78, e, "f): exit %d, expected 78", e->run.code);
	check(strstr(e->run.err, "ca_bundle") != NULL, e, "f): stderr does not name ca_bundle");
	check(instances(e, NULL) == 0, e, "f): instances loaded");
	check(atomic_load(&e->srv[0]->requests) == 0, e, "f): a request was served");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_a_no_ca_bundle_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_b_right_ca_loads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_c1_other_ca_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_c2_host_name_mismatch_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_d_every_scope_unverifiable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_e_one_account_refused_other_loaded, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_f_missing_ca_bundle_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
