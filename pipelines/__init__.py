"""Training, export, evaluation and synthetic data for postread (not installed)."""
