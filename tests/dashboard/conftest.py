"""Fixtures of the dashboard tests: a real store file filled as the round runner fills it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # store_fill
