/*
 * Routing: which product and action a request is for, from the products'
 * descriptors, then the checks every product of a style shares (method,
 * signature, action, version, region), then faults and the action's handler
 * (or, with --fixtures, the API page's example).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"

static const char not_found[] = "Specified api is not found, please check your url and method.";

static int fixture_out(sim_resp *resp, const char *name)
{
	const sim_fixture *f = sim_fixture_get(name);
	resp->status = 200;
	af_buf_reset(&resp->body);
	return f ? af_buf_append(&resp->body, f->data, f->len) : -1;
}

/* What every routed, authenticated and well-formed request goes through. */
static void answer(af_sim *s, sim_req *r, sim_resp *resp)
{
	int post = SIM_F_NONE;

	r->page = r->action->page ? r->action->page(r) : -1;
	if (sim_faults_apply(s, r, resp, &post) != 0)
		return;
	if (s->opt.fixtures)
		fixture_out(resp, r->action->fixture);
	else
		r->action->handle(s, r, resp);
	sim_faults_post(resp, post);
}

static const sim_action *action_named(const sim_product *p, const char *name)
{
	for (size_t i = 0; name && i < p->nactions; i++)
		if (strcmp(p->actions[i].name, name) == 0)
			return &p->actions[i];
	return NULL;
}

/* ---- Alibaba ACS3 ---- */

/* Matches the rest of a ROA path against an action's pattern, where
 * "{name}" is one non-empty segment; its (decoded) value in *arg. */
static bool roa_match(const char *pattern, const char *path, char **arg)
{
	while (*pattern) {
		if (*pattern == '{') {
			const char *end = strchr(pattern, '}'), *seg = path;
			if (!end)
				return false;
			while (*path && *path != '/')
				path++;
			if (path == seg)
				return false;
			free(*arg); /* one argument: the last "{name}" */
			*arg = sim_unescape(seg, (size_t)(path - seg));
			pattern = end + 1;
		} else if (*pattern++ != *path++) {
			return false;
		}
	}
	return *path == '\0';
}

/* The ROA product whose root is in the path (*root: where), or -1. */
static int roa_product(const sim_req *r, const char **root)
{
	for (size_t i = 0; i < sim_product_count(); i++) {
		const sim_product *p = sim_product_at(i);
		if (p->style == SIM_ACS3_ROA && (*root = strstr(r->path, p->roa_root)))
			return (int)i;
	}
	return -1;
}

/* The RPC product with an action of that x-acs-action, or -1. */
static int rpc_product(const char *action, const sim_action **act)
{
	for (size_t i = 0; action && i < sim_product_count(); i++) {
		const sim_product *p = sim_product_at(i);
		if (p->style == SIM_ACS3_RPC && (*act = action_named(p, action)))
			return (int)i;
	}
	return -1;
}

/* Finds r's product and action from the path (ROA) or x-acs-action on "/"
 * (RPC). false with resp filled when none answers it. *root: where a ROA
 * product's root starts in the path, NULL for RPC. */
static bool acs3_find(sim_req *r, sim_resp *resp, const char **root)
{
	const char *action = sim_req_header(r, "x-acs-action");
	const sim_action *act = NULL;
	char *arg = NULL;

	*root = NULL;
	if ((r->product = roa_product(r, root)) >= 0) {
		const sim_product *p = sim_product_at((size_t)r->product);
		const char *rest = *root + strlen(p->roa_root);
		for (size_t i = 0; i < p->nactions && !r->action; i++) {
			if (roa_match(p->actions[i].path, rest, &arg)) {
				r->action = &p->actions[i];
			} else {
				free(arg);
				arg = NULL;
			}
		}
		if (!r->action) {
			sim_error(resp, r, 404, "InvalidAction.NotFound", not_found);
			return false;
		}
		r->instance = arg;
		return true;
	}
	if (strcmp(r->path, "/") == 0 && (r->product = rpc_product(action, &act)) >= 0) {
		r->action = act;
		return true;
	}
	sim_ali_error(resp, r, 404, false, "InvalidAction.NotFound", not_found);
	return false;
}

/* A ROA product's region: Host <roa_host><region>.aliyuncs.com[:port], else
 * a /<region> prefix before the root in the path. */
static bool roa_region(char *out, size_t n, const sim_req *r, const char *root)
{
	const char *host = sim_req_header(r, "Host"),
	           *hp = sim_product_at((size_t)r->product)->roa_host;
	static const char hs[] = ".aliyuncs.com";
	size_t hpl = strlen(hp), plen = (size_t)(root - r->path);
	if (host && strncasecmp(host, hp, hpl) == 0) {
		const char *reg = host + hpl, *colon = strchr(reg, ':');
		size_t len = colon ? (size_t)(colon - reg) : strlen(reg);
		if (len > sizeof(hs) - 1 &&
		    strncasecmp(reg + len - (sizeof(hs) - 1), hs, sizeof(hs) - 1) == 0) {
			len -= sizeof(hs) - 1;
			if (len < n && len > 0) {
				memcpy(out, reg, len);
				out[len] = '\0';
				return true;
			}
		}
	}
	if (plen > 1 && r->path[0] == '/' && !memchr(r->path + 1, '/', plen - 1) && plen - 1 < n) {
		memcpy(out, r->path + 1, plen - 1);
		out[plen - 1] = '\0';
		return true;
	}
	return false;
}

/* The region of an ACS3 request: RegionId (RPC) or Host / path (ROA). */
static bool acs3_region(sim_req *r, sim_resp *resp, const char *root)
{
	char msg[160];
	if (!root) {
		const char *reg = sim_req_param(r, "RegionId");
		if (!reg || !*reg) {
			sim_error(resp, r, 400, "MissingParameter",
			          "The input parameter \"RegionId\" that is mandatory for "
			          "processing this request is not supplied.");
			return false;
		}
		snprintf(r->region, sizeof(r->region), "%s", reg);
		return true;
	}
	if (roa_region(r->region, sizeof(r->region), r, root))
		return true;
	snprintf(msg, sizeof(msg),
	         "Cannot tell the region: use Host %s<region>.aliyuncs.com or a /<region> path "
	         "prefix.",
	         sim_product_at((size_t)r->product)->roa_host);
	sim_error(resp, r, 400, "InvalidRegionId", msg);
	return false;
}

void sim_route_acs3(af_sim *s, sim_req *r, sim_resp *resp)
{
	const char *action = sim_req_header(r, "x-acs-action");
	const char *version = sim_req_header(r, "x-acs-version");
	const char *root;

	sim_request_id(r->request_id, true);
	if (!acs3_find(r, resp, &root))
		return;
	if (strcmp(r->method, r->action->method) != 0) {
		sim_error(resp, r, 400, "UnsupportedHTTPMethod",
		          "This action does not support the HTTP method.");
		return;
	}
	if (sim_auth_acs3(s, r, resp) != 0)
		return;
	if (action && strcmp(action, r->action->name) != 0) {
		sim_error(resp, r, 400, "InvalidAction.Mismatch",
		          "x-acs-action does not match the request path.");
		return;
	}
	if (version && strcmp(version, sim_product_at((size_t)r->product)->version) != 0) {
		sim_error(resp, r, 400, "InvalidVersion", "Specified version is not valid.");
		return;
	}
	if (acs3_region(r, resp, root))
		answer(s, r, resp);
}

/* ---- Tencent TC3 ---- */

/* The TC3 product whose credential-scope service the Authorization names,
 * else the first TC3 product (whose signature check then says the scope
 * names another service); -1 when there is none. */
static int tc3_product(const sim_req *r)
{
	char svc[64] = "";
	int first = -1;
	sim_auth_tc3_service(svc, sizeof(svc), sim_req_header(r, "Authorization"));
	for (size_t i = 0; i < sim_product_count(); i++) {
		const sim_product *p = sim_product_at(i);
		if (p->style != SIM_TC3)
			continue;
		if (strcmp(p->tc3_service, svc) == 0)
			return (int)i;
		if (first < 0)
			first = (int)i;
	}
	return first;
}

void sim_route_tc3(af_sim *s, sim_req *r, sim_resp *resp)
{
	const char *action = sim_req_header(r, "X-TC-Action");
	const char *version = sim_req_header(r, "X-TC-Version");
	const char *region = sim_req_header(r, "X-TC-Region");
	enum json_tokener_error jerr = json_tokener_success;
	const sim_product *p;

	sim_request_id(r->request_id, false);
	if (strcmp(r->method, "POST") != 0) {
		sim_tc_error(resp, r, "InvalidParameter",
		             "Only POST with a JSON body is supported.");
		return;
	}
	if ((r->product = tc3_product(r)) < 0) {
		sim_tc_error(resp, r, "InvalidAction", "The action is not supported.");
		return;
	}
	p = sim_product_at((size_t)r->product);
	if (sim_auth_tc3(s, r, resp) != 0)
		return;
	if (!(r->action = action_named(p, action))) {
		sim_tc_error(resp, r, "InvalidAction", "The action is not supported.");
		return;
	}
	if (version && strcmp(version, p->version) != 0) {
		sim_tc_error(resp, r, "NoSuchVersion", "The API version does not exist.");
		return;
	}
	if (!region || !*region) {
		sim_tc_error(resp, r, "MissingParameter", "The Region parameter is missing.");
		return;
	}
	snprintf(r->region, sizeof(r->region), "%s", region);
	r->json =
	    json_tokener_parse_verbose(af_buf_data(&r->body) ? af_buf_data(&r->body) : "{}", &jerr);
	if (!r->json || !json_object_is_type(r->json, json_type_object)) {
		sim_tc_error(resp, r, "InvalidParameter", "The request body is not a JSON object.");
		return;
	}
	answer(s, r, resp);
}
