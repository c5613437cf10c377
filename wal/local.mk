# wal: the replicated commands (entry codec, validation), the TCC state
# tables and the FSM applying commands into the store.
# Link order: wal/libsettlewal.la storage/libsettlestore.la
# proto/libsettlecore.la (see storage/local.mk).
