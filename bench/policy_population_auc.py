"""How well the shipped policy ranks the seeded population against the generator's hidden outcome.

    .venv/bin/python bench/policy_population_auc.py [--customers 10000] [--seed 7] [--as-of 2026-03-18]

Generates the population (core/ledger/generator.py), builds each appealing customer's snapshot
as an appeal with its checklist documents would see it (core/policy/sample.py), scores it with
the shipped policy (`core.policy.scorecard.assess`) and prints, against `bad` (90+ days past due
within 12 months if the limit were restored):

- the AUC of the score (the probability that a random bad scores lower than a random good, ties
  counting half) and Gini, overall and per population;
- for scale, the AUC of the generator's own noise-free latent risk (the best any score could do
  without the noise and the draw);
- volume and bad rate per recommendation (AUTO_APPROVE / MANUAL_REVIEW / AUTO_DECLINE), overall
  and per population.

A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.ledger.generator import BAD_INTERCEPT, GeneratedCustomer, Population, _latent_risk, _spec
from core.policy.backtest import auc
from core.policy.loader import load_default_policy
from core.policy.model import Recommendation
from core.policy.sample import population_sample
from core.policy.scorecard import assess

DEFAULT_AS_OF = date(2026, 3, 18)


def latent_logit(c: GeneratedCustomer, seed: int) -> float:
    """The generator's noise-free logit of P(bad) (its spec is the customer stream's first draw)."""
    spec = _spec(c.population, random.Random(f"customer:{seed}:{c.number}"))
    return BAD_INTERCEPT[c.population] + _latent_risk(spec)


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF)
    args = parser.parse_args()

    loaded = load_default_policy()
    t0 = time.perf_counter()
    rows = population_sample(args.customers, args.seed, loaded.policy, as_of=args.as_of)
    scores: list[int] = []
    recommendations: list[Recommendation] = []
    for row in rows:
        outcome = assess(loaded, row.input)
        scores.append(outcome.score)
        recommendations.append(outcome.recommendation)
    elapsed = time.perf_counter() - t0
    bads = [row.bad for row in rows]
    # A higher score means less risk: the latent "score" is minus the latent logit.
    oracle = [-latent_logit(row.customer, args.seed) for row in rows]

    print(
        f"policy {loaded.policy_id} (sha256 {loaded.content_hash[:12]}), {args.customers} customers, "
        f"seed {args.seed}, as of {args.as_of.isoformat()}: {len(rows)} with something to appeal, "
        f"{sum(bads)} bad ({sum(bads) / len(rows):.1%}); {elapsed:.1f} s"
    )
    print()
    print(f"{'population':<14}{'rows':>7}{'bads':>6}{'bad rate':>10}{'AUC':>8}{'Gini':>8}{'latent AUC':>12}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[row.customer.population.value].append(i)
    lines = [("all", list(range(len(rows))))] + [
        (p.value, groups[p.value]) for p in Population if groups[p.value]
    ]
    for name, index in lines:
        b = [bads[i] for i in index]
        a = auc([scores[i] for i in index], b)
        g = None if a is None else 2 * a - 1
        print(
            f"{name:<14}{len(index):>7}{sum(b):>6}{sum(b) / len(b):>10.1%}{_fmt(a):>8}{_fmt(g):>8}"
            f"{_fmt(auc([oracle[i] for i in index], b)):>12}"
        )

    print()
    print("bad rate per recommendation")
    order = (Recommendation.AUTO_APPROVE, Recommendation.MANUAL_REVIEW, Recommendation.AUTO_DECLINE)
    header = "".join(f"{r.value:>24}" for r in order)
    print(f"{'population':<14}{header}")
    for name, index in lines:
        volume: Counter[Recommendation] = Counter()
        bad: Counter[Recommendation] = Counter()
        for i in index:
            volume[recommendations[i]] += 1
            bad[recommendations[i]] += bads[i]
        cells = "".join(
            f"{f'{volume[r]:>5} ({volume[r] / len(index):4.0%}) bad {bad[r] / volume[r]:5.1%}':>24}"
            if volume[r]
            else f"{'-':>24}"
            for r in order
        )
        print(f"{name:<14}{cells}")


if __name__ == "__main__":
    main()
