"""Footprint: what a default install takes on disk, and what an idle `owlscope serve` holds in memory.

1. Install size: the runtime dependencies of this checkout's pyproject.toml (no extras), followed
   transitively through the installed distributions of the running interpreter, each sized by the
   files its RECORD lists. Prints the total, the top 15 distributions and the size of the whole
   site-packages (which also holds what is installed beyond the runtime set, e.g. test tools).
   Measure a venv made with `pip install .` (no [dev]) to get the size of a default install.
2. Idle memory: starts `owlscope serve` on embedded storage (fresh data directory, default
   settings), waits until /api/public/health answers, lets it settle, then prints VmRSS and VmHWM
   (and the RssAnon/RssFile split) of the server process from /proc.

    python bench/footprint.py                 # both
    python bench/footprint.py --size          # install size only
    python bench/footprint.py --memory --settle 10
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import urllib.request
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _applies(marker: str, extras: set[str]) -> bool:
    """Whether a requirement's environment marker holds here (for the extras asked of its package)."""
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # a runtime-only venv has pip's copy
        from pip._vendor.packaging.markers import Marker
    m = Marker(marker)
    return any(m.evaluate({"extra": e}) for e in (extras or {""}))


def _split(req: str) -> tuple[str, set[str], str]:
    spec, _, marker = req.partition(";")
    m = _NAME.match(spec)
    if not m:
        raise ValueError(req)
    extras = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
    return _norm(m.group(1)), extras, marker.strip()


def runtime_distributions() -> dict[str, metadata.Distribution]:
    """The installed distributions the runtime dependencies need, transitively."""
    try:  # an installed owlscope (`pip install .`): its own requirements, without extras
        deps = [r for r in metadata.distribution("owlscope").requires or [] if "extra ==" not in r]
        source = "the installed owlscope"
    except metadata.PackageNotFoundError:  # a checkout on PYTHONPATH
        deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        source = "pyproject.toml"
    print(f"  requirements of {source}")
    found: dict[str, metadata.Distribution] = {}
    asked: dict[str, set[str]] = {}
    todo = [(_split(r)[0], _split(r)[1]) for r in deps]
    while todo:
        name, extras = todo.pop()
        if name in asked and extras <= asked[name]:
            continue
        asked[name] = asked.get(name, set()) | extras
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        found[name] = dist
        for req in dist.requires or []:
            sub, sub_extras, marker = _split(req)
            if _applies(marker, asked[name]):
                todo.append((sub, sub_extras))
    return found


def dist_size(dist: metadata.Distribution) -> int:
    total = 0
    for f in dist.files or []:
        p = Path(dist.locate_file(f))
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def install_size() -> None:
    print(f"install size: runtime dependencies in {sys.prefix}")
    dists = runtime_distributions()
    sizes = sorted(((dist_size(d), d.metadata["Name"], d.version) for d in dists.values()), reverse=True)
    total = sum(s for s, _, _ in sizes)
    print(f"  {len(sizes)} distributions, {total / 1e6:.0f} MB")
    print("  top 15:")
    for s, name, version in sizes[:15]:
        print(f"    {s / 1e6:8.1f} MB  {name} {version}")
    site = Path(sysconfig.get_paths()["purelib"])
    print(f"  whole site-packages ({site}): {du(site) / 1e6:.0f} MB; venv {du(Path(sys.prefix)) / 1e6:.0f} MB")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
            out[key] = int(value.split()[0])
    return out


def idle_memory(settle: float) -> None:
    data = Path(tempfile.mkdtemp(prefix="owlscope-footprint-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CLICKHOUSE_URL", "REDIS_URL", "BLOB_URL", "S3_BUCKET")}
    env.update(OWLSCOPE_DATA_DIR=str(data), PORT=str(port), LOG_LEVEL="warning", PYTHONPATH=str(ROOT))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve"], env=env, cwd=data,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/api/public/health"
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"owlscope serve exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > 300:
                raise SystemExit("owlscope serve did not answer within 300 s")
            time.sleep(0.25)
        ready = time.monotonic() - started
        time.sleep(settle)
        st = _status(proc.pid)
        children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        print(f"idle memory: owlscope serve, embedded storage, fresh data directory; ready in {ready:.1f} s,"
              f" measured {settle:.0f} s later")
        print(f"  VmRSS {st['VmRSS'] / 1024:.0f} MiB  VmHWM {st['VmHWM'] / 1024:.0f} MiB"
              f"  (RssAnon {st['RssAnon'] / 1024:.0f} MiB, RssFile {st['RssFile'] / 1024:.0f} MiB,"
              f" RssShmem {st['RssShmem'] / 1024:.0f} MiB; {st['Threads']} threads)")
        for c in children:
            cs = _status(c)
            print(f"  child {c}: VmRSS {cs['VmRSS'] / 1024:.0f} MiB  VmHWM {cs['VmHWM'] / 1024:.0f} MiB")
        data_size = du(data)
        print(f"  data directory after start: {data_size / 1e6:.1f} MB")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", action="store_true", help="install size only")
    ap.add_argument("--memory", action="store_true", help="idle memory only")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds between ready and the reading")
    args = ap.parse_args()
    both = not (args.size or args.memory)
    print(f"python {sys.version.split()[0]}; load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    if args.size or both:
        install_size()
    if args.memory or both:
        idle_memory(args.settle)


if __name__ == "__main__":
    main()
