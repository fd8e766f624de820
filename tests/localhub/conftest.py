"""Local hub fixtures for these tests.

``pytest_plugins`` is only honoured in the root conftest, so the shared fixtures of
``tests/hubfixtures.py`` are imported here until the root conftest loads that plugin.
"""

from __future__ import annotations

from tests.hubfixtures import hub_rest, hub_server, local_hub, start_local_hub

__all__ = ["hub_rest", "hub_server", "local_hub", "start_local_hub"]
