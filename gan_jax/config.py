"""Run configuration: one frozen dataclass, validated once, split into static and traced parts.

A run is fully described by a :class:`RunConfig` and a seed. Fields that change array shapes or
the program (families, widths, loss, optimizer kind, d_updates, batch, steps, log cadence) are
*static*: they pick the compiled program. Numeric fields that a grid sweeps (learning rates,
betas, clip value, penalty weights, explicit initial parameters) are *traced*: they become
arrays with a leading run axis, so one compiled program serves every value.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, NamedTuple

import numpy as np

DATA = ("bimodal_1d", "ring_2d", "grid_2d")
GENERATORS = ("linear", "piecewise", "mlp")
DISCRIMINATORS = ("logistic", "mlp")
LOSSES = ("nonsaturating", "minimax", "lsgan", "wgan", "wgan_gp", "hinge")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
UPDATES = ("alternating", "simultaneous")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "gelu", "softplus")

# Traced fields: numbers a grid may sweep without recompiling. Everything else is static.
TRACED_FIELDS = (
    "lr_g", "lr_d", "beta1", "beta2", "momentum", "rms_decay",
    "clip", "gp_weight", "r1_weight", "r2_weight", "g_init", "d_init",
)


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the field, value and rule."""


def field_error(field: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{field}: got {value!r}; {allowed}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run, except its seed.

    Defaults are the seed notebook's linear run. See README.md for each field's meaning.
    """

    # what is trained
    data: str = "bimodal_1d"
    data_std: float | None = None      # None: the preset's default std
    data_radius: float | None = None   # ring_2d only; None: the preset's default radius
    generator: str = "linear"
    discriminator: str = "logistic"
    latent_dim: int | None = None      # None: the data's dimension
    g_width: int = 64
    g_depth: int = 2
    d_width: int = 64
    d_depth: int = 2
    activation: str = "relu"
    # how it is trained
    loss: str = "nonsaturating"
    optimizer: str = "sgd"
    update: str = "alternating"
    d_updates: int = 2
    batch_size: int = 128
    steps: int = 320
    log_every: int = 40
    eval_batch: int = 1000             # history rows: L_D, L_G on this many fresh samples
    history_samples: int = 2000        # history rows: metrics on this many fresh samples
    eval_samples: int = 4000           # final metrics on this many fresh samples
    # metric options (gan_jax.metrics)
    hq_threshold: float = 3.0          # high-quality: within this many stds of the nearest mode
    min_count: int = 1                 # high-quality samples a mode needs to count as captured
    num_projections: int = 8           # directions of the sliced W1 (2-D and up)
    mmd_samples: int = 1000            # MMD on this many points of each sample; 0: no MMD
    # traced numbers
    lr_g: float = 0.04
    lr_d: float = 0.04
    beta1: float = 0.5
    beta2: float = 0.999
    momentum: float = 0.0
    rms_decay: float = 0.9
    clip: float = 0.01
    gp_weight: float | None = None     # None: 10 for wgan_gp, else 0
    r1_weight: float = 0.0
    r2_weight: float = 0.0
    g_init: tuple[float, ...] | None = None
    d_init: tuple[float, ...] | None = None

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (tuples as lists)."""
        out = dataclasses.asdict(self)
        for k in ("g_init", "d_init"):
            if out[k] is not None:
                out[k] = list(out[k])
        return out

    @property
    def resolved_gp_weight(self) -> float:
        if self.gp_weight is None:
            return 10.0 if self.loss == "wgan_gp" else 0.0
        return self.gp_weight


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(RunConfig))
# Fields holding a real number; an integer given for one is stored as a float, so that
# `lr_d = 1` and `lr_d = 1.0` are the same run (same run_id, same table row).
FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig)
                     if f.type in ("float", "float | None"))


@dataclasses.dataclass(frozen=True)
class StaticConfig:
    """The part of a run's configuration that picks the compiled program (hashable)."""

    data: str
    data_std: float | None
    data_radius: float | None
    generator: str
    discriminator: str
    latent_dim: int | None
    g_width: int
    g_depth: int
    d_width: int
    d_depth: int
    activation: str
    loss: str
    optimizer: str
    update: str
    d_updates: int
    batch_size: int
    steps: int
    log_every: int
    eval_batch: int
    history_samples: int
    eval_samples: int
    hq_threshold: float
    min_count: int
    num_projections: int
    mmd_samples: int
    # which traced features exist (their values are traced)
    has_g_init: bool
    has_d_init: bool
    use_gp: bool
    use_r1: bool
    use_r2: bool

    @property
    def num_logs(self) -> int:
        return self.steps // self.log_every + 1

    @property
    def run_steps(self) -> int:
        """Generator updates per run: the seed loops over steps + 1 iterations."""
        return self.steps + 1


class HParams(NamedTuple):
    """The traced numbers of one run (or, stacked, of many: a leading run axis)."""

    lr_g: Any        # f32[]
    lr_d: Any        # f32[]
    beta1: Any       # f32[]
    beta2: Any       # f32[]
    momentum: Any    # f32[]
    rms_decay: Any   # f32[]
    clip: Any        # f32[]
    gp_weight: Any   # f32[]
    r1_weight: Any   # f32[]
    r2_weight: Any   # f32[]
    g_init: Any      # f32[n_g] (n_g = 0 without explicit initial values)
    d_init: Any      # f32[n_d]


def static_part(cfg: RunConfig) -> StaticConfig:
    kept = {f: getattr(cfg, f) for f in FIELD_NAMES if f not in TRACED_FIELDS}
    return StaticConfig(
        **kept,
        has_g_init=cfg.g_init is not None,
        has_d_init=cfg.d_init is not None,
        use_gp=cfg.resolved_gp_weight > 0,
        use_r1=cfg.r1_weight > 0,
        use_r2=cfg.r2_weight > 0,
    )


def traced_part(cfg: RunConfig) -> HParams:
    f32 = np.float32
    return HParams(
        lr_g=f32(cfg.lr_g), lr_d=f32(cfg.lr_d), beta1=f32(cfg.beta1), beta2=f32(cfg.beta2),
        momentum=f32(cfg.momentum), rms_decay=f32(cfg.rms_decay), clip=f32(cfg.clip),
        gp_weight=f32(cfg.resolved_gp_weight), r1_weight=f32(cfg.r1_weight),
        r2_weight=f32(cfg.r2_weight),
        g_init=np.asarray(cfg.g_init if cfg.g_init is not None else (), f32),
        d_init=np.asarray(cfg.d_init if cfg.d_init is not None else (), f32),
    )


def stack_hparams(hps: list[HParams]) -> HParams:
    """Stack per-run HParams into one HParams with a leading run axis."""
    return HParams(*(np.stack([getattr(h, f) for h in hps]) for f in HParams._fields))


# ----------------------------------------------------------------------------- validation

_POSITIVE_INT = ("d_updates", "batch_size", "steps", "log_every", "eval_batch",
                 "history_samples", "eval_samples", "g_width", "g_depth", "d_width", "d_depth",
                 "min_count", "num_projections")
_POSITIVE_FLOAT = ("lr_g", "lr_d")
_UNIT_INTERVAL = ("beta1", "beta2", "momentum", "rms_decay")  # in [0, 1)
_NONNEG_FLOAT = ("r1_weight", "r2_weight")
_CHOICES = {
    "data": DATA, "generator": GENERATORS, "discriminator": DISCRIMINATORS, "loss": LOSSES,
    "optimizer": OPTIMIZERS, "update": UPDATES, "activation": ACTIVATIONS,
}


def suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def make_config(values: dict[str, Any] | None = None, *, where: str = "") -> RunConfig:
    """Build a validated RunConfig from a plain dict (e.g. a sweep file's table).

    Args:
      values: field name -> value; missing fields take their defaults.
      where: a prefix for error messages naming where the values came from (e.g. "[base]").

    Raises:
      ConfigError: naming the field, the value and what is allowed.
    """
    values = dict(values or {})
    prefix = f"{where}." if where else ""
    for key in values:
        if key not in FIELD_NAMES:
            raise ConfigError(
                f"{prefix}{key}: unknown field{suggest(key, FIELD_NAMES)}; "
                f"allowed fields: {', '.join(FIELD_NAMES)}")
    for key in ("g_init", "d_init"):
        v = values.get(key)
        if v is not None:
            if not isinstance(v, (list, tuple)) or not all(_is_number(x) for x in v):
                raise field_error(prefix + key, v, "must be a list of numbers")
            values[key] = tuple(float(x) for x in v)
    cfg = RunConfig(**values)
    validate(cfg, prefix=prefix)
    return cfg.replace(**{k: float(getattr(cfg, k)) for k in FLOAT_FIELDS
                          if _is_int(getattr(cfg, k))})


def validate(cfg: RunConfig, *, prefix: str = "") -> RunConfig:
    """Check every field of a RunConfig; raise ConfigError on the first bad one."""
    for key, options in _CHOICES.items():
        v = getattr(cfg, key)
        if v not in options:
            raise field_error(prefix + key, v,
                              f"must be one of {', '.join(options)}{suggest(str(v), options)}")
    for key in _POSITIVE_INT:
        v = getattr(cfg, key)
        if not _is_int(v) or v < 1:
            raise field_error(prefix + key, v, "must be a positive integer")
    for key in ("history_samples", "eval_samples"):
        if getattr(cfg, key) < 2:
            raise field_error(prefix + key, getattr(cfg, key), "must be at least 2")
    if not _is_int(cfg.mmd_samples) or cfg.mmd_samples < 0 or cfg.mmd_samples == 1:
        raise field_error(prefix + "mmd_samples", cfg.mmd_samples,
                          "must be 0 (no MMD) or an integer >= 2")
    if not _is_number(cfg.hq_threshold) or not cfg.hq_threshold > 0 or not math.isfinite(
            cfg.hq_threshold):
        raise field_error(prefix + "hq_threshold", cfg.hq_threshold, "must be a positive number")
    if cfg.latent_dim is not None and (not _is_int(cfg.latent_dim) or cfg.latent_dim < 1):
        raise field_error(prefix + "latent_dim", cfg.latent_dim, "must be a positive integer")
    for key in _POSITIVE_FLOAT:
        v = getattr(cfg, key)
        if not _is_number(v) or not math.isfinite(v) or v <= 0:
            raise field_error(prefix + key, v, "must be a positive number")
    for key in _UNIT_INTERVAL:
        v = getattr(cfg, key)
        if not _is_number(v) or not 0 <= v < 1:
            raise field_error(prefix + key, v, "must be a number in [0, 1)")
    for key in _NONNEG_FLOAT:
        v = getattr(cfg, key)
        if not _is_number(v) or not math.isfinite(v) or v < 0:
            raise field_error(prefix + key, v, "must be a non-negative number")
    if cfg.gp_weight is not None and (not _is_number(cfg.gp_weight) or cfg.gp_weight < 0
                                      or not math.isfinite(cfg.gp_weight)):
        raise field_error(prefix + "gp_weight", cfg.gp_weight, "must be a non-negative number")
    if not _is_number(cfg.clip) or not cfg.clip > 0 or not math.isfinite(cfg.clip):
        raise field_error(prefix + "clip", cfg.clip, "must be a positive number")
    for key in ("data_std", "data_radius"):
        v = getattr(cfg, key)
        if v is not None and (not _is_number(v) or not v > 0 or not math.isfinite(v)):
            raise field_error(prefix + key, v, "must be a positive number (or omitted)")
    if cfg.data_radius is not None and cfg.data != "ring_2d":
        raise field_error(prefix + "data_radius", cfg.data_radius,
                          f"only applies to data = 'ring_2d', not {cfg.data!r}")
    if cfg.steps % cfg.log_every != 0:
        raise field_error(prefix + "log_every", cfg.log_every,
                          f"must divide steps = {cfg.steps} exactly")
    if cfg.update == "simultaneous" and cfg.d_updates != 1:
        raise field_error(prefix + "d_updates", cfg.d_updates,
                          "must be 1 with update = 'simultaneous' (both players step together)")
    # Families with a fixed data dimension.
    from gan_jax import data as data_lib  # local: data imports jax
    dim = data_lib.DIMS[cfg.data]
    if cfg.generator in ("linear", "piecewise"):
        if dim != 1:
            raise field_error(prefix + "generator", cfg.generator,
                              f"makes 1-D samples but data {cfg.data!r} is {dim}-D; use 'mlp'")
        if cfg.latent_dim not in (None, 1):
            raise field_error(prefix + "latent_dim", cfg.latent_dim,
                              f"must be 1 for generator {cfg.generator!r}")
    if cfg.discriminator == "logistic" and dim != 1:
        raise field_error(prefix + "discriminator", cfg.discriminator,
                          f"takes 1-D samples but data {cfg.data!r} is {dim}-D; use 'mlp'")
    from gan_jax import models  # local: models imports jax
    for key, family in (("g_init", "generator"), ("d_init", "discriminator")):
        v = getattr(cfg, key)
        if v is None:
            continue
        n = models.num_params(cfg, family)
        if len(v) != n:
            raise field_error(prefix + key, list(v),
                              f"must have {n} values for {family} {getattr(cfg, family)!r}")
        if not all(math.isfinite(x) for x in v):
            raise field_error(prefix + key, list(v), "must be finite numbers")
    return cfg
