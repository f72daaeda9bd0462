"""The backtest as a self-contained HTML page: tables plus an ROC curve and a score distribution
drawn as inline SVG here (no JavaScript, no external assets: it works offline).

Every value reaches the page escaped: the tables through jinja2's autoescape, the charts through
`_esc` (their only text is numbers and band labels, escaped all the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from core.policy.backtest import (
    SHARE_FLOOR,
    SHIFT_ABOVE,
    STABLE_BELOW,
    BacktestResult,
    band_rows,
    confusion_rows,
    fixed,
    outcome_rows,
    pct,
    stability_rows,
    summary_rows,
)

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
TEMPLATE = "reports/backtest.html.j2"
MAX_ROC_POINTS = 400  # enough for a smooth curve; the page stays small on large files

_GOOD_COLOUR = "#0b5cad"
_BAD_COLOUR = "#a40e26"
_INK = "#1f2328"
_GRID = "#d0d7de"


@lru_cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _esc(text: object) -> str:
    return escape(str(text), {'"': "&quot;"})


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _thin(points: Sequence[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most `limit` points, evenly spaced, first and last kept."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _attrs(attrs: dict[str, object]) -> str:
    return "".join(
        f' {k.replace("_", "-")}="{_esc(_num(v) if isinstance(v, float) else v)}"' for k, v in attrs.items()
    )


def _line(x1: float, y1: float, x2: float, y2: float, **attrs: object) -> str:
    return f"<line{_attrs({'x1': x1, 'y1': y1, 'x2': x2, 'y2': y2, **attrs})}/>"


def _text(x: float, y: float, text: str, **attrs: object) -> str:
    return f"<text{_attrs({'x': x, 'y': y, 'font_size': 11, **attrs})}>{_esc(text)}</text>"


def _open_svg(key: str, width: float, height: float, title: str, desc: str) -> list[str]:
    size = _attrs({"width": width, "height": height, "viewBox": f"0 0 {_num(width)} {_num(height)}"})
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{key}-title {key}-desc"{size}>',
        f'<title id="{key}-title">{_esc(title)}</title>',
        f'<desc id="{key}-desc">{_esc(desc)}</desc>',
    ]


def roc_svg(result: BacktestResult) -> Markup:
    """The ROC curve: share of bads against share of goods at or below each score."""
    size, pad = 320.0, 48.0
    inner = size - 2 * pad

    def x(v: float) -> float:
        return pad + v * inner

    def y(v: float) -> float:
        return size - pad - v * inner

    desc = f"AUC {fixed(result.auc)}, Gini {fixed(result.gini)}: bads rejected against goods rejected."
    parts = _open_svg("roc", size, size, "ROC curve", desc)
    parts.append(
        f'<rect{_attrs({"x": pad, "y": pad, "width": inner, "height": inner})} fill="none" stroke="{_GRID}"/>'
    )
    for t in (0.25, 0.5, 0.75):
        parts.append(_line(x(t), y(0), x(t), y(1), stroke=_GRID))
        parts.append(_line(x(0), y(t), x(1), y(t), stroke=_GRID))
    for t in (0.0, 0.5, 1.0):
        parts.append(_text(x(t), y(0) + 16, _num(t), text_anchor="middle"))
        parts.append(_text(x(0) - 6, y(t) + 4, _num(t), text_anchor="end"))
    parts.append(_line(x(0), y(0), x(1), y(1), stroke=_GRID, stroke_dasharray="4 4"))
    if result.roc:
        path = " ".join(f"{_num(x(fx))},{_num(y(ty))}" for fx, ty in _thin(result.roc, MAX_ROC_POINTS))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{_BAD_COLOUR}" stroke-width="2"/>')
    parts.append(
        _text(x(0.5), size - 10, "share of goods at or below the score", font_size=12, text_anchor="middle")
    )
    parts.append(
        _text(
            14.0,
            y(0.5),
            "share of bads at or below the score",
            font_size=12,
            text_anchor="middle",
            transform=f"rotate(-90 14 {_num(y(0.5))})",
        )
    )
    parts.append(_text(x(0.97), y(0.05), f"AUC {fixed(result.auc)}", font_size=12, text_anchor="end"))
    parts.append("</svg>")
    return Markup("".join(parts))


def distribution_svg(result: BacktestResult) -> Markup:
    """Goods and bads per score band, each as a share of its own class, lowest band first."""
    bands = list(reversed(result.bands))
    n_goods, n_bads = result.goods, result.bads
    good_shares = [b.goods / n_goods if n_goods else 0.0 for b in bands]
    bad_shares = [b.bads / n_bads if n_bads else 0.0 for b in bands]
    top = max([*good_shares, *bad_shares, 0.01])
    group, bar = 56.0, 22.0
    pad_l, pad_r, pad_t, pad_b = 48.0, 16.0, 32.0, 84.0
    height = 220.0
    width = pad_l + pad_r + group * len(bands)

    def y(v: float) -> float:
        return pad_t + height - (v / top) * height

    desc = "Share of goods and share of bads in each score band, lowest scores on the left."
    parts = _open_svg("dist", width, pad_t + height + pad_b, "Score distribution of goods and bads", desc)
    parts += [
        f"<rect{_attrs({'x': pad_l, 'y': 8, 'width': 10, 'height': 10, 'fill': _GOOD_COLOUR})}/>",
        _text(pad_l + 14, 17, f"goods ({n_goods})"),
        f"<rect{_attrs({'x': pad_l + 110, 'y': 8, 'width': 10, 'height': 10, 'fill': _BAD_COLOUR})}/>",
        _text(pad_l + 124, 17, f"bads ({n_bads})"),
        _line(pad_l, y(0), width - pad_r, y(0), stroke=_INK),
        _text(pad_l - 6, y(top) + 4, pct(top, 0), text_anchor="end"),
        _text(pad_l - 6, y(0) + 4, "0%", text_anchor="end"),
    ]
    for i, band in enumerate(bands):
        x0 = pad_l + i * group + (group - 2 * bar) / 2
        for j, (share, colour, kind) in enumerate(
            ((good_shares[i], _GOOD_COLOUR, "goods"), (bad_shares[i], _BAD_COLOUR, "bads"))
        ):
            rect = {
                "x": x0 + j * bar,
                "y": y(share),
                "width": bar - 2,
                "height": y(0) - y(share),
                "fill": colour,
            }
            tip = f"{band.label}: {pct(share)} of {kind}"
            parts.append(f"<rect{_attrs(rect)}><title>{_esc(tip)}</title></rect>")
        cx, cy = pad_l + i * group + group / 2, y(0) + 12
        parts.append(
            _text(
                cx,
                cy,
                band.label,
                font_size=10,
                text_anchor="end",
                transform=f"rotate(-40 {_num(cx)} {_num(cy)})",
            )
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def render_html(result: BacktestResult) -> str:
    """The backtest report page."""
    base = result.baseline
    context = {
        "r": result,
        "summary": summary_rows(result),
        "bands": band_rows(result),
        "outcomes": outcome_rows(result.routing) if result.routing else None,
        "confusion": confusion_rows(result.routing.confusion) if result.routing else None,
        "psi": None if base is None else {"index": fixed(base.psi.index), "reading": base.psi.reading},
        "psi_rows": None if base is None else stability_rows(base.psi),
        "csi": []
        if base is None
        else [
            {"name": s.name, "index": fixed(s.index), "reading": s.reading, "table": stability_rows(s)}
            for s in base.csi
        ],
        "unscorable": [(reason, n) for reason, n in result.unscorable.most_common()],
        "baseline_unscorable": []
        if base is None
        else [(reason, n) for reason, n in base.unscorable.most_common()],
        "share_floor": SHARE_FLOOR,
        "stable_below": STABLE_BELOW,
        "shift_above": SHIFT_ABOVE,
        "roc_svg": roc_svg(result),
        "distribution_svg": distribution_svg(result),
    }
    return environment().get_template(TEMPLATE).render(**context)


__all__ = ["distribution_svg", "render_html", "roc_svg"]
