"""Datasets: Metadata.csv folders, the condition schema, splits and the built-in icon set."""
