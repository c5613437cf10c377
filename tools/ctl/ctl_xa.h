/*
 * ctl_xa.h — settlectl's heuristic decision of an in-doubt XA transaction
 * (`settlectl xa commit|rollback GID --reason TEXT`, tools/ctl/ctl_xa.c):
 * the check of its words and the printer of what its transaction manager
 * will be told. The call itself is settle_xa_heuristic() (client/settle.h).
 */
#ifndef SETTLE_CTL_XA_H
#define SETTLE_CTL_XA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Check the words after "xa" for a heuristic decision: pos[1] "commit" or
 * "rollback", pos[2] the gid (1..128 bytes), nothing more (npos 3); reason
 * the --reason value (required, at most CTL_REASON_MAX bytes). *commit
 * gets the decision. Returns 0, or SETTLE_EINVAL with the usage message in
 * err (err_len bytes); nothing kept.
 */
int ctl_xa_decide_check(char *const *pos, int npos, const char *reason,
			bool *commit, char *err, size_t err_len);

/*
 * Print the answer of settle_xa_heuristic() for gid: state
 * (Settle__V1__TxState) and heuristic (Settle__V1__Heuristic) as the
 * coordinator returned them, and the XA code the TM's later xa_commit or
 * xa_rollback will get (XA_HEURCOM, XA_HEURRB, XA_HEURMIX, XA_HEURHAZ)
 * until `settlectl xa forget GID`. json: one JSON object with gid, state,
 * heuristic and tm_told.
 */
void ctl_print_xa_heuristic(FILE *f, const char *gid, int state, int heuristic,
			    bool json);

/* "XA_HEURCOM", "XA_HEURRB", "XA_HEURMIX", "XA_HEURHAZ" for a heuristic,
 * "XA_OK" for none (the switch library's mapping, xa/switch.c). */
const char *ctl_xa_heuristic_code(int heuristic);

#endif /* SETTLE_CTL_XA_H */
