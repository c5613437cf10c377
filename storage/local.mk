# storage: targets are added here by the storage module.
