"""Layer 0: entities, errors, configuration and validation. Standard library only."""
