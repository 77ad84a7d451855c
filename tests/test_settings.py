"""Key and base URL from the environment and ``.env``: what is accepted, and what never leaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from batch_latch.config import (
    DEFAULT_BASE_URL,
    KEY_VARIABLE,
    URL_VARIABLE,
    RunSettings,
    api_key,
    base_url,
    environment,
)
from batch_latch.errors import ConfigError

KEY = "sk_live_SECRET123"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No key or URL from the machine running the tests, and no .env from the repository."""
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


# --- .env and the environment ----------------------------------------------------------------


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f'# rehearsal\n{KEY_VARIABLE}={KEY}\nexport {URL_VARIABLE}="http://127.0.0.1:8080/v1"\n',
        encoding="utf-8",
    )
    env = environment()
    assert env[KEY_VARIABLE] == KEY
    assert env[URL_VARIABLE] == "http://127.0.0.1:8080/v1"
    assert api_key(env).get_secret_value() == KEY
    assert base_url(env) == "http://127.0.0.1:8080/v1"


def test_the_real_environment_wins_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        f"{KEY_VARIABLE}=from_dotenv\n{URL_VARIABLE}=https://dotenv.test/v1\n", encoding="utf-8"
    )
    monkeypatch.setenv(KEY_VARIABLE, "from_environment")
    env = environment()
    assert env[KEY_VARIABLE] == "from_environment"
    assert env[URL_VARIABLE] == "https://dotenv.test/v1"  # not in the real environment


def test_dotenv_of_another_directory_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text(f"{KEY_VARIABLE}={KEY}\n", encoding="utf-8")
    assert KEY_VARIABLE not in environment()
    assert environment(elsewhere)[KEY_VARIABLE] == KEY


def test_no_dotenv_is_fine() -> None:
    env = environment()
    assert KEY_VARIABLE not in env
    with pytest.raises(ConfigError, match=KEY_VARIABLE):
        api_key(env)


def test_unreadable_dotenv_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"FUSEBILL_API_KEY=\xff\xfe\x00bad\n")
    with pytest.raises(ConfigError, match=r"\.env"):
        environment()


# --- the key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {KEY_VARIABLE: ""}, {KEY_VARIABLE: "  \t "}])
def test_missing_key_names_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=KEY_VARIABLE):
        api_key(env)


@pytest.mark.parametrize(
    "bad",
    [
        f" {KEY}",
        f"{KEY}\n",
        f"{KEY}\r",
        "sk_live_ SECRET123",
        f"Basic {KEY}",
        f"{KEY}\x00",
        f"{KEY}\x7f",
        "sk_live_SECRET\u00a0123",  # a no-break space from a web page
        "sk_live_SECRET\u2014123",  # an em dash from a word processor: cannot go in a header
        "sk_live_SECRET\u200b123",  # a zero-width space
    ],
)
def test_malformed_key_is_rejected_without_showing_it(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        api_key({KEY_VARIABLE: bad})
    message = str(caught.value)
    assert KEY_VARIABLE in message
    assert "SECRET" not in message
    assert "SECRET" not in repr(caught.value)


def test_key_is_kept_exactly_and_hidden_in_reprs(tmp_path: Path) -> None:
    odd = "AbC+/xyz==:Q-_.~!"  # base64 and other printable characters, kept as they are
    assert api_key({KEY_VARIABLE: odd}).get_secret_value() == odd
    secret = api_key({KEY_VARIABLE: KEY})
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == KEY
    settings = RunSettings(input=tmp_path / "in.csv", out=tmp_path / "out", api_key=secret)
    assert KEY not in repr(secret)
    assert KEY not in str(secret)
    assert KEY not in repr(settings)
    assert KEY not in str(settings)


# --- the base URL ----------------------------------------------------------------------------


def test_default_base_url() -> None:
    assert base_url({}) == DEFAULT_BASE_URL == "https://secure.fusebill.com/v1"
    assert base_url({URL_VARIABLE: ""}) == DEFAULT_BASE_URL


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://secure.fusebill.com/v1/", "https://secure.fusebill.com/v1"),
        ("https://stg.fusebill.test/v1//", "https://stg.fusebill.test/v1"),
        ("  https://secure.fusebill.com/v1  ", "https://secure.fusebill.com/v1"),
        ("https://example.com:8443", "https://example.com:8443"),
        ("http://localhost:8080/v1/", "http://localhost:8080/v1"),
        ("http://LOCALHOST:8080/v1", "http://LOCALHOST:8080/v1"),
        ("http://127.0.0.1:5000/v1", "http://127.0.0.1:5000/v1"),
        ("http://127.12.34.56/v1", "http://127.12.34.56/v1"),
        ("http://[::1]:9000/v1", "http://[::1]:9000/v1"),
    ],
)
def test_accepted_base_urls(given: str, expected: str) -> None:
    assert base_url({URL_VARIABLE: given}) == expected


@pytest.mark.parametrize(
    "given",
    [
        "http://example.com",
        "http://secure.fusebill.com/v1",
        "http://128.0.0.1/v1",
        "http://10.0.0.5/v1",
        "http://0.0.0.0:8080/v1",
        "http://localhost.evil.test/v1",
        "http://127.0.0.1.evil.test/v1",
        "http://localhost@evil.test/v1",
        "ftp://secure.fusebill.com/v1",
        "secure.fusebill.com/v1",
        "https://",
        "https:///v1",
        "https://example.com:99999/v1",
        "https://[::1/v1",
    ],
)
def test_rejected_base_urls(given: str) -> None:
    with pytest.raises(ConfigError, match=URL_VARIABLE):
        base_url({URL_VARIABLE: given})


def test_plain_http_message_says_https_is_needed() -> None:
    with pytest.raises(ConfigError, match="https://"):
        base_url({URL_VARIABLE: "http://example.com"})
