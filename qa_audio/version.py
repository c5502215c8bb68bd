"""The package's version, in one place (results record it; ``qa-audio --version`` prints it)."""
from __future__ import annotations

__version__ = "0.1.0"
