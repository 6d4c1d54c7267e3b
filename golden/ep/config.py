"""Architecture description of a float EP network (serialisable, validated on construction).

An MLP is ``NetSpec(kind="mlp", layers=(784, 512, 10))``. A ConvNet is conv layers (each with its
pooling) followed by fully connected layers, e.g. Ernoult's MNIST net
``NetSpec(kind="conv", in_shape=(1, 28, 28), channels=(32, 64), kernels=(5, 5), pools="mm", fc=(10,))``
and Laborieux's CIFAR-10 net ``in_shape=(3, 32, 32), channels=(128, 256, 512, 512), kernels=(3,)*4,
paddings=(1, 1, 1, 0), pools="mmmm", fc=(10,), activation="my_hard_sig"``.

With ``loss="ce"`` the last fully connected layer is a softmax read-out that is *not* part of the
energy (Laborieux et al. 2021): the system's last layer is the one below it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .activations import ACTIVATIONS

KINDS = ("mlp", "conv")
LOSSES = ("mse", "ce")
CONNECTIONS = ("symmetric", "vf")
POOLS = {"m": "max", "a": "avg", "i": "identity"}


def _positive_ints(name: str, value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, not {value!r}") from None
    if not items and not allow_empty:
        raise ValueError(f"{name} must contain at least one positive integer, not {value!r}")
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must contain positive integers only, not {v!r} (in {value!r})")
    return items


@dataclass(frozen=True)
class NetSpec:
    """Layered EP network: sizes, connectivity, activation and read-out.

    Parameters
    ----------
    kind : {"mlp", "conv"}
    layers : MLP sizes including the input, e.g. ``(784, 512, 10)``.
    in_shape : ConvNet input ``(C, H, W)``.
    channels, kernels, strides, paddings : per conv layer (strides default 1, paddings 0).
    pools : one letter per conv layer: ``m`` 2×2 max-pool, ``a`` 2×2 average-pool, ``i`` none.
    fc : fully connected sizes after the conv stack; the last one is the number of classes.
    activation : name from :data:`golden.ep.activations.ACTIVATIONS`.
    loss : ``"mse"`` (output layer nudged towards the one-hot label) or ``"ce"`` (softmax read-out).
    connections : ``"symmetric"`` (one weight per connection, a true energy) or ``"vf"``
        (separate feedback weights, the asymmetric "vector field" model).
    same_update : for ``vf``: give the feedback weights the forward weights' EP update.
    init_scale : multiplies each connection's default initialisation (one value, or one per
        connection including a CE read-out); ``None`` keeps PyTorch's default init.

    Raises
    ------
    ValueError
        On any field out of range, naming the field, the value and what is allowed.
    """

    kind: str = "mlp"
    layers: tuple[int, ...] = (784, 512, 10)
    in_shape: tuple[int, ...] = (1, 28, 28)
    channels: tuple[int, ...] = ()
    kernels: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    paddings: tuple[int, ...] = ()
    pools: str = ""
    fc: tuple[int, ...] = ()
    activation: str = "my_sigmoid"
    loss: str = "mse"
    connections: str = "symmetric"
    same_update: bool = False
    init_scale: tuple[float, ...] | None = None
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {self.activation!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {self.loss!r}")
        if self.connections not in CONNECTIONS:
            raise ValueError(f"connections must be one of {CONNECTIONS}, not {self.connections!r}")
        if self.same_update and self.connections != "vf":
            raise ValueError("same_update=True only applies to connections='vf'")
        set_ = object.__setattr__
        if self.kind == "mlp":
            layers = _positive_ints("layers", self.layers)
            if len(layers) < 2:
                raise ValueError(f"layers must list the input and at least one more layer, not {self.layers!r}")
            if self.loss == "ce" and len(layers) < 3:
                raise ValueError("loss='ce' needs at least one hidden layer below the read-out: "
                                 f"layers={self.layers!r}")
            set_(self, "layers", layers)
            set_(self, "in_shape", (layers[0],))
            for name in ("channels", "kernels", "strides", "paddings", "fc"):
                if getattr(self, name):
                    raise ValueError(f"{name} is only for kind='conv', not for kind='mlp'")
            if self.pools:
                raise ValueError("pools is only for kind='conv', not for kind='mlp'")
        else:
            in_shape = _positive_ints("in_shape", self.in_shape)
            if len(in_shape) != 3:
                raise ValueError(f"in_shape must be (channels, height, width), not {self.in_shape!r}")
            channels = _positive_ints("channels", self.channels)
            n = len(channels)
            kernels = _positive_ints("kernels", self.kernels)
            strides = _positive_ints("strides", self.strides or (1,) * n)
            paddings = tuple(self.paddings or (0,) * n)
            for p in paddings:
                if isinstance(p, bool) or not isinstance(p, int) or p < 0:
                    raise ValueError(f"paddings must contain non-negative integers, not {p!r}")
            pools = self.pools or "m" * n
            for name, seq in (("kernels", kernels), ("strides", strides), ("paddings", paddings), ("pools", pools)):
                if len(seq) != n:
                    raise ValueError(f"{name} must have one entry per conv layer ({n}), not {len(seq)}: {seq!r}")
            for p in pools:
                if p not in POOLS:
                    raise ValueError(f"pools letters must be one of {sorted(POOLS)}, not {p!r} (in {pools!r})")
            fc = _positive_ints("fc", self.fc)
            if self.loss == "ce" and len(fc) < 1:
                raise ValueError("loss='ce' needs fc to end with the number of classes")
            set_(self, "in_shape", in_shape)
            set_(self, "channels", channels)
            set_(self, "kernels", kernels)
            set_(self, "strides", strides)
            set_(self, "paddings", paddings)
            set_(self, "pools", pools)
            set_(self, "fc", fc)
            set_(self, "layers", ())
            # Validate that every conv layer leaves a non-empty map.
            self.conv_shapes()
        if self.init_scale is not None:
            scales = tuple(float(s) for s in (self.init_scale if isinstance(self.init_scale, (list, tuple))
                                                 else (self.init_scale,)))
            if len(scales) not in (1, self.n_connections):
                raise ValueError(f"init_scale must have 1 or {self.n_connections} entries "
                                 f"(one per connection), not {len(scales)}")
            for s in scales:
                if not (s > 0 and math.isfinite(s)):
                    raise ValueError(f"init_scale entries must be positive finite numbers, not {s!r}")
            set_(self, "init_scale", scales)

    # --- derived quantities ----------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return self.layers[-1] if self.kind == "mlp" else self.fc[-1]

    @property
    def n_connections(self) -> int:
        """Number of weight layers, the CE read-out included."""
        if self.kind == "mlp":
            return len(self.layers) - 1
        return len(self.channels) + len(self.fc)

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """State shape (C, H, W) after each conv layer and its pooling."""
        c, h, w = self.in_shape
        shapes = []
        for i, (co, k, s, p, pool) in enumerate(zip(self.channels, self.kernels, self.strides, self.paddings,
                                                    self.pools, strict=True)):
            h = (h + 2 * p - k) // s + 1
            w = (w + 2 * p - k) // s + 1
            if h <= 0 or w <= 0:
                raise ValueError(f"conv layer {i} (kernel {k}, stride {s}, padding {p}) leaves an empty "
                                 f"map for input {self.in_shape!r}")
            if pool != "i":
                h, w = h // 2, w // 2
                if h <= 0 or w <= 0:
                    raise ValueError(f"pooling after conv layer {i} leaves an empty map for input {self.in_shape!r}")
            c = co
            shapes.append((c, h, w))
        return shapes

    def state_shapes(self) -> list[tuple[int, ...]]:
        """Shapes (without batch) of the neuron layers in the energy, input excluded."""
        if self.kind == "mlp":
            sizes = self.layers[1:]
            if self.loss == "ce":
                sizes = sizes[:-1]
            return [(n,) for n in sizes]
        fc = self.fc[:-1] if self.loss == "ce" else self.fc
        return list(self.conv_shapes()) + [(n,) for n in fc]

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("extra")
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name → shape (torch-free; mirrors :class:`EPNet`'s naming)."""
        spec = self
        shapes: dict[str, tuple[int, ...]] = {}
        if spec.kind == "mlp":
            sizes = list(spec.layers)
            n_sys = len(sizes) - (2 if spec.loss == "ce" else 1)
            conns = [(sizes[i + 1], sizes[i]) for i in range(n_sys)]
            readout = (sizes[-1], sizes[-2]) if spec.loss == "ce" else None
        else:
            conns = []
            c = spec.in_shape[0]
            for co, k in zip(spec.channels, spec.kernels, strict=True):
                conns.append((co, c, k, k))
                c = co
            cs = spec.conv_shapes()[-1]
            prev = cs[0] * cs[1] * cs[2]
            fc = list(spec.fc)
            n_fc = len(fc) - (1 if spec.loss == "ce" else 0)
            for n in fc[:n_fc]:
                conns.append((n, prev))
                prev = n
            readout = (fc[-1], prev) if spec.loss == "ce" else None
        for l, w in enumerate(conns):
            shapes[f"w{l}"] = tuple(w)
            shapes[f"b{l}"] = (w[0],)
            if spec.connections == "vf" and l >= 1:
                shapes[f"fb{l}"] = tuple(w)
        if readout is not None:
            shapes["wo"] = readout
            shapes["bo"] = (readout[0],)
        return shapes

    def n_parameters(self) -> int:
        """Number of trainable numbers (weights and biases), computed without allocating them."""
        return sum(math.prod(shape) for shape in self.parameter_shapes().values())

    def check_size(self, bytes_per_value: int = 4, copies: int = 4) -> None:
        """Refuse (ValueError with the numbers) a network whose parameters, with ``copies`` per value
        (weights, gradients, optimiser state), exceed this machine's physical memory."""
        import os

        n = self.n_parameters()
        need = n * bytes_per_value * copies
        try:
            have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            have = 1 << 40
        if need > have:
            raise ValueError(f"the network has {n:,} parameters ({need / 2**30:,.1f} GiB with {copies} copies of "
                             f"{bytes_per_value} bytes), more than this machine's {have / 2**30:,.1f} GiB of "
                             f"memory: layers {list(self.layers) or list(self.channels)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetSpec:
        if not isinstance(d, dict):
            raise ValueError(f"net must be a table of NetSpec fields, not {d!r}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown NetSpec fields {sorted(unknown)}; allowed: {sorted(known)}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def mnist_mlp(hidden: int = 512, activation: str = "my_sigmoid", loss: str = "mse") -> NetSpec:
    return NetSpec(kind="mlp", layers=(784, hidden, 10), activation=activation, loss=loss)


def mnist_conv(activation: str = "hard_sigmoid", loss: str = "mse") -> NetSpec:
    """Ernoult et al.'s P-conv: 1-32-64, 5×5 kernels, 2×2 max-pool, fc 10."""
    return NetSpec(kind="conv", in_shape=(1, 28, 28), channels=(32, 64), kernels=(5, 5), pools="mm",
                   fc=(10,), activation=activation, loss=loss)


def cifar10_conv(loss: str = "ce") -> NetSpec:
    """Laborieux et al.'s CIFAR-10 net: 3-128-256-512-512, k3, pad 1,1,1,0, max-pool each, fc 10."""
    return NetSpec(kind="conv", in_shape=(3, 32, 32), channels=(128, 256, 512, 512), kernels=(3, 3, 3, 3),
                   paddings=(1, 1, 1, 0), pools="mmmm", fc=(10,), activation="my_hard_sig", loss=loss)
