"""``shop seed catalog``: a realistic catalog written through the domain's own rules, in bulk."""
