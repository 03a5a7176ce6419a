"""What a researcher reads: statistics over seeds, tables and figures."""
