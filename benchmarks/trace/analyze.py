"""Where a traced run's time went, page by page: ``python -m benchmarks.trace.analyze PREFIX [SLOTS]``.

Reads the ``PREFIX.<pid>`` files a run writes under ``trace.patch`` (lines ``page event monotonic_s``:
``submitN`` in the caller, N the sender; ``got``, ``work``, ``rendered``, ``prepared``, ``done`` in the
sender; ``slot``, ``sent``, ``reply`` in its client) and prints, for the job (from the last submit of page
1 on): its end and rate, when the SLOTS-th request went out, each stage's median/p99/max, each sender's
pages and last request, the last pages done, the gap from a reply to the next request in the same sender,
and the requests that took over 1.1 s with when they were sent.
"""

from __future__ import annotations

import glob
import sys
from collections import defaultdict
from typing import Any

from benchmarks.common import quantiles_ms

STAGES = [
    ("submit", "got"),
    ("got", "work"),
    ("work", "rendered"),
    ("rendered", "prepared"),
    ("prepared", "slot"),
    ("slot", "sent"),
    ("sent", "reply"),
    ("reply", "done"),
]


def load(prefix: str) -> list[tuple[float, int, str, str]]:
    events = []
    for path in glob.glob(prefix + ".*"):
        pid = path.rsplit(".", 1)[1]
        with open(path) as f:
            for line in f:
                n, kind, t = line.split()
                events.append((float(t), int(n), kind, pid))
    return sorted(events)


def _q(values: list[float]) -> str:
    if not values:
        return "-"
    median, p99, top = quantiles_ms(values)
    return f"{median:.1f}/{p99:.0f}/{top:.0f}"


def main(prefix: str, slots: int) -> None:
    events = load(prefix)
    t0 = max(t for t, n, kind, _ in events if kind.startswith("submit") and n == 1)
    events = [e for e in events if e[0] >= t0 - 1e-6]
    pages: dict[int, dict[str, Any]] = defaultdict(dict)
    for t, n, kind, _ in events:
        d = pages[n]
        if kind.startswith("submit"):
            d["sender"], kind = int(kind[6:]), "submit"
        d.setdefault(kind, t - t0)  # a retried request: its first try
    ok = [d for d in pages.values() if "done" in d and "sent" in d]
    end = max(d["done"] for d in ok)
    sent = sorted(d["sent"] for d in ok)
    print(
        f"{len(ok)} pages, end {end:.2f} s -> {len(ok) / end:.1f} pages/s; request {slots} sent at "
        f"{sent[min(slots, len(sent)) - 1]:.3f} s"
    )
    print(
        "  stage ms median/p99/max: "
        + "; ".join(f"{a}->{b} {_q([d[b] - d[a] for d in ok if a in d and b in d])}" for a, b in STAGES)
    )
    by: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in pages.values():
        if "sender" in d:
            by[d["sender"]].append(d)
    print("  per sender: pages; last request sent; last page done")
    for s in sorted(by):
        v = by[s]
        print(
            f"   s{s:2d}: {len(v):3d}; {max(d.get('sent', 0) for d in v):.3f}; "
            f"{max(d.get('done', 0) for d in v):.3f}"
        )
    print(
        "  last pages done: sender "
        + " ".join(k for k in ("submit", "got", "work", "prepared", "slot", "sent", "reply", "done"))
    )
    for d in sorted(ok, key=lambda d: -d["done"])[:8]:
        print(
            f"   s{d['sender']:2d}: "
            + " ".join(
                f"{d.get(k, float('nan')):.3f}"
                for k in ("submit", "got", "work", "prepared", "slot", "sent", "reply", "done")
            )
        )
    gaps = []
    bypid: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for t, _, kind, pid in events:
        if kind in ("sent", "reply"):
            bypid[pid].append((t, kind))
    for es in bypid.values():
        for i, (t, kind) in enumerate(es):
            nxt = next((u for u, k in es[i + 1 :] if k == "sent"), None) if kind == "reply" else None
            if nxt is not None:
                gaps.append(nxt - t)
    if gaps:
        print(f"  reply -> next request sent in the same sender (ms, median/p99/max): {_q(gaps)}")
    slow = sorted(d["sent"] for d in ok if d["reply"] - d["sent"] > 1.1)
    print(f"  requests over 1.1 s: {len(slow)}; sent at " + " ".join(f"{a:.2f}" for a in slow[:30]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 256)
