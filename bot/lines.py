"""Physical lines of a text file, with their line ends.

Files are split at ``\\n`` only, as pip, Docker and YAML readers do: a form feed or another
Unicode line break inside a line is no line end. Keeping the ends lets editors rewrite one
line and leave every other byte (``\\r\\n`` included) as it was.
"""

from __future__ import annotations

import re


def physical_lines(text: str) -> list[str]:
    """The lines of ``text``, each with its ``\\n`` (the last one without, when missing)."""
    return [part for part in re.split(r"(?<=\n)", text) if part]
