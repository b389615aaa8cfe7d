"""The upscale side: photo I/O, seam-free tiling, ONNX Runtime inference and batch runs (numpy, Pillow, ONNX Runtime only)."""
