"""Chaos harness: appeals driven through the HTTP API while one part of the service is killed,
cut off or made to hang; then the invariants are checked (issue 12, items 7 and 8).

    .venv/bin/python bench/chaos.py [--fault worker-kill] [--fault none ...] [--appeals 100]
                                    [--db sqlite|postgres] [--workers 1] [--apis 1]
                                    [--rate 2] [--seed 42] [--keep] [--data-dir DIR]

Faults (`--fault` may be given several times, `all` runs every one the database allows; a
`+` joins faults into one run, e.g. `worker-kill+server-kill`):

    none           nothing happens: the baseline
    worker-kill    kill -9 worker-1, start it again after --pause seconds (2)
    worker-kill-3  the same three times, --fault-every seconds apart
    server-kill    kill -9 the Temporal dev server (it keeps its database file), restart it
                   after --server-pause seconds (10)
    server-term    SIGTERM the Temporal dev server, restart
    api-kill       kill -9 api-1, restart
    api-kill-5     the same five times
    s3-refuse      S3 refuses connections for --outage seconds (a proxy in front of it)
    s3-hang        S3 accepts connections but answers nothing for --hang seconds
    db-restart     PostgreSQL only: new connections refused for --db-outage seconds and every
                   open one of the run's database terminated (pg_terminate_backend)
    machine-kill   kill -9 worker-1 and api-1 together, as when one machine of two dies (with
                   --workers 2 --apis 2 the other pair carries on), restart both
    api-lost-answers  for --outage seconds, --lose-share (half) of api-1's answers are lost on
                   their way back (the connection reset once the server has answered): the
                   clients' retries, with the same Idempotency-Key, must get what the first
                   attempt did (submit, upload, decision), never a second appeal, document or
                   decision

What one run does:

1. Starts each part as its own process on free ports, with a data directory of its own
   (bench/chaos_stack.py): a Temporal dev server with a database file, moto's S3 server behind
   a proxy that can refuse or hang (bench/chaos_proxy.py), the SMTP sink, `--workers` worker
   processes (`appeals worker`) and `--apis` API processes (`appeals api`, each behind such a
   proxy too, which can lose its answers). The database is a
   SQLite file in the data directory, or with `--db postgres` a fresh PostgreSQL database
   (`--pg-url`, by default APPEALS_TEST_PG_URL or the test server) created and dropped by the
   run. More than one worker or API needs PostgreSQL (issue 12, item 8: `--workers 2 --apis 2`
   is two machines' worth against one Temporal server; the faults kill worker-1 or api-1, or
   both with machine-kill, while worker-2 and api-2 carry on).
2. Seeds a generated population (core/ledger/generator.py `seed_population`) whose customers
   come to different outcomes: approved automatically, reviewed, declined automatically,
   ineligible.
3. Drives `--appeals` appeals through the HTTP API, `--rate` new customers a second, as real
   clients do (bench/chaos_driver.py): each request retried on connection errors, timeouts
   and 5xx, spread over the API processes, with an Idempotency-Key on every POST; customers
   submit, upload what their checklist asks for (statement generated with their ledger, PDFs
   as tests/documents.py makes them) and follow their appeal; reviewer desks (r-1, r-2, and
   the senior reviewers sr-1, sr-2 for four-eyes) claim, read the case and decide.
4. Injects the fault once `--fault-after` of the appeals were submitted, restarting a killed
   part after `--pause` seconds as a supervisor would.
5. Waits (at most `--settle-timeout` seconds) until every appeal rests, every notice is
   delivered, every document checked and every workflow agrees with its appeal, then checks
   the invariants (bench/chaos_checks.py): no appeal lost (every 201 has a row and a
   workflow), every appeal CLOSED, INELIGIBLE or AUTO_DECLINED, at most one RESTORE per
   appeal and account limits as the last limit event says, no email stored twice with one
   Message-ID and no SMS recorded twice with one idempotency key, every SENT notice at its
   sink, no document left UPLOADED, no duplicate document, none of the (valid) files the
   clients send rejected, every upload answered 2xx, every document's object in S3, the
   audit chain intact (launcher/audit_cli.py `scan_appeals`, as `appeals audit verify`),
   every workflow COMPLETED or RUNNING as its appeal's status says, with AppealStatus
   matching.
6. Prints a table per run and a summary with one row per fault. Recovery: "first progress"
   is the time from the fault until the workers next move an appeal (an audit event written
   by the workflow, a decision, or a document checked; the largest over the fault's
   injections), "settled" the time from the (first) injection until the run came to rest,
   which includes the rest of the load: compare it with the baseline's (`none`, from the
   point where its fault would have been), as the summary's "vs none" does.

Exits 1 when an invariant fails in any run. A failed run keeps its data directory (logs of
every process in `logs/`); `--keep` keeps every run's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also as `python bench/chaos.py`

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.chaos_checks import Findings, check_all, settled, workflows_behind
from bench.chaos_driver import ApiClient, AppealRun, CallStats, Driver
from bench.chaos_stack import DEFAULT_PG_URL, ChaosStack
from core.auth import Role
from core.clock import SYSTEM_CLOCK, Clock
from core.db import session_scope
from core.ledger.generator import Expected, seed_population

SINGLE_FAULTS = (
    "none",
    "worker-kill",
    "worker-kill-3",
    "server-kill",
    "server-term",
    "api-kill",
    "api-kill-5",
    "s3-refuse",
    "s3-hang",
    "db-restart",
    "machine-kill",
    "api-lost-answers",
)
REVIEWERS = (
    ("r-1", Role.REVIEWER),
    ("r-2", Role.REVIEWER),
    ("sr-1", Role.SENIOR_REVIEWER),
    ("sr-2", Role.SENIOR_REVIEWER),
)

# Worker progress: audit events the workflow's steps write, decisions, documents checked.
PROGRESS_SQL = text(
    "SELECT (SELECT count(*) FROM appeal_event WHERE actor IN ('workflow', 'system'))"
    " + (SELECT count(*) FROM decision)"
    " + (SELECT count(*) FROM document WHERE verified_at IS NOT NULL)"
)


@dataclass(frozen=True)
class Step:
    """One injection: what is done to which part, and for how long it stays done."""

    action: str  # kill, term, s3-refuse, s3-hang, db-outage
    target: str  # parts of the stack (worker-1, api-1, temporal; several joined by ",") or ""
    seconds: float

    @property
    def targets(self) -> list[str]:
        return [t for t in self.target.split(",") if t]

    def describe(self) -> str:
        what = {
            "kill": f"kill -9 {' and '.join(self.targets)}",
            "term": f"SIGTERM {' and '.join(self.targets)}",
            "s3-refuse": "S3 refuses connections",
            "s3-hang": "S3 hangs",
            "db-outage": "PostgreSQL refuses and drops connections",
            "lose-answers": f"{self.target}'s answers lost on the way back",
        }[self.action]
        return f"{what} for {self.seconds:g} s"


@dataclass
class Config:
    fault: str = "none"
    appeals: int = 100
    db: str = "sqlite"
    workers: int = 1
    apis: int = 1
    rate: float = 2.0
    seed: int = 42
    fault_after: float = 0.3
    fault_every: float = 6.0
    pause: float = 2.0
    server_pause: float = 10.0
    outage: float = 10.0  # S3 refusing, answers lost
    lose_share: float = 0.5  # of api-1's answers, while they are being lost
    hang: float = 20.0
    db_outage: float = 5.0
    settle_timeout: float = 300.0
    appeal_timeout: float = 300.0
    human_review_window: float | None = None
    pdf_timeout: float | None = None
    pg_url: str = DEFAULT_PG_URL
    data_dir: Path | None = None
    keep: bool = False


def plan(config: Config) -> list[Step]:
    """The steps of `config.fault` (faults joined with `+` run one after the other)."""
    steps: list[Step] = []
    for name in config.fault.split("+"):
        if name not in SINGLE_FAULTS:
            raise ValueError(f"unknown fault {name!r}; one of {', '.join(SINGLE_FAULTS)}")
        if name == "db-restart" and config.db != "postgres":
            raise ValueError("db-restart needs --db postgres (SQLite is a file, not a server)")
        steps += {
            "none": [],
            "worker-kill": [Step("kill", "worker-1", config.pause)],
            "worker-kill-3": [Step("kill", "worker-1", config.pause)] * 3,
            "server-kill": [Step("kill", "temporal", config.server_pause)],
            "server-term": [Step("term", "temporal", config.server_pause)],
            "api-kill": [Step("kill", "api-1", config.pause)],
            "api-kill-5": [Step("kill", "api-1", config.pause)] * 5,
            "s3-refuse": [Step("s3-refuse", "", config.outage)],
            "s3-hang": [Step("s3-hang", "", config.hang)],
            "db-restart": [Step("db-outage", "", config.db_outage)],
            "machine-kill": [Step("kill", "worker-1,api-1", config.pause)],
            "api-lost-answers": [Step("lose-answers", "api-1", config.outage)],
        }[name]
    return steps


@dataclass
class Injection:
    step: Step | None  # None: the baseline's mark, where a fault would have been
    at: float  # monotonic
    baseline: int | None  # worker progress right after the fault
    restored_at: float | None = None
    restored_value: int | None = None  # worker progress when the part was back
    first_progress: float | None = None  # seconds from `at` to the first move after `restored_at`
    note: str = ""

    @property
    def moved_while_down(self) -> int | None:
        """Progress made between the fault and the part's return (in-flight work finishing,
        or the other worker carrying on)."""
        if self.baseline is None or self.restored_value is None:
            return None
        return self.restored_value - self.baseline


@dataclass
class RunReport:
    config: Config
    data_dir: Path
    started: float
    findings: Findings | None = None
    injections: list[Injection] = field(default_factory=list)
    settled_after: float | None = None  # seconds from the first injection (the baseline's mark)
    settle_note: str = ""
    stats: CallStats = field(default_factory=CallStats)
    runs: list[AppealRun] = field(default_factory=list)
    desk_decisions: dict[str, int] = field(default_factory=dict)
    desk_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    kept_database: str | None = None  # a PostgreSQL database left for a look (failed or --keep)

    def failures(self) -> list[str]:
        out = [] if self.error is None else [f"run failed: {self.error}"]
        if self.findings is not None:
            out += self.findings.failures()
        if self.settled_after is None and self.error is None:
            out.append(f"did not settle in {self.config.settle_timeout:g} s: {self.settle_note}")
        return out

    @property
    def first_progress(self) -> float | None:
        """The slowest of the injections' first progress (an injection after which no work was
        left does not count)."""
        values = [i.first_progress for i in self.injections if i.step is not None]
        return max((v for v in values if v is not None), default=None)


class ChaosRun:
    """One run: a fresh stack, the load, one fault, the checks."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = SYSTEM_CLOCK,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.log = log
        self.steps = plan(config)
        name = config.fault.replace("+", "_")
        if config.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix=f"appeals-chaos-{name}-"))
        else:
            self.data_dir = config.data_dir / name
        self.stack = self._new_stack()
        self.report = RunReport(config, self.data_dir, started=monotonic())
        self.samples: list[tuple[float, int]] = []

    def run(self) -> RunReport:
        config = self.config
        if (config.workers > 1 or config.apis > 1) and config.db != "postgres":
            raise ValueError("more than one worker or API process needs --db postgres")
        try:
            self.log(f"[{config.fault}] starting the stack in {self.data_dir} ...")
            self._start_stack()
            engine = self.stack.make_engine()
            try:
                runs = self._seed(engine)
                self.log(f"[{config.fault}] driving {len(runs)} appeals ...")
                asyncio.run(self._drive(engine, runs))
                self.log(f"[{config.fault}] checking the invariants ...")
                self.report.findings = check_all(
                    engine=engine,
                    runs=runs,
                    s3_settings=self.stack.direct_s3_settings(),
                    mail_dir=self.stack.mail_dir,
                    sms_file=self.stack.sms_file,
                    temporal_address=self.stack.settings.temporal_address,
                    namespace=self.stack.settings.temporal_namespace,
                    logs_dir=self.stack.logs,
                )
            finally:
                engine.dispose()
        except Exception as exc:
            self.report.error = f"{type(exc).__name__}: {exc}"
        finally:
            dead = self.stack.dead_parts()
            if dead:
                self.report.desk_problems.append(f"parts not running at the end: {', '.join(dead)}")
            keep = config.keep or bool(self.report.failures())
            self.stack.stop(keep_database=keep)
            self.report.kept_database = self.stack.pg_database
        self.report.seconds = self.monotonic() - self.report.started
        if not self.report.failures() and not config.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.report

    def _new_stack(self) -> ChaosStack:
        config = self.config
        return ChaosStack(
            self.data_dir,
            db=config.db,
            workers=config.workers,
            apis=config.apis,
            pg_url=config.pg_url,
            human_review_window=(
                timedelta(seconds=config.human_review_window) if config.human_review_window else None
            ),
            pdf_timeout=config.pdf_timeout,
        )

    def _start_stack(self, attempts: int = 3) -> None:
        """Free ports are chosen before the parts bind them; on a machine shared with other
        runs one may be taken meanwhile: then the stack starts again on other ports."""
        for attempt in range(1, attempts + 1):
            try:
                self.stack.start()
                return
            except Exception as exc:
                if attempt == attempts or "address already in use" not in str(exc).lower():
                    raise
                self.log(f"[{self.config.fault}] a port was taken meanwhile; starting on other ports")
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.stack = self._new_stack()

    def _seed(self, engine: Engine) -> list[AppealRun]:
        wanted = self.config.appeals
        generate = wanted + wanted // 8 + 8  # a few have ACTIVE accounts: nothing to appeal
        with session_scope(engine) as session:
            outcome = seed_population(session, generate, self.config.seed, today=self.clock.today())
        people = [c for c in outcome.customers if c.expected is not Expected.NOTHING_TO_APPEAL][:wanted]
        return [AppealRun(index, c) for index, c in enumerate(people, start=1)]

    # -- the load, the fault and the wait -----------------------------------------------------

    def _progress(self, engine: Engine) -> int:
        with engine.connect() as connection:
            return int(connection.execute(PROGRESS_SQL).scalar_one())

    async def _drive(self, engine: Engine, runs: list[AppealRun]) -> None:
        config, report = self.config, self.report
        report.runs = runs
        api = ApiClient(
            self.stack.api_urls,
            report.stats,
            monotonic=self.monotonic,
            give_up_after=config.appeal_timeout,
        )
        driver = Driver(
            self.stack.settings,
            api,
            run_id=uuid.uuid4().hex[:8],
            clock=self.clock,
            monotonic=self.monotonic,
            appeal_timeout=config.appeal_timeout,
        )
        driver.runs = runs
        stop = asyncio.Event()
        monitor = asyncio.create_task(self._monitor(engine, stop))
        desks = [asyncio.create_task(driver.reviewer_desk(who, role)) for who, role in REVIEWERS]
        submitted = asyncio.Event()
        threshold = max(1, math.ceil(len(runs) * config.fault_after))
        injector = asyncio.create_task(self._inject(engine, submitted))
        customers: list[asyncio.Task[None]] = []
        try:
            for run in runs:
                customers.append(asyncio.create_task(driver.customer(run)))
                if sum(1 for r in runs if r.submit_status is not None) >= threshold:
                    submitted.set()
                await asyncio.sleep(1 / config.rate)
            while not submitted.is_set() and not all(c.done() for c in customers):
                if sum(1 for r in runs if r.submit_status is not None) >= threshold:
                    submitted.set()
                await asyncio.sleep(0.1)
            submitted.set()
            await asyncio.gather(*customers)
            self.log(f"[{config.fault}] clients done; waiting for the faults and the run to settle ...")
            await injector
            await self._settle(engine, [r.appeal_id for r in runs if r.accepted and r.appeal_id])
        finally:
            driver.desks_stop.set()
            stop.set()
            # Settled, nothing is left for the desks; otherwise (an error, Ctrl-C) stop everything.
            for task in (*customers, injector, *desks):
                if not task.done():
                    task.cancel()
            await asyncio.gather(*customers, injector, *desks, monitor, return_exceptions=True)
            await api.aclose()
        report.desk_decisions = dict(driver.desk.decisions)
        report.desk_problems += driver.desk.problems

    async def _monitor(self, engine: Engine, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                value = await asyncio.to_thread(self._progress, engine)
            except Exception:  # the database may be the part that is down
                value = None
            if value is not None:
                self.samples.append((self.monotonic(), value))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)

    async def _inject(self, engine: Engine, submitted: asyncio.Event) -> None:
        await submitted.wait()
        if not self.steps:
            self.report.injections.append(Injection(None, self.monotonic(), None, note="no fault (baseline)"))
            return
        for n, step in enumerate(self.steps):
            if n:
                await asyncio.sleep(self.config.fault_every)
            injection = await asyncio.to_thread(self._apply, engine, step)
            self.report.injections.append(injection)
            self.log(f"[{self.config.fault}] {step.describe()}: {injection.note}")

    def _apply(self, engine: Engine, step: Step) -> Injection:
        """Does the step, waits its time, puts things back; blocking (run in a thread)."""
        stack = self.stack
        if step.action == "db-outage":
            baseline: int | None = self._progress(engine)
            at = self.monotonic()
            killed = stack.pg_outage(step.seconds, sleep=self.sleep)
            restored = self.monotonic()
            return Injection(
                step,
                at,
                baseline,
                restored,
                self._progress_or_none(engine),
                note=f"{killed} connections terminated",
            )
        at = self.monotonic()
        if step.action in ("kill", "term"):
            for target in step.targets:
                stack.kill(target, signal.SIGKILL if step.action == "kill" else signal.SIGTERM)
        elif step.action == "s3-refuse":
            assert stack.proxy is not None
            stack.proxy.refuse()
        elif step.action == "s3-hang":
            assert stack.proxy is not None
            stack.proxy.hang()
        elif step.action == "lose-answers":
            stack.api_proxy(step.target).lose_answers(self.config.lose_share)
        after_fault = self._progress_or_none(engine)
        self.sleep(step.seconds)
        note = ""
        if step.action in ("kill", "term"):
            for target in step.targets:
                stack.restart(target)
        elif step.action == "lose-answers":
            api_proxy = stack.api_proxy(step.target)
            api_proxy.heal()
            note = f"{api_proxy.answers_lost} answers lost; "
        else:
            assert stack.proxy is not None
            stack.proxy.heal()
        restored = self.monotonic()
        return Injection(
            step,
            at,
            after_fault,
            restored,
            self._progress_or_none(engine),
            note=f"{note}back after {restored - at:.1f} s",
        )

    def _progress_or_none(self, engine: Engine) -> int | None:
        try:
            return self._progress(engine)
        except Exception:  # the database may be the part that is down
            return None

    async def _settle(self, engine: Engine, accepted: list[str]) -> None:
        report = self.report
        deadline = self.monotonic() + self.config.settle_timeout
        reference = report.injections[0].at if report.injections else report.started
        next_note = self.monotonic() + 30
        while True:
            try:
                done, note = await asyncio.to_thread(settled, engine, accepted)
                if done:  # the database has come to rest: have the workflows caught up?
                    settings = self.stack.settings
                    behind = await workflows_behind(
                        engine, settings.temporal_address, settings.temporal_namespace
                    )
                    if behind:
                        done, note = False, f"{len(behind)} workflows behind their appeal ({behind[0]})"
            except Exception as exc:
                done, note = False, f"{type(exc).__name__}: {exc}"
            report.settle_note = note
            if done:
                report.settled_after = self.monotonic() - reference
                break
            if self.monotonic() > deadline:
                break
            if self.monotonic() >= next_note:
                self.log(f"[{self.config.fault}] still settling: {note}")
                next_note = self.monotonic() + 30
            await asyncio.sleep(1.0)
        for injection in report.injections:
            if injection.restored_at is None or injection.restored_value is None:
                continue
            restored_at, restored_value = injection.restored_at, injection.restored_value
            after = [t for t, v in self.samples if t > restored_at and v > restored_value]
            if after:
                injection.first_progress = after[0] - injection.at
            elif report.settled_after is None:
                injection.first_progress = math.inf  # work was left, and nothing moved
            else:
                injection.note += "; no work was left for the workers"


# -- printing -----------------------------------------------------------------------------------


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "never"
    return f"{value:.1f} s"


def _count(items: list[str]) -> str:
    return str(len(items))


def _longest_gap(times: list[float]) -> float | None:
    """The clients' longest wait between two successful answers: what a fault cost them."""
    ordered = sorted(times)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=None)


def run_table(report: RunReport) -> str:
    c, f = report.config, report.findings
    lines = [
        "",
        f"== {c.fault}: {c.db}, {c.workers} worker(s), {c.apis} API(s), {c.appeals} appeals, "
        f"seed {c.seed}, {report.seconds:.0f} s ==",
    ]
    for injection in report.injections:
        what = injection.step.describe() if injection.step else "baseline mark"
        moved = injection.moved_while_down
        lines.append(
            f"  {what} at +{injection.at - report.started:.0f} s: {injection.note}; "
            + (f"{moved} progress events while down; " if moved is not None else "")
            + f"first progress after it, {_secs(injection.first_progress)} from the fault"
        )
    rows: list[tuple[str, str]] = []
    if f is not None:
        statuses = ", ".join(f"{s} {n}" for s, n in f.statuses.most_common())
        rows += [
            ("appeals accepted (201/200) / rows", f"{f.accepted} / {f.appeals}"),
            ("final statuses", statuses or "-"),
            ("outcome not the generator's expected one", str(f.outcome_differs)),
            ("lost (no row or no workflow)", _count(f.lost)),
            ("duplicate appeals", _count(f.duplicate_appeals)),
            ("not at rest", _count(f.stuck)),
            ("double limits (RESTORE > 1)", _count(f.double_limits)),
            ("limits inconsistent", _count(f.limit_mismatches)),
            ("emails stored / twice", f"{f.emails} / {len(f.duplicate_emails)}"),
            ("SMS recorded / twice", f"{f.sms} / {len(f.duplicate_sms)}"),
            (
                "notices missing at sinks / undelivered",
                f"{len(f.notices_missing)} / {len(f.notices_undelivered)}",
            ),
            ("documents skipped (UPLOADED)", _count(f.documents_skipped)),
            ("duplicate documents", _count(f.duplicate_documents)),
            (
                "valid documents rejected",
                _count(f.valid_documents_rejected)
                + (
                    f" ({', '.join(sorted({r.rsplit(' ', 1)[-1] for r in f.valid_documents_rejected}))})"
                    if f.valid_documents_rejected
                    else ""
                ),
            ),
            ("uploads refused / lost", f"{len(f.uploads_refused)} / {len(f.uploads_lost)}"),
            ("documents without object / orphan objects", f"{len(f.objects_missing)} / {f.orphan_objects}"),
            ("audit chain", "ok" if not f.audit_broken else f"BROKEN {len(f.audit_broken)}"),
            ("workflows not as status says", _count(f.workflow_mismatches)),
            ("clients gave up", _count(f.clients_gave_up)),
            ("redone: activity retries / notices resent", f"{f.activity_retries} / {f.resent_notices}"),
            ("copies dropped by the SMTP sink", str(f.copies_dropped_by_smtp_sink)),
        ]
    stats = report.stats
    rows += [
        (f"{kind} answers", ", ".join(f"{code} x{n}" for code, n in sorted(answers.items())) or "-")
        for kind in ("submit", "upload", "decision")
        for answers in [{k.split()[1]: n for k, n in stats.answers.items() if k.split()[0] == kind}]
    ]
    rows += [
        ("client retries", ", ".join(f"{k} {n}" for k, n in stats.retries.most_common()) or "0"),
        (
            "reviewer decisions",
            ", ".join(f"{k} {n}" for k, n in sorted(report.desk_decisions.items())) or "-",
        ),
        ("longest time without a 2xx answer", _secs(_longest_gap(stats.ok_at))),
        ("recovery: first progress", _secs(report.first_progress)),
        (
            "recovery: all settled",
            _secs(report.settled_after) if report.settled_after is not None else "never",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    causes = stats.causes.most_common(6)
    if causes:
        lines.append("  retried because: " + "; ".join(f"{k} x{n}" for k, n in causes))
    for problem in report.desk_problems[:6]:
        lines.append(f"  note: {problem}")
    failures = report.failures()
    lines.append(f"  RESULT: {'PASS' if not failures else 'FAIL'}")
    lines += [f"    - {failure}" for failure in failures]
    if failures or c.keep:
        lines.append(f"  data and logs kept in {report.data_dir}")
    if report.kept_database:
        lines.append(f"  PostgreSQL database {report.kept_database} kept (DROP DATABASE it when done)")
    return "\n".join(lines)


def summary_table(reports: list[RunReport]) -> str:
    header = (
        "fault",
        "appeals",
        "final statuses",
        "lost",
        "2x limit",
        "2x notice",
        "skipped docs",
        "dup docs",
        "rejected",
        "audit",
        "wf ok",
        "first progress",
        "settled",
        "vs none",
        "result",
    )
    rows: list[tuple[str, ...]] = [header]
    base = next((r.settled_after for r in reports if r.config.fault == "none"), None)
    for r in reports:
        f = r.findings
        if f is None:
            rows.append((r.config.fault, *["-"] * (len(header) - 2), "FAIL"))
            continue
        short = {"CLOSED": "C", "AUTO_DECLINED": "AD", "INELIGIBLE": "I"}
        statuses = " ".join(f"{short.get(s, s + ' ')}{n}" for s, n in f.statuses.most_common())
        rows.append(
            (
                r.config.fault,
                str(f.accepted),
                statuses,
                _count(f.lost),
                _count(f.double_limits),
                str(len(f.duplicate_emails) + len(f.duplicate_sms)),
                _count(f.documents_skipped),
                _count(f.duplicate_documents),
                _count(f.valid_documents_rejected),
                "ok" if not f.audit_broken else "BROKEN",
                "ok" if not f.workflow_mismatches else str(len(f.workflow_mismatches)),
                _secs(r.first_progress),
                _secs(r.settled_after) if r.settled_after is not None else "never",
                f"{r.settled_after - base:+.1f} s"
                if r.settled_after is not None and base is not None
                else "-",
                "PASS" if not r.failures() else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    out = [
        "",
        "Summary (C = CLOSED, AD = AUTO_DECLINED, I = INELIGIBLE; rejected: valid files the checks "
        "refused; settled: from the fault until the run rested, which includes the rest of the load; "
        "vs none: the same less the baseline's)",
    ]
    for n, row in enumerate(rows):
        out.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fault", action="append", help="a fault, several joined with +, or all")
    parser.add_argument("--appeals", type=int, default=100)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--apis", type=int, default=1)
    parser.add_argument("--rate", type=float, default=2.0, help="new customers a second")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fault-after", type=float, default=0.3, help="share of appeals submitted first")
    parser.add_argument("--fault-every", type=float, default=6.0, help="seconds between repeated injections")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds a killed worker or API stays down")
    parser.add_argument(
        "--server-pause", type=float, default=10.0, help="seconds the Temporal server stays down"
    )
    parser.add_argument(
        "--outage",
        type=float,
        default=10.0,
        help="seconds S3 refuses connections, or api-1's answers are lost",
    )
    parser.add_argument(
        "--lose-share", type=float, default=0.5, help="share of api-1's answers lost in api-lost-answers"
    )
    parser.add_argument("--hang", type=float, default=20.0, help="seconds S3 hangs")
    parser.add_argument("--db-outage", type=float, default=5.0, help="seconds PostgreSQL refuses connections")
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--appeal-timeout", type=float, default=300.0, help="a client's patience per wait")
    parser.add_argument(
        "--human-review-window",
        type=float,
        default=None,
        help="seconds an automatic decline waits for a human-review request before it closes "
        "(default: the policy's window, so AUTO_DECLINED appeals rest with a running workflow)",
    )
    parser.add_argument(
        "--pdf-timeout",
        type=float,
        default=None,
        help="seconds the PDF check's child process may take (default: the setting's, 5); a "
        "check cut short rejects the file as PDF_TOO_COMPLEX, which a loaded machine can cause",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a new temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep every run's data directory")
    args = parser.parse_args(argv)

    faults: list[str] = []
    for value in args.fault or ["none"]:
        if value == "all":
            faults += [f for f in SINGLE_FAULTS if f != "db-restart" or args.db == "postgres"]
        else:
            faults.append(value)
    reports: list[RunReport] = []
    for fault in faults:
        config = Config(
            fault=fault,
            appeals=args.appeals,
            db=args.db,
            workers=args.workers,
            apis=args.apis,
            rate=args.rate,
            seed=args.seed,
            fault_after=args.fault_after,
            fault_every=args.fault_every,
            pause=args.pause,
            server_pause=args.server_pause,
            outage=args.outage,
            lose_share=args.lose_share,
            hang=args.hang,
            db_outage=args.db_outage,
            settle_timeout=args.settle_timeout,
            appeal_timeout=args.appeal_timeout,
            human_review_window=args.human_review_window,
            pdf_timeout=args.pdf_timeout,
            pg_url=args.pg_url,
            data_dir=args.data_dir,
            keep=args.keep,
        )
        try:
            plan(config)
        except ValueError as exc:
            parser.error(str(exc))
        chaos = ChaosRun(config, log=lambda line: print(line, flush=True))
        try:
            report = chaos.run()
        except KeyboardInterrupt:  # the run's processes are stopped; its data is kept
            print(f"\ninterrupted; {fault}'s data and logs are in {chaos.data_dir}", flush=True)
            if reports:
                print(summary_table(reports), flush=True)
            return 130
        reports.append(report)
        print(run_table(report), flush=True)
    print(summary_table(reports), flush=True)
    return 1 if any(r.failures() for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
