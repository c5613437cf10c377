# examples: targets are added here by the examples module.
