"""Build ``autodl/portfolio.json``: per domain, the pool members that did well across the
project's own pool checks (``benchmarks/results/autodl_pool_check.json``), best first.

Greedy portfolio construction (Feurer et al., "Auto-Sklearn 2.0", JMLR 2022; Auto-PyTorch's
warm start, Zimmer et al., TPAMI 2021): with each dataset's validation NAUCs rescaled to [0, 1]
(worst to best member of that dataset), add the member that most raises the mean over datasets
of the best rescaled score in the portfolio, until ``--size`` members. Only members trained on
every dataset of the domain count (the pool check's members are the same there for one seed).

For every source dataset the file also holds the portfolio built without it (leave one dataset
out): ``autodl.search.portfolio_for`` hands a run on that dataset this one, so no run is ever
warm-started from its own dataset's results.

    python benchmarks/autodl_portfolio.py            # -> autodl/portfolio.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
POOL_CHECK = ROOT / "benchmarks" / "results" / "autodl_pool_check.json"
PORTFOLIO = ROOT / "autodl" / "portfolio.json"


def greedy_portfolio(table: dict[str, dict[str, float]], size: int) -> list[str]:
    """The greedy portfolio of ``size`` members from ``table`` (dataset -> member -> score,
    higher is better), over the members every dataset has; ties go to the first in order."""
    if not table:
        return []
    members = [m for m in next(iter(table.values())) if all(m in row for row in table.values())]
    scores = np.array([[table[d][m] for m in members] for d in table])  # (datasets, members)
    span = scores.max(axis=1, keepdims=True) - scores.min(axis=1, keepdims=True)
    scaled = (scores - scores.min(axis=1, keepdims=True)) / np.where(span > 0, span, 1.0)
    chosen: list[int] = []
    best = np.full(len(table), -np.inf)
    while len(chosen) < min(size, len(members)):
        gains = [
            -np.inf if j in chosen else np.maximum(best, scaled[:, j]).mean()
            for j in range(len(members))
        ]
        pick = int(np.argmax(gains))
        chosen.append(pick)
        best = np.maximum(best, scaled[:, pick])
    return [members[j] for j in chosen]


def domain_tables(checks: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """domain -> dataset -> member -> mean validation NAUC (over the check's two trainings and
    its seeds)."""
    sums: dict[str, dict[str, dict[str, list[float]]]] = {}
    for check in checks:
        rows = sums.setdefault(check["domain"], {}).setdefault(check["dataset"], {})
        for result in check["results"]:
            rows.setdefault(result["member"], []).extend(result["val_nauc"])
    return {
        domain: {d: {m: float(np.mean(v)) for m, v in rows.items()} for d, rows in datasets.items()}
        for domain, datasets in sums.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-check", type=Path, default=POOL_CHECK)
    parser.add_argument("--size", type=int, default=4, help="members per portfolio")
    parser.add_argument("--out", type=Path, default=PORTFOLIO)
    args = parser.parse_args()
    source = json.loads(args.pool_check.read_text())
    domains = {}
    for domain, table in sorted(domain_tables(source["checks"]).items()):
        domains[domain] = {
            "datasets": sorted(table),
            "all": greedy_portfolio(table, args.size),
            "without": {
                held_out: greedy_portfolio(
                    {d: row for d, row in table.items() if d != held_out}, args.size
                )
                for held_out in sorted(table)
            },
        }
        print(f"{domain}: {domains[domain]['all']}")
    payload = {
        "source": f"{args.pool_check.name} (git {source['machine']['git_commit']}): "
        f"validation NAUC after {source['epochs']} epochs, mean of two trainings; greedy "
        f"portfolio of {args.size} (benchmarks/autodl_portfolio.py)",
        "domains": domains,
    }
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
