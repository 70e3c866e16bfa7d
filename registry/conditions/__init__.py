"""Built-in conditions; each module registers its components on import."""
