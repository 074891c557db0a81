#include "aifleet/record.h"

#include <stdio.h>

char *af_scope_name(char *out, size_t n, const af_scope *sc)
{
	snprintf(out, n, "%s/%s/%s/%s", sc->provider ? sc->provider : "?",
		 sc->account ? sc->account : "?", sc->region ? sc->region : "?",
		 sc->product ? sc->product : "?");
	return out;
}
