"""siedob: a faithful, fast PyTorch re-implementation of SIEDOB (CVPR 2023)."""

__version__ = "0.1.0"
