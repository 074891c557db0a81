#include "e2e.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "testutil.h"


void e2e_sim_start(e2e_sim *sim, const char *const *args)
{
	char port_file[600], log_file[600];
	const char *argv[32];
	char *dir = af_test_tempdir();
	size_t n = 0;
	FILE *f;

	snprintf(sim->dir, sizeof(sim->dir), "%s", dir);
	free(dir);
	snprintf(port_file, sizeof(port_file), "%s/sim.port", sim->dir);
	snprintf(log_file, sizeof(log_file), "%s/sim.log", sim->dir);
	argv[n++] = SIM_BIN;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--port-file";
	argv[n++] = port_file;
	for (size_t i = 0; args && args[i] && n < 30; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	/* A failed assertion skips the test's cleanup: make sure the simulator
	 * does not outlive the test program. SIGTERM, as e2e_sim_stop() sends. */
	sim->pid = af_test_spawn(SIM_BIN, argv, log_file, NULL, SIGTERM);
	assert_true(sim->pid >= 0);
	sim->port = 0;
	for (int i = 0; i < 400 && !sim->port; i++) {
		f = fopen(port_file, "r");
		if (f) {
			if (fscanf(f, "%d", &sim->port) != 1)
				sim->port = 0;
			fclose(f);
		}
		if (!sim->port)
			af_test_sleep_ms(25);
	}
	if (!sim->port)
		fail_msg("aifleet-sim did not start (see %s)", log_file);
}

void e2e_world_up(e2e_world *w, const char *const *sim_args)
{
	af_testdb_create(&w->db);
	e2e_sim_start(&w->sim, sim_args);
	w->dir = af_test_tempdir();
	w->config = e2e_write_config(w->dir, &w->sim, &w->db, NULL, NULL);
	e2e_set_demo_credentials();
}

void e2e_world_down(e2e_world *w)
{
	e2e_sim_stop(&w->sim);
	af_testdb_drop(&w->db);
	free(w->config);
	af_test_rmtree(w->dir);
	free(w->dir);
	memset(w, 0, sizeof(*w));
}

void e2e_sim_stop(e2e_sim *sim)
{
	int status;

	if (sim->pid > 0) {
		kill(sim->pid, SIGTERM);
		waitpid(sim->pid, &status, 0);
		sim->pid = 0;
	}
	af_test_rmtree(sim->dir); /* its log and port file */
}

static size_t collect(char *data, size_t size, size_t nmemb, void *ud)
{
	return af_buf_append(ud, data, size * nmemb) == 0 ? size * nmemb : 0;
}

json_object *e2e_sim_request(const e2e_sim *sim, const char *method, const char *path,
			     const char *body)
{
	char url[512];
	af_buf resp = AF_BUF_INIT;
	CURL *curl = curl_easy_init();
	json_object *json;
	long status = 0;
	CURLcode cc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sim->port, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	if (body)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	if (method)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (cc != CURLE_OK || status >= 400)
		fail_msg("simulator %s %s: curl %d, HTTP %ld: %s", method ? method : "GET", path,
			 (int)cc, status, af_buf_data(&resp) ? af_buf_data(&resp) : "");
	json = af_buf_data(&resp) ? json_tokener_parse(af_buf_data(&resp)) : NULL;
	af_buf_free(&resp);
	return json;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *e2e_sim_ids(const e2e_sim *sim, const char *product)
{
	char path[128];
	json_object *fleet, *items;
	const char **ids;
	af_buf out = AF_BUF_INIT;
	size_t n;

	snprintf(path, sizeof(path), "/_sim/fleet?product=%s", product);
	fleet = e2e_sim_request(sim, NULL, path, NULL);
	assert_non_null(fleet);
	assert_true(json_object_object_get_ex(fleet, "items", &items));
	n = json_object_array_length(items);
	ids = calloc(n + 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		json_object *id;

		assert_true(json_object_object_get_ex(json_object_array_get_idx(items, i), "id", &id));
		ids[i] = json_object_get_string(id);
	}
	qsort(ids, n, sizeof(*ids), compare_strings);
	for (size_t i = 0; i < n; i++)
		af_buf_printf(&out, "%s%s", i ? "\n" : "", ids[i]);
	free(ids);
	json_object_put(fleet);
	return af_buf_data(&out) ? af_buf_detach(&out) : strdup("");
}

/*
 * Adds `extra` to the INI text in `out`: the keys of a section that exists
 * already go right below its header (aifleet refuses a section or key given
 * twice), other sections are appended.
 */
static void merge_sections(af_buf *out, const char *extra)
{
	const char *p = extra;

	while (*p) {
		const char *head_end = strchr(p, '\n'), *body, *next, *at;
		char header[256];
		af_buf merged = AF_BUF_INIT;

		assert_true(p[0] == '[' && head_end);
		snprintf(header, sizeof(header), "%.*s", (int)(head_end - p + 1), p);
		body = head_end + 1;
		for (next = body; *next && *next != '['; next = strchr(next, '\n') + 1)
			assert_non_null(strchr(next, '\n'));
		at = strstr(af_buf_data(out), header);
		if (!at) {
			af_buf_printf(out, "\n%.*s", (int)(next - p), p);
		} else {
			size_t split = (size_t)(at - af_buf_data(out)) + strlen(header);

			af_buf_append(&merged, af_buf_data(out), split);
			af_buf_append(&merged, body, (size_t)(next - body));
			af_buf_puts(&merged, af_buf_data(out) + split);
			af_buf_reset(out);
			af_buf_puts(out, af_buf_data(&merged));
			af_buf_free(&merged);
		}
		p = next;
	}
}

char *e2e_write_config(const char *dir, const e2e_sim *sim, const af_testdb *db,
		       const char *text, const char *extra)
{
	char *tmpl = text ? strdup(text) : af_test_read_file(AF_SOURCE_DIR "/deploy/demo.ini.in", NULL);
	char port[16], *path;
	af_buf out = AF_BUF_INIT;
	FILE *f;

	assert_non_null(tmpl);
	snprintf(port, sizeof(port), "%d", sim->port);
	/* Substitute @PORT@ and @CONNINFO@. */
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "@PORT@", 6) == 0) {
			af_buf_puts(&out, port);
			p += 6;
		} else if (strncmp(p, "@CONNINFO@", 10) == 0) {
			af_buf_puts(&out, db ? db->conninfo : "");
			p += 10;
		} else {
			af_buf_append(&out, p, 1);
			p++;
		}
	}
	free(tmpl);
	if (extra)
		merge_sections(&out, extra);

	path = malloc(strlen(dir) + 16);
	sprintf(path, "%s/aifleet.ini", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(af_buf_data(&out), f);
	fclose(f);
	chmod(path, 0600);
	af_buf_free(&out);
	return path;
}

void e2e_set_demo_credentials(void)
{
	setenv("DEMO_ALI_ACCESS_KEY_ID", "LTAI5tSimDemoAli0000001", 1);
	setenv("DEMO_ALI_ACCESS_KEY_SECRET", "sim-demo-ali-secret-NOT-REAL", 1);
	setenv("DEMO_ALI_STS_ACCESS_KEY_ID", "STS.SimDemoAliSts000001", 1);
	setenv("DEMO_ALI_STS_ACCESS_KEY_SECRET", "sim-demo-sts-secret-NOT-REAL", 1);
	setenv("DEMO_ALI_STS_SECURITY_TOKEN", "sim-demo-sts-token-NOT-REAL", 1);
	setenv("DEMO_TC_SECRET_ID", "AKIDSimDemoTencent000000001", 1);
	setenv("DEMO_TC_SECRET_KEY", "sim-demo-tc-secret-NOT-REAL", 1);
}

int e2e_run_aifleet(const char *dir, const char *const *args, char **out, char **err)
{
	af_test_run_result r = {0};
	const char *argv[32];
	size_t n = 0;

	argv[n++] = AIFLEET_BIN;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	/* No limit of its own: ctest's TIMEOUT bounds these runs. */
	af_test_run(AIFLEET_BIN, argv, dir, 0, &r);
	if (out) {
		*out = r.out;
		r.out = NULL;
	}
	if (err) {
		*err = r.err;
		r.err = NULL;
	}
	af_test_run_free(&r);
	return r.code;
}
