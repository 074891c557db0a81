#ifndef AIFLEET_PAGING_H
#define AIFLEET_PAGING_H

/*
 * Paging reconciliation, shared by the paged collectors (Tair, TI-ONE).
 * A paged list is complete only when it adds up: the unique items seen
 * equal the last TotalCount the API reported, every page before the end
 * was full, and TotalCount did not move while paging. Anything else is a
 * reason for the scope to be partial -- never a reason to stop quietly,
 * because a scope that stops early would tombstone what it did not see.
 *
 * The rules (docs/reliability.md repeats them):
 *  - TotalCount must be a non-negative integer on every page;
 *  - a page with more items than TotalCount, or more unique items overall
 *    than TotalCount: the total lies (partial);
 *  - an empty or short page (fewer items than asked) before TotalCount is
 *    reached: partial;
 *  - TotalCount changed between two pages: the list is restarted from the
 *    first page once and reconciled from scratch (what the first pass sent
 *    on stays in the run: an item that vanished meanwhile is kept one more
 *    run, never wrongly deleted); if it changes again, partial;
 *  - duplicates (an item seen on an earlier page) are the trace of a list
 *    that shifted under us: tolerated up to AF_PAGING_DUP_MIN or 1% of
 *    TotalCount, whichever is larger; past that, or when a page brings no
 *    new item at all, partial;
 *  - never more than max_pages pages (a list that never ends).
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct af_job;
struct af_strset;

#define AF_PAGING_DUP_MIN 5

typedef enum af_paging_step {
	AF_PAGING_DONE = 0,    /* the list is complete */
	AF_PAGING_MORE = 1,    /* fetch the next page */
	AF_PAGING_RESTART = 2, /* TotalCount moved: fetch again from the first page */
} af_paging_step;

typedef struct af_paging {
	struct af_strset *ids; /* ids of the items seen in this pass (aifleet/strset.h) */
	uint64_t unique;      /* distinct items in this pass (an item without an id counts once) */
	uint64_t duplicates;  /* items seen again in this pass */
	int64_t total;        /* TotalCount of the previous page, -1 before the first */
	int pages;            /* pages fetched, restarts included */
	int max_pages;
	int restarts;
} af_paging;

int af_paging_init(af_paging *p, int max_pages);
void af_paging_free(af_paging *p);

/*
 * Accounts for one page: `list` is the page's item array (NULL for an
 * empty page), `id_field` the member that identifies an item, `total` the
 * page's TotalCount, `page_size` what was asked for. Returns an
 * af_paging_step, or AF_ERR_DATA / AF_ERR_LIMIT with the reason the list
 * does not add up (the scope is then partial), or AF_ERR_NOMEM.
 */
int af_paging_next(af_paging *p, json_object *list, const char *id_field, json_object *total,
		   int page_size);

/* Emits a checked page through the job (af_job_emit_page) and accounts for
 * it (af_paging_next, whose step goes to *step): what a page fetcher does
 * once it has found the page's list and TotalCount. */
int af_paging_emit(struct af_job *job, af_paging *p, json_object *page, json_object *list,
		   const char *id_field, json_object *total, int page_size, int *step);

/*
 * Fetches page `index` (0 for the first page of a pass) of `page_size`
 * items, emits it, and accounts for it with af_paging_next(), storing the
 * step in *step. Returns 0 or a negative af_error_class.
 */
typedef int (*af_page_fetcher)(struct af_job *job, af_paging *paging, int index, int page_size,
			       int *step);

/* Runs a paged list to its end: pages 0, 1, 2... of af_job_page_size(job),
 * from page 0 again when af_paging_next says so, never past
 * af_job_max_pages(job). Returns 0 when the list added up, else the first
 * error. */
int af_paging_collect(struct af_job *job, af_page_fetcher fetch_page);

#endif
