"""Layer 5: the ``keel`` command line (typer), one module per capability."""
