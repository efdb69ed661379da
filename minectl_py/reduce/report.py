"""A report from reduced views: PNG plots and one HTML page that shows them.

Built from an SQLite file written by ``minectl reduce all --db FILE`` (the views, not the
events), so it takes seconds whatever the size of the log::

    python -m minectl_py.reduce.report views.sqlite report/     # or: minectl reduce --report DIR
    invoke reduce --inputs 'data.2018070*.log.gz' --report report/

Plots: site hashrate against nominal, a rack heat map (% of nominal per rack over time),
the temperature distribution (hottest board or chip per miner and minute) and availability
with miners by state. The rollup plotted is chosen by the time span (1, 5 or 60 minutes).
"""

from __future__ import annotations

import html
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from typing import Any

PLOTS = ("hashrate.png", "racks.png", "temperatures.png", "availability.png")


def _period(db: sqlite3.Connection) -> int:
    lo, hi = db.execute("SELECT MIN(ts), MAX(ts) FROM hashrate_site WHERE period = 60").fetchone()
    span = (hi or 0) - (lo or 0)
    return 60 if span <= 6 * 3600 else 300 if span <= 3 * 86400 else 3600


def _t(rows: list[tuple[Any, ...]]) -> list[datetime]:
    return [datetime.fromtimestamp(r[0], UTC) for r in rows]


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def build(sqlite_path: str, out_dir: str) -> str:
    """Write the plots and ``index.html`` into ``out_dir``; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    db = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    have = _tables(db)
    need = {"hashrate_site", "hashrate_rack", "temps_miner", "availability_site", "miner_states"}
    if not need <= have:
        raise ValueError(f"{sqlite_path}: not a reduced views file (missing {', '.join(sorted(need - have))})")
    os.makedirs(out_dir, exist_ok=True)
    p = _period(db)
    label = {60: "1 minute", 300: "5 minutes", 3600: "1 hour"}[p]

    def dates(ax: Any) -> None:
        loc = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, name), dpi=100)
        plt.close(fig)

    site = db.execute("SELECT ts, ths, nominal_ths FROM hashrate_site WHERE period = ? ORDER BY ts", (p,)).fetchall()
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(_t(site), [r[1] for r in site], label="hashrate", color="tab:blue")
    ax.plot(_t(site), [r[2] for r in site], label="nominal", color="tab:gray", linestyle="--")
    ax.set_ylabel("TH/s")
    ax.set_title(f"Site hashrate against nominal ({label} means, UTC)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    dates(ax)
    save(fig, PLOTS[0])

    racks = db.execute("SELECT ts, rack, pct FROM hashrate_rack WHERE period = ? ORDER BY ts, rack", (p,)).fetchall()
    names = sorted({r[1] for r in racks})
    times = sorted({r[0] for r in racks})
    col = {t: i for i, t in enumerate(times)}
    grid = [[float("nan")] * len(times) for _ in names]
    row = {n: i for i, n in enumerate(names)}
    for ts, rack, pct in racks:
        if pct is not None:
            grid[row[rack]][col[ts]] = pct
    fig, ax = plt.subplots(figsize=(11, max(2.5, 0.35 * len(names) + 1.5)))
    if times:
        t0, t1 = mdates.date2num(_t([(times[0],)])[0]), mdates.date2num(_t([(times[-1] + p,)])[0])
        im = ax.imshow(grid, aspect="auto", cmap="RdYlGn", vmin=50, vmax=105, extent=(t0, t1, len(names), 0))
        ax.xaxis_date()
        dates(ax)
        fig.colorbar(im, ax=ax, label="% of nominal")
    ax.set_yticks([i + 0.5 for i in range(len(names))], [n or "(no rack)" for n in names])
    ax.set_title(f"Hashrate per rack, % of nominal ({label})")
    save(fig, PLOTS[1])

    temps = [r[0] for r in db.execute("SELECT temp_max FROM temps_miner WHERE period = 60 AND temp_max IS NOT NULL")]
    fig, ax = plt.subplots(figsize=(11, 3.5))
    if temps:
        ax.hist(temps, bins=range(int(min(temps)) // 2 * 2, int(max(temps)) + 3, 2), color="tab:red", alpha=0.8)
    ax.axvline(85, color="black", linestyle=":", label="85 °C")
    ax.set_xlabel("hottest board or chip, °C (per miner and minute)")
    ax.set_ylabel("miner-minutes")
    ax.set_title("Temperature distribution")
    ax.legend()
    save(fig, PLOTS[2])

    av = db.execute("SELECT ts, availability FROM availability_site WHERE period = ? ORDER BY ts", (p,)).fetchall()
    st = db.execute(
        "SELECT ts, online, failing, offline, new FROM miner_states WHERE period = ? ORDER BY ts", (p,)
    ).fetchall()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    a1.plot(_t(av), [100 * r[1] for r in av], color="tab:green")
    a1.set_ylabel("% polls answered")
    a1.set_title(f"Availability and miners by state ({label})")
    a1.grid(alpha=0.3)
    if st:
        a2.stackplot(
            _t(st), *[[r[i] for r in st] for i in (1, 2, 3, 4)], labels=["online", "failing", "offline", "new"]
        )
        a2.legend(loc="lower left", ncols=4)
    a2.set_ylabel("miners")
    save(fig, PLOTS[3])

    page = os.path.join(out_dir, "index.html")
    with open(page, "w", encoding="utf-8") as f:
        f.write(_html(db, p, sqlite_path))
    db.close()
    return page


def _fmt(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _html(db: sqlite3.Connection, p: int, src: str) -> str:
    e = html.escape
    lo, hi, ths, nom, miners = db.execute(
        "SELECT MIN(ts), MAX(ts), AVG(ths), AVG(nominal_ths), MAX(miners) FROM hashrate_site WHERE period = 60"
    ).fetchone()
    (avail,) = db.execute("SELECT AVG(availability) FROM availability_site WHERE period = 60").fetchone()
    worst = db.execute(
        "SELECT name, mac, rack, model, AVG(ths), AVG(nominal_ths), AVG(pct) AS p FROM hashrate_miner "
        "WHERE period = ? GROUP BY mac ORDER BY p ASC LIMIT 15",
        (p,),
    ).fetchall()
    # no timeline table when the log had no fault, alert or admin action (the sink creates tables on first rows)
    tl = (
        db.execute(
            "SELECT ts_ms, kind, name, mac, what, result, detail FROM timeline ORDER BY ts_ms DESC LIMIT 30"
        ).fetchall()
        if "timeline" in _tables(db)
        else []
    )
    rows = "".join(
        f"<tr><td>{e(n or '')}</td><td>{e(m)}</td><td>{e(r or '')}</td><td>{e(mo or '')}</td>"
        f"<td>{t or 0:.2f}</td><td>{no or 0:.2f}</td><td>{pc or 0:.1f}</td></tr>"
        for n, m, r, mo, t, no, pc in worst
    )
    events = "".join(
        f"<tr><td>{_fmt(ms / 1000)}</td><td>{e(k)}</td><td>{e(n or '')}</td><td>{e(m or '')}</td>"
        f"<td>{e(w or '')}</td><td>{e(r or '')}</td><td>{e(d or '')}</td></tr>"
        for ms, k, n, m, w, r, d in tl
    )
    span = f"{_fmt(lo)} to {_fmt(hi + 60)} UTC" if lo is not None else "no data"
    pct = 100 * ths / nom if ths and nom else 0
    imgs = "".join(f'<p><img src="{n}" alt="{n}"></p>' for n in PLOTS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mine site report</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:90%}}img{{max-width:100%}}</style></head>
<body><h1>Mine site report</h1>
<p>{e(span)} &middot; from {e(os.path.basename(src))} &middot; mean hashrate {ths or 0:.1f} TH/s of
{nom or 0:.1f} nominal ({pct:.1f}%) &middot; up to {int(miners or 0)} miners &middot;
availability {100 * (avail or 0):.2f}%</p>
{imgs}
<h2>Worst miners (% of nominal)</h2>
<table><tr><th>name</th><th>mac</th><th>rack</th><th>model</th><th>TH/s</th><th>nominal</th><th>%</th></tr>
{rows}</table>
<h2>Latest faults and admin actions</h2>
<table><tr><th>time</th><th>kind</th><th>name</th><th>mac</th><th>what</th><th>result</th><th>detail</th></tr>
{events}</table>
</body></html>
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print("usage: python -m minectl_py.reduce.report VIEWS.sqlite OUT_DIR", file=sys.stderr)
        return 2
    try:
        print(build(args[0], args[1]))
    except (ValueError, sqlite3.Error) as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
