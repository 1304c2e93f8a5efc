"""LOCKWARDEN_* settings: defaults, overrides, malformed values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import LockwardenError
from bot.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LOCKWARDEN_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.compile_timeout_s == 900.0
    assert settings.max_parallel_compiles == max(1, os.cpu_count() or 1)
    assert settings.cache_dir is None
    assert settings.uv_bin is None
    assert settings.isolate_tool_config is True


def test_default_parallelism_without_a_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert Settings().max_parallel_compiles == 1


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        pytest.param(
            "LOCKWARDEN_COMPILE_TIMEOUT_S", "120", "compile_timeout_s", 120.0, id="timeout"
        ),
        pytest.param(
            "LOCKWARDEN_COMPILE_TIMEOUT_S", "0.5", "compile_timeout_s", 0.5, id="timeout-fraction"
        ),
        pytest.param(
            "LOCKWARDEN_CACHE_DIR", "/var/cache/lw", "cache_dir", Path("/var/cache/lw"), id="cache"
        ),
        pytest.param(
            "LOCKWARDEN_MAX_PARALLEL_COMPILES", "3", "max_parallel_compiles", 3, id="parallel"
        ),
        pytest.param("LOCKWARDEN_UV_BIN", "/opt/uv", "uv_bin", "/opt/uv", id="uv-bin"),
        pytest.param(
            "LOCKWARDEN_ISOLATE_TOOL_CONFIG", "false", "isolate_tool_config", False, id="isolate"
        ),
        pytest.param(
            "lockwarden_compile_timeout_s", "7", "compile_timeout_s", 7.0, id="case-insensitive"
        ),
    ],
)
def test_environment_overrides(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_unrelated_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKWARDEN_NOT_A_SETTING", "x")
    monkeypatch.setenv("COMPILE_TIMEOUT_S", "1")
    assert load_settings().compile_timeout_s == 900.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("LOCKWARDEN_COMPILE_TIMEOUT_S", "soon", id="timeout-not-a-number"),
        pytest.param("LOCKWARDEN_COMPILE_TIMEOUT_S", "0", id="timeout-zero"),
        pytest.param("LOCKWARDEN_COMPILE_TIMEOUT_S", "-5", id="timeout-negative"),
        pytest.param("LOCKWARDEN_MAX_PARALLEL_COMPILES", "0", id="parallel-zero"),
        pytest.param("LOCKWARDEN_MAX_PARALLEL_COMPILES", "2.5", id="parallel-fraction"),
        pytest.param("LOCKWARDEN_MAX_PARALLEL_COMPILES", "many", id="parallel-word"),
        pytest.param("LOCKWARDEN_ISOLATE_TOOL_CONFIG", "perhaps", id="isolate-not-a-bool"),
    ],
)
def test_malformed_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid settings: {variable}: ")
    assert isinstance(caught.value, LockwardenError)
    assert caught.value.code == "settings"


def test_every_malformed_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKWARDEN_COMPILE_TIMEOUT_S", "soon")
    monkeypatch.setenv("LOCKWARDEN_MAX_PARALLEL_COMPILES", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "LOCKWARDEN_COMPILE_TIMEOUT_S: " in str(caught.value)
    assert "; LOCKWARDEN_MAX_PARALLEL_COMPILES: " in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.compile_timeout_s = 1.0
