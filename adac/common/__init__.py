"""What every stage shares: errors, atomic file output, the data folders, external tools, the version."""
