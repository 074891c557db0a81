#ifndef AIFLEET_E2E_H
#define AIFLEET_E2E_H

/*
 * End-to-end harness: the real aifleet-sim binary on a free loopback port,
 * a fresh database on the throwaway server, a configuration generated from
 * deploy/demo.ini.in, and the aifleet binary or library driving them.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "testdb.h"

/* The binaries under test, as the build left them. */
#define SIM_BIN AF_BINARY_DIR "/src/sim/aifleet-sim"
#define AIFLEET_BIN AF_BINARY_DIR "/src/cli/aifleet"

typedef struct e2e_sim {
	pid_t pid;
	int port;
	char dir[512];
} e2e_sim;

/* Starts aifleet-sim with extra arguments (NULL-terminated list). */
void e2e_sim_start(e2e_sim *sim, const char *const *args);
/* Stops the simulator and removes its directory. */
void e2e_sim_stop(e2e_sim *sim);

/* Control API: returns the parsed JSON answer (caller puts it). `body` NULL
 * makes a GET, otherwise a POST (or DELETE with method). */
json_object *e2e_sim_request(const e2e_sim *sim, const char *method, const char *path,
			     const char *body);

/* Native ids the simulator holds for a product (all accounts, regions),
 * as a sorted, newline-joined string. Caller frees. */
char *e2e_sim_ids(const e2e_sim *sim, const char *product);

/* Writes `dir`/aifleet.ini from `text` (NULL: deploy/demo.ini.in) with
 * @PORT@ and @CONNINFO@ filled in for this simulator and database, and
 * `extra` (may be NULL) appended. Returns the path (caller frees). */
char *e2e_write_config(const char *dir, const e2e_sim *sim, const af_testdb *db,
		       const char *text, const char *extra);

/* Puts the simulator's demo keys into the environment. */
void e2e_set_demo_credentials(void);

/* What an end-to-end test usually starts: a fresh database, the simulator,
 * a temporary directory and the configuration in it that names both, with
 * the demo keys in the environment. */
typedef struct e2e_world {
	af_testdb db;
	e2e_sim sim;
	char *dir;
	char *config; /* dir/aifleet.ini from deploy/demo.ini.in */
} e2e_world;

/* Starts all of it; the simulator with `sim_args` (NULL-terminated). */
void e2e_world_up(e2e_world *w, const char *const *sim_args);
/* Stops and removes whatever of it was started; a zeroed world, or one a
 * failed assertion left half up, is fine. */
void e2e_world_down(e2e_world *w);

/* Runs the aifleet binary with args (af_test_run(), no time limit of its
 * own); stdout and stderr go to files in `dir` (out.txt, err.txt) whose
 * contents are returned ("" if unreadable; caller frees). Returns the exit
 * code, or 128 + the signal that ended it. */
int e2e_run_aifleet(const char *dir, const char *const *args, char **out, char **err);

#endif
