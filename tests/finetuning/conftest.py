"""Fixtures of the fine-tuning tests."""
from __future__ import annotations

import pytest

from finetuning.data import ensure_pad_token


@pytest.fixture()
def tok(smollm2_tokenizer):
    import copy

    t = copy.deepcopy(smollm2_tokenizer)
    ensure_pad_token(t)
    return t
