"""mmext.distill (see README)."""
