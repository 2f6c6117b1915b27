"""The seed's growth on the lab: wall time of each phase's Apply and of the whole nothing → 3,
beside the time the runs themselves took (the rest is the planner: status checks, approvals,
hand-over between steps); requests lost while the floating address moved and during a drain;
and every recipe run a second time (all in place) beside the first installs.

Needs root and the lab, like `make lab`; it runs the end-to-end test
(tests/recipes/test_growth.py) on freshly reset hosts, with a database and a Redis database of
its own, and prints what that run measured. Run: `.venv/bin/python bench/growth.py`.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPLIES = ("nothing → 1", "1 → 2", "2 → 3")


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/growth.py needs root, like make lab")
    with tempfile.TemporaryDirectory(prefix="remora-bench-growth-") as scratch:
        out = Path(scratch) / "growth.json"
        env = {
            **os.environ,
            "REMORA_BENCH_OUT": str(out),
            "DATABASE_URL": "mysql://root:@127.0.0.1:3306/remora_bench_growth",
            "TEST_REDIS_URL": "redis://127.0.0.1:6379/13",
        }
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/recipes/test_growth.py"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0 or not out.exists():
            print(done.stdout[-3000:], done.stderr[-2000:])
            sys.exit("the growth run failed; nothing measured")
        data = json.loads(out.read_text())
    r = data["results"]
    total = sum(r[f"apply {a} s"] for a in APPLIES)
    own = sum(r[f"apply {a}: runs' own time s"] for a in APPLIES)
    print("growth on the lab (3 Debian 12 hosts, packages from the machine's mirror):")
    for a in APPLIES:
        wall, runs = r[f"apply {a} s"], r[f"apply {a}: runs' own time s"]
        planner = wall - runs
        print(f"  apply {a:12s} {wall:6.1f} s  (its runs: {runs:6.1f} s; planner {planner:5.1f} s)")
    print(f"  nothing → 3 in all  {total:6.1f} s  (its runs: {own:6.1f} s; "
          f"planner overhead {100 * (total - own) / total:.0f}%)")  # fmt: skip
    print(
        f"  every recipe again (all in place): {r['every recipe again s']:.1f} s, "
        f"{total / r['every recipe again s']:.1f}x faster than the first installs"
    )
    print(
        f"failover (beamrider's keepalived stopped under a stream): {r['failover failed']} of "
        f"{r['failover requests']} requests failed, for {r['failover failing for s']:.2f} s; "
        f"slowest request {r['failover slowest request s']:.2f} s"
    )
    print(
        f"drain of a front end under a stream: {r['drain failed']} of {r['drain requests']} "
        f"requests failed; slowest request {r['drain slowest request s']:.2f} s"
    )
    print("timeline:")
    for label, seconds in data["timeline"]:
        print(f"  {seconds:7.1f} s  {label}")


if __name__ == "__main__":
    main()
