"""skseg: offline handwritten signature verification for scikit-learn."""

__version__ = "0.1.0"

from .verifier import SiameseVerifier  # noqa: E402

__all__ = ["SiameseVerifier", "__version__"]
