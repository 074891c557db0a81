/*
 * Credentials from the environment or the official CLIs' files. Messages
 * name the variable, file or profile, never a value; every copy is wiped
 * with OPENSSL_cleanse when cleared.
 */
#include "aifleet/creds.h"
#include "aifleet/error.h"

#include <errno.h>
#include <ini.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void af_credentials_clear(af_credentials *c)
{
	if (!c)
		return;
	wipe_free(c->access_key_id);
	wipe_free(c->access_key_secret);
	wipe_free(c->security_token);
	c->access_key_id = c->access_key_secret = c->security_token = NULL;
	c->expires_at = 0;
}

static int dup_field(char **out, const char *v)
{
	if (!(*out = strdup(v)))
		return af_error_oom();
	return 0;
}

int af_credentials_from_env(af_credentials *out, const char *id_var, const char *secret_var,
			    const char *token_var)
{
	const char *id, *secret, *token = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (!id_var || !secret_var)
		return af_error_set(AF_ERR_CONFIG, "credential variable names not given");
	if (!(id = getenv(id_var)) || !id[0])
		return af_error_set(AF_ERR_CONFIG, "environment variable %s is not set", id_var);
	if (!(secret = getenv(secret_var)) || !secret[0])
		return af_error_set(AF_ERR_CONFIG, "environment variable %s is not set",
				    secret_var);
	if (token_var)
		token = getenv(token_var);
	if ((err = dup_field(&out->access_key_id, id)) < 0 ||
	    (err = dup_field(&out->access_key_secret, secret)) < 0 ||
	    (token && token[0] && (err = dup_field(&out->security_token, token)) < 0))
		af_credentials_clear(out);
	return err;
}

int af_credentials_check_file_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return af_error_set(errno == ENOENT ? AF_ERR_CONFIG : AF_ERR_IO, "%s: %s", path,
				    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return af_error_set(AF_ERR_CONFIG, "%s: not a regular file", path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return af_error_set(AF_ERR_CONFIG,
				    "%s: credentials file is accessible by group or others "
				    "(mode %03o); run chmod 600 %s",
				    path, (unsigned)(st.st_mode & 0777), path);
	return 0;
}

/* Reads a small file whole, after the mode check. */
static int read_secret_file(char **out, size_t *len, const char *path)
{
	FILE *f;
	char *data = NULL;
	long size;
	int err;

	*out = NULL;
	if ((err = af_credentials_check_file_mode(path)) < 0)
		return err;
	if (!(f = fopen(path, "rb")))
		return af_error_set(AF_ERR_IO, "%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		err = af_error_set(AF_ERR_IO, "%s: cannot read", path);
		goto done;
	}
	if (size > 1024 * 1024) {
		err = af_error_set(AF_ERR_LIMIT, "%s: larger than 1 MiB", path);
		goto done;
	}
	if (!(data = malloc((size_t)size + 1))) {
		err = af_error_oom();
		goto done;
	}
	if (fread(data, 1, (size_t)size, f) != (size_t)size) {
		err = af_error_set(AF_ERR_IO, "%s: short read", path);
		goto done;
	}
	data[size] = '\0';
	*out = data;
	*len = (size_t)size;
	data = NULL;
done:
	if (data) {
		OPENSSL_cleanse(data, (size_t)size);
		free(data);
	}
	fclose(f);
	return err;
}

static int default_path(char *out, size_t n, const char *env, const char *rel)
{
	const char *v = getenv(env), *home;

	if (v && v[0]) {
		snprintf(out, n, "%s", v);
		return 0;
	}
	if (!(home = getenv("HOME")) || !home[0])
		return af_error_set(AF_ERR_CONFIG, "neither %s nor HOME is set", env);
	if ((size_t)snprintf(out, n, "%s/%s", home, rel) >= n)
		return af_error_set(AF_ERR_CONFIG, "HOME path too long");
	return 0;
}

static const char *json_str(json_object *o, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

int af_credentials_from_aliyun_cli(af_credentials *out, const char *path, const char *profile)
{
	char def[4096];
	char *data = NULL;
	size_t len = 0;
	json_object *root = NULL, *profiles, *p = NULL;
	const char *mode, *id, *secret, *token;
	enum json_tokener_error jerr;
	int err;

	memset(out, 0, sizeof(*out));
	if (!path) {
		if ((err = default_path(def, sizeof(def), "ALIBABA_CLOUD_CONFIG_FILE",
					".aliyun/config.json")) < 0)
			return err;
		path = def;
	}
	if ((err = read_secret_file(&data, &len, path)) < 0)
		return err;
	root = json_tokener_parse_verbose(data, &jerr);
	if (!root || !json_object_is_type(root, json_type_object)) {
		err = af_error_set(AF_ERR_CONFIG, "%s: not a JSON object (%s)", path,
				   root ? "wrong type" : json_tokener_error_desc(jerr));
		goto done;
	}
	if (!profile) {
		const char *env = getenv("ALIBABA_CLOUD_PROFILE");

		profile = env && env[0] ? env : json_str(root, "current");
	}
	if (!profile || !profile[0]) {
		err = af_error_set(AF_ERR_CONFIG, "%s: no profile given and no \"current\"", path);
		goto done;
	}
	if (!json_object_object_get_ex(root, "profiles", &profiles) ||
	    !json_object_is_type(profiles, json_type_array)) {
		err = af_error_set(AF_ERR_CONFIG, "%s: no \"profiles\" array", path);
		goto done;
	}
	for (size_t i = 0; i < json_object_array_length(profiles); i++) {
		json_object *e = json_object_array_get_idx(profiles, i);
		const char *name = json_object_is_type(e, json_type_object) ? json_str(e, "name")
									    : NULL;

		if (name && strcmp(name, profile) == 0) {
			p = e;
			break;
		}
	}
	if (!p) {
		err = af_error_set(AF_ERR_CONFIG, "%s: profile \"%s\" not found", path, profile);
		goto done;
	}
	mode = json_str(p, "mode");
	if (!mode || (strcmp(mode, "AK") != 0 && strcmp(mode, "StsToken") != 0)) {
		err = af_error_set(AF_ERR_CONFIG,
				   "%s: profile \"%s\" has mode \"%s\"; only AK and StsToken "
				   "are supported",
				   path, profile, mode ? mode : "");
		goto done;
	}
	id = json_str(p, "access_key_id");
	secret = json_str(p, "access_key_secret");
	token = json_str(p, "sts_token");
	if (!id || !id[0] || !secret || !secret[0]) {
		err = af_error_set(AF_ERR_CONFIG,
				   "%s: profile \"%s\" lacks access_key_id or access_key_secret",
				   path, profile);
		goto done;
	}
	if (strcmp(mode, "StsToken") == 0 && (!token || !token[0])) {
		err = af_error_set(AF_ERR_CONFIG, "%s: profile \"%s\" (StsToken) lacks sts_token",
				   path, profile);
		goto done;
	}
	if ((err = dup_field(&out->access_key_id, id)) < 0 ||
	    (err = dup_field(&out->access_key_secret, secret)) < 0)
		goto done;
	if (strcmp(mode, "StsToken") == 0 && (err = dup_field(&out->security_token, token)) < 0)
		goto done;
done:
	if (err < 0)
		af_credentials_clear(out);
	/* json-c keeps its own copies of the strings; wipe them before freeing. */
	if (root && json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "profiles", &profiles) &&
	    json_object_is_type(profiles, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(profiles); i++) {
			json_object *e = json_object_array_get_idx(profiles, i);
			static const char *const keys[] = {"access_key_secret", "sts_token",
							   "access_key_id"};

			if (!json_object_is_type(e, json_type_object))
				continue;
			for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
				json_object *v;

				if (json_object_object_get_ex(e, keys[k], &v) &&
				    json_object_is_type(v, json_type_string))
					OPENSSL_cleanse((void *)json_object_get_string(v),
							(size_t)json_object_get_string_len(v));
			}
		}
	}
	json_object_put(root);
	if (data) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	return err;
}

/* The member names of one INI credentials format. */
typedef struct ini_keys {
	const char *id, *secret, *token; /* token NULL: the format has none */
	const char *type;                /* NULL: the format has no type */
} ini_keys;

typedef struct ini_profile {
	const ini_keys *keys;
	const char *profile;
	af_credentials *out;
	char type[64];   /* the profile's type (not a secret), "" if none */
	bool seen;
	int err;
} ini_profile;

static int ini_profile_handler(void *ud, const char *section, const char *name, const char *value)
{
	ini_profile *t = ud;
	const ini_keys *k = t->keys;
	char **slot = NULL;

	if (strcmp(section, t->profile) != 0)
		return 1;
	t->seen = true;
	if (k->type && strcmp(name, k->type) == 0) {
		snprintf(t->type, sizeof(t->type), "%s", value);
		return 1;
	}
	if (strcmp(name, k->id) == 0)
		slot = &t->out->access_key_id;
	else if (strcmp(name, k->secret) == 0)
		slot = &t->out->access_key_secret;
	else if (k->token && strcmp(name, k->token) == 0)
		slot = &t->out->security_token;
	if (!slot)
		return 1;
	wipe_free(*slot);
	*slot = NULL;
	if (value[0] && !(*slot = strdup(value))) {
		t->err = af_error_oom();
		return 0;
	}
	return 1;
}

/* Reads [profile] of an INI credentials file (mode-checked first) into
 * *out; t->type gets its type. Nothing is kept on failure. */
static int read_ini_profile(ini_profile *t, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int rc, err;

	if ((err = read_secret_file(&data, &len, path)) < 0)
		return err;
	rc = ini_parse_string(data, ini_profile_handler, t);
	if (t->err < 0)
		err = t->err;
	else if (rc != 0)
		err = af_error_set(AF_ERR_CONFIG, "%s: syntax error on line %d", path, rc);
	else if (!t->seen)
		err = af_error_set(AF_ERR_CONFIG, "%s: no [%s] section", path, t->profile);
	if (err < 0)
		af_credentials_clear(t->out);
	OPENSSL_cleanse(data, len);
	free(data);
	return err;
}

static int lacks_keys(af_credentials *out, const char *path, const char *profile,
		      const ini_keys *k)
{
	af_credentials_clear(out);
	return af_error_set(AF_ERR_CONFIG, "%s: [%s] lacks %s or %s", path, profile, k->id,
			    k->secret);
}

int af_credentials_from_tencent_file(af_credentials *out, const char *path, const char *profile)
{
	static const ini_keys keys = {"secret_id", "secret_key", "token", NULL};
	char def[4096];
	ini_profile t;
	int err;

	memset(out, 0, sizeof(*out));
	if (!path) {
		if ((err = default_path(def, sizeof(def), "TENCENTCLOUD_CREDENTIALS_FILE",
					".tencentcloud/credentials")) < 0)
			return err;
		path = def;
	}
	t = (ini_profile){.keys = &keys, .profile = profile ? profile : "default", .out = out};
	if ((err = read_ini_profile(&t, path)) < 0)
		return err;
	if (!out->access_key_id || !out->access_key_secret)
		return lacks_keys(out, path, t.profile, &keys);
	return 0;
}

int af_credentials_from_alibabacloud_file(af_credentials *out, const char *path,
					  const char *profile)
{
	static const ini_keys keys = {"access_key_id", "access_key_secret", NULL, "type"};
	const char *env = getenv("ALIBABA_CLOUD_PROFILE");
	char def[4096];
	ini_profile t;
	int err;

	memset(out, 0, sizeof(*out));
	if (!path) {
		if ((err = default_path(def, sizeof(def), "ALIBABA_CLOUD_CREDENTIALS_FILE",
					".alibabacloud/credentials")) < 0)
			return err;
		path = def;
	}
	if (!profile)
		profile = env && env[0] ? env : "default";
	t = (ini_profile){.keys = &keys, .profile = profile, .out = out};
	if ((err = read_ini_profile(&t, path)) < 0)
		return err;
	if (strcmp(t.type, "access_key") != 0) {
		af_credentials_clear(out);
		return af_error_set(AF_ERR_CONFIG,
				    "%s: [%s] has type \"%s\"; only access_key is supported (the "
				    "role types need STS or the metadata service)",
				    path, profile, t.type);
	}
	if (!out->access_key_id || !out->access_key_secret)
		return lacks_keys(out, path, profile, &keys);
	return 0;
}
