"""ixypy: user-space network drivers for Python."""
from .errors import IxyError

__all__ = ["IxyError"]
__version__ = "0.1.0"
