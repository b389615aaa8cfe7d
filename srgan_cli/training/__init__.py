"""The training side: Keras layers, networks, losses, data, the trainer and its loop, checkpoints, config and export (TensorFlow)."""
