#include "error.h"

#include <errno.h>

#include <lmdb.h>
#include <raft.h>
#include <uv.h>

const char *settle_strerror(int err)
{
	if (err == 0)
		return "ok";
	switch (err) {
#define SETTLE__ERR_TEXT(name, value, wire, text)                              \
	case (value):                                                          \
		return text;
		SETTLE_ERRNO_MAP(SETTLE__ERR_TEXT)
#undef SETTLE__ERR_TEXT
	}
	return "unknown error";
}

const char *settle_errname(int err)
{
	if (err == 0)
		return "OK";
	switch (err) {
#define SETTLE__ERR_NAME(name, value, wire, text)                              \
	case (value):                                                          \
		return #name;
		SETTLE_ERRNO_MAP(SETTLE__ERR_NAME)
#undef SETTLE__ERR_NAME
	}
	return "UNKNOWN";
}

int settle_err_to_wire(int err)
{
	if (err == 0)
		return 0;
	switch (err) {
#define SETTLE__ERR_WIRE(name, value, wire, text)                              \
	case (value):                                                          \
		return (wire);
		SETTLE_ERRNO_MAP(SETTLE__ERR_WIRE)
#undef SETTLE__ERR_WIRE
	}
	return 7; /* INTERNAL */
}

int settle_err_from_wire(int code)
{
	if (code == 0)
		return 0;
	/* Wire codes are the negated values of their table rows; codes of
	 * local errors (mapped before the wire) are not wire codes. */
	switch (-code) {
#define SETTLE__ERR_FROM_WIRE(name, value, wire, text)                         \
	case (value):                                                          \
		if ((wire) == code)                                            \
			return (value);                                        \
		break;
		SETTLE_ERRNO_MAP(SETTLE__ERR_FROM_WIRE)
#undef SETTLE__ERR_FROM_WIRE
	}
	return SETTLE_EINTERNAL;
}

int settle_err_from_uv(int uverr)
{
	switch (uverr) {
	case 0:
		return 0;
	case UV_ENOMEM:
		return SETTLE_ENOMEM;
	case UV_EOF:
	case UV_ECONNRESET:
	case UV_EPIPE:
		return SETTLE_ECLOSED;
	case UV_ECONNREFUSED:
	case UV_ETIMEDOUT:
	case UV_EHOSTUNREACH:
	case UV_ENETUNREACH:
	case UV_EADDRNOTAVAIL:
		return SETTLE_ECONNECT;
	case UV_ECANCELED:
		return SETTLE_ECANCELED;
	case UV_EINVAL:
		return SETTLE_EINVAL;
	case UV_ENOSPC:
		return SETTLE_ENOSPACE;
	}
	return SETTLE_EIO;
}

int settle_err_from_mdb(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return SETTLE_ENOTFOUND;
	case MDB_KEYEXIST:
		return SETTLE_EEXISTS;
	case MDB_MAP_FULL:
		return SETTLE_EFULL;
	case ENOSPC:
		return SETTLE_ENOSPACE;
	case ENOMEM:
		return SETTLE_ENOMEM;
	}
	return SETTLE_ESTORE;
}

int settle_err_from_raft(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case RAFT_NOMEM:
		return SETTLE_ENOMEM;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return SETTLE_ENOTLEADER;
	case RAFT_SHUTDOWN:
	case RAFT_CANCELED:
		return SETTLE_EUNAVAIL;
	case RAFT_TOOBIG:
		return SETTLE_ETOOBIG;
	case RAFT_NOSPACE:
		return SETTLE_ENOSPACE;
	}
	return SETTLE_ERAFT;
}
