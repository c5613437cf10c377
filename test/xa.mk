# test/xa.mk: XA integration tests through the coordinator (PostgreSQL and
# MariaDB driven by settled). Filled in by the XA integration work.
