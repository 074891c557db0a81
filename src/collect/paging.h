#ifndef AIFLEET_COLLECT_PAGING_H
#define AIFLEET_COLLECT_PAGING_H

/*
 * When to stop paging, shared by the paged collectors: at the reported
 * total, at an empty or short page, and never after max_pages (a list
 * that never ends is an error, not an infinite loop).
 */

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_paging {
	uint64_t seen;   /* items received so far, duplicates included */
	int pages;
	int max_pages;
} af_paging;

void af_paging_init(af_paging *p, int max_pages);

/* After a page of `n` items: 1 = fetch another page, 0 = done,
 * AF_ERR_DATA/AF_ERR_LIMIT on a total that is not a number or a list
 * that does not end. `total` is the page's TotalCount (may be NULL). */
int af_paging_next(af_paging *p, size_t n, json_object *total, int page_size);

#endif
