"""Assessment throughput: a seeded mixed population of appeals through `assess`.

    .venv/bin/python bench/assessment_bench.py [--n 10000] [--seed 20250615]

Prints the mean and p99 wall time per assessment (generation of the inputs is not timed) and
the share of each recommendation, overall and per population.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

# The population generator lives with the tests; make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.policy import Recommendation, assess, load_default_policy
from tests.core.policy.factories import Population, make_population


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20250615)
    args = parser.parse_args()

    policy = load_default_policy()
    t0 = time.perf_counter()
    population = make_population(args.n, args.seed)
    generated = time.perf_counter() - t0

    timings: list[float] = []
    overall: Counter[Recommendation] = Counter()
    by_population: dict[Population, Counter[Recommendation]] = defaultdict(Counter)
    scores: dict[Population, list[int]] = defaultdict(list)
    for label, inp in population:
        start = time.perf_counter()
        result = assess(policy, inp)
        timings.append(time.perf_counter() - start)
        overall[result.recommendation] += 1
        by_population[label][result.recommendation] += 1
        scores[label].append(result.score)

    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"policy {policy.policy_id} sha256 {policy.content_hash[:12]}")
    print(f"profiles: {args.n} (seed {args.seed}), generated in {generated:.2f} s")
    print(
        f"assess: mean {statistics.fmean(timings) * 1e3:.3f} ms, "
        f"p50 {timings[len(timings) // 2] * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms, "
        f"total {sum(timings):.2f} s"
    )
    print("recommendations:")
    for rec in Recommendation:
        print(f"  {rec.value:<14} {overall[rec]:>6}  {overall[rec] / args.n:6.1%}")
    print("by population (n, mean score, share AUTO_APPROVE / MANUAL_REVIEW / AUTO_DECLINE):")
    for label in Population:
        counts = by_population[label]
        n = sum(counts.values())
        if not n:
            continue
        shares = " / ".join(f"{counts[r] / n:6.1%}" for r in Recommendation)
        print(f"  {label.value:<13} {n:>5}  {statistics.fmean(scores[label]):6.1f}  {shares}")


if __name__ == "__main__":
    main()
