"""The README's Python examples run as written (on the offline mirror, as a new user offline would)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 1
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    _train_loss, valid_loss, accuracy = namespace["learn"].recorder.values[-1]
    assert 0 < valid_loss < 0.1 and accuracy > 0.95
    assert namespace["xb"].shape == (256, 784) and namespace["yb"].shape == (256, 1)
