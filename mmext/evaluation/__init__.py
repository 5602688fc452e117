"""mmext.evaluation (see README)."""
