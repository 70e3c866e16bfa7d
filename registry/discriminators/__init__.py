"""Built-in discriminators; each module registers its components on import."""
