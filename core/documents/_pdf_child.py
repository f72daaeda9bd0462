"""Child process for PDF inspection. Parses one untrusted PDF under OS resource limits.

Run by `pdf_inspect` as `python -I _pdf_child.py IN RESULT MEMORY_BYTES CPU_SECONDS MAX_TEXT
MAX_PAGES`. It imports nothing from this project (it runs isolated, without the project on
sys.path), sets its own rlimits before touching the input (rlimits set by the parent through
preexec_fn would not be thread-safe), and writes a JSON result with an atomic rename.

A first result ("partial") is written after the cheap structural checks, so a timeout during text
extraction still leaves the metadata and active-content findings for the parent.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
from typing import Any

# Objects to visit looking for actions; a 10 MiB file has far fewer, this only stops pathologies.
_MAX_OBJECTS = 200_000
_MAX_NESTING = 32
_MAX_META_CHARS = 512


def main(argv: list[str]) -> int:
    in_path, result_path = argv[1], argv[2]
    memory_bytes, cpu_seconds, max_text, max_pages = (int(a) for a in argv[3:7])
    _apply_limits(memory_bytes, cpu_seconds, max_text)
    result: dict[str, Any] = {"status": "partial", "failure": None, "detail": None}
    failure: str | None = None
    detail: str | None = None
    try:
        _inspect(in_path, result_path, result, max_text, max_pages)
    except MemoryError:
        failure, detail = "MEMORY_LIMIT", "memory limit reached while parsing"
    except RecursionError:
        failure, detail = "MALFORMED", "object nesting too deep"
    except Exception as exc:  # every parser error is a verdict on the file, not a crash
        failure, detail = _classify(exc), f"{type(exc).__name__}: {str(exc)[:300]}"
    if failure is not None:
        # Leaving the except block dropped the traceback; the reader's object graph is cyclic,
        # so collect it now to get the memory back before serialising the result.
        gc.collect()
        result.update(status="failed", failure=failure, detail=detail)
    else:
        result["status"] = "ok"
    _write_result(result_path, result)
    return 0


def _apply_limits(memory_bytes: int, cpu_seconds: int, max_text: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # Soft limit sends SIGXCPU (fatal); the hard limit one second later is SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The only file this process writes is the result (UTF-8 text, at most 4 bytes a char).
    file_cap = max_text * 6 + (1 << 20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_cap, file_cap))


def _classify(exc: Exception) -> str:
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    if isinstance(exc, _NeedsPassword):
        return "ENCRYPTED"
    if isinstance(exc, LimitReachedError):
        return "RESOURCE_LIMIT"
    if isinstance(exc, FileNotDecryptedError):
        return "ENCRYPTED"
    return "MALFORMED"


def _inspect(in_path: str, result_path: str, result: dict[str, Any], max_text: int, max_pages: int) -> None:
    import pypdf
    from pypdf import PasswordType, PdfReader

    # Never shell out to jbig2dec on attacker-supplied image data.
    if hasattr(pypdf, "overwrite_configuration"):
        pypdf.overwrite_configuration(jbig2dec_binary=None)

    reader = PdfReader(in_path, strict=False)
    result["encrypted"] = bool(reader.is_encrypted)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except (NotImplementedError, pypdf.errors.DependencyError):
            opened = False
        if not opened:
            raise _NeedsPassword("needs a password")

    _read_metadata(reader, result)
    result.update(_scan_objects(reader))
    result["page_count"] = len(reader.pages)
    _write_result(result_path, result)

    _extract_text(reader, result, max_text, max_pages)


class _NeedsPassword(Exception):
    pass


def _read_metadata(reader: Any, result: dict[str, Any]) -> None:
    info = reader.metadata
    if info is not None:
        result["producer"] = _short(info.producer_raw)
        result["creator"] = _short(info.creator_raw)
        result["creation_date_raw"] = _short(info.creation_date_raw)
        result["mod_date_raw"] = _short(info.modification_date_raw)
    try:
        xmp = reader.xmp_metadata
        if xmp is not None:
            result["xmp_producer"] = _short(xmp.pdf_producer)
            result["xmp_creator_tool"] = _short(xmp.xmp_creator_tool)
    except MemoryError:
        raise
    except Exception:  # broken XMP is common and says nothing about the statement itself
        pass


def _short(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value)[:_MAX_META_CHARS]


def _scan_objects(reader: Any) -> dict[str, bool]:
    """Look at every object's dictionary (not stream data) for actions and signatures.

    Walking all objects, rather than the catalog's /OpenAction, /AA and /Names only, also finds
    actions hung on annotations, form fields and pages, and in object streams.
    """
    from pypdf.generic import IndirectObject

    found = {
        "has_javascript": False,
        "has_launch_action": False,
        "has_embedded_files": False,
        "has_signature": False,
    }
    refs = [(gen, num) for gen, table in reader.xref.items() for num in table]
    refs += [(0, num) for num in reader.xref_objStm]
    for gen, num in refs[:_MAX_OBJECTS]:
        try:
            obj = IndirectObject(num, gen, reader).get_object()
        except MemoryError:
            raise
        except Exception:  # one unreadable object should not hide findings in the others
            continue
        _walk(obj, 0, found)
    return found


def _walk(obj: Any, depth: int, found: dict[str, bool]) -> None:
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    if depth > _MAX_NESTING:
        return
    if isinstance(obj, DictionaryObject):
        # dict.items, not obj.items(): the latter would resolve references and recurse forever.
        for key, value in dict.items(obj):
            _check_entry(str(key), value, found)
            if not isinstance(value, IndirectObject):
                _walk(value, depth + 1, found)
    elif isinstance(obj, ArrayObject):
        for value in list.__iter__(obj):
            if not isinstance(value, IndirectObject):
                _walk(value, depth + 1, found)


def _check_entry(key: str, value: Any, found: dict[str, bool]) -> None:
    if key in ("/JS", "/JavaScript"):
        found["has_javascript"] = True
    elif key == "/S":
        if value == "/JavaScript":
            found["has_javascript"] = True
        elif value == "/Launch":
            found["has_launch_action"] = True
    elif key == "/EmbeddedFiles" or (key == "/Type" and value == "/EmbeddedFile"):
        found["has_embedded_files"] = True
    elif key == "/ByteRange" or (key == "/FT" and value == "/Sig"):
        found["has_signature"] = True


def _extract_text(reader: Any, result: dict[str, Any], max_text: int, max_pages: int) -> None:
    # Text extraction is what inflates content streams, so it runs under the same limits.
    parts: list[str] = []
    size = 0
    truncated = False
    for index, page in enumerate(reader.pages):
        if index >= max_pages or size >= max_text:
            truncated = True
            break
        text = page.extract_text() or ""
        parts.append(text)
        size += len(text) + 1
        result["pages_extracted"] = index + 1
    text = "\n".join(parts)
    if len(text) > max_text:
        text, truncated = text[:max_text], True
    result["text"] = text
    result["text_truncated"] = truncated


def _vm_hwm_bytes() -> int | None:
    # This process's own peak RSS. Not ru_maxrss: posix_spawn's vfork-style clone makes that
    # inherit the parent's high-water mark at exec time.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _write_result(path: str, result: dict[str, Any]) -> None:
    result["peak_rss_bytes"] = _vm_hwm_bytes()
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
