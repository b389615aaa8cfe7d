"""The training side (TensorFlow): layers, architectures, losses, data, trainer, loop, checkpoints, config, export."""
