"""The README documents what the code does."""

from __future__ import annotations

from testbed.service.settings import ServiceSettings
from tests.conftest import REPO


def test_readme_lists_every_service_setting_with_its_default() -> None:
    readme = (REPO / "README.md").read_text()
    for env, default, meaning in ServiceSettings.documentation():
        assert f"| `{env}` | `{default}` | {meaning} |" in readme
