"""A trained model as files, scored and used: saving and loading, inference, one training run."""
