#include "aifleet/log.h"
#include "aifleet/error.h"
#include "aifleet/secret.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static af_log_level log_level = AF_LOG_INFO;
static af_log_format log_format = AF_LOG_TEXT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void af_log_setup(af_log_level level, af_log_format format)
{
	log_level = level;
	log_format = format;
}

af_log_level af_log_get_level(void)
{
	return log_level;
}

bool af_log_enabled(af_log_level level)
{
	return level >= log_level && level < AF_LOG_OFF;
}

int af_log_parse_level(af_log_level *out, const char *s)
{
	for (int i = 0; i <= AF_LOG_OFF; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (af_log_level)i;
			return 0;
		}
	}
	return af_error_set(AF_ERR_CONFIG, "unknown log level '%s' (debug, info, warn, error, off)", s);
}

int af_log_parse_format(af_log_format *out, const char *s)
{
	if (strcasecmp(s, "text") == 0)
		*out = AF_LOG_TEXT;
	else if (strcasecmp(s, "json") == 0)
		*out = AF_LOG_JSON;
	else
		return af_error_set(AF_ERR_CONFIG, "unknown log format '%s' (text, json)", s);
	return 0;
}

bool af_log_header_is_secret(const char *name)
{
	/* Request headers that carry credentials, beyond the names the secret
	 * policy knows (x-acs-security-token, X-TC-Token are among those). */
	static const char *const secret[] = {"authorization", "x-acs-accesskey-id"};

	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		if (strcasecmp(name, secret[i]) == 0)
			return true;
	return af_secret_name(name);
}

static void format_time(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

void af_log(af_log_level level, const char *component, const char *fmt, ...)
{
	char msg[2048];
	char when[64];
	va_list ap;

	if (!af_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages carry provider text (error messages, ids): the secret policy
	 * has the last word on every line that leaves the process. */
	af_secret_redact_in_place(msg, sizeof(msg));
	format_time(when, sizeof(when));

	pthread_mutex_lock(&log_lock);
	if (log_format == AF_LOG_JSON) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "time", json_object_new_string(when));
		json_object_object_add(o, "level", json_object_new_string(level_names[level]));
		json_object_object_add(o, "component", json_object_new_string(component));
		json_object_object_add(o, "msg", json_object_new_string(msg));
		fprintf(stderr, "%s\n",
			json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		fprintf(stderr, "%s %-5s %s: %s\n", when, level_names[level], component, msg);
	}
	pthread_mutex_unlock(&log_lock);
}
