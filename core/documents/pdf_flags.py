"""Red flags from a PdfReport: signs that a document was edited or carries active content.

Flags never reject a file; they send the appeal to a human with an explanation (DESIGN §8).
So the rules are conservative: a flag must be true of the file and explainable in one sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from core.documents.pdf_report import PdfReport
from core.documents.types import RedFlag, Severity

# Creation-to-modification gap beyond which a statement was reopened and saved later. Banks
# generate statements in one pass; a day covers batch jobs that stamp the two dates separately.
MOD_AFTER_CREATION_TOLERANCE: Final = timedelta(days=1)
# Some producers write one date in local time without an offset; 14 h is the widest UTC offset.
MOD_BEFORE_CREATION_TOLERANCE: Final = timedelta(hours=14)


@dataclass(frozen=True, slots=True)
class EditingTool:
    name: str
    pattern: re.Pattern[str]
    kind_en: str
    kind_zh: str


def _tool(name: str, pattern: str, kind_en: str, kind_zh: str) -> EditingTool:
    return EditingTool(name, re.compile(pattern, re.IGNORECASE), kind_en, kind_zh)


_IMAGE = ("an image editor", "图像编辑软件")
_DESIGN = ("a design tool", "设计软件")
_PDF = ("a PDF editor", "PDF 编辑软件")
_ONLINE = ("an online PDF editor", "在线 PDF 编辑工具")

# Tools that edit existing documents. Deliberately absent: converters and printers that banks and
# employers use to produce originals (Acrobat Distiller, Adobe PDF Library, Microsoft Word,
# LibreOffice Writer/Calc, "Microsoft Print to PDF", Foxit Reader's printer, iText, PDFlib).
EDITING_TOOLS: Final[tuple[EditingTool, ...]] = (
    _tool("Adobe Photoshop", r"photoshop", *_IMAGE),
    _tool("GIMP", r"\bgimp\b", *_IMAGE),
    _tool("Adobe Illustrator", r"\billustrator\b", *_DESIGN),
    _tool("Adobe InDesign", r"\bindesign\b", *_DESIGN),
    _tool("Inkscape", r"\binkscape\b", *_DESIGN),
    _tool("Canva", r"\bcanva\b", *_DESIGN),
    # Acrobat Pro/Standard are editors; Acrobat Distiller and Reader are not matched.
    _tool("Adobe Acrobat Pro", r"acrobat\s+pro\b|acrobat\s+standard\b", *_PDF),
    _tool("PDFelement", r"pdfelement|wondershare|万兴", *_PDF),
    _tool(
        "Foxit PDF Editor",
        # Not its virtual printer: printing a web page to PDF edits nothing.
        r"foxit\s*(phantompdf|pdf\s*editor)(?!.*printer)|福昕\s*(高级)?\s*PDF\s*编辑",
        *_PDF,
    ),
    _tool("PDF-XChange Editor", r"pdf-?xchange\s+editor", *_PDF),
    _tool("Nitro PDF Pro", r"\bnitro\s+(pdf\s+)?pro\b", *_PDF),
    _tool("Xunjie PDF Editor", r"迅捷\s*PDF", *_PDF),
    _tool("Smallpdf", r"smallpdf", *_ONLINE),
    _tool("iLovePDF", r"ilovepdf", *_ONLINE),
    _tool("Sejda", r"\bsejda\b", *_ONLINE),
    _tool("PDFescape", r"pdfescape", *_ONLINE),
    _tool("Soda PDF", r"soda\s*pdf", *_ONLINE),
)

# LibreOffice Draw is the usual free way to edit a PDF's text; its exports say Creator "Draw".
_LIBREOFFICE_DRAW: Final = _tool("LibreOffice Draw", r"^\s*draw\s*$", *_PDF)
_LIBREOFFICE: Final = re.compile(r"libreoffice|openoffice", re.IGNORECASE)


def red_flags(report: PdfReport) -> list[RedFlag]:
    flags: list[RedFlag] = []
    if report.has_javascript:
        flags.append(_JAVASCRIPT)
    if report.has_launch_action:
        flags.append(_LAUNCH)
    if report.has_embedded_files:
        flags.append(_EMBEDDED)
    if report.encrypted:
        flags.append(_ENCRYPTED)
    tool = find_editing_tool(report)
    if tool is not None:
        flags.append(_editing_tool_flag(*tool))
    flags.extend(_date_flags(report.creation_date, report.mod_date))
    if report.incremental_update_count >= 1:
        flags.append(_incremental_flag(report.incremental_update_count, report.has_signature))
    return flags


def find_editing_tool(report: PdfReport) -> tuple[EditingTool, str] | None:
    """The first editing tool named in the metadata, with the field value that named it."""
    fields = (report.producer, report.creator, report.xmp_producer, report.xmp_creator_tool)
    for value in fields:
        if not value:
            continue
        for tool in EDITING_TOOLS:
            if tool.pattern.search(value):
                return tool, value
    producers = " ".join(p for p in (report.producer, report.xmp_producer) if p)
    for creator in (report.creator, report.xmp_creator_tool):
        if creator and _LIBREOFFICE_DRAW.pattern.search(creator) and _LIBREOFFICE.search(producers):
            return _LIBREOFFICE_DRAW, creator
    return None


def _editing_tool_flag(tool: EditingTool, value: str) -> RedFlag:
    return RedFlag(
        code="PDF_EDITING_TOOL",
        severity=Severity.MEDIUM,
        explanation_en=(
            f'The file says it was made or saved with {tool.name} ("{value}"), {tool.kind_en}. '
            "Banks and employers issue documents from their own systems, so a document saved "
            "by an editing tool may have been changed. Compare it with the issuer's original."
        ),
        explanation_zh=(
            f"文件信息显示它由 {tool.name}（“{value}”）生成或保存，该软件属于{tool.kind_zh}。"
            "银行和单位出具的文件通常由其自有系统生成，经编辑软件保存的文件可能被改动过，"
            "请与出具方的原件核对。"
        ),
    )


def _date_flags(created: datetime | None, modified: datetime | None) -> list[RedFlag]:
    if created is None or modified is None:
        return []
    gap = modified - created
    if gap > MOD_AFTER_CREATION_TOLERANCE:
        return [
            RedFlag(
                code="PDF_MODIFIED_AFTER_CREATION",
                severity=Severity.MEDIUM,
                explanation_en=(
                    f"The file was created on {created:%Y-%m-%d} and modified on "
                    f"{modified:%Y-%m-%d} ({gap.days} days later, UTC). An issued statement is "
                    "normally never modified after it is generated."
                ),
                explanation_zh=(
                    f"文件创建于 {created:%Y-%m-%d}，修改于 {modified:%Y-%m-%d}"
                    f"（晚了 {gap.days} 天，UTC）。正式出具的对账单生成后通常不会再被修改。"
                ),
            )
        ]
    if -gap > MOD_BEFORE_CREATION_TOLERANCE:
        return [
            RedFlag(
                code="PDF_MODIFIED_BEFORE_CREATION",
                severity=Severity.MEDIUM,
                explanation_en=(
                    f"The file's modification date ({modified:%Y-%m-%d %H:%M} UTC) is before its "
                    f"creation date ({created:%Y-%m-%d %H:%M} UTC), by more than any time-zone "
                    "mistake explains. The dates were probably set by hand."
                ),
                explanation_zh=(
                    f"文件的修改时间（UTC {modified:%Y-%m-%d %H:%M}）早于创建时间"
                    f"（UTC {created:%Y-%m-%d %H:%M}），差距超出时区误差的范围，"
                    "日期很可能被人为设置过。"
                ),
            )
        ]
    return []


def _incremental_flag(count: int, signed: bool) -> RedFlag:
    # A digital signature is itself saved as one incremental update; alone it is benign.
    severity = Severity.LOW if signed and count == 1 else Severity.MEDIUM
    signed_en = " The file is signed; check that the signature covers the final revision." * signed
    signed_zh = "文件带有数字签名，请核实签名覆盖的是最终版本。" * signed
    return RedFlag(
        code="PDF_INCREMENTAL_UPDATE",
        severity=severity,
        explanation_en=(
            f"The file was changed and saved again {count} time(s) after it was first created; "
            f"the earlier version is still inside the file and can be compared.{signed_en}"
        ),
        explanation_zh=(
            f"文件在首次生成后又被修改并保存了 {count} 次，早先的版本仍保存在文件中，可以比对。{signed_zh}"
        ),
    )


_JAVASCRIPT: Final = RedFlag(
    code="PDF_JAVASCRIPT",
    severity=Severity.HIGH,
    explanation_en=(
        "The file contains JavaScript. Bank statements and payslips never need scripts; scripts "
        "can change what is displayed or attack the reader. Do not open it in a desktop viewer."
    ),
    explanation_zh=(
        "文件中含有 JavaScript 脚本。银行流水和收入证明不需要脚本，"
        "脚本可能改变显示内容或攻击阅读器，请勿用桌面阅读器打开。"
    ),
)
_LAUNCH: Final = RedFlag(
    code="PDF_LAUNCH_ACTION",
    severity=Severity.HIGH,
    explanation_en=(
        "The file contains a launch action, which asks the viewer to start another program. "
        "This is a known malware technique. Do not open it in a desktop viewer."
    ),
    explanation_zh="文件中含有“启动程序”动作，会让阅读器运行其他程序，这是已知的恶意软件手法，请勿用桌面阅读器打开。",
)
_EMBEDDED: Final = RedFlag(
    code="PDF_EMBEDDED_FILE",
    severity=Severity.MEDIUM,
    explanation_en=(
        "The file has other files embedded in it. Statements do not need attachments, and an "
        "attachment can carry malware; do not open the attachments."
    ),
    explanation_zh="文件内嵌了其他文件。对账单不需要附件，附件可能携带恶意软件，请勿打开附件。",
)
_ENCRYPTED: Final = RedFlag(
    code="PDF_ENCRYPTED",
    severity=Severity.LOW,
    explanation_en=(
        "The file is encrypted. Some banks do this to restrict editing, but it also hides how "
        "the file was produced from some checks. Confirm the figures with another source."
    ),
    explanation_zh=(
        "文件已加密。部分银行会加密以限制编辑，但加密也会让部分检查无法进行，请通过其他来源核对其中的数据。"
    ),
)
