"""The README documents what the code does."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from chaoskit import ACTION_MODULES, DISTRIBUTION, PROBE_MODULES
from chaoskit.testbed.service.settings import ServiceSettings
from tests.conftest import REPO


def test_readme_lists_every_service_setting_with_its_default() -> None:
    readme = (REPO / "README.md").read_text()
    for env, default, meaning in ServiceSettings.documentation():
        assert f"| `{env}` | `{default}` | {meaning} |" in readme


def test_chaos_discover_lists_every_activity_with_its_documentation(tmp_path: Path) -> None:
    chaos = Path(sys.executable).with_name("chaos")
    result = subprocess.run(
        [str(chaos), "--no-version-check", "--no-log-file", "discover", "--no-install",
         "--no-system-info", "--discovery-path", str(tmp_path / "d.json"), DISTRIBUTION],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = {
        (a["mod"], a["name"]): a
        for a in json.loads((tmp_path / "d.json").read_text())["activities"]
    }
    for module in (*ACTION_MODULES, *PROBE_MODULES):
        for name in importlib.import_module(module).__all__:
            assert (module, name) in found, f"{module}.{name} is not discovered"
            assert len(found[(module, name)]["doc"]) > 40, f"{module}.{name} has no real docstring"
