"""dllm-viz: watch diffusion LMs decode; train and inspect unmasking policies."""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (tests/test_packaging.py)
