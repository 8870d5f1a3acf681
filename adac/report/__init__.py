"""Reports of a compiled model for people: plots (and, later, a report page)."""
