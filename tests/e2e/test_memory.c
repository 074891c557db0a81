/*
 * The secrets in a running aifleet's memory, and in what a run writes.
 *
 * aifleet-sim runs with --latency-ms so that a sync of the demo fleet lasts
 * a few seconds; `aifleet sync --save-raw DIR` runs as a child and, while
 * it collects (the simulator has served requests and the process has not
 * exited), the test checks from the outside that its memory is protected
 * (src/cli/main.c protect_memory(): PR_SET_DUMPABLE 0, RLIMIT_CORE 0):
 *
 *   1. /proc/PID/limits: "Max core file size" is 0 (soft) and 0 (hard);
 *   2. /proc/PID/{status,environ,mem,maps,limits} are owned by root:root
 *      although the process (and its /proc/PID directory, which the kernel
 *      exempts) belongs to another user: the kernel does that for a
 *      process that is not dumpable (task_dump_owner(); the one place where
 *      another process sees the flag). The same files of a control process
 *      (sleep) of the same user are its own, so the flag is what makes the
 *      difference;
 *   3. a process of the same user that is aifleet's own parent (so neither
 *      uid rules nor Yama's ancestry rule can be why it is refused) cannot
 *      open /proc/PID/environ or /proc/PID/mem, PTRACE_ATTACH gets EPERM,
 *      and gcore (when installed) writes no core; the same probes on the
 *      control process succeed (if the control cannot be traced here, for
 *      instance ptrace_scope 3 or a seccomp profile, the ptrace and gcore
 *      probes are reported as not conclusive and not asserted).
 *
 * The user: when the test runs as root, aifleet and the probes run as
 * `nobody` (root has CAP_SYS_PTRACE and owns its /proc files anyway, so as
 * root nothing above would prove anything); otherwise as the test's user.
 *
 * Then the run must end with exit 0, and its stderr (the log, at debug
 * level), stdout and every file of the --save-raw directory must hold none
 * of the demo secrets (the access key secrets and the STS token that
 * e2e_set_demo_credentials() puts in the environment), no access key id,
 * and no Hologres apiKey value (the simulator gives every model service an
 * "sk-" followed by 32 hex digits; any "sk-" followed by 16 or more letters
 * or digits counts); and the save-raw pages must really contain the
 * Hologres services those keys came with (so the scan had something to
 * find). The database is scanned the same way.
 *
 * Bounds and cleanup: every wait is bounded (RUN_LIMIT_S for the run);
 * the launcher, aifleet, the control and gcore die with their parent
 * (PR_SET_PDEATHSIG); the teardown kills the launcher if it is still
 * there, stops the simulator and removes the database and both temporary
 * directories, also when an assertion failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "e2e.h"
#include "testdb.h"
#include "testutil.h"

#ifndef LATENCY_MS /* the simulator's added latency: the sync lasts ~3 s */
#define LATENCY_MS "60"
#endif
#define RUN_LIMIT_S  120
#define START_WAIT_S 30
#define GCORE_WAIT_S 30

/* The values e2e_set_demo_credentials() sets. */
static const char *const demo_env[] = {
    "DEMO_ALI_ACCESS_KEY_SECRET", "DEMO_ALI_STS_ACCESS_KEY_SECRET", "DEMO_ALI_STS_SECURITY_TOKEN",
    "DEMO_TC_SECRET_KEY",         "DEMO_ALI_ACCESS_KEY_ID",         "DEMO_ALI_STS_ACCESS_KEY_ID",
    "DEMO_TC_SECRET_ID",
};
#define NDEMO (sizeof(demo_env) / sizeof(demo_env[0]))

/* ---- launcher <-> test messages -------------------------------------------- */

typedef struct start_msg {
	pid_t aifleet, control;
	int err; /* errno of a failed fork or privilege drop, else 0 */
} start_msg;

/* 0: allowed; otherwise the errno that refused it. */
typedef struct probe_set {
	int environ_read;
	int mem_open;
	int ptrace_attach;
	int gcore_status; /* exit status of gcore, -1 if not run */
	bool gcore_core;  /* it wrote a core file */
} probe_set;

typedef struct probe_msg {
	uid_t uid;
	probe_set control, aifleet;
	bool gcore_ran;
} probe_msg;

typedef struct end_msg {
	int status; /* wait status of aifleet, or -1 if it was killed at RUN_LIMIT_S */
} end_msg;

typedef struct launch {
	pid_t parent;
	bool drop;
	uid_t uid;
	gid_t gid;
	const char *dir;
	const char *probe_dir;
	const char *const *argv;
} launch;

/* ---- helpers ------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads exactly n bytes within `seconds`; -1 on timeout, EOF or error. */
static int read_timed(int fd, void *p, size_t n, double seconds)
{
	char *c = p;
	double deadline = af_test_now() + seconds;

	while (n) {
		struct pollfd pfd = {fd, POLLIN, 0};
		double left = deadline - af_test_now();
		ssize_t r;
		int pr;

		if (left <= 0)
			return -1;
		pr = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		r = read(fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ---- the probes (run in the launcher, as the target's user) ------------- */

static int probe_environ(pid_t pid)
{
	char path[64], buf[64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno;
	if (read(fd, buf, sizeof(buf)) <= 0)
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

static int probe_mem(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/mem", (long)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int probe_attach(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0)
		return errno;
	/* Attached: let it go again (the caller counts this as "allowed"). */
	waitpid(pid, &status, __WALL);
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
	return 0;
}

static void probe_gcore(const launch *la, pid_t pid, const char *name, probe_set *p)
{
	char prefix[700], core[760], log[700];
	pid_t me = getpid(), g;
	struct stat st;
	int status;

	snprintf(prefix, sizeof(prefix), "%s/core-%s", la->probe_dir, name);
	snprintf(core, sizeof(core), "%s.%ld", prefix, (long)pid);
	snprintf(log, sizeof(log), "%s/gcore-%s.log", la->probe_dir, name);
	p->gcore_status = -1;
	g = fork();
	if (g < 0)
		return;
	if (g == 0) {
		char pid_s[32];
		int fd;

		af_test_die_with(me, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("HOME", la->probe_dir, 1);
		snprintf(pid_s, sizeof(pid_s), "%ld", (long)pid);
		execlp("gcore", "gcore", "-o", prefix, pid_s, (char *)NULL);
		_exit(127);
	}
	if (af_test_wait(g, GCORE_WAIT_S, &status, NULL) != 0)
		status = -1;
	p->gcore_status = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 255;
	p->gcore_core = stat(core, &st) == 0;
	/* A core of the control is not needed any more; one of aifleet would
	 * hold its secrets: never leave it behind. */
	unlink(core);
}

static void probe_all(const launch *la, pid_t pid, const char *name, bool gcore, probe_set *p)
{
	memset(p, 0, sizeof(*p));
	p->environ_read = probe_environ(pid);
	p->mem_open = probe_mem(pid);
	p->ptrace_attach = probe_attach(pid);
	p->gcore_status = -1;
	if (gcore)
		probe_gcore(la, pid, name, p);
}

static bool have_gcore(void)
{
	const char *path = getenv("PATH");
	char buf[1024];

	if (!path)
		return false;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/gcore", (int)n, p);
		if (access(buf, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

/* The launcher: becomes the unprivileged user, starts the control and
 * aifleet as its children, probes both on "go", then waits for aifleet. */
static _Noreturn void launcher(const launch *la, int to_test, int from_test)
{
	start_msg sm = {0};
	probe_msg pm = {0};
	end_msg em = {0};
	pid_t me;
	char go;

	af_test_die_with(la->parent, SIGKILL);
	if (la->drop) {
		if (setgroups(0, NULL) != 0 || setgid(la->gid) != 0 || setuid(la->uid) != 0) {
			sm.err = errno;
			write_all(to_test, &sm, sizeof(sm));
			_exit(126);
		}
		/* a change of credentials clears the parent-death signal */
		af_test_die_with(la->parent, SIGKILL);
	}
	me = getpid();
	sm.control = fork();
	if (sm.control == 0) {
		af_test_die_with(me, SIGKILL);
		execlp("sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	sm.aifleet = -1;
	if (sm.control > 0) {
		char out_path[600], err_path[600];

		snprintf(out_path, sizeof(out_path), "%s/out.txt", la->dir);
		snprintf(err_path, sizeof(err_path), "%s/err.txt", la->dir);
		sm.aifleet = af_test_spawn(AIFLEET_BIN, la->argv, out_path, err_path, SIGKILL);
	}
	if (sm.control < 0 || sm.aifleet < 0)
		sm.err = errno;
	if (write_all(to_test, &sm, sizeof(sm)) < 0 || sm.err)
		_exit(1);
	if (read_timed(from_test, &go, 1, RUN_LIMIT_S) < 0 || (go != 'g' && go != 'q'))
		_exit(1);
	pm.uid = getuid();
	if (go == 'g') { /* 'q': aifleet ended already, just report how */
		pm.gcore_ran = have_gcore();
		probe_all(la, sm.control, "control", pm.gcore_ran, &pm.control);
		probe_all(la, sm.aifleet, "aifleet", pm.gcore_ran, &pm.aifleet);
	}
	if (write_all(to_test, &pm, sizeof(pm)) < 0)
		_exit(1);
	kill(sm.control, SIGKILL);
	waitpid(sm.control, NULL, 0);
	if (af_test_wait(sm.aifleet, RUN_LIMIT_S, &em.status, NULL) != 0)
		em.status = -1;
	write_all(to_test, &em, sizeof(em));
	_exit(0);
}

/* ---- the environment ------------------------------------------------------ */

typedef struct env {
	af_testdb db;
	bool db_made;
	e2e_sim sim;
	char *dir;       /* config, out.txt, err.txt, raw/: aifleet's user owns it */
	char *probe_dir; /* gcore's logs and cores */
	char *config;
	pid_t launcher;
	int to_launcher, from_launcher;
	char *out, *err;
} env;

static int setup(void **state)
{
	env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->to_launcher = e->from_launcher = -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	env *e = *state;

	if (!e)
		return 0;
	if (e->launcher > 0) {
		/* aifleet, the control and gcore die with it (PR_SET_PDEATHSIG) */
		kill(e->launcher, SIGKILL);
		waitpid(e->launcher, NULL, 0);
	}
	if (e->to_launcher >= 0)
		close(e->to_launcher);
	if (e->from_launcher >= 0)
		close(e->from_launcher);
	e2e_sim_stop(&e->sim);
	af_test_rmtree(e->sim.dir);
	if (e->db_made)
		af_testdb_drop(&e->db);
	af_test_rmtree(e->dir);
	af_test_rmtree(e->probe_dir);
	free(e->dir);
	free(e->probe_dir);
	free(e->config);
	free(e->out);
	free(e->err);
	free(e);
	return 0;
}

static long long sim_requests(const env *e)
{
	json_object *stats = e2e_sim_request(&e->sim, NULL, "/_sim/stats", NULL), *v;
	long long n = -1;

	if (stats && json_object_object_get_ex(stats, "requests", &v))
		n = json_object_get_int64(v);
	json_object_put(stats);
	return n;
}

/* Hologres model services the simulator holds: each came with an apiKey. */
static long long sim_hologres_services(const env *e)
{
	json_object *fleet = e2e_sim_request(&e->sim, NULL, "/_sim/fleet?product=hologres", NULL);
	json_object *items, *v;
	long long n = 0;

	assert_non_null(fleet);
	assert_true(json_object_object_get_ex(fleet, "items", &items));
	for (size_t i = 0; i < json_object_array_length(items); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(items, i), "services", &v))
			n += json_object_is_type(v, json_type_array)
			         ? (long long)json_object_array_length(v)
			         : json_object_get_int64(v);
	json_object_put(fleet);
	return n;
}

/* A /proc file whole (af_test_read_file() trusts the size, which is 0 for
 * them); NULL if unreadable. Caller frees. */
static char *read_proc(const char *path)
{
	FILE *f = fopen(path, "r");
	af_buf b = AF_BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && af_buf_len(&b) < (1u << 20))
		af_buf_append(&b, chunk, n);
	fclose(f);
	if (!af_buf_data(&b))
		af_buf_puts(&b, "");
	return af_buf_detach(&b);
}

/* The process state letter from /proc/PID/stat, '?' if unreadable. */
static char proc_state(pid_t pid)
{
	char path[64], *text, *p, c = '?';

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	text = read_proc(path);
	if (text && (p = strrchr(text, ')')) && p[1] == ' ')
		c = p[2];
	free(text);
	return c;
}

static bool running(pid_t pid)
{
	char c = proc_state(pid);

	return c != '?' && c != 'Z' && c != 'X';
}

static char *proc_text(pid_t pid, const char *file)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, file);
	return read_proc(path);
}

/* The line of /proc/PID/{file} starting with `key`, without it. */
static bool proc_line(pid_t pid, const char *file, const char *key, char *out, size_t n)
{
	char *text = proc_text(pid, file), *p;
	bool found = false;

	if (text) {
		for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (strncmp(p, key, strlen(key)) == 0) {
				snprintf(out, n, "%.*s", (int)strcspn(p + strlen(key), "\n"),
				         p + strlen(key));
				found = true;
				break;
			}
	}
	free(text);
	return found;
}

static int owner_of(pid_t pid, const char *file, uid_t *uid, gid_t *gid)
{
	char path[96];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%ld%s%s", (long)pid, file[0] ? "/" : "", file);
	if (stat(path, &st) != 0)
		return -1;
	*uid = st.st_uid;
	*gid = st.st_gid;
	return 0;
}

/* ---- the secret scan ------------------------------------------------------- */

typedef struct scan {
	size_t files, bytes;
	size_t found;           /* occurrences of any needle or sk- key */
	size_t sk_found;        /* of those: sk- keys */
	size_t raw_pages;       /* save-raw files */
	size_t holo_pages;      /* of those: GetInstanceModel pages */
	size_t holo_services;   /* "modelName" members in them: services saved */
	size_t api_key_members; /* "apiKey" members left in them (value redacted) */
	char first[600];        /* where the first one was */
} scan;

static const char *needles[NDEMO];

static bool is_key_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static size_t count_sub(const char *hay, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);

	for (const char *p = hay; nl && (p = memmem(p, len - (size_t)(p - hay), needle, nl));
	     p += nl)
		n++;
	return n;
}

static void scan_text(scan *s, const char *name, const char *text, size_t len)
{
	size_t before = s->found;

	s->files++;
	s->bytes += len;
	for (size_t i = 0; i < NDEMO; i++)
		s->found += count_sub(text, len, needles[i]);
	for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), "sk-", 3)); p += 3) {
		size_t k = 0;

		while ((size_t)(p + 3 + k - text) < len && is_key_char((unsigned char)p[3 + k]))
			k++;
		if (k >= 16) {
			s->found++;
			s->sk_found++;
		}
	}
	if (s->found > before && !s->first[0])
		snprintf(s->first, sizeof(s->first), "%s", name);
}

static scan *cur_scan;

static int scan_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	size_t len;
	char *text;

	(void)ftw;
	if (flag != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	text = af_test_read_file(path, &len);
	if (!text)
		return -1;
	scan_text(cur_scan, path, text, len);
	cur_scan->raw_pages++;
	if (strstr(path, "/hologres/") && strstr(text, "modelServiceList")) {
		cur_scan->holo_pages++;
		cur_scan->holo_services += count_sub(text, len, "\"modelName\"");
		cur_scan->api_key_members += count_sub(text, len, "\"apiKey\"");
	}
	free(text);
	return 0;
}

/* ---- the test ---------------------------------------------------------------- */

/* Fails with `why`, how aifleet ended (it has) and what it said. */
static _Noreturn void fail_run(const env *e, const char *why)
{
	char path[700], *err;
	probe_msg pm;
	end_msg em = {-2};

	if (write_all(e->to_launcher, "q", 1) == 0 &&
	    read_timed(e->from_launcher, &pm, sizeof(pm), 10) == 0 &&
	    read_timed(e->from_launcher, &em, sizeof(em), 10) == 0 && em.status >= 0)
		printf("aifleet %s %d\n", WIFEXITED(em.status) ? "exited with" : "killed by signal",
		       WIFEXITED(em.status) ? WEXITSTATUS(em.status) : WTERMSIG(em.status));
	snprintf(path, sizeof(path), "%s/err.txt", e->dir);
	err = af_test_read_file(path, NULL);
	printf("--- aifleet stderr (head) ---\n%.4000s\n---\n",
	       err ? err : "(none: it could not open it, or never started)");
	fflush(stdout);
	free(err);
	fail_msg("%s", why);
	abort(); /* fail_msg does not return */
}

/* Every directory above `path` must be searchable by `uid`. */
static void check_searchable(const char *path, uid_t uid, gid_t gid)
{
	char buf[1024];
	struct stat st;
	char *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	while ((slash = strrchr(buf, '/')) && slash != buf) {
		*slash = '\0';
		if (stat(buf, &st) != 0)
			fail_msg("stat %s: %s", buf, strerror(errno));
		if (!(st.st_mode & S_IXOTH) && !(st.st_uid == uid && (st.st_mode & S_IXUSR)) &&
		    !(st.st_gid == gid && (st.st_mode & S_IXGRP)))
			fail_msg("%s is not searchable by uid %ld, which runs aifleet here "
			         "(for %s): use a TMPDIR and build directory it can reach",
			         buf, (long)uid, path);
	}
}

static void env_up(env *e, bool *drop, uid_t *uid, gid_t *gid)
{
	static const char *const sim_args[] = {"--latency-ms", LATENCY_MS, NULL};

	af_testdb_create(&e->db);
	e->db_made = true;
	e2e_sim_start(&e->sim, sim_args);
	e->dir = af_test_tempdir();
	e->probe_dir = af_test_tempdir();
	e->config = e2e_write_config(e->dir, &e->sim, &e->db, NULL, NULL);
	e2e_set_demo_credentials();
	for (size_t i = 0; i < NDEMO; i++) {
		needles[i] = getenv(demo_env[i]);
		assert_non_null(needles[i]);
		assert_true(strlen(needles[i]) >= 8);
	}
	*drop = geteuid() == 0;
	*uid = getuid();
	*gid = getgid();
	if (*drop) {
		struct passwd *pw = getpwnam("nobody");

		if (!pw)
			fail_msg(
			    "running as root, but there is no user 'nobody' to run aifleet as");
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		assert_int_equal(chown(e->dir, *uid, *gid), 0);
		assert_int_equal(chown(e->config, *uid, *gid), 0);
		assert_int_equal(chown(e->probe_dir, *uid, *gid), 0);
		check_searchable(e->config, *uid, *gid);
		check_searchable(e->probe_dir, *uid, *gid);
		check_searchable(AIFLEET_BIN, *uid, *gid);
	}
}

static const char *errname(int err)
{
	return err ? strerror(err) : "allowed";
}

static void test_memory_protected_and_no_secret_written(void **state)
{
	env *e = *state;
	char raw[700], line[256];
	const char *argv[] = {AIFLEET_BIN,     "--config",   NULL, "--log-level", "debug",
	                      "--no-progress", "--save-raw", raw,  "sync",        NULL};
	int p_up[2], p_down[2];
	launch la = {0};
	start_msg sm;
	probe_msg pm;
	end_msg em;
	uid_t run_uid, ou = 0;
	gid_t run_gid, og = 0;
	bool drop;
	double t0, deadline;
	long long req_at_probe, req_end, services;
	unsigned long long soft = 1, hard = 1;
	char soft_s[32] = "", hard_s[32] = "";
	char *comm;
	int code;
	scan sc = {0};

	env_up(e, &drop, &run_uid, &run_gid);
	argv[2] = e->config;
	snprintf(raw, sizeof(raw), "%s/raw", e->dir);
	services = sim_hologres_services(e);
	print_message("[memory] aifleet runs as uid %ld%s; the simulator holds %lld Hologres "
	              "services (one apiKey each); latency %s ms\n",
	              (long)run_uid, drop ? " (nobody: the test runs as root)" : "", services,
	              LATENCY_MS);
	assert_true(services > 0);

	assert_int_equal(pipe2(p_up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(p_down, O_CLOEXEC), 0);
	la.parent = getpid();
	la.drop = drop;
	la.uid = run_uid;
	la.gid = run_gid;
	la.dir = e->dir;
	la.probe_dir = e->probe_dir;
	la.argv = argv;
	t0 = af_test_now();
	e->launcher = fork();
	assert_true(e->launcher >= 0);
	if (e->launcher == 0) {
		close(p_up[0]);
		close(p_down[1]);
		launcher(&la, p_up[1], p_down[0]);
	}
	close(p_up[1]);
	close(p_down[0]);
	e->from_launcher = p_up[0];
	e->to_launcher = p_down[1];

	if (read_timed(e->from_launcher, &sm, sizeof(sm), START_WAIT_S) < 0)
		fail_msg("the launcher did not start aifleet");
	if (sm.err)
		fail_msg("the launcher failed: %s", strerror(sm.err));

	/* Wait until aifleet collects: past exec and protect_memory(). */
	deadline = af_test_now() + START_WAIT_S;
	while (sim_requests(e) < 1) {
		if (!running(sm.aifleet))
			fail_run(e, "aifleet ended before it sent a request");
		if (af_test_now() > deadline)
			fail_msg("aifleet sent no request within %d s", START_WAIT_S);
		af_test_sleep_ms(10);
	}
	comm = proc_text(sm.aifleet, "comm");
	assert_non_null(comm);
	comm[strcspn(comm, "\n")] = '\0';
	print_message("[memory] pid %ld (%s) collecting after %.2f s\n", (long)sm.aifleet, comm,
	              af_test_now() - t0);
	assert_string_equal(comm, "aifleet");
	free(comm);

	/* 1. no core file, soft or hard */
	assert_true(proc_line(sm.aifleet, "limits", "Max core file size", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%31s %31s", soft_s, hard_s), 2);
	soft = strtoull(soft_s, NULL, 10);
	hard = strtoull(hard_s, NULL, 10);
	print_message("[memory] /proc/%ld/limits: Max core file size: soft %s, hard %s\n",
	              (long)sm.aifleet, soft_s, hard_s);
	assert_string_equal(soft_s, "0");
	assert_string_equal(hard_s, "0");
	assert_true(soft == 0 && hard == 0);

	/* 2. not dumpable: its /proc files belong to root, the control's to it */
	assert_true(proc_line(sm.aifleet, "status", "Uid:", line, sizeof(line)));
	print_message("[memory] /proc/%ld/status Uid:%s\n", (long)sm.aifleet, line);
	assert_int_equal(strtol(line, NULL, 10), (long)run_uid);
	/* The directory itself keeps the process's owner (the kernel exempts
	 * world-readable directories, for ps): who it runs as. */
	assert_int_equal(owner_of(sm.aifleet, "", &ou, &og), 0);
	print_message("[memory] /proc/%ld/ owned by %ld:%ld\n", (long)sm.aifleet, (long)ou,
	              (long)og);
	assert_int_equal(ou, run_uid);
	{
		static const char *const files[] = {"status", "environ", "mem", "maps", "limits"};

		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			assert_int_equal(owner_of(sm.aifleet, files[i], &ou, &og), 0);
			print_message("[memory] /proc/%ld/%s owned by %ld:%ld\n", (long)sm.aifleet,
			              files[i], (long)ou, (long)og);
			if (run_uid != 0) {
				assert_int_equal(ou, 0);
				assert_int_equal(og, 0);
			}
		}
		assert_int_equal(owner_of(sm.control, "status", &ou, &og), 0);
		print_message("[memory] control pid %ld: /proc/%ld/status owned by %ld:%ld\n",
		              (long)sm.control, (long)sm.control, (long)ou, (long)og);
		if (run_uid != 0)
			assert_int_equal(ou, run_uid);
		else
			print_message("[memory] ownership is not conclusive for a process of "
			              "root\n");
	}
	req_at_probe = sim_requests(e);

	/* 3. the same user, aifleet's parent, is refused */
	assert_int_equal(write_all(e->to_launcher, "g", 1), 0);
	if (read_timed(e->from_launcher, &pm, sizeof(pm), 2.0 * GCORE_WAIT_S + 30) < 0)
		fail_msg("the launcher did not report its probes");
	print_message("[memory] probes as uid %ld: environ read: control %s, aifleet %s; mem "
	              "open: control %s, aifleet %s\n",
	              (long)pm.uid, errname(pm.control.environ_read),
	              errname(pm.aifleet.environ_read), errname(pm.control.mem_open),
	              errname(pm.aifleet.mem_open));
	print_message("[memory] PTRACE_ATTACH: control %s, aifleet %s\n",
	              errname(pm.control.ptrace_attach), errname(pm.aifleet.ptrace_attach));
	if (pm.gcore_ran)
		print_message("[memory] gcore: control exit %d%s, aifleet exit %d%s\n",
		              pm.control.gcore_status,
		              pm.control.gcore_core ? " (core written)" : "",
		              pm.aifleet.gcore_status,
		              pm.aifleet.gcore_core ? " (CORE WRITTEN)" : " (no core)");
	else
		print_message("[memory] gcore is not installed: PTRACE_ATTACH (what it uses) "
		              "stands for it\n");
	/* the probes ran while it was running */
	if (!running(sm.aifleet))
		fail_msg("aifleet ended during the probes: the sync is too short to "
		         "test (raise LATENCY_MS)");
	print_message("[memory] aifleet still running after the probes (%.2f s; simulator "
	              "requests %lld)\n",
	              af_test_now() - t0, req_at_probe);
	assert_int_equal(pm.uid, run_uid);
	assert_int_equal(pm.control.environ_read, 0);
	assert_int_not_equal(pm.aifleet.environ_read, 0);
	assert_int_equal(pm.control.mem_open, 0);
	assert_int_not_equal(pm.aifleet.mem_open, 0);
	if (pm.control.ptrace_attach == 0)
		assert_int_equal(pm.aifleet.ptrace_attach, EPERM);
	else
		print_message("[memory] NOT CONCLUSIVE: the control cannot be traced here either "
		              "(%s); the ptrace probe is not asserted\n",
		              strerror(pm.control.ptrace_attach));
	if (pm.gcore_ran && pm.control.gcore_core) {
		assert_false(pm.aifleet.gcore_core);
		assert_int_not_equal(pm.aifleet.gcore_status, 0);
	} else if (pm.gcore_ran) {
		print_message("[memory] NOT CONCLUSIVE: gcore cannot dump the control here "
		              "either (exit %d); the gcore probe is not asserted\n",
		              pm.control.gcore_status);
	}
	assert_false(pm.aifleet.gcore_core);

	/* the run ends well */
	if (read_timed(e->from_launcher, &em, sizeof(em), RUN_LIMIT_S + 10) < 0)
		fail_msg("the launcher did not report the end of the run");
	waitpid(e->launcher, NULL, 0);
	e->launcher = 0;
	{
		char path[700];

		snprintf(path, sizeof(path), "%s/out.txt", e->dir);
		e->out = af_test_read_file(path, NULL);
		snprintf(path, sizeof(path), "%s/err.txt", e->dir);
		e->err = af_test_read_file(path, NULL);
	}
	assert_non_null(e->out);
	assert_non_null(e->err);
	req_end = sim_requests(e);
	if (em.status < 0)
		fail_msg("aifleet did not finish within %d s", RUN_LIMIT_S);
	code = WIFEXITED(em.status) ? WEXITSTATUS(em.status) : 128 + WTERMSIG(em.status);
	print_message("[memory] aifleet exit %d after %.2f s, %lld simulator requests (%lld when "
	              "probed)\n%s",
	              code, af_test_now() - t0, req_end, req_at_probe, e->out);
	if (code != 0)
		fail_msg("aifleet exit %d, expected 0; stderr:\n%.3000s", code, e->err);
	assert_true(req_end > req_at_probe);

	/* the secrets: none in the log, stdout, the raw pages or the database;
	 * first, the scanner finds what it looks for */
	{
		scan self = {0};
		char text[256];

		snprintf(text, sizeof(text),
		         "a %s b \"apiKey\":\"sk-0123456789abcdef0123\" c sk-short "
		         "%s",
		         needles[0], needles[NDEMO - 1]);
		scan_text(&self, "self-check", text, strlen(text));
		assert_int_equal(self.found, 3);
		assert_int_equal(self.sk_found, 1);
	}
	scan_text(&sc, "stderr", e->err, strlen(e->err));
	scan_text(&sc, "stdout", e->out, strlen(e->out));
	cur_scan = &sc;
	assert_int_equal(nftw(raw, scan_entry, 16, FTW_PHYS), 0);
	cur_scan = NULL;
	print_message("[memory] secrets found: %zu in %zu files (%zu bytes: stderr, stdout and "
	              "%zu save-raw pages; %zu of them sk- keys)%s%s\n",
	              sc.found, sc.files, sc.bytes, sc.raw_pages, sc.sk_found,
	              sc.found ? ", first in " : "", sc.first);
	print_message("[memory] the save-raw pages hold %zu Hologres GetInstanceModel pages with "
	              "%zu model services (the simulator: %lld); \"apiKey\" members left: %zu\n",
	              sc.holo_pages, sc.holo_services, services, sc.api_key_members);
	assert_true(sc.raw_pages > 0);
	assert_true(sc.holo_pages > 0);
	assert_int_equal((long long)sc.holo_services, services);
	assert_true(strlen(e->err) > 0);
	assert_int_equal(sc.found, 0);
	{
		af_buf sql = AF_BUF_INIT;
		long long db_found;

		af_buf_puts(&sql,
		            "WITH t AS (SELECT to_jsonb(x)::text AS v FROM aifleet.instance x "
		            "UNION ALL SELECT to_jsonb(x)::text FROM aifleet.service x "
		            "UNION ALL SELECT to_jsonb(x)::text FROM aifleet.resource x "
		            "UNION ALL SELECT to_jsonb(x)::text FROM aifleet.history x "
		            "UNION ALL SELECT to_jsonb(x)::text FROM aifleet.sync_run x "
		            "UNION ALL SELECT to_jsonb(x)::text FROM aifleet.scope_state x) "
		            "SELECT count(*) FROM t WHERE v ~ 'sk-[0-9A-Za-z]{16}'");
		for (size_t i = 0; i < NDEMO; i++)
			af_buf_printf(&sql, " OR strpos(v, '%s') > 0", needles[i]);
		db_found = af_testdb_query_int(&e->db, af_buf_data(&sql));
		print_message("[memory] database rows holding a secret: %lld of %lld\n", db_found,
		              af_testdb_query_int(
		                  &e->db,
		                  "SELECT (SELECT count(*) FROM aifleet.instance) + (SELECT "
		                  "count(*) FROM aifleet.service) + (SELECT count(*) FROM "
		                  "aifleet.resource) + (SELECT count(*) FROM aifleet.history) "
		                  "+ (SELECT count(*) FROM aifleet.sync_run) + (SELECT "
		                  "count(*) FROM aifleet.scope_state)"));
		af_buf_free(&sql);
		assert_int_equal(db_found, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_memory_protected_and_no_secret_written, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
