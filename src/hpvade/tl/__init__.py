from ._deconvolve import deconvolve

__all__ = ["deconvolve"]
