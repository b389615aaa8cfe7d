"""The upscale side: photo I/O and formats, seam-free tiling, ONNX Runtime sessions, the Upscaler API and batch runs
(numpy, Pillow, ONNX Runtime only; never TensorFlow)."""
