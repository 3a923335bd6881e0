"""Speed levers as Learner callbacks: memory layout, bf16 autocast, torch.compile.

None of them changes what is learned (up to rounding): they change how the same arithmetic
is laid out and scheduled on the hardware. Each is opt-in, so the plain loop stays the
chapter's loop, and each can be measured on its own (bench/bench_time_to_accuracy.py).

- `ChannelsLastCB`: convolution weights and inputs in NHWC, the layout oneDNN (CPU) and
  cuDNN's tensor-core kernels (GPU) prefer. digitlab's `CNN` is built in that layout already;
  this callback gives it to any other convolutional model.
- `MixedPrecisionCB`: the forward pass and the loss under `torch.autocast` in bfloat16. bf16 has
  float32's exponent range, so no loss scaling is needed (fp16 would need a GradScaler);
  parameters, gradients and the optimizer stay float32. On CUDA (Ampere and later) matrix
  work runs on tensor cores; on most CPUs it is slower, which is why it is off by default.
- `CompileCB`: `torch.compile` of the model in place (`nn.Module.compile`, so `state_dict`
  keys and saved models are unchanged). The first batch of each new shape and mode pays the
  compilation; `compile_seconds` reports that time apart from the training time.
"""

from __future__ import annotations

import time
import warnings

import torch

from ..core.defaults import PRECISION_NAMES
from ..errors import DigitlabError
from ..models import channels_last_hazards, to_channels_last
from .callback import Callback

# --precision: name -> autocast dtype (None: off)
PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.bfloat16), strict=True))


class ChannelsLastCB(Callback):
    """Model and image batches in channels-last (NHWC) memory format.

    A model with a convolution torch mishandles in that layout (see `channels_last_hazards`)
    stays as it is, with a warning: a slower fit, not a crash.
    """

    order = -9  # after DeviceCB (-10) moved the model: .to(device) keeps the format either way

    def before_fit(self) -> None:
        self.active = to_channels_last(self.learn.model)
        if not self.active:
            hazards = ", ".join(channels_last_hazards(self.learn.model))
            warnings.warn(
                f"channels-last left off: torch mishandles these convolutions in that layout: {hazards}", stacklevel=2
            )

    def before_batch(self) -> None:
        xb, *rest = self.learn.batch
        if self.active and xb.dim() == 4:  # (N, C, H, W); flat or (N, H, W) inputs are reshaped by the model itself
            self.learn.batch = (xb.contiguous(memory_format=torch.channels_last), *rest)


class MixedPrecisionCB(Callback):
    """Run each batch's forward pass and loss under `torch.autocast(dtype)` (default bfloat16).

    One `with`: the Learner enters `forward_context()` around the forward pass and the loss
    (after_predict included), so backward, the optimizer step and the metrics run outside
    it, and a cancelled batch or an error leaves it as any `with` does.
    """

    order = -8  # before_fit: after DeviceCB (-10) moved the model, whose device autocast needs

    def __init__(self, dtype: torch.dtype = torch.bfloat16) -> None:
        if dtype not in (torch.bfloat16, torch.float16):
            raise DigitlabError(f"MixedPrecisionCB wants torch.bfloat16 or torch.float16, got {dtype}")
        self.dtype = dtype

    def before_fit(self) -> None:
        self.device_type = self.learn.device.type
        if self.dtype == torch.float16 and self.device_type != "cuda":
            raise DigitlabError("float16 autocast is for CUDA; use bfloat16 on the CPU")

    def forward_context(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype)


class CompileCB(Callback):
    """`torch.compile` the model before the fit; time the batches that compiled.

    backend: "inductor" (torch's default: generated C++/Triton kernels; needs a C compiler on
    the CPU) or a lighter one such as "aot_eager" (traces and runs the same graphs without
    generating code: useful to check a model compiles). `compile_seconds`, after the fit, is
    the time of every batch of a shape and mode (training/validation) not seen before: the
    batches that compile (a last, smaller batch and eval mode each compile once more).
    """

    order = -7
    name = "compiler"  # learn.compiler (learn.compile would read as a method)
    blocks_graphs = "torch.compile runs the model (its mode='reduce-overhead' makes its own CUDA graphs)"

    def __init__(self, backend: str = "inductor", mode: str | None = None, dynamic: bool | None = None) -> None:
        self.backend, self.mode, self.dynamic = backend, mode, dynamic
        self.seconds = {True: 0.0, False: 0.0}

    @property
    def compile_seconds(self) -> float:
        return self.seconds[True] + self.seconds[False]

    def before_fit(self) -> None:
        model = self.learn.model
        if not getattr(model, "_digitlab_compiled", False):  # a second fit reuses the compiled model
            model.compile(backend=self.backend, mode=self.mode, dynamic=self.dynamic)
            model._digitlab_compiled = True  # type: ignore[assignment]  # stubs: only tensors and modules
        self.seconds = {True: 0.0, False: 0.0}  # training: True / validation: False -> seconds compiling
        self._seen: set[tuple[tuple[int, ...], bool]] = set()  # (batch shape, training): each may (re)compile

    def before_batch(self) -> None:
        key = (tuple(self.learn.batch[0].shape), self.learn.training)
        self._first = key not in self._seen
        if self._first:
            self._seen.add(key)
            _synchronize(self.learn.batch[0].device)
            self._started = time.perf_counter()

    def after_batch(self) -> None:
        if self._first:
            _synchronize(self.learn.batch[0].device)
            self.seconds[self.learn.training] += time.perf_counter() - self._started


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock time covers it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
