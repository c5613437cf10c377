/* settle.h carries a public copy of the error table: it must agree with
 * proto/error.h. This file sees only the public copy; the test compares
 * it with the internal table compiled into libsettle. */
#include <criterion/criterion.h>
#include <string.h>

#include "settle.h"

#define PUB(name)                                                              \
	{                                                                      \
#name, SETTLE_E##name                                          \
	}
static const struct {
	const char *name;
	int value;
} pub[] = {
    PUB(INVAL),	   PUB(NOTFOUND), PUB(STATE),	 PUB(NOTLEADER), PUB(UNAVAIL),
    PUB(TIMEOUT),  PUB(INTERNAL), PUB(NOMETHOD), PUB(TOOBIG),	 PUB(EXISTS),
    PUB(FAILURE),  PUB(RETRY),	  PUB(REFUSED),	 PUB(NOMEM),	 PUB(IO),
    PUB(PROTO),	   PUB(CLOSED),	  PUB(STORE),	 PUB(RAFT),	 PUB(CONNECT),
    PUB(CANCELED), PUB(FULL),	  PUB(DIVERGED), PUB(EXHAUSTED), PUB(NOSPACE),
    PUB(REUSED),   PUB(TLS),	  PUB(DENIED),
};

Test(errors, public_copy_matches_the_internal_table)
{
	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++)
		cr_expect_str_eq(settle_errname(pub[i].value), pub[i].name,
				 "SETTLE_E%s = %d", pub[i].name, pub[i].value);
}

/* Value of the public SETTLE_E<name>, or 1 when settle.h lacks it. */
int pub_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++)
		if (strcmp(pub[i].name, name) == 0)
			return pub[i].value;
	return 1;
}
