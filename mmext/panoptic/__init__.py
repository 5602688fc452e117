"""mmext.panoptic (see README)."""
