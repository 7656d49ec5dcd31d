"""skseg: offline handwritten signature verification for scikit-learn."""

__version__ = "0.1.0"
