"""Presets (customers that start latched) and the config checks around the new switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_latch.sandbox import PresetError, Sandbox, SandboxConfig, load_preset


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding, newline="")
    return path


def test_a_csv_preset_keeps_geotab_ids_as_text(tmp_path: Path) -> None:
    source = write(
        tmp_path / "preset.csv",
        "\ufefffusebillId,geotabId\r\n1000001,0909909\r\n12717595, G 2 \r\n\r\n",
    )
    assert load_preset(source) == {1_000_001: "0909909", 12_717_595: "G 2"}
    config = SandboxConfig(preset=source)
    assert dict(config.preset_pairs) == {1_000_001: "0909909", 12_717_595: "G 2"}
    assert Sandbox(config).geotab_id_of(1_000_001) == "0909909"


def test_a_mapping_preset_is_copied_read_only() -> None:
    pairs = {1_000_001: "A"}
    config = SandboxConfig(preset=pairs)
    pairs[1_000_002] = "B"
    assert dict(config.preset_pairs) == {1_000_001: "A"}
    with pytest.raises(TypeError):
        config.preset_pairs[1_000_003] = "C"  # type: ignore[index]
    assert SandboxConfig().preset_pairs == {}


def test_unknown_ids_are_one_line_naming_them(tmp_path: Path) -> None:
    source = write(tmp_path / "p.csv", "fusebillId,geotabId\n55,A\n1000001,B\n123,C\n")
    with pytest.raises(PresetError) as excinfo:
        SandboxConfig(preset=source)
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(source) in message
    assert "2 id(s) are not sandbox customers" in message
    assert message.endswith(": 55, 123")
    with pytest.raises(PresetError, match="not sandbox customers"):
        SandboxConfig(preset={7: "X"})


def test_many_unknown_ids_are_cut_short(tmp_path: Path) -> None:
    rows = "".join(f"{fid},G\n" for fid in range(1, 21))
    source = write(tmp_path / "p.csv", "fusebillId,geotabId\n" + rows)
    with pytest.raises(PresetError, match=r"1, 2, 3, 4, 5 and 15 more$"):
        load_preset(source)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id,geotab\n1000001,A\n", "header fusebillId,geotabId"),
        ("", "header fusebillId,geotabId"),
        ("fusebillId,geotabId\n1000001,A\n1000001,B\n", "line 3: customer 1000001 is listed twice"),
        ("fusebillId,geotabId\nabc,A\n", "line 2: fusebillId must be a whole number"),
        ("fusebillId,geotabId\n1000001\n", "line 2: expected 2 fields"),
        ("fusebillId,geotabId\n1000001,\n", "line 2: geotabId must be 1..255"),
        ("fusebillId,geotabId\n1000001," + "G" * 256 + "\n", "geotabId must be 1..255"),
    ],
)
def test_bad_presets_say_what_and_where(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PresetError, match=expected):
        load_preset(write(tmp_path / "p.csv", text))


def test_an_unreadable_preset_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="cannot read it"):
        load_preset(tmp_path / "missing.csv")
    latin = write(tmp_path / "latin.csv", "fusebillId,geotabId\n1000001,\xe9\n", "latin-1")
    with pytest.raises(PresetError, match="cannot read it"):
        load_preset(latin)


@pytest.mark.parametrize(
    "options",
    [
        {"html_200_rate": 1.5},
        {"empty_200_rate": -0.1},
        {"applied_then_504_rate": 2.0},
        {"drip_seconds": -1.0},
        {"drip_seconds": float("nan")},
        {"drip_ids": frozenset({0})},
        {"tls_cert": "cert.pem"},
        {"tls_key": "key.pem"},
        {"redirect_to": "ftp://example.com/"},
        {"redirect_to": "https://example.com/\r\nX-Evil: 1"},
        {"redirect_to": "/relative"},
        {"retry_after_seconds": -1},
    ],
)
def test_config_rejects_nonsense_network_switches(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid SandboxConfig"):
        SandboxConfig(**options)  # type: ignore[arg-type]


def test_a_bad_tls_file_is_a_value_error_at_start(tmp_path: Path) -> None:
    cert = write(tmp_path / "cert.pem", "not a certificate")
    sandbox = Sandbox(tls_cert=cert, tls_key=cert, port=0)
    with pytest.raises(ValueError, match="cannot use the TLS certificate"):
        sandbox.start()
    sandbox.stop()
