"""Keep the API key out of every text the tool shows or writes, without mangling other text.

The rule: a key of 8 characters or more is replaced wherever it appears, even inside a
longer word (a cut through a token must not leave it readable). A shorter key is replaced
only where it stands on its own: an occurrence that has an ASCII letter or digit right
before or right after it is part of another word and is left alone, so a key ``bro`` turns
``Basic bro`` into ``Basic [redacted]`` but leaves ``Connection broken`` as it is.
"""

from __future__ import annotations

import re
from typing import Any

MARK = "[redacted]"
#: Keys at least this long are redacted wherever they appear.
ALWAYS = 8


class Redactor:
    """``redactor(text)``: ``text`` with ``secret`` redacted by the rule above."""

    __slots__ = ("_pattern", "_secret")

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._pattern: re.Pattern[str] | None = None
        if secret and len(secret) < ALWAYS:
            self._pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])")

    def __call__(self, text: str) -> str:
        if not self._secret or self._secret not in text:
            return text
        if self._pattern is None:
            return text.replace(self._secret, MARK)
        return self._pattern.sub(MARK, text)

    def __repr__(self) -> str:
        return "Redactor(...)"

    def scrub(self, value: Any) -> Any:
        """``value`` (parsed JSON or text) with the secret redacted in every string it holds."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` redacted (see the module's rule)."""
    return Redactor(secret)(text)
