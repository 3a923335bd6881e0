"""The README's Python examples run as written (on the offline mirror, as a new user offline would)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 1
    namespace: dict = {}
    results = []  # each block's last learner: [train_loss, valid_loss, metric] of its last epoch
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
        if "learn =" in block:
            results.append(namespace["learn"].recorder.values[-1])
    _train_loss, valid_loss, accuracy = results[0]  # simple_net
    assert 0 < valid_loss < 0.1 and accuracy > 0.95
    assert namespace["xb"].shape == (256, 784) and namespace["yb"].shape == (256, 1)
    assert all(result[2] > 0.85 for result in results[1:])  # Going Deeper: one epoch on the mirror


def test_the_mentors_table_is_the_catalogue():
    from digitlab.train.mentor import catalogue_table

    assert catalogue_table() in README.read_text()
