"""The repository cites only files it has: every markdown link, every mention of a design
document and every repo path such as `core/ledger/limits.py` or `docs/architecture.md` in a
tracked text file must name something that exists in the checkout."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".py", ".toml", ".yml", ".yaml", ".html", ".txt", ".j2", ".cfg", ".ini"}
# Top-level folders of this repository: a path starting with one of them is a citation.
REPO_DIRS = (
    "docs",
    "core",
    "api",
    "activities",
    "workflows",
    "launcher",
    "templates",
    "tests",
    "policy",
    "bench",
)
# A design document named by file (written in two parts so this file does not cite it).
DESIGN_DOC = re.compile(r"[\w./-]*\b" + "DESIGN" + r"\.md\b")
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REPO_PATH = re.compile(r"(?<![\w./{$<-])((?:" + "|".join(REPO_DIRS) + r")/[\w./{}<>*-]*[\w}>*])")
# A path with a placeholder (`email/{event}.en.j2`, `<id>`, `*.py`, `bench/...py`) is a pattern:
# the folder before the first placeholder must exist.
PLACEHOLDER = re.compile(r"[{<*]|\.\.\.")
OUTSIDE = "/work/" + "shared"
MISSING = "no" + "where"  # examples below name missing files without citing them here


@cache
def tracked_text_files() -> tuple[Path, ...]:
    """What git tracks (what a clone has), text files only; without git, the files on disk."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
        names = [name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", ".data", "node_modules"}
        names = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(ROOT).parts) and "egg-info" not in str(p)
        ]
    return tuple(ROOT / n for n in sorted(names) if Path(n).suffix in TEXT_SUFFIXES and (ROOT / n).is_file())


def _exists(target: str, relative_to: Path) -> bool:
    path = target.split("#", 1)[0].split("?", 1)[0]
    if not path:
        return True  # an anchor in the same file
    base = ROOT if path.startswith("/") else relative_to
    return (base / path.lstrip("/")).exists()


def broken_citations(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    where = path.relative_to(ROOT)
    broken = []
    for number, line in enumerate(text.splitlines(), start=1):
        if OUTSIDE in line:
            broken.append(f"{where}:{number}: cites {OUTSIDE}, outside the repository")
        for match in DESIGN_DOC.finditer(line):
            if not (_exists(match.group(), path.parent) or _exists(match.group(), ROOT)):
                broken.append(f"{where}:{number}: cites {match.group()}, which the repository does not have")
        if path.suffix == ".md":
            for match in MARKDOWN_LINK.finditer(line):
                target = match.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                    continue  # http:, https:, mailto: ...
                if not _exists(target, path.parent):
                    broken.append(f"{where}:{number}: link to {target}, which does not exist")
        for match in REPO_PATH.finditer(line):
            cited = match.group(1)
            placeholder = PLACEHOLDER.search(cited)
            literal = cited if placeholder is None else cited[: placeholder.start()].rsplit("/", 1)[0]
            if not (ROOT / literal).exists():
                broken.append(f"{where}:{number}: names {cited}, which does not exist")
    return broken


def test_the_repository_has_an_architecture_document() -> None:
    doc = ROOT / "docs" / "architecture.md"
    assert doc.is_file()
    assert "docs/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_citation_names_a_file_the_repository_has() -> None:
    files = tracked_text_files()
    assert any(f.name == "README.md" for f in files), "no tracked files found"
    broken = [line for path in files for line in broken_citations(path)]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("text", "suffix", "found"),
    [
        ("See DESIGN" + ".md section 4.", ".py", True),
        (f"Lifecycle ([the design](docs/{MISSING}.md) section 4)", ".md", True),
        ("Lifecycle ([docs/architecture.md](docs/architecture.md) section 4)", ".md", False),
        ("the rule of core/ledger/eligibility.py", ".py", False),
        (f"the rule of core/ledger/{MISSING}.py", ".py", True),
        ("[anchor](#section) and [site](https://example.com/x.md)", ".md", False),
        ("GET /appeals/{id}/documents and templates/notifications/email/{event}.en.j2", ".md", False),
        (f"templates/{MISSING}/{{event}}.en.j2", ".md", True),
        ("run it as `python bench/...py`", ".py", False),
        ("from " + OUTSIDE + "/notes.md", ".txt", True),
    ],
)
def test_the_check_itself(tmp_path: Path, text: str, suffix: str, found: bool) -> None:
    """What counts as a broken citation (a file written under the repository root)."""
    probe = ROOT / f".citation-probe-{tmp_path.name}{suffix}"
    probe.write_text(text + "\n", encoding="utf-8")
    try:
        assert bool(broken_citations(probe)) is found, broken_citations(probe)
    finally:
        probe.unlink()
