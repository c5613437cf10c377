# coordinator: targets are added here by the coordinator module.
