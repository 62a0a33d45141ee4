"""Report -> Keras: the model (`model`; a fixed table of Keras classes) and a readable Keras script with the
seed-style comments (`script`). Keras is imported only when a model is built."""
