"""Tests never touch the network: the hub is switched off before transformers is imported."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WORKBOOK_PROFILE", "smoke")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedded_dir():
    """The converted embedded model folder (converted once per cache, reused afterwards)."""
    from helpers.models import embedded_model_dir

    return embedded_model_dir()
