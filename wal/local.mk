# wal: targets are added here by the wal module.
