"""Keep secrets out of every text the tool shows or writes, without mangling other text.

One :class:`Redactor` holds every secret of a command: the API key and the credentials of
the proxy URLs (:func:`url_secrets`, gathered by ``proxies.proxy_secrets``). The rule for
each: a secret of 8 characters or more is replaced wherever it appears, even inside a
longer word (a cut through a token must not leave it readable). A shorter one is replaced
only where it stands on its own: an occurrence that has an ASCII letter or digit right
before or right after it is part of another word and is left alone, so a key ``bro``
turns ``Basic bro`` into ``Basic [redacted]`` but leaves ``Connection broken`` as it is.
Besides, the ``user:pass@`` of any URL in a text is replaced
(``http://[redacted]@proxy:3128``), whoever put it there.

:func:`shown_url` is the one way a URL that may hold credentials is shown to a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

MARK = "[redacted]"
#: Secrets at least this long are redacted wherever they appear.
ALWAYS = 8
# "scheme://user:pass@": the userinfo of a URL, whatever the scheme
_USERINFO = re.compile(r"(?<=://)[^\s/?#@'\"]+@")


def _pattern(secret: str) -> re.Pattern[str] | None:
    if len(secret) >= ALWAYS:
        return None
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])")


class Redactor:
    """``redactor(text)``: ``text`` with ``secret`` and ``also`` redacted by the rule above."""

    __slots__ = ("_encoded", "_secrets")

    def __init__(self, secret: str, also: Iterable[str] = ()) -> None:
        found = {s for s in (secret, *also) if s}
        # longest first: a password inside a longer userinfo goes with the whole
        self._secrets = tuple((s, _pattern(s)) for s in sorted(found, key=len, reverse=True))
        self._encoded = tuple(s.encode("utf-8") for s, _ in self._secrets)  # for spares()

    def __call__(self, text: str) -> str:
        if "@" in text and "://" in text:
            text = _USERINFO.sub(f"{MARK}@", text)
        for secret, pattern in self._secrets:  # last: nothing can put a secret back
            if secret in text:
                text = text.replace(secret, MARK) if pattern is None else pattern.sub(MARK, text)
        return text

    def __repr__(self) -> str:
        return "Redactor(...)"

    def spares(self, data: bytes) -> bool:
        """Whether no text that JSON parsing finds in ``data`` can hold a secret or a URL's
        ``user:pass@``, so that the parsed value needs no :meth:`scrub`: none of them is in
        its bytes, and nothing could spell one otherwise (no backslash escape; no NUL, so
        not UTF-16 or UTF-32: a text parsed without escapes is a piece of the UTF-8 bytes
        as they are)."""
        if b"\\" in data or b"\x00" in data or (b"@" in data and b"://" in data):
            return False
        return not any(secret in data for secret in self._encoded)

    def scrub(self, value: Any) -> Any:
        """``value`` (parsed JSON or text) with the secrets redacted in every string it holds."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value


def url_secrets(url: str) -> tuple[str, ...]:
    """The credentials a URL holds, as typed and percent-decoded: the whole ``user:pass``,
    the password (or the lone token of ``token@``) and the pieces of both around ``/ ? #``
    (a password typed with those unencoded is cut there by the parsers). Never raises."""
    _, sep, rest = url.strip().partition("://")
    userinfo, at, _ = (rest if sep else url.strip()).rpartition("@")
    if not at or not userinfo:
        return ()
    user, colon, password = userinfo.partition(":")
    secret = password if colon else user
    found = {userinfo, secret, *re.split(r"[/?#]", userinfo), *re.split(r"[/?#]", secret)}
    found |= {unquote(s) for s in found}
    return tuple(sorted(s for s in found if s))


def shown_url(url: str) -> str:
    """``scheme://host:port/path`` of ``url`` for a person to read: a ``user:pass@`` (all up
    to the last ``@``, wherever the parsers would cut it) shown as ``[redacted]@``, the
    query and the fragment left out. Never raises."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    elif not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        scheme = MARK  # "user:pass://…" is no scheme
    _, at, place = rest.rpartition("@")
    place = re.split(r"[?#]", place, maxsplit=1)[0]
    return f"{scheme}{sep}{MARK + '@' if at else ''}{place}"
