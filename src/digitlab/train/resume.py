"""A fit's whole state after an epoch, saved and restored: what `digitlab train --resume` continues from.

`save_train_state(learn, path)` writes one safetensors file (no pickle) holding everything the
rest of the fit depends on:
  model/NAME            the weights (and buffers)
  opt/INDEX/KEY         the optimizer's per-parameter state (SGD's momentum buffers)
  rng/torch             torch's global RNG
  OWNER/KEY             what the training loader and each callback's `state_dict()` hold: the loader's
                        shuffle generator, the recorder's lrs and losses, the augmentation's generator
and, as JSON in the header: the epochs done, the optimizer's param groups, and the JSON values of
those state dicts (the recorder's history, the one-cycle schedule's step, the guard's first loss).
`ResumeCB(path)` puts it all back at the start of a fit, which then goes on from the next epoch: a
resumed run ends with the same weights, bit for bit, as one that was never interrupted. A state
saved before callbacks kept their own (its keys in FIRST_NAMES) still resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ..errors import DigitlabError
from .callback import Callback, callback_name

if TYPE_CHECKING:  # a callback is handed its Learner; learner.py builds on the callbacks
    from .learner import Learner

TRAIN_STATE = "train_state.safetensors"
STATE_FORMAT = "digitlab-train-state"
HEADER = "state"  # the safetensors metadata key that holds the JSON header


def save_train_state(learn: Learner, path: Path) -> Path:
    """Write the fit's state after the epoch that just ended to `path`, atomically (temp file, fsync, rename)."""
    from ..core.durable import save_tensors

    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in learn.model.state_dict().items()}
    opt_state = learn.opt.state_dict()
    opt_extra: dict[str, dict[str, Any]] = {}
    for index, values in opt_state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt/{index}/{key}"] = value
            else:
                opt_extra.setdefault(str(index), {})[key] = value
    tensors["rng/torch"] = torch.get_rng_state()
    plain: dict[str, Any] = {}  # the callbacks' and the loader's JSON values, by "owner/key"
    for owner, holder in _owners(learn).items():
        for key, value in holder.state_dict().items():
            if isinstance(value, torch.Tensor):
                tensors[f"{owner}/{key}"] = value
            else:
                plain[f"{owner}/{key}"] = value
    header = {
        "format": STATE_FORMAT,
        "epoch": learn.epoch + 1,
        "param_groups": opt_state["param_groups"],
        "opt_extra": opt_extra,
        "values": plain,
    }
    try:
        return save_tensors(path, tensors, metadata={HEADER: json.dumps(header)})
    except OSError as e:  # a full disk, say: the last epoch's state is still there
        raise DigitlabError(f"cannot save the training state to {path.parent}: {e.strerror or e}") from None


class _Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _owners(learn: Learner) -> dict[str, _Stateful]:
    """Everything whose state a resumed fit needs besides the model and optimizer, by the name its
    state is saved under: the training loader ("train_loader"), and each callback (its name on the
    learner, "cb/recorder")."""
    owners: dict[str, _Stateful] = {"train_loader": learn.dls.train}
    owners |= {f"cb/{callback_name(cb)}": cb for cb in learn.cbs}
    return owners


# How the first states (before callbacks saved their own) named what is now "owner/key"
FIRST_NAMES = {
    "rng/train_loader": "train_loader/generator",
    "rng/augment": "cb/random_affine/generator",
    "recorder/lrs": "cb/recorder/lrs",
    "recorder/losses": "cb/recorder/losses",
    "history": "cb/recorder/history",
    "one_cycle_step": "cb/one_cycle/step",
    "first_loss": "cb/divergence_guard/first_loss",
}


def _header(f: Any) -> Any:
    """The JSON header of an open fit state (a safetensors file): a dict if the file is one (ValueError
    if its JSON is corrupt)."""
    return json.loads((f.metadata() or {}).get(HEADER, "null"))


def saved_epoch(path: Path) -> int | None:
    """The epochs done in the fit state at `path`, read from its header alone; None if it is missing or unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            epoch = _header(f).get("epoch")
    except (OSError, SafetensorError, ValueError, AttributeError):
        return None
    return epoch if isinstance(epoch, int) else None


class TrainState:
    """A saved fit state, read and checked (the header's JSON and the tensors)."""

    def __init__(self, path: Path) -> None:
        from safetensors import SafetensorError, safe_open

        self.path = Path(path)
        try:
            with safe_open(str(self.path), "pt") as f:
                self.tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118  # not a dict
                header = _header(f)
        except FileNotFoundError:
            raise DigitlabError(f"{self.path}: no training state to resume from") from None
        except (SafetensorError, OSError, ValueError) as e:
            raise DigitlabError(f"{self.path}: corrupt training state ({e})") from None
        if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
            raise DigitlabError(f"{self.path}: not a digitlab training state")
        epoch = header.get("epoch")
        if not isinstance(epoch, int) or epoch < 0:
            raise DigitlabError(f"{self.path}: corrupt training state (epoch {epoch!r})")
        self.epoch: int = epoch
        self.header = header

    def restore(self, learn: Learner) -> None:
        """Put the state into a learner whose fit has just begun (its optimizer made, callbacks set up)."""
        tensors, header = self.tensors, self.header
        try:
            learn.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, strict=True)
            state: dict[int, dict[str, Any]] = {}
            for name, value in tensors.items():
                if name.startswith("opt/"):
                    _, index, key = name.split("/", 2)
                    state.setdefault(int(index), {})[key] = value
            for index, extra in header.get("opt_extra", {}).items():
                state.setdefault(int(index), {}).update(extra)
            learn.opt.load_state_dict({"state": state, "param_groups": header["param_groups"]})
            torch.set_rng_state(tensors["rng/torch"])
            saved = {**tensors, **header.get("values", {})}
            saved |= {FIRST_NAMES[k]: v for k, v in {**tensors, **header}.items() if k in FIRST_NAMES}
            for owner, holder in _owners(learn).items():
                mine = {k[len(owner) + 1 :]: v for k, v in saved.items() if k.startswith(f"{owner}/")}
                if mine:
                    holder.load_state_dict(mine)
        except (KeyError, ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DigitlabError(f"{self.path}: does not fit this run ({first})") from None
        learn.first_epoch = self.epoch


class ResumeCB(Callback):
    """At the start of a fit, restore a saved state (`TrainState`); the fit goes on from its next epoch."""

    order = 100  # after every other before_fit (which reset what this puts back)
    in_search = False

    def __init__(self, state: TrainState) -> None:
        self.state = state

    def before_fit(self) -> None:
        if self.state.epoch > self.learn.n_epoch:
            raise DigitlabError(
                f"{self.state.path}: saved after epoch {self.state.epoch}, past this run's {self.learn.n_epoch} epochs"
            )
        self.state.restore(self.learn)


class CheckpointCB(Callback):
    """After every epoch, hand the model to `save(model, epoch)` (e.g. safetensors to --out).

    state_path: also save the whole fit's state there (`save_train_state`: optimizer, schedule,
    RNGs, recorder), after the model, so that `ResumeCB` can continue the fit from this epoch.
    """

    order = 30
    in_search = False

    def __init__(
        self, save: Callable[[torch.nn.Module, int], object], state_path: Path | None = None
    ) -> None:  # what save returns is unused
        self.save, self.state_path = save, state_path

    def after_epoch(self) -> None:
        if not self.learn.training:
            self.save(self.learn.model, self.learn.epoch + 1)
            if self.state_path is not None:
                self.state_path.parent.mkdir(parents=True, exist_ok=True)
                save_train_state(self.learn, self.state_path)
