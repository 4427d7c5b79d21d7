"""``illhub install-systemd``: the nightly harvest (a oneshot service and its timer) and the
served catalog as systemd units, from the files in ``deploy/``.

The shipped files are real units for the layout of the docs' examples (the checkout in
``/srv/illhub``, run by the user ``illhub``); installing them writes this checkout's path,
this installation's ``illhub`` and the user instead. As a **user** service (the default for
anyone but root) ``User=`` is left out, the network targets too (a user's systemd has none),
and the serve unit is wanted by ``default.target``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: The checkout's ``deploy/`` directory (illhub is installed from its checkout: ``make install``).
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
EXAMPLE_DIR = "/srv/illhub"
EXAMPLE_EXE = "/srv/illhub/.venv/bin/illhub"
HARVEST_UNITS = ("illhub-harvest.service", "illhub-harvest.timer")
SERVE_UNIT = "illhub-serve.service"
#: What ``enable --now`` starts: the timer (not the oneshot service) and the server.
STARTED = ("illhub-harvest.timer", SERVE_UNIT)
USER_ONLY_DROPPED = ("User=", "After=network-online.target", "Wants=network-online.target")


class DeployError(Exception):
    pass


def illhub_executable() -> Path:
    """The ``illhub`` of this installation (beside the running Python: the venv's bin/)."""
    beside = Path(sys.executable).parent / "illhub"
    if beside.exists():
        return beside.absolute()
    found = shutil.which("illhub")
    if found:
        return Path(found).absolute()
    raise DeployError("no 'illhub' command found beside this Python: install with 'make install' first")


def render(text: str, *, checkout: Path, exe: Path, user: str | None) -> str:
    """A shipped unit file for this machine: paths replaced; ``user`` None for a user service."""
    text = text.replace(EXAMPLE_EXE, str(exe)).replace(EXAMPLE_DIR, str(checkout))
    lines = []
    for line in text.splitlines():
        if user is None and line.startswith(USER_ONLY_DROPPED):
            continue
        if line.startswith("User="):
            line = f"User={user}"
        if user is None and line == "WantedBy=multi-user.target":
            line = "WantedBy=default.target"
        lines.append(line)
    return "\n".join(lines) + "\n"


def unit_dir(system: bool) -> Path:
    if system:
        return Path("/etc/systemd/system")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "systemd" / "user"


@dataclass
class Plan:
    system: bool
    directory: Path
    files: dict[str, str]
    commands: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan(checkout: Path, *, system: bool, serve: bool, dest: Path | None = None, enable: bool = True,
         user: str | None = None) -> Plan:
    """What installing the units means here: the files and their text, then the systemctl
    commands (none when writing to ``dest``, a directory for review)."""
    checkout = checkout.resolve()
    if not (checkout / "registry.yaml").exists():
        raise DeployError(f"{checkout} has no registry.yaml: run this in your checkout of illhub (or pass --dir)")
    names = [*HARVEST_UNITS, *([SERVE_UNIT] if serve else [])]
    missing = [n for n in names if not (DEPLOY_DIR / n).exists()]
    if missing:
        raise DeployError(f"{DEPLOY_DIR} lacks {', '.join(missing)}: install illhub from its checkout (make install)")
    exe = illhub_executable()
    run_as = (user or getpass.getuser()) if system else None
    files = {n: render((DEPLOY_DIR / n).read_text(encoding="utf-8"), checkout=checkout, exe=exe, user=run_as)
             for n in names}
    result = Plan(system, dest or unit_dir(system), files)
    ctl = ["systemctl"] if system else ["systemctl", "--user"]
    journal = "journalctl -u" if system else "journalctl --user -u"
    if dest is None and enable:
        started = [u for u in STARTED if u in files]
        result.commands = [[*ctl, "daemon-reload"], [*ctl, "enable", "--now", *started]]
    result.notes = [
        f"next run: {' '.join(ctl)} list-timers illhub-harvest.timer",
        f"the night's log: {journal} illhub-harvest   (and: illhub status)",
        f"a harvest now: {' '.join(ctl)} start illhub-harvest.service",
    ]
    if not system:
        result.notes.append(f"so that it runs while you are logged out: loginctl enable-linger {getpass.getuser()}")
    return result


def install(p: Plan, run=subprocess.run) -> None:
    """Write the files (each atomically) and run the commands."""
    try:
        p.directory.mkdir(parents=True, exist_ok=True)
        for name, text in p.files.items():
            tmp = p.directory / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, p.directory / name)
    except OSError as e:
        hint = " (system-wide needs root: sudo)" if p.system else ""
        raise DeployError(f"cannot write to {p.directory}: {e.strerror}{hint}") from None
    for command in p.commands:
        if shutil.which(command[0]) is None:
            raise DeployError(f"'{command[0]}' not found: this machine does not run systemd; see docs/scheduling.md "
                              "for cron and 'illhub schedule'")
        done = run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise DeployError(f"'{' '.join(command)}' failed: {(done.stderr or done.stdout).strip()}")
