"""Programs: compiling runs for many configurations at once, keeping them by configuration,
measuring their throughput.
"""
