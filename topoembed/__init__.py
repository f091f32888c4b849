"""topoembed: loops in high-dimensional data via spectral persistent homology."""
__version__ = "0.1.0"
