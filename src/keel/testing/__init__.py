"""Contract test suites and helpers for keel's interfaces. Used by tests; never imported by ``src``."""
