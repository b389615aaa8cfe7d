"""The evaluation side: the x4 protocol, metrics, NIQE and the degradations shared with training (no TensorFlow)."""
