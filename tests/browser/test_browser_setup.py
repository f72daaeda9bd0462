"""The browser tests' own setup: without Chromium they skip locally and fail in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium
from tests.browser.chromium import chromium_args, require_chromium


def test_without_chromium_the_browser_tests_skip_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chromium, "find_chromium", lambda: None)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install chromium"):
        require_chromium(in_ci=False)


def test_without_chromium_the_browser_tests_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chromium, "find_chromium", lambda: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install chromium.*CI=true"):
        require_chromium(in_ci=True)


def test_chromium_is_found_where_debian_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chromium, "find_chromium", lambda: Path("/usr/bin/chromium"))
    assert require_chromium(in_ci=True) == Path("/usr/bin/chromium")


def test_chromium_runs_without_network_or_gpu_of_its_own() -> None:
    args = chromium_args()
    for flag in ("--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"):
        assert flag in args
