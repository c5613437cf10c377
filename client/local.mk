# client: targets are added here by the client module.
