"""The ``.facies`` accessor (placeholder, filled in by the inference work)."""
