"""Benchmark: build the report over 1,000 journals (copies of real ones); goal <= 3 s.

    .venv/bin/python bench/report.py [--source journals/] [--journals 1000]

The copies are spread over game days of a dozen runs each, each with its summary, as
nightly game days would leave them (so the banner, the trend across game days and the
freshness are built as a nightly history builds them). Without journals under --source,
a short game day on the embedded testbed makes some first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaoskit.report.report import build_report, render_html, render_markdown


def real_journals(source: Path, scratch: Path) -> list[Path]:
    found = [p for p in source.glob("gd-*/*.json") if p.name != "summary.json"]
    if found:
        return found
    print("no journals yet: holding a short game day to make some ...", flush=True)
    chaos = Path(sys.executable).with_name("chaos")
    subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "--no-log-file",
            "gameday",
            "run",
            "--only",
            "smd-phase3-timeout",
            "--only",
            "issue-1278-full-chain",
            "--journals",
            str(scratch / "made"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return [p for p in (scratch / "made").glob("gd-*/*.json") if p.name != "summary.json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("journals"))
    parser.add_argument("--journals", type=int, default=1000)
    parser.add_argument("--per-gameday", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        originals = real_journals(args.source, Path(scratch))
        copies = Path(scratch) / "copies"
        expected: dict[Path, list[dict[str, str]]] = {}
        for index in range(args.journals):
            original = originals[index % len(originals)]
            day, slot = divmod(index, args.per_gameday)
            folder = copies / f"gd-20260101T{day // 60:02d}{day % 60:02d}00Z-{day:04x}"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, folder / f"{original.stem}-{slot}.json")
            expected.setdefault(folder, []).append(
                {"name": original.stem, "expected": "reproduced"}
            )
        for day, (folder, experiments) in enumerate(expected.items()):
            started = f"2026-01-01T{day // 60:02d}:{day % 60:02d}:00+00:00"
            summary = {
                "gameday_id": folder.name,
                "name": "bench",
                "target": "embedded",
                "started_at": started,
                "ended_at": started,
                "status": "completed",
                "preflight": {"healthy": True, "reasons": []},
                "experiments": experiments,
            }
            (folder / "summary.json").write_text(json.dumps(summary))
        size_mb = sum(p.stat().st_size for p in copies.rglob("*.json")) / 1e6
        started = time.perf_counter()
        report = build_report([copies])
        built = time.perf_counter()
        html = render_html(report)
        markdown = render_markdown(report)
        done = time.perf_counter()
    print(
        f"{report['runs_read']} journals ({size_mb:.0f} MB, copies of {len(originals)} real "
        f"ones): read and analysed in {built - started:.2f} s, HTML ({len(html) / 1e6:.1f} MB) "
        f"and Markdown rendered in {done - built:.2f} s"
    )
    print(f"total {done - started:.2f} s (goal <= 3 s); Markdown {len(markdown)} characters")


if __name__ == "__main__":
    main()
