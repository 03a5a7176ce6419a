"""A sweep's records: written, locked, repaired, read, grouped and turned into frames."""
