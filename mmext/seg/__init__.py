"""mmext.seg (see README)."""
