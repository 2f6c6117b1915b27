"""The lab's costs: base build from nothing and from the cache, boot time per host, memory per
idle host, and a fresh `apt-get install mariadb-server` inside a host.

Needs root, like `make lab`. Run: `.venv/bin/python bench/lab.py` (or `make bench`). The build
from nothing uses a scratch cache (its own debootstrap and downloads), so the lab's real cache
is left alone; the apt figure is for a host with a fresh layer, with downloads from the
machine's mirror unless the shared archive already holds them (said in the output).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import base, control, host  # noqa: E402
from lab.config import BY_NAME, HOSTS  # noqa: E402


def build_from_nothing() -> float:
    scratch = tempfile.mkdtemp(prefix="remora-lab-bench-")
    try:
        env = {**os.environ, "REMORA_LAB_CACHE": scratch}
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-c", "from lab import base; base.build(log=lambda *_: None)"],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            check=True,
        )
        return time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/lab.py needs root, like make lab")
    nothing = build_from_nothing()
    started = time.monotonic()
    base.build(log=lambda *_: None)
    cached = time.monotonic() - started
    print(f"base build: from nothing {nothing:.1f} s; from the cache {cached * 1000:.0f} ms "
          f"({nothing / max(cached, 1e-3):.0f}x)")  # fmt: skip

    was_up = control.is_up()
    control.down(log=lambda *_: None)
    timings = control.up(log=lambda *_: None)
    boots = ", ".join(f"{name} {s:.2f} s" for name, s in timings["boot_s"].items())
    print(f"lab up (cached base): {timings['total_s']:.1f} s; boot to running: {boots}")
    time.sleep(5)  # idle
    memory = ", ".join(f"{r['name']} {r['memory_mib']} MiB" for r in control.status())
    print(f"memory per idle host (its cgroup): {memory}")

    remora2 = BY_NAME["remora2"]
    host.stop(remora2)
    shutil.rmtree(host.layers(remora2)["top"])  # a freshly installed host
    _, public = control.console_key()
    host.prepare(remora2, base.base_dir(), public)
    host.start(remora2, base.base_dir(), base.archives())
    host.wait_running(remora2)
    cached_debs = any(base.archives().glob("mariadb-server*.deb"))
    started = time.monotonic()
    result = control.run(
        remora2,
        "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "
        "apt-get install -y -q mariadb-server >/dev/null && systemctl is-active mariadb",
        timeout=900,
    )
    took = time.monotonic() - started
    state = result.stdout.strip() or result.stderr.strip()[-200:]
    print(f"apt-get install mariadb-server in a fresh host: {took:.1f} s "
          f"({'packages from the shared cache' if cached_debs else 'downloaded'}); "
          f"mariadb {state}")  # fmt: skip
    # Leave remora2 fresh again, and the lab as it was.
    host.stop(remora2)
    shutil.rmtree(host.layers(remora2)["top"])
    control.down(log=lambda *_: None)
    if was_up:
        control.up(log=lambda *_: None)
    print(f"hosts: {', '.join(h.name for h in HOSTS)}")


if __name__ == "__main__":
    main()
