"""Built-in generators; each module registers its components on import."""
