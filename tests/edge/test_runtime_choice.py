"""Which TFLite runtime the edge code loads, and what PIFED_TFLITE_RUNTIME does."""

from __future__ import annotations

import importlib.util

import pytest

from edge import runtime


def test_the_installed_edge_runtime_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.RUNTIME_ENV, raising=False)
    assert runtime.runtime_name() == "tflite_runtime"  # what the locked edge set installs


def test_a_named_runtime_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.RUNTIME_ENV, "tflite_runtime")
    assert runtime.interpreter_class().__module__.startswith("tflite_runtime.")


def test_an_unknown_runtime_name_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(runtime.RUNTIME_ENV, "tensorflow")
    with pytest.raises(runtime.RuntimeMissing, match="PIFED_TFLITE_RUNTIME='tensorflow'") as e:
        runtime.interpreter_class()
    assert "tflite_runtime, ai_edge_litert" in str(e.value)


@pytest.mark.skipif(
    importlib.util.find_spec("ai_edge_litert") is not None, reason="ai-edge-litert is installed"
)
def test_a_named_runtime_that_is_missing_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(runtime.RUNTIME_ENV, "ai_edge_litert")
    with pytest.raises(
        runtime.RuntimeMissing, match=r"ai_edge_litert: .*unset PIFED_TFLITE_RUNTIME"
    ):
        runtime.interpreter_class()
