"""Bad values on the command line (issue 21, item 13): every option is checked before the
command starts, with one error line naming the option and exit code 2 — no traceback
(``serve --port 99999`` was an OverflowError), and no odd run accepted silently
(``--timeout -5`` deferred every source and exited 0; ``--delay nan`` and
``--misfire-grace -1`` were taken as given). The nesting depth of the registry is in
test_hostile_yaml.py."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

CASES = [
    ("serve", "--port", "99999"), ("serve", "--port", "0"), ("serve", "--port", "-1"), ("demo", "--port", "70000"),
    ("harvest", "--timeout", "-5"), ("harvest", "--timeout", "0"), ("harvest", "--timeout", "nan"),
    ("harvest", "--delay", "nan"), ("harvest", "--delay", "inf"), ("harvest", "--delay", "-1"),
    ("harvest", "--delay", "1e308"), ("harvest", "--parse-cpu-limit", "0"), ("harvest", "--proxy", "3128"),
    ("check-links", "--older-than", "nan"), ("check-links", "--backoff", "inf"),
    ("check-links", "--max-retry-after", "nan"), ("check-links", "--delay", "-0.5"),
    ("check-links", "--timeout", "-5"),
    ("schedule", "--misfire-grace", "-1"), ("schedule", "--misfire-grace", "0"),
    ("schedule", "--misfire-grace", "nan"), ("schedule", "--stop-timeout", "-1"),
    ("schedule", "--reload-interval", "0"), ("schedule", "--delay", "nan"),
    ("check-registry", "--timeout", "-5"), ("check-registry", "--delay", "inf"),
    ("add-source", "https://ill.example.org/", "--delay", "nan"), ("add-source", "https://ill.example.org/",
                                                                    "--timeout", "0"),
    # a nan wait never ran out: the command spun at full CPU while another one wrote
    ("harvest", "--lock-wait", "nan"), ("check-links", "--lock-wait", "inf"),
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c) for c in CASES])
def test_a_bad_option_value_is_one_error_line_and_exit_2(tmp_path, args):
    db = tmp_path / "catalog.db"
    registry = tmp_path / "registry.yaml"
    registry.write_text("sources: []\n", encoding="utf-8")
    command, *rest = args
    extra = {"serve": ["--db", str(db)], "demo": ["--db", str(db), "--no-serve"],
             "harvest": ["--db", str(db), "--registry", str(registry)],
             "check-links": ["--db", str(db), "--registry", str(registry)],
             "schedule": ["--db", str(db), "--registry", str(registry)],
             "check-registry": ["--registry", str(registry)], "add-source": ["--registry", str(registry)]}[command]
    result = run_cli(command, *rest, *extra, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stdout
    option = next(a for a in rest if a.startswith("--"))
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"'{option}'" in errors[0], result.stderr
    assert not db.exists()  # nothing started


def test_values_in_range_are_taken(tmp_path):
    """The bounds are not too tight: zero delay, fractions, the largest port."""
    registry = tmp_path / "registry.yaml"
    registry.write_text("sources: []\n", encoding="utf-8")
    result = run_cli("harvest", "--registry", str(registry), "--db", str(tmp_path / "c.db"), "--delay", "0",
                     "--timeout", "0.5", "--parse-cpu-limit", "2.5", "--quiet")
    assert result.returncode == 0, result.stderr
    result = run_cli("schedule", "--registry", str(registry), "--db", str(tmp_path / "c.db"), "--list",
                     "--misfire-grace", "0.5", "--stop-timeout", "0", "--reload-interval", "1")
    assert result.returncode == 0, result.stderr
    assert "1<=x<=65535" in run_cli("serve", "--help").stdout
