"""srgan: a 4x photo upscaler built on a Keras SRGAN (this module imports nothing heavy)."""

__version__ = "0.1.0"
