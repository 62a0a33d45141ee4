"""Deployment: a trained model as a file for a device (`export`), run by its own runtime (`runtime`), and
scored on the test split in any form (`evaluate`). The static int8 estimate is `sepspec.graph.memory`."""
