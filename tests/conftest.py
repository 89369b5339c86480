"""Shared fixtures: the shared real data folder and a tiny generated dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SYNTHETIC generated dataset (2 classes x 4 videos, 16 frames, 64 px) in UCF101 layout."""
    from evbench.harness.data import generate_dataset

    root = tmp_path_factory.mktemp("gen") / "tiny"
    generate_dataset(root, seed=0, num_classes=2, videos_per_class=4, num_frames=16, size=64)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for tiny models: they gain nothing from more, and on a
    shared, loaded CPU OpenMP spinning can make them orders of magnitude slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
