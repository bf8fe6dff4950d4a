"""Layer 1: the metadata store (SQL or REST) and the content-addressed artifact store."""
