#include "paging.h"

#include "aifleet/error.h"

void af_paging_init(af_paging *p, int max_pages)
{
	p->seen = 0;
	p->pages = 0;
	p->max_pages = max_pages;
}

int af_paging_next(af_paging *p, size_t n, json_object *total, int page_size)
{
	int64_t count;

	p->pages++;
	p->seen += n;
	if (n == 0)
		return 0;
	if (!total || json_object_is_type(total, json_type_null)) {
		/* No total: a short page is the last one. */
		if (n < (size_t)page_size)
			return 0;
	} else {
		if (!json_object_is_type(total, json_type_int))
			return af_error_set(AF_ERR_DATA, "TotalCount is not an integer");
		count = json_object_get_int64(total);
		if (count < 0)
			return af_error_set(AF_ERR_DATA, "TotalCount is negative");
		if (p->seen >= (uint64_t)count)
			return 0;
	}
	if (p->pages >= p->max_pages)
		return af_error_set(AF_ERR_LIMIT,
				    "paging did not end after %d pages (%llu items); "
				    "raise [sync] max_pages if the fleet is really this large",
				    p->pages, (unsigned long long)p->seen);
	return 1;
}
