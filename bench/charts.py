"""PNG charts for the quality and capacity suites (matplotlib, Agg backend).

matplotlib is the only non-stdlib dependency of the harness, and only for
charts: if it is missing it is installed with ``python3 -m pip install
matplotlib`` (a message says so); if that fails the suites still write
their JSON and Markdown results and say that the charts were skipped.

Charts go to ``docs/img/`` (referenced from docs/BENCHMARKS.md) when the
results go to the default bench/results, else next to the results.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from common import REPO_ROOT, RESULTS_DIR, log

COLORS = {"fulcrum": "#1f77b4", "nginx": "#2ca02c", "haproxy": "#d62728"}
LABELS = {"fulcrum": "Fulcrum", "nginx": "nginx", "haproxy": "HAProxy"}


def _plt():
    try:
        import matplotlib
    except ImportError:
        log("matplotlib is missing (needed only for the charts); installing it with "
            "`python3 -m pip install matplotlib`")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("pip install matplotlib failed: "
                               + (r.stderr.strip().splitlines() or ["?"])[-1])
        import matplotlib  # noqa: F811
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"figure.dpi": 100, "font.size": 10, "axes.grid": True,
                         "grid.alpha": 0.3})
    return plt


def img_dir(out: Path) -> Path:
    d = REPO_ROOT / "docs" / "img" if out.resolve() == RESULTS_DIR.resolve() else out
    d.mkdir(parents=True, exist_ok=True)
    return d


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------
# quality


def _pick_kill_cases(series: Dict[str, dict]) -> List[tuple]:
    """One kill case per system: the algorithm listed first in the results."""
    seen, out = set(), []
    for key, data in series.items():
        sc, system, algo = key.split("/")
        if sc == "kill" and system not in seen:
            seen.add(system)
            out.append((system, algo, data))
    order = {"fulcrum": 0, "nginx": 1, "haproxy": 2}
    return sorted(out, key=lambda x: order.get(x[0], 9))


def kill_chart(series: Dict[str, dict], records: List[dict], path: Path,
               prefer: Optional[Dict[str, str]] = None) -> Optional[Path]:
    plt = _plt()
    cases = {}
    for key, data in series.items():
        sc, system, algo = key.split("/")
        if sc != "kill":
            continue
        if prefer and prefer.get(system) == algo:
            cases[system] = (algo, data)
        elif system not in cases:
            cases[system] = (algo, data)
    if not cases:
        return None
    systems = [s for s in ("fulcrum", "nginx", "haproxy") if s in cases]
    fig, axes = plt.subplots(len(systems), 1, figsize=(10, 2.8 * len(systems)), sharex=True,
                             sharey=True, squeeze=False)
    top = 0.0
    native = {(r["system"], r["algorithm_generic"]): r for r in records
              if r["scenario"] == "kill"}
    for ax, system in zip(axes[:, 0], systems):
        algo, data = cases[system]
        recs = data["records"]
        t = [r[0] for r in recs]
        lat = [r[1] for r in recs]
        ok = [200 <= r[2] < 400 for r in recs]
        ax.scatter([x for x, o in zip(t, ok) if o], [y for y, o in zip(lat, ok) if o], s=2,
                   color=COLORS[system], alpha=0.35, label="one request (latency)",
                   rasterized=True)
        bad = [(x, y) for x, y, o in zip(t, lat, ok) if not o]
        if bad:
            ax.scatter([b[0] for b in bad], [b[1] for b in bad], s=12, color="black",
                       marker="x", label=f"failed ({len(bad)})")
        # p99 per 250 ms bin
        end = max(t) if t else 1
        bins = int(end / 0.25) + 1
        per = [[] for _ in range(bins)]
        share = [[0, 0] for _ in range(bins)]
        for r in recs:
            i = int(r[0] / 0.25)
            per[i].append(r[1])
            share[i][1] += 1
            if r[3] == data["victim"]:
                share[i][0] += 1
        xs = [(i + 0.5) * 0.25 for i in range(bins) if per[i]]
        p99 = [sorted(v)[max(0, int(0.99 * len(v)) - 1)] for v in per if v]
        ax.plot(xs, p99, color="black", lw=1, label="p99 per 250 ms")
        top = max([top] + p99)
        ax.set_ylim(0, max(30.0, 1.3 * top))
        ax.set_ylabel("latency (ms)")
        ax2 = ax.twinx()
        ax2.plot([(i + 0.5) * 0.25 for i in range(bins) if share[i][1]],
                 [100 * s[0] / s[1] for s in share if s[1]], color="orange", lw=1.5,
                 label=f"share served by '{data['victim']}' (%)")
        ax2.set_ylim(0, 60)
        ax2.set_ylabel("share of c (%)", color="darkorange")
        ax2.grid(False)
        ax.axvline(data["kill"], color="red", ls="--", lw=1)
        ax.axvline(data["restart"], color="green", ls="--", lw=1)
        ax.text(data["kill"], ax.get_ylim()[1], " kill -9", color="red", va="top", fontsize=9)
        ax.text(data["restart"], ax.get_ylim()[1], " restarted", color="green", va="top",
                fontsize=9)
        r = native.get((system, algo), {})
        ax.set_title(f"{LABELS[system]} ({r.get('algorithm', algo)}): "
                     f"{r.get('errors', '?')} failed requests, back in service "
                     f"{r.get('recover_s', '?')} s after the restart", fontsize=10)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="center left", fontsize=8, markerscale=3)
    axes[-1, 0].set_xlabel("time since the start of the run (s)")
    fig.suptitle("kill: instance c (of a, b, c) killed with SIGKILL, then restarted", y=0.995)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def shares_chart(records: List[dict], path: Path) -> Optional[Path]:
    rows = [r for r in records if r["scenario"] == "weighted" and r.get("shares")]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    names = ["a", "b", "c"]
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(3)]
        ax.bar(xs, [100 * r["shares"][n] for n in names], width * 0.95,
               color=COLORS[r["system"]], alpha=1.0 if r["system"] == "fulcrum" else 0.8,
               label=f"{LABELS[r['system']]} {r['algorithm']} "
                     f"(max dev {r['max_share_dev']:.2f} pp)")
    exp = rows[0].get("expected_shares", {})
    for j, n in enumerate(names):
        if n in exp:
            ax.hlines(100 * exp[n], j - 0.45, j + 0.45, color="black", ls="--", lw=1)
    ax.set_xticks(range(3))
    ax.set_xticklabels([f"instance {n} (weight {w})" for n, w in zip(names, (3, 2, 1))])
    ax.set_ylabel("share of requests (%)")
    ax.set_title("weighted 3:2:1: share of requests per instance (dashed: expected)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def p99_chart(records: List[dict], scenario: str, path: Path, title: str) -> Optional[Path]:
    rows = [r for r in records if r["scenario"] == scenario and r.get("p99_ms") is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(rows) + 1.5))
    labels = [f"{LABELS[r['system']]} {r['algorithm']}"
              + (f"\n{r['rps']:,.0f} req/s" if r.get("rps") else "") for r in rows]
    ys = list(range(len(rows)))[::-1]
    ax.barh([y + 0.2 for y in ys], [r["p99_ms"] for r in rows], 0.4,
            color=[COLORS[r["system"]] for r in rows], label="p99")
    ax.barh([y - 0.2 for y in ys], [r["p999_ms"] for r in rows], 0.4,
            color=[COLORS[r["system"]] for r in rows], alpha=0.45, label="p99.9")
    for y, r in zip(ys, rows):
        ax.text(r["p99_ms"], y + 0.2, f" {r['p99_ms']:.0f}", va="center", fontsize=8)
        ax.text(r["p999_ms"], y - 0.2, f" {r['p999_ms']:.0f}", va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
    top = max(max(r["p999_ms"] for r in rows), max(r["p99_ms"] for r in rows))
    ticks = [t for t in (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if t <= top * 2]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(min(5, min(r["p99_ms"] for r in rows) * 0.8), top * 2)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def quality_charts(result: dict, series: Dict[str, dict], out: Path) -> str:
    d = img_dir(out)
    made = []
    recs = result["records"]
    # Kill chart: each system's lowest-p99 algorithm.
    prefer = {}
    for s in ("fulcrum", "nginx", "haproxy"):
        rows = [r for r in recs if r["scenario"] == "kill" and r["system"] == s
                and r.get("p99_ms") is not None]
        if rows:
            prefer[s] = min(rows, key=lambda r: r["p99_ms"])["algorithm_generic"]
    for fn, name, title in (
        (lambda p: kill_chart(series, recs, p, prefer), "quality-kill.png",
         "kill: latency over time"),
        (lambda p: shares_chart(recs, p), "quality-weighted-shares.png", "weighted: shares"),
        (lambda p: p99_chart(recs, "degraded", p,
                             "degraded: one of three instances 20x slower (10 -> 200 ms)"),
         "quality-degraded-p99.png", "degraded: p99 / p99.9"),
        (lambda p: p99_chart(recs, "heterogeneous", p,
                             "heterogeneous: capacities 8 / 4 / 2, 28 clients "
                             "(throughput under each name)"),
         "quality-heterogeneous-p99.png", "heterogeneous: p99 / p99.9"),
    ):
        p = fn(d / name)
        if p:
            made.append((title, p))
    if not made:
        return ""
    lines = ["## Charts", ""]
    for title, p in made:
        lines.append(f"* {title}: `{_rel(p)}`")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# capacity


def capacity_chart(result: dict, path: Path) -> Optional[Path]:
    plt = _plt()
    curves = result.get("curves") or {}
    if not curves:
        return None
    fig, (ax, axn) = plt.subplots(1, 2, figsize=(12, 4.8),
                                  gridspec_kw={"width_ratios": [1.4, 1]})
    styles = {"fulcrum": "-", "nginx": "--", "haproxy": ":"}
    best = {}
    for r in result["records"]:
        key = (r["system"], str(r["instances_per_stage"]))
        if len(result["params"].get("fulcrum_limits") or []) > 1 and r.get("limit"):
            key += (r["limit"],)
        best[key] = r.get("devices")
    slo = result["params"]["slo_ms"]
    limit_styles = {"auto": "-", "none": "--"}
    for key, pts in curves.items():
        system, per, *lim = key.split("/")
        pts = sorted(pts, key=lambda p: p[0])
        color = COLORS.get(system, "gray") if per != "1" else "gray"
        n = best.get((system, per, *lim))
        extra = f", max_concurrent {lim[0]}" if lim else ""
        label = (f"{LABELS.get(system, system)}, {per} per stage{extra}: "
                 f"{n if n is not None else '?'} devices")
        style = limit_styles.get(lim[0], ":") if lim else styles.get(system, "-")
        for a, scale in ((ax, 1), (axn, int(per))):
            a.plot([p[0] / scale for p in pts], [p[1] for p in pts], marker="o", ms=4, lw=1.5,
                   ls=style, color=color, label=label)
    un = result["params"].get("unloaded_turn_p50_ms")
    for a in (ax, axn):
        a.axhline(slo, color="red", ls="--", lw=1)
        if un:
            a.axhline(un, color="gray", ls=":", lw=1)
        top = max([slo] + [p[1] for pts in curves.values() for p in pts])
        a.set_ylim(0, top * 1.1)
        a.set_ylabel("end-to-end turn p95 (ms)")
    ax.text(1, slo, f" SLO: turn p95 < {slo:.0f} ms", color="red", va="bottom", fontsize=9)
    if un:
        ax.text(1, un, f" unloaded turn {un:.0f} ms", color="gray", va="bottom", fontsize=9)
    n1 = next((v for k, v in best.items() if k[:2] == ("fulcrum", "1")), None)
    if n1:
        ax.axvline(4 * n1, color="black", ls=":", lw=1)
        ax.text(4 * n1, 30, f"4 x {n1} = {4 * n1} ", fontsize=9, ha="right")
    ax.set_xlim(0, None)
    ax.set_xlabel("simulated voice devices")
    ax.set_title("devices vs turn p95", fontsize=10)
    ax.legend(fontsize=8, loc="lower center")
    axn.set_xlabel("devices per instance per stage")
    axn.set_title("same, per instance: overlapping curves = linear scaling", fontsize=10)
    fig.suptitle("capacity: voice devices (ASR upload -> LLM stream -> TTS, then 2.5-3.5 s "
                 "think) within a turn-p95 SLO")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def capacity_charts(result: dict, out: Path) -> str:
    p = capacity_chart(result, img_dir(out) / "capacity-devices-p95.png")
    return f"## Charts\n\n* devices vs turn p95: `{_rel(p)}`\n" if p else ""
