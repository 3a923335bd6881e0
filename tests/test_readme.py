"""The README's Python examples run as written (on the offline mirror, as a new user offline would)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace("learn.fit(40)", "learn.fit(2)"), str(README), "exec"), namespace)
    train_loss, valid_loss, accuracy = namespace["learn"].recorder.values[-1]
    assert 0 < valid_loss < 0.5 and accuracy > 0.8
