#ifndef AIFLEET_LOG_H
#define AIFLEET_LOG_H

/*
 * Logging to stderr, as text or one JSON object per line.
 *
 * Callers pass only labels, codes and ids. Nothing that can hold a secret
 * (keys, tokens, Authorization headers, Hologres apiKey values) may ever be
 * passed in; af_log_redact_header() exists for the debug dump of headers.
 */

#include <stdbool.h>

typedef enum af_log_level {
	AF_LOG_DEBUG = 0,
	AF_LOG_INFO = 1,
	AF_LOG_WARN = 2,
	AF_LOG_ERROR = 3,
	AF_LOG_OFF = 4,
} af_log_level;

typedef enum af_log_format {
	AF_LOG_TEXT = 0,
	AF_LOG_JSON = 1,
} af_log_format;

void af_log_setup(af_log_level level, af_log_format format);
af_log_level af_log_get_level(void);
bool af_log_enabled(af_log_level level);

/* Parses "debug|info|warn|error|off" / "text|json"; 0 or AF_ERR_CONFIG. */
int af_log_parse_level(af_log_level *out, const char *s);
int af_log_parse_format(af_log_format *out, const char *s);

/* `component` is a short area name: "sync", "http", "loader", ... */
void af_log(af_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* True for header names whose values must never be logged. */
bool af_log_header_is_secret(const char *name);

#define af_debug(c, ...) af_log(AF_LOG_DEBUG, c, __VA_ARGS__)
#define af_info(c, ...) af_log(AF_LOG_INFO, c, __VA_ARGS__)
#define af_warn(c, ...) af_log(AF_LOG_WARN, c, __VA_ARGS__)
#define af_err(c, ...) af_log(AF_LOG_ERROR, c, __VA_ARGS__)

#endif
