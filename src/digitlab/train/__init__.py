"""The training layer: DataLoader, SGD, losses, the Learner and its callbacks, the run recipe."""
