/*
 * The default credential chains and the ~/.alibabacloud/credentials file,
 * in a private HOME with every variable the chains read under the test's
 * control: which step wins, which are skipped, that a configured step that
 * fails stops the chain, and that no message carries a secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/record.h"
#include "testutil.h"

/* Every variable either chain reads: unset before each test. */
static const char *const chain_vars[] = {
	"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
	"ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
	"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_ROLE_ARN",
	"ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "ALIBABA_CLOUD_CONFIG_FILE", "ALIBABA_CLOUD_PROFILE",
	"ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
	"ALIBABA_CLOUD_CREDENTIALS_URI", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
	"TENCENTCLOUD_SESSION_TOKEN", "TENCENTCLOUD_CREDENTIALS_FILE", "TKE_REGION",
	"TKE_PROVIDER_ID", "TKE_WEB_IDENTITY_TOKEN_FILE", "TKE_ROLE_ARN",
};

typedef struct home {
	char *dir;
	char *saved_home;
	char system_file[1100]; /* stands in for /etc/tencentcloud/credentials */
	af_chain_options opts;
} home;

static int setup(void **state)
{
	home *h = calloc(1, sizeof(*h));
	const char *old = getenv("HOME");

	if (!h)
		return -1;
	h->dir = af_test_tempdir();
	h->saved_home = old ? strdup(old) : NULL;
	for (size_t i = 0; i < sizeof(chain_vars) / sizeof(chain_vars[0]); i++)
		unsetenv(chain_vars[i]);
	setenv("HOME", h->dir, 1);
	snprintf(h->system_file, sizeof(h->system_file), "%s/etc-tencentcloud-credentials",
		 h->dir);
	h->opts.tencent_system_file = h->system_file;
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	home *h = *state;

	if (h->saved_home)
		setenv("HOME", h->saved_home, 1);
	else
		unsetenv("HOME");
	af_test_rmtree(h->dir);
	free(h->dir);
	free(h->saved_home);
	free(h);
	return 0;
}

/* Writes HOME/rel (making its directory), mode 0600. */
static void put(const home *h, const char *rel, const char *text)
{
	char path[1200], dir[1200];
	char *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", h->dir, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0700);
	}
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
}

static const char cli_json[] =
	"{\"current\":\"default\",\"profiles\":[{\"name\":\"default\",\"mode\":\"AK\","
	"\"access_key_id\":\"LTAIcli\",\"access_key_secret\":\"s3cr3tcli\"}]}";
static const char ali_ini[] =
	"[default]\ntype = access_key\naccess_key_id = LTAIfile\naccess_key_secret = s3cr3tfile\n"
	"[ops]\ntype = access_key\naccess_key_id = LTAIops\naccess_key_secret = s3cr3tops\n"
	"[ecs]\ntype = ecs_ram_role\nrole_name = inventory\n"
	"[half]\ntype = access_key\naccess_key_id = LTAIhalf\n";

static void assert_no_secret(void)
{
	assert_null(strstr(af_error_last(), "s3cr3t"));
	assert_null(strstr(af_error_last(), "KEYtc"));
}

/* ---- ~/.alibabacloud/credentials ---------------------------------------- */

static void test_alibabacloud_file(void **state)
{
	home *h = *state;
	af_credentials c;

	put(h, ".alibabacloud/credentials", ali_ini);
	assert_int_equal(af_credentials_from_alibabacloud_file(&c, NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "LTAIfile");
	assert_string_equal(c.access_key_secret, "s3cr3tfile");
	assert_null(c.security_token);
	af_credentials_clear(&c);

	setenv("ALIBABA_CLOUD_PROFILE", "ops", 1);
	assert_int_equal(af_credentials_from_alibabacloud_file(&c, NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "LTAIops");
	af_credentials_clear(&c);
	/* the account's profile wins over the variable */
	assert_int_equal(af_credentials_from_alibabacloud_file(&c, NULL, "default"), 0);
	assert_string_equal(c.access_key_id, "LTAIfile");
	af_credentials_clear(&c);
	unsetenv("ALIBABA_CLOUD_PROFILE");

	/* A role type needs STS or the metadata service: refused, named. */
	assert_int_equal(af_credentials_from_alibabacloud_file(&c, NULL, "ecs"), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "ecs_ram_role"));
	assert_null(c.access_key_id);
	assert_int_equal(af_credentials_from_alibabacloud_file(&c, NULL, "half"), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "lacks access_key_id or access_key_secret"));
	assert_null(c.access_key_id);
	assert_int_equal(af_credentials_from_alibabacloud_file(&c, NULL, "nope"), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "no [nope] section"));
	assert_no_secret();
}

/* ---- the Alibaba chain --------------------------------------------------- */

static void test_alibaba_chain_order(void **state)
{
	home *h = *state;
	const char *step;
	af_credentials c;

	put(h, ".aliyun/config.json", cli_json);
	put(h, ".alibabacloud/credentials", ali_ini);

	/* environment first, even with both files present */
	setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv", 1);
	setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3tenv", 1);
	setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "s3cr3ttoken", 1);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "LTAIenv");
	assert_string_equal(c.security_token, "s3cr3ttoken");
	assert_non_null(strstr(step, "environment"));
	af_credentials_clear(&c);

	/* an id without its secret is configured and broken: the chain stops
	 * there instead of handing the run to the CLI profile */
	unsetenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step),
			 AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "ALIBABA_CLOUD_ACCESS_KEY_SECRET"));
	assert_null(c.access_key_id);
	unsetenv("ALIBABA_CLOUD_ACCESS_KEY_ID");
	unsetenv("ALIBABA_CLOUD_SECURITY_TOKEN");

	/* then the CLI profile */
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "LTAIcli");
	assert_non_null(strstr(step, "config.json"));
	af_credentials_clear(&c);

	/* then the shared credentials file, when the CLI profile is disabled */
	setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true", 1);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "LTAIfile");
	assert_non_null(strstr(step, ".alibabacloud/credentials"));
	af_credentials_clear(&c);
	/* with the account's profile */
	h->opts.profile = "ops";
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "LTAIops");
	af_credentials_clear(&c);
	h->opts.profile = NULL;
	assert_no_secret();
}

/* OIDC comes before the files: configured, it decides (its failure -- here:
 * no session to ask STS with -- is an error, never a fall-through to
 * another identity). */
static void test_alibaba_oidc_is_not_skipped(void **state)
{
	home *h = *state;
	const char *step;
	af_credentials c;

	put(h, ".aliyun/config.json", cli_json);
	setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/var/run/secrets/tokens/oidc-token", 1);
	setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/ack", 1);
	setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/inventory", 1);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step),
			 AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "OIDC"));
	assert_non_null(strstr(af_error_last(), "no network session"));
	assert_null(c.access_key_id);
	/* two of the three are not a configuration: skipped */
	unsetenv("ALIBABA_CLOUD_ROLE_ARN");
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "LTAIcli");
	af_credentials_clear(&c);
}

/* Nothing configured: the error names every step and what it lacked. */
static void test_alibaba_nothing_configured(void **state)
{
	home *h = *state;
	const char *step;
	af_credentials c;

	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step),
			 AF_ERR_CONFIG);
	/* the metadata step is always configured, and not supported yet */
	assert_non_null(strstr(af_error_last(), "ECS RAM role"));
	setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true", 1);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step),
			 AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "no step is configured"));
	assert_non_null(strstr(af_error_last(), "ALIBABA_CLOUD_ACCESS_KEY_ID is not set"));
	assert_non_null(strstr(af_error_last(), ".aliyun/config.json"));
	assert_non_null(strstr(af_error_last(), ".alibabacloud/credentials"));
	assert_non_null(strstr(af_error_last(), "ALIBABA_CLOUD_CREDENTIALS_URI is not set"));
	/* an explicitly named file must exist */
	setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent/aifleet-credentials", 1);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &h->opts, &step),
			 AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "/nonexistent/aifleet-credentials"));
	assert_null(c.access_key_id);
}

/* ---- the Tencent chain --------------------------------------------------- */

static void test_tencent_chain_order(void **state)
{
	home *h = *state;
	char user_file[1200];
	const char *step;
	af_credentials c;
	FILE *f;

	/* the system-wide file when HOME has none */
	assert_non_null(f = fopen(h->system_file, "w"));
	fputs("[default]\nsecret_id = AKIDsystem\nsecret_key = KEYtcsystem\n", f);
	fclose(f);
	chmod(h->system_file, 0600);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_TENCENT, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "AKIDsystem");
	af_credentials_clear(&c);

	/* the user's file before it */
	put(h, ".tencentcloud/credentials",
	    "[default]\nsecret_id = AKIDhome\nsecret_key = KEYtchome\n");
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_TENCENT, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "AKIDhome");
	assert_non_null(strstr(step, "credentials file"));
	af_credentials_clear(&c);

	/* the environment before both, with the session-token convention */
	setenv("TENCENTCLOUD_SECRET_ID", "AKIDenv", 1);
	setenv("TENCENTCLOUD_SECRET_KEY", "KEYtcenv", 1);
	setenv("TENCENTCLOUD_SESSION_TOKEN", "KEYtctoken", 1);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_TENCENT, &h->opts, &step), 0);
	assert_string_equal(c.access_key_id, "AKIDenv");
	assert_string_equal(c.security_token, "KEYtctoken");
	assert_non_null(strstr(step, "environment"));
	af_credentials_clear(&c);
	unsetenv("TENCENTCLOUD_SECRET_ID");
	unsetenv("TENCENTCLOUD_SECRET_KEY");
	unsetenv("TENCENTCLOUD_SESSION_TOKEN");

	/* a configured file that is readable by others stops the chain */
	chmod(h->system_file, 0644);
	snprintf(user_file, sizeof(user_file), "%s/.tencentcloud/credentials", h->dir);
	assert_int_equal(remove(user_file), 0);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_TENCENT, &h->opts, &step),
			 AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "chmod 600"));
	remove(h->system_file);

	/* nothing on disk: the instance role step, not supported yet */
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_TENCENT, &h->opts, &step),
			 AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "CVM role"));
	assert_null(c.access_key_id);
	assert_no_secret();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_alibabacloud_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alibaba_chain_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alibaba_oidc_is_not_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alibaba_nothing_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tencent_chain_order, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
