#include "aifleet/paging.h"

#include <stdlib.h>
#include <string.h>

#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/strset.h"

/* TotalCount is an int32 (Tair) or int64 (TI-ONE) in the APIs; a fleet of
 * more than a billion items in one scope is a lie, not a fleet. */
#define TOTAL_MAX 1000000000LL

static int reset_ids(af_paging *p)
{
	af_strset_free(p->ids);
	p->ids = NULL;
	p->unique = 0;
	p->duplicates = 0;
	p->total = -1;
	return af_strset_new(&p->ids);
}

int af_paging_init(af_paging *p, int max_pages)
{
	memset(p, 0, sizeof(*p));
	p->max_pages = max_pages;
	return reset_ids(p);
}

void af_paging_free(af_paging *p)
{
	af_strset_free(p->ids);
	p->ids = NULL;
}

static int read_total(int64_t *out, json_object *total)
{
	if (!total)
		return af_error_set(AF_ERR_DATA, "the page has no TotalCount");
	if (!json_object_is_type(total, json_type_int))
		return af_error_set(AF_ERR_DATA, "TotalCount is not an integer (%s)",
				    json_type_to_name(json_object_get_type(total)));
	*out = json_object_get_int64(total);
	if (*out < 0 || *out > TOTAL_MAX)
		return af_error_set(AF_ERR_DATA, "TotalCount %lld is out of range", (long long)*out);
	return 0;
}

/* Adds the page's items to the pass; *fresh receives how many were new. */
static int count_items(af_paging *p, json_object *list, const char *id_field, size_t *fresh)
{
	size_t n = list ? json_object_array_length(list) : 0;
	int added;

	*fresh = 0;
	for (size_t i = 0; i < n; i++) {
		json_object *id = NULL;

		json_object_object_get_ex(json_object_array_get_idx(list, i), id_field, &id);
		if (!json_object_is_type(id, json_type_string)) {
			/* The normalizer rejects it; it still is one item. */
			p->unique++;
			(*fresh)++;
			continue;
		}
		if ((added = af_strset_add(p->ids, json_object_get_string(id))) < 0)
			return added;
		if (!added) {
			p->duplicates++;
			continue;
		}
		p->unique++;
		(*fresh)++;
	}
	return 0;
}

static int too_many_pages(const af_paging *p)
{
	return af_error_set(AF_ERR_LIMIT,
			    "paging did not end after %d pages (%llu items); "
			    "raise [sync] max_pages if the fleet is really this large",
			    p->pages, (unsigned long long)p->unique);
}

int af_paging_next(af_paging *p, json_object *list, const char *id_field, json_object *total,
		   int page_size)
{
	size_t n = list ? json_object_array_length(list) : 0, fresh;
	uint64_t tolerance;
	int64_t count = 0;
	int err;

	p->pages++;
	if ((err = read_total(&count, total)) < 0)
		return err;
	if (p->total >= 0 && count != p->total) {
		if (p->restarts > 0)
			return af_error_set(AF_ERR_DATA,
					    "TotalCount changed again while paging (%lld, then %lld):"
					    " the list never held still",
					    (long long)p->total, (long long)count);
		p->restarts++;
		if ((err = reset_ids(p)) < 0)
			return err;
		return p->pages >= p->max_pages ? too_many_pages(p) : AF_PAGING_RESTART;
	}
	p->total = count;
	if ((err = count_items(p, list, id_field, &fresh)) < 0)
		return err;
	if ((uint64_t)n > (uint64_t)count || p->unique > (uint64_t)count)
		return af_error_set(AF_ERR_DATA,
				    "TotalCount is %lld but %llu distinct items arrived: the total"
				    " does not add up",
				    (long long)count, (unsigned long long)p->unique);
	if (p->unique == (uint64_t)count)
		return AF_PAGING_DONE;

	if (n == 0)
		return af_error_set(AF_ERR_DATA,
				    "empty page although TotalCount is %lld and %llu items arrived",
				    (long long)count, (unsigned long long)p->unique);
	if (fresh == 0)
		return af_error_set(AF_ERR_DATA,
				    "the page repeats items already seen (%zu items, none new;"
				    " TotalCount %lld, %llu arrived)",
				    n, (long long)count, (unsigned long long)p->unique);
	tolerance = (uint64_t)count / 100;
	if (tolerance < AF_PAGING_DUP_MIN)
		tolerance = AF_PAGING_DUP_MIN;
	if (p->duplicates > tolerance)
		return af_error_set(AF_ERR_DATA,
				    "%llu items arrived twice, more than a shifting list explains"
				    " (tolerance %llu for TotalCount %lld)",
				    (unsigned long long)p->duplicates, (unsigned long long)tolerance,
				    (long long)count);
	if (n < (size_t)page_size)
		return af_error_set(AF_ERR_DATA,
				    "short page (%zu of %d items) although TotalCount is %lld and"
				    " %llu items arrived",
				    n, page_size, (long long)count, (unsigned long long)p->unique);
	if (p->pages >= p->max_pages)
		return too_many_pages(p);
	return AF_PAGING_MORE;
}

int af_paging_emit(af_job *job, af_paging *p, json_object *page, json_object *list,
		   const char *id_field, json_object *total, int page_size, int *step)
{
	int err;

	if ((err = af_job_emit_page(job, page)) < 0 ||
	    (err = af_paging_next(p, list, id_field, total, page_size)) < 0)
		return err;
	*step = err;
	return 0;
}

int af_paging_collect(af_job *job, af_page_fetcher fetch_page)
{
	int page_size = af_job_page_size(job);
	int step = AF_PAGING_MORE, index = -1, err;
	af_paging paging;

	if ((err = af_paging_init(&paging, af_job_max_pages(job))) < 0)
		return err;
	while (step != AF_PAGING_DONE) {
		index = step == AF_PAGING_RESTART ? 0 : index + 1;
		if (step == AF_PAGING_RESTART)
			af_job_warn(job, "TotalCount changed while paging; listing again");
		if ((err = fetch_page(job, &paging, index, page_size, &step)) < 0)
			break;
	}
	af_paging_free(&paging);
	return err;
}
