#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/roles.h"
#include "error.h"
#include "rpc.h"
#include "settle.pb-c.h"

static char path[64];

/* The roles of a certificate known by its CN only. */
static unsigned of_name(const struct coord_roles *r, const char *name)
{
	struct rpc_peer_id id = {.name = name, .fingerprint = ""};

	return coord_roles_of(r, &id);
}

static void write_roles(const char *text)
{
	int fd;

	snprintf(path, sizeof path, "/tmp/settle-roles-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

Test(roles, grants_are_read_and_added_up)
{
	struct coord_roles r;
	char err[300], buf[80];

	write_roles("# operators\n"
		    "admin cn:alice\n"
		    "observer   cn:bob   # read-only\n"
		    "\n"
		    "initiator cn:payments\n"
		    "observer cn:payments\n"
		    "peer cn:node1\n");
	cr_assert_eq(coord_roles_load(&r, path, err, sizeof err), 0, "%s", err);
	unlink(path);
	cr_expect_eq(of_name(&r, "alice"), COORD_ROLE_ADMIN);
	cr_expect_eq(of_name(&r, "bob"), COORD_ROLE_OBSERVER);
	cr_expect_eq(of_name(&r, "payments"),
		     COORD_ROLE_INITIATOR | COORD_ROLE_OBSERVER);
	cr_expect_eq(of_name(&r, "mallory"), 0);
	cr_expect_eq(of_name(&r, ""), 0);
	cr_expect_str_eq(
	    coord_roles_names(of_name(&r, "payments"), buf, sizeof buf),
	    "initiator, observer");
	cr_expect_str_eq(coord_roles_names(0, buf, sizeof buf), "no role");
	coord_roles_free(&r);
}

Test(roles, bad_lines_are_refused_with_their_number)
{
	static const char *const bad[] = {
	    "admin alice\n",	      /* no cn: */
	    "root cn:alice\n",	      /* no such role */
	    "admin cn:alice extra\n", /* more than two words */
	    "admin\n",		      /* no name */
	    "admin cn:\n",	      /* empty name */
	    "admin cn:"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\n", /* 65 bytes */
	};
	struct coord_roles r;
	char err[300], text[200];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "observer cn:ok\n%s", bad[i]);
		write_roles(text);
		cr_expect_eq(coord_roles_load(&r, path, err, sizeof err),
			     SETTLE_EINVAL, "%s", bad[i]);
		cr_expect_neq(strstr(err, "line 2"), NULL, "%s", err);
		cr_expect_eq(r.n, 0);
		unlink(path);
	}
	/* A comment longer than a line buffer: not split into a grant. */
	{
		char big[900];

		memset(big, 'x', sizeof big);
		memcpy(big, "# ", 2);
		memcpy(big + 600, " admin cn:mallory", 17);
		big[sizeof big - 2] = '\n';
		big[sizeof big - 1] = '\0';
		write_roles(big);
		cr_expect_eq(coord_roles_load(&r, path, err, sizeof err),
			     SETTLE_EINVAL);
		cr_expect_neq(strstr(err, "longer than"), NULL, "%s", err);
		unlink(path);
	}
	cr_expect_eq(
	    coord_roles_load(&r, "/nonexistent/roles", err, sizeof err),
	    SETTLE_EIO);
	cr_expect_neq(strstr(err, "/nonexistent/roles"), NULL, "%s", err);
}

Test(roles, what_each_role_may_call)
{
#define M(x) SETTLE__V1__METHOD__##x
	const unsigned admin = COORD_ROLE_ADMIN, ini = COORD_ROLE_INITIATOR,
		       obs = COORD_ROLE_OBSERVER, peer = COORD_ROLE_PEER,
		       part = COORD_ROLE_PARTICIPANT;

	/* Every method an admin may call. */
	static const int all[] = {
	    M(STATUS),		 M(QUERY),	 M(LIST),
	    M(CLUSTER_MEMBERS),	 M(BEGIN),	 M(SUBMIT_SAGA),
	    M(REGISTER_BRANCH),	 M(COMMIT),	 M(ROLLBACK),
	    M(XA_VOTE),		 M(XA_PREPARE),	 M(XA_RECOVER),
	    M(XA_FORGET),	 M(TX_RETRY),	 M(TX_RESOLVE),
	    M(XA_HEURISTIC),	 M(CLUSTER_ADD), M(CLUSTER_REMOVE),
	    M(CLUSTER_TRANSFER),
	};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		cr_expect(coord_roles_for_method(all[i]) & admin, "%d", all[i]);
		cr_expect_not(coord_roles_for_method(all[i]) & part, "%d",
			      all[i]);
	}
	cr_expect(coord_roles_for_method(M(STATUS)) & peer);
	cr_expect_not(coord_roles_for_method(M(BEGIN)) & peer);
	cr_expect(coord_roles_for_method(M(QUERY)) & obs);
	cr_expect_not(coord_roles_for_method(M(BEGIN)) & obs);
	cr_expect_not(coord_roles_for_method(M(COMMIT)) & obs);
	cr_expect(coord_roles_for_method(M(COMMIT)) & ini);
	cr_expect_not(coord_roles_for_method(M(TX_RESOLVE)) & ini);
	cr_expect_not(coord_roles_for_method(M(CLUSTER_REMOVE)) & ini);
	cr_expect_not(coord_roles_for_method(M(XA_HEURISTIC)) & ini);
	cr_expect_eq(coord_roles_for_method(9999), 0);
#undef M
}

/* fp: and san: grants: matched against the fingerprint (any case, colons
 * or not) and any of the SANs, the roles of every match added up. */
Test(roles, fingerprints_and_subject_alt_names)
{
	static const char fp[] = "0123456789abcdef0123456789abcdef"
				 "0123456789abcdef0123456789abcdef";
	struct rpc_peer_id id = {.name = "", .fingerprint = fp};
	struct coord_roles r;
	char err[300];

	write_roles("admin fp:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:"
		    "01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef\n"
		    "observer san:spiffe://bank/ledger\n"
		    "initiator san:payments.bank.example\n");
	cr_assert_eq(coord_roles_load(&r, path, err, sizeof err), 0, "%s", err);
	unlink(path);
	cr_expect_eq(coord_roles_of(&r, &id), COORD_ROLE_ADMIN);
	id.fingerprint = "";
	id.san[0] = "other.example";
	id.san[1] = "payments.bank.example";
	id.san[2] = "spiffe://bank/ledger";
	id.n_san = 3;
	cr_expect_eq(coord_roles_of(&r, &id),
		     COORD_ROLE_INITIATOR | COORD_ROLE_OBSERVER);
	id.n_san = 1;
	cr_expect_eq(coord_roles_of(&r, &id), 0);
	/* A CN equal to a SAN's value is not that SAN. */
	cr_expect_eq(of_name(&r, "payments.bank.example"), 0);
	coord_roles_free(&r);

	write_roles("admin fp:0123\n");
	cr_expect_eq(coord_roles_load(&r, path, err, sizeof err),
		     SETTLE_EINVAL);
	unlink(path);
	write_roles("admin fp:zz23456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789abcdef\n");
	cr_expect_eq(coord_roles_load(&r, path, err, sizeof err),
		     SETTLE_EINVAL);
	unlink(path);
	write_roles("admin san:\n");
	cr_expect_eq(coord_roles_load(&r, path, err, sizeof err),
		     SETTLE_EINVAL);
	unlink(path);
}

/* `peer MATCH id:N` binds a peer's certificate to its raft id; a peer
 * grant without one takes any id; other roles take no id. */
Test(roles, a_peer_bound_to_its_raft_id)
{
	struct rpc_peer_id n1 = {.name = "node1", .fingerprint = ""};
	struct rpc_peer_id n9 = {.name = "node9", .fingerprint = ""};
	struct rpc_peer_id teller = {.name = "teller", .fingerprint = ""};
	struct coord_roles r;
	char err[300];

	write_roles("peer cn:node1 id:1\n"
		    "peer cn:node9\n"
		    "initiator cn:teller\n");
	cr_assert_eq(coord_roles_load(&r, path, err, sizeof err), 0, "%s", err);
	unlink(path);
	cr_expect(coord_roles_peer_ok(&r, &n1, 1));
	cr_expect_not(coord_roles_peer_ok(&r, &n1, 2));
	cr_expect(coord_roles_peer_ok(&r, &n9, 2));
	cr_expect(coord_roles_peer_ok(&r, &n9, 7));
	cr_expect_not(coord_roles_peer_ok(&r, &teller, 1));
	cr_expect_eq(coord_roles_of(&r, &n1), COORD_ROLE_PEER);
	/* node9's grant is the one the node warns about. */
	cr_expect_eq(coord_roles_unbound_peers(&r), 1);
	coord_roles_free(&r);

	static const char *const bad[] = {
	    "admin cn:alice id:1\n",
	    "peer cn:node1 id:0\n",
	    "peer cn:node1 id:x\n",
	    "peer cn:node1 id:1x\n",
	    "peer cn:node1 id:1\npeer cn:node1 id:2\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_roles(bad[i]);
		cr_expect_eq(coord_roles_load(&r, path, err, sizeof err),
			     SETTLE_EINVAL, "%s", bad[i]);
		unlink(path);
	}
}
