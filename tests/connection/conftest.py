"""Install a test keyring backend for one test with keyring.set_keyring."""

from __future__ import annotations

import keyring
import keyring.backend
import pytest

from tests.connection.keyrings import MemoryKeyring


@pytest.fixture
def use_keyring():
    """Install a backend with keyring.set_keyring for one test, then put the old one back."""
    previous = keyring.get_keyring()

    def install(backend: keyring.backend.KeyringBackend) -> keyring.backend.KeyringBackend:
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(use_keyring) -> MemoryKeyring:
    return use_keyring(MemoryKeyring())
