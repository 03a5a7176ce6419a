"""Run configuration: every field declared once, validated on construction, split in two.

A run is fully described by a :class:`RunConfig` and a seed. Each field is declared once, below,
with its default, its type, its *kind*, its check and its meaning; everything else is derived
from that declaration:

* **static** fields change array shapes or the program (families, widths, loss, optimizer
  kind, d_updates, batch, steps, log cadence): they pick the compiled program and make up
  :data:`StaticConfig`, together with the static facts derived from traced values
  (:data:`DERIVED_STATIC`: whether explicit initial values or a penalty exist at all);
* **traced** fields are numbers a grid sweeps (learning rates, betas, clip value, penalty
  weights, explicit initial parameters): they make up :data:`HParams`, arrays with a leading
  run axis, so one compiled program serves every value.

A RunConfig checks itself whenever it is made (`RunConfig(...)`, `make_config`, `replace`),
without touching a JAX device: the allowed names come from the registries of the modules that
own them (`data.TARGETS`, `models.GENERATORS` / `DISCRIMINATORS` / `ACTIVATIONS`,
`losses.LOSSES`, `optim.OPTIMIZERS`), parameter counts are arithmetic, and an integer given for
a real-valued field is stored as a float (`lr_d = 1` and `lr_d = 1.0` are the same run).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, NamedTuple

import numpy as np

from gan_jax.core import digest
from gan_jax.components import data, losses, methods, metrics, models, optim, stabilisers
from gan_jax.core import registry
from gan_jax.core.errors import (ConfigError, field_error, is_finite_number, is_int, is_number,
                                 suggest)

STATIC, TRACED = "static", "traced"
# Static fields of which one program may hold several values, each run picking its own by a
# traced index (`HParams.<field>_index`): the loss changes no array shape and no random draw,
# so runs that differ only in it share a program (docs/sweeps.md, "Static and traced").
CHOICE_FIELDS = ("loss",)

# ----------------------------------------------------------------------------- checks
# A check maps a value to None (allowed) or to the rule it breaks, worded for a message.

Check = Callable[[Any], "str | None"]


def choice(options) -> Check:
    """A name in `options`, read when the check runs: a registry (gan_jax.core.registry) is live,
    so a component registered after import is allowed like a built-in one."""
    def check(v):
        if isinstance(v, str) and v in options:
            return None
        names = tuple(options)
        return f"must be one of {', '.join(names)}{suggest(str(v), names)}"
    return check


def target_choice(options) -> Check:
    """`choice(options)`, with a hint for a name a sweep file declares (NAME.DIGEST,
    data.register_declared) when that file's targets are not loaded."""
    plain = choice(options)

    def check(v):
        problem = plain(v)
        if problem and isinstance(v, str) and DECLARED_NAME.match(v):
            problem += ("; a target declared in a sweep file's [targets] is known once that "
                        "file is read (--plugin FILE.toml)")
        return problem
    return check


DECLARED_NAME = re.compile(rf"^[A-Za-z][A-Za-z0-9_.-]*\.[0-9a-f]{{{data.DIGEST_CHARS}}}$")


def int_at_least(low: int, high: int | None = None, why: str = "") -> Check:
    """An integer >= low, and <= high when given (`why` says where the bound comes from)."""
    rule = "must be a positive integer" if low == 1 else f"must be an integer >= {low}"
    above = f"must be at most {high:,}" + (f" ({why})" if why else "") if high else ""

    def check(v):
        if not is_int(v) or v < low:
            return rule
        return above if high is not None and v > high else None

    return check


def both(first: Check, second: Check) -> Check:
    return lambda v: first(v) or second(v)


def at_most(high: float, why: str) -> Check:
    return lambda v: None if v <= high else f"must be at most {high:g} ({why})"


# Upper bounds: what the program can represent and a machine can hold. A value past them
# would overflow a counter or a random draw, or ask for more memory than any device has, and
# fail deep inside JAX; the config refuses it first with the reason.
# - Iteration counters are int32: (steps + 1) x d_updates discriminator steps must count.
MAX_STEPS = 2**30
MAX_D_UPDATES = 2**10
# - One random draw gives at most 2**32 32-bit words: samples x dimension must stay below it;
#   2**24 samples of up to 2**8 latent dimensions do.
MAX_SAMPLES = 2**24
MAX_LATENT = 2**8
# - A hidden layer's weights are width x width floats: 2**16 squared is 16 GiB, already more
#   than most devices; depth multiplies it.
MAX_WIDTH = 2**16
MAX_DEPTH = 2**10
# - Sliced W1 holds eval_samples x num_projections projections.
MAX_PROJECTIONS = 2**12
# - hq_threshold counts stds: beyond 1e6 every sample is "high quality", and threshold x std
#   must stay finite in float32.
MAX_HQ_THRESHOLD = 1e6
# - Parameters are flattened and indexed with int32.
MAX_PARAMS = 2**31 - 1
# - Unrolled steps are traced into the generator's gradient one by one: unrolled.k's bound is
#   the method's own (methods.MAX_UNROLL).
# - A pack multiplies every discriminator batch.
MAX_PACK = 2**8
# - Maxout pieces multiply the discriminator's hidden weights.
MAX_PIECES = 2**8
RANDOM_WORDS = 2**32
COUNTER = "int32 step counters"
DRAW = "one random draw is at most 2**32 words"


def boolean(v) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def unit_interval_closed(v) -> str | None:
    return None if is_number(v) and 0 < v <= 1 else "must be a number in (0, 1]"


def positive_number(v) -> str | None:
    return None if is_finite_number(v) and v > 0 else "must be a positive number"


def nonnegative_number(v) -> str | None:
    return None if is_finite_number(v) and v >= 0 else "must be a non-negative number"


def unit_interval(v) -> str | None:
    return None if is_number(v) and 0 <= v < 1 else "must be a number in [0, 1)"


def optional(check: Check, when_none: str = "") -> Check:
    return lambda v: None if v is None else (lambda p: p and p + when_none)(check(v))


def number_list(v) -> str | None:
    if isinstance(v, (list, tuple)) and all(is_finite_number(x) for x in v):
        return None
    return "must be a list of finite numbers"


def metric_names(v) -> str | None:
    """A list of distinct registered metric names (read live from metrics.METRICS)."""
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        return "must be a list of metric names"
    if len(set(v)) != len(v):
        return "must name each metric once"
    for name in v:
        if name in metrics.BUILTIN_KEYS:
            return f"must name registered metrics; {name!r} is in every record already"
        if name not in metrics.METRICS:
            names = tuple(metrics.METRICS)
            return (f"must name registered metrics; {name!r} is not one (registered: "
                    f"{', '.join(names) or 'none'}){suggest(name, names)}")
    return None


def _switched_by_name(kind: str, table: dict, v) -> str | None:
    """A list of distinct registered components of `kind` without a switch of their own
    (`on` None: a plugin's), read live from `table`."""
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        return f"must be a list of {kind} names"
    if len(set(v)) != len(v):
        return f"must name each {kind} once"
    for name in v:
        if name not in table:
            names = tuple(n for n, c in table.items() if c.on is None)
            return (f"must name registered {kind}s; {name!r} is not one (registered: "
                    f"{', '.join(names) or 'none'}){suggest(name, names)}")
        if table[name].on is not None:
            return (f"{name!r} is a built-in switched on by its own field, "
                    f"{table[name].field or 'python -m gan_jax list'}: set that field instead")
    return None


def stabiliser_names(v) -> str | None:
    """A list of distinct registered stabilisers of the game without a field of their own."""
    return _switched_by_name("stabiliser", stabilisers.STABILISERS, v)


def wrapper_names(v) -> str | None:
    """A list of distinct registered wrappers of the method without a field of their own."""
    return _switched_by_name("wrapper", methods.WRAPPERS, v)


def _option_pairs(v) -> "list[tuple[str, Any]] | None":
    """The (key, value) pairs of an `options` value (a table, or pairs), or None if it is
    neither."""
    if isinstance(v, dict):
        items = list(v.items())
    elif isinstance(v, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2
                                              for p in v):
        items = [tuple(p) for p in v]
    else:
        return None
    return items if all(isinstance(k, str) for k, _ in items) else None


def options_shape(v) -> str | None:
    """The `options` field's own rule; each option's value is checked by its declaration
    (`_options`, which needs the components the configuration names)."""
    if _option_pairs(v) is None:
        return 'must be a table of "<component>.<option>" = value'
    return None


def metric_option(name: str) -> Check:
    return lambda v: metrics.option_problem(name, v)


def _field(default, kind: str, check: Check, doc: str, *, added: bool = False):
    """One field's declaration. `added`: declared after the first results were written, so it
    enters a run's id only when set away from its default (results.run_id): adding a field
    never changes the id of a run that does not use it."""
    return dataclasses.field(default=default, metadata={"kind": kind, "check": check, "doc": doc,
                                                        "added": added})


# ----------------------------------------------------------------------------- the fields


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run, except its seed.

    Defaults are the seed notebook's linear run (docs/seed.md). Each field's meaning is its
    `doc` (see :func:`describe`).
    """

    # what is trained
    data: str = _field("bimodal_1d", STATIC, target_choice(data.TARGETS),
                       "target: a registered target (docs/targets.md)")
    data_std: float | None = _field(None, STATIC, optional(positive_number, " (or omitted)"),
                                    "the target's component std (None: the preset's)")
    data_radius: float | None = _field(None, STATIC, optional(positive_number, " (or omitted)"),
                                       "ring_2d's radius (None: the preset's)")
    generator: str = _field("linear", STATIC, choice(models.GENERATORS), "generator family")
    discriminator: str = _field("logistic", STATIC, choice(models.DISCRIMINATORS),
                                "discriminator family")
    latent_dim: int | None = _field(None, STATIC, optional(int_at_least(1, MAX_LATENT, DRAW)),
                                    "dimension of z (None: the data's)")
    g_width: int = _field(64, STATIC, int_at_least(1, MAX_WIDTH, "memory"),
                        "MLP generator: units per hidden layer")
    g_depth: int = _field(2, STATIC, int_at_least(1, MAX_DEPTH, "memory"),
                        "MLP generator: hidden layers")
    d_width: int = _field(64, STATIC, int_at_least(1, MAX_WIDTH, "memory"),
                          "MLP discriminator: units per hidden layer")
    d_depth: int = _field(2, STATIC, int_at_least(1, MAX_DEPTH, "memory"),
                        "MLP discriminator: hidden layers")
    activation: str = _field("relu", STATIC, choice(models.ACTIVATIONS), "MLP activation")
    g_norm: str = _field("none", STATIC, choice(models.NORMS),
                         "MLP generator: 'batch' normalizes each hidden layer (no bias) before "
                         "its activation", added=True)
    d_pieces: int = _field(1, STATIC, int_at_least(1, MAX_PIECES, "memory"),
                           "MLP discriminator: k > 1 makes its hidden layers maxout layers of k "
                           "pieces", added=True)
    weight_init: str = _field("uniform", STATIC, choice(models.WEIGHT_INITS),
                              "MLP weights: U(+-1/sqrt(fan_in)) with such biases, "
                              "N(0, 0.02^2) with zero biases, or U(+-sqrt(6/fan_in)) (He) "
                              "with zero biases", added=True)
    # how it is trained
    loss: str = _field("nonsaturating", STATIC, choice(losses.LOSSES), "GAN objective")
    optimizer: str = _field("sgd", STATIC, choice(optim.OPTIMIZERS), "both players' optimiser")
    update: str = _field("alternating", STATIC, choice(methods.METHODS),
                         "training method: how both players step (docs/methods.md)")
    d_updates: int = _field(2, STATIC, int_at_least(1, MAX_D_UPDATES, COUNTER),
                           "discriminator steps per generator step")
    lookahead_k: int = _field(0, STATIC, int_at_least(0, MAX_STEPS, COUNTER),
                              "lookahead-minimax every k steps around the method; 0: off",
                              added=True)
    pack: int = _field(1, STATIC, int_at_least(1, MAX_PACK, "memory"),
                       "PacGAN packing: the discriminator sees this many samples at once",
                       added=True)
    spectral_norm: bool = _field(False, STATIC, boolean,
                                 "spectral normalization of the discriminator's layers",
                                 added=True)
    noise_anneal: bool = _field(False, STATIC, boolean,
                                "instance noise: anneal its std linearly to 0 over the steps",
                                added=True)
    jacobian_max_params: int = _field(16, STATIC, int_at_least(0, 2**10, "memory"),
                                      "history rows record the update map's Jacobian "
                                      "eigenvalues when both players have at most this many "
                                      "parameters together; 0: never", added=True)
    batch_size: int = _field(128, STATIC, int_at_least(1, MAX_SAMPLES, DRAW),
                            "samples per step and player")
    dataset_size: int = _field(0, STATIC, int_at_least(0, MAX_SAMPLES, DRAW),
                               "a finite training set of this many samples, read in epochs of "
                               "fresh orders; 0: fresh samples at every step", added=True)
    steps: int = _field(320, STATIC, int_at_least(1, MAX_STEPS, COUNTER),
                        "generator steps (the seed's loop runs steps + 1 iterations)")
    log_every: int = _field(40, STATIC, int_at_least(1, MAX_STEPS, COUNTER),
                           "iterations between history rows")
    eval_batch: int = _field(1000, STATIC, int_at_least(1, MAX_SAMPLES, DRAW),
                             "history rows: loss values on this many fresh samples")
    history_samples: int = _field(2000, STATIC, int_at_least(2, MAX_SAMPLES, DRAW),
                                  "history rows: metrics on this many fresh samples")
    eval_samples: int = _field(4000, STATIC, int_at_least(2, MAX_SAMPLES, DRAW),
                               "final metrics on this many fresh samples")
    # metric options (gan_jax.components.metrics owns their defaults and rules)
    hq_threshold: float = _field(metrics.HQ_THRESHOLD, STATIC, both(metric_option("hq_threshold"),
                                      at_most(MAX_HQ_THRESHOLD, "stds of the nearest mode")),
                                 "high-quality: within this many stds of the nearest mode")
    min_count: int = _field(metrics.MIN_COUNT, STATIC, metric_option("min_count"),
                            "high-quality samples a mode needs to count as captured")
    num_projections: int = _field(metrics.NUM_PROJECTIONS, STATIC,
                                  both(metric_option("num_projections"),
                                       int_at_least(1, MAX_PROJECTIONS, "memory")),
                                  "directions of the sliced W1 (2-D and up)")
    mmd_samples: int = _field(metrics.MMD_SAMPLES, STATIC, both(metric_option("mmd_samples"),
                                   int_at_least(0, MAX_SAMPLES, "memory")),
                              "MMD on this many points of each sample; 0: no MMD")
    extra_metrics: tuple[str, ...] = _field((), STATIC, lambda v: metric_names(v),
                                            "registered metrics (gan_jax.METRICS) computed "
                                            "beside the built-in ones", added=True)
    stabilisers: tuple[str, ...] = _field((), STATIC, lambda v: stabiliser_names(v),
                                          "registered stabilisers of the game switched on by "
                                          "name (gan_jax.Stabiliser; the built-ins have "
                                          "fields of their own)", added=True)
    wrappers: tuple[str, ...] = _field((), STATIC, lambda v: wrapper_names(v),
                                       "registered wrappers of the training method switched "
                                       "on by name (gan_jax.Wrapper; the built-ins, lookahead "
                                       "and ema, have fields of their own)", added=True)
    options: tuple = _field((), STATIC, lambda v: options_shape(v),
                            "the named components' own options, \"<component>.<option>\" -> "
                            "value (each one's type, default and rule: python -m gan_jax list); "
                            "a traced one's value goes to HParams.options", added=True)
    # traced numbers
    lr_g: float = _field(0.04, TRACED, positive_number, "generator learning rate")
    lr_d: float = _field(0.04, TRACED, positive_number, "discriminator learning rate")
    beta1: float = _field(0.5, TRACED, unit_interval, "Adam's beta1")
    beta2: float = _field(0.999, TRACED, unit_interval, "Adam's beta2")
    momentum: float = _field(0.0, TRACED, unit_interval, "SGD's heavy-ball momentum")
    rms_decay: float = _field(0.9, TRACED, unit_interval, "RMSProp's decay")
    clip: float = _field(0.01, TRACED, positive_number, "WGAN weight-clipping bound")
    gp_weight: float | None = _field(None, TRACED, optional(nonnegative_number),
                                     "gradient-penalty weight (None: the loss's default)")
    r1_weight: float = _field(0.0, TRACED, nonnegative_number,
                              "R1 weight gamma (gamma/2 E_real |grad D|^2)")
    r2_weight: float = _field(0.0, TRACED, nonnegative_number,
                              "R2 weight gamma (gamma/2 E_fake |grad D|^2)")
    lookahead_alpha: float = _field(0.5, TRACED, unit_interval_closed,
                                    "lookahead-minimax: the slow weights' step alpha", added=True)
    nk_eta: float = _field(0.0, TRACED, nonnegative_number,
                           "Nagarajan-Kolter regulariser eta on the generator; 0: off",
                           added=True)
    ema_beta: float = _field(0.0, TRACED, unit_interval,
                             "generator EMA decay beta; 0: no averaged generator", added=True)
    noise_std: float = _field(0.0, TRACED, nonnegative_number,
                              "instance noise std on the discriminator's inputs; 0: off",
                              added=True)
    g_init: tuple[float, ...] | None = _field(None, TRACED, optional(number_list),
                                              "explicit initial generator parameters")
    d_init: tuple[float, ...] | None = _field(None, TRACED, optional(number_list),
                                              "explicit initial discriminator parameters")

    def __post_init__(self):
        validate(self)
        for f in FIELDS:                              # normalise, so equal runs compare equal
            object.__setattr__(self, f.name, _normalised(f.name, getattr(self, f.name)))
        object.__setattr__(self, "options", _options(self))

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed, validated like any new configuration."""
        unknown = [k for k in changes if k not in FIELD_NAMES]
        if unknown:
            raise _unknown_field(unknown[0])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (tuples as lists)."""
        out = dataclasses.asdict(self)
        for k in LIST_FIELDS + NAME_LIST_FIELDS:
            if out[k] is not None:
                out[k] = list(out[k])
        out["options"] = dict(self.options)
        return out

    def identity_dict(self) -> dict[str, Any]:
        """What a run's id hashes: `to_dict()` without the fields declared `added` that sit at
        their defaults, so a field added later leaves every earlier run's id as it was."""
        out = self.to_dict()
        # Options away from their defaults, under their keys; one that was a field before
        # (Option.legacy) under that field's name, as its runs were identified then.
        declared = registry.declared_options(self)
        out.update({declared[k].option.legacy or k: v for k, v in out.pop("options").items()})
        for name in ADDED_FIELDS:
            default = ADDED_DEFAULTS[name]
            if name in out and out[name] == (list(default) if isinstance(default, tuple) else default):
                del out[name]
        return out

    @property
    def resolved_gp_weight(self) -> float:
        if self.gp_weight is None:
            return losses.LOSSES[self.loss].gp_weight
        return self.gp_weight


FIELDS = dataclasses.fields(RunConfig)
FIELD_NAMES = tuple(f.name for f in FIELDS)
STATIC_FIELDS = tuple(f.name for f in FIELDS if f.metadata["kind"] == STATIC)
TRACED_FIELDS = tuple(f.name for f in FIELDS if f.metadata["kind"] == TRACED)
FLOAT_FIELDS = tuple(f.name for f in FIELDS if f.type in ("float", "float | None"))
LIST_FIELDS = tuple(f.name for f in FIELDS if f.type.startswith("tuple[float"))
NAME_LIST_FIELDS = tuple(f.name for f in FIELDS if f.type.startswith("tuple[str"))

# Static facts derived from traced values: whether a traced feature exists in the program at
# all (its value stays traced).
DERIVED_STATIC: dict[str, Callable[[RunConfig], bool]] = {
    "has_g_init": lambda cfg: cfg.g_init is not None,
    "has_d_init": lambda cfg: cfg.d_init is not None,
    "use_gp": lambda cfg: cfg.resolved_gp_weight > 0,
    "use_r1": lambda cfg: cfg.r1_weight > 0,
    "use_r2": lambda cfg: cfg.r2_weight > 0,
    "use_nk": lambda cfg: cfg.nk_eta > 0,
    "use_ema": lambda cfg: cfg.ema_beta > 0,
    "use_noise": lambda cfg: cfg.noise_std > 0,
    # The loss's generator term reads real logits (relativistic losses): the generator's step
    # then draws real samples, so such losses and the others never share a program.
    "g_real": lambda cfg: losses.LOSSES[cfg.loss].g_real,
}
ADDED_FIELDS = tuple(f.name for f in FIELDS if f.metadata["added"])
ADDED_DEFAULTS = {f.name: f.default for f in FIELDS if f.metadata["added"]}
# The same defaults as a record's JSON holds them (RunConfig.to_dict): lists, and a table of
# options.
ADDED_JSON_DEFAULTS = {name: dict(v) if name == "options" else list(v) if isinstance(v, tuple)
                       else v for name, v in ADDED_DEFAULTS.items()}


def tied_fields(key: str) -> list[str]:
    """The fields a key names: 'lr_d', or several joined by '+' ("lr_g+lr_d") that take one
    value together (a sweep file's tied grid keys)."""
    return [f.strip() for f in key.split("+")]


def describe() -> list[tuple[str, str, Any, str]]:
    """(name, kind, default, meaning) of every field, in declaration order."""
    return [(f.name, f.metadata["kind"], f.default, f.metadata["doc"]) for f in FIELDS]


# ----------------------------------------------------------------------------- the two parts


def _num_logs(self) -> int:
    return self.steps // self.log_every + 1


def _run_steps(self) -> int:
    """Generator updates per run: the seed loops over steps + 1 iterations."""
    return self.steps + 1


StaticConfig = dataclasses.make_dataclass(
    "StaticConfig",
    [(f.name, "tuple[str, ...]" if f.name in CHOICE_FIELDS else f.type)
     for f in FIELDS if f.name in STATIC_FIELDS]
    + [(name, "bool") for name in DERIVED_STATIC],
    frozen=True,
    namespace={"__doc__": "The part of a run's configuration that picks the compiled program "
                          "(hashable): the static fields and DERIVED_STATIC; a choice field "
                          "(CHOICE_FIELDS) holds the tuple of values the program serves.",
               "num_logs": property(_num_logs), "run_steps": property(_run_steps)})

StaticConfig.__module__ = __name__

# The static fields the evaluation reads (train.make_evaluation): the target, the generator,
# the metric options and sample counts. Runs whose static parts agree in these share one
# evaluation program, whatever their discriminator, loss, optimiser or training method.
EVAL_FIELDS = ("data", "data_std", "data_radius", "generator", "latent_dim", "g_width",
               "g_depth", "activation", "g_norm", "history_samples", "eval_samples",
               "hq_threshold", "min_count", "num_projections", "mmd_samples", "use_ema",
               "extra_metrics", "options")
# Of those, the fields only an 'mlp' generator reads: other families' programs ignore them.
MLP_GENERATOR_FIELDS = ("g_width", "g_depth", "activation", "g_norm")

EvalConfig = dataclasses.make_dataclass(
    "EvalConfig", [(name, StaticConfig.__dataclass_fields__[name].type) for name in EVAL_FIELDS],
    frozen=True,
    namespace={"__doc__": "The part of a static configuration the evaluation program reads "
                          "(hashable): EVAL_FIELDS, with an 'mlp'-only field at its default "
                          "for other generator families."})
EvalConfig.__module__ = __name__


def eval_part(static: StaticConfig) -> EvalConfig:
    """The evaluation program of a static configuration (train.make_evaluation)."""
    values = {name: getattr(static, name) for name in EVAL_FIELDS}
    # The options of the components the evaluation reads (the target, the generator, the
    # metrics): a loss's or a method's options leave the evaluation program shared.
    kinds = {kind for kind, k in registry.KINDS.items() if k.field in EVAL_FIELDS}
    declared = registry.declared_options(static)
    values["options"] = tuple((k, v) for k, v in static.options if declared[k].kind in kinds)
    if static.generator != "mlp":
        defaults = {f.name: f.default for f in FIELDS}
        values.update({name: defaults[name] for name in MLP_GENERATOR_FIELDS})
    return EvalConfig(**values)


INDEX_FIELDS = tuple(f"{name}_index" for name in CHOICE_FIELDS)
HParams = NamedTuple("HParams", [(name, Any) for name in TRACED_FIELDS + INDEX_FIELDS]
                     + [("options", Any)])
HParams.__doc__ = ("The traced numbers of one run: f32[] scalars, f32[n] explicit initial "
                   "values (n = 0 when none are given), i32[] indices of the run's value of "
                   "each choice field in its program, and f32[k] values of the traced "
                   "component options of its program (config.traced_option_keys); stacked, a "
                   "leading run axis.")

# Where a choice field's values come from: a program lists them in registry order.
_CHOICE_ORDER = {"loss": losses.LOSSES}


def static_part(cfg: RunConfig) -> StaticConfig:
    """The static part of one run: its program, if it runs alone."""
    declared = registry.declared_options(cfg)
    static_options = tuple((k, v) for k, v in cfg.options if not declared[k].option.traced)
    return StaticConfig(**{f: (getattr(cfg, f),) if f in CHOICE_FIELDS else getattr(cfg, f)
                           for f in STATIC_FIELDS if f != "options"}, options=static_options,
                        **{name: fact(cfg) for name, fact in DERIVED_STATIC.items()})


def shape_key(static: StaticConfig) -> StaticConfig:
    """A static part without its choice fields: runs with equal keys can share one program."""
    return dataclasses.replace(static, **{f: () for f in CHOICE_FIELDS})


def merge_statics(statics) -> StaticConfig:
    """The one program serving runs of these static parts: every choice field holds the union of
    their values, in registry order. Raises ValueError unless they differ only in choices."""
    statics = list(statics)
    if len({shape_key(s) for s in statics}) != 1:
        raise ValueError("merge_statics: the static parts differ in more than their choices")
    union = {f: {v for s in statics for v in getattr(s, f)} for f in CHOICE_FIELDS}
    return dataclasses.replace(statics[0], **{
        f: tuple(v for v in _CHOICE_ORDER[f] if v in union[f]) for f in CHOICE_FIELDS})


def traced_part(cfg: RunConfig, program: StaticConfig | None = None) -> HParams:
    """The traced part of a run, in `program` (default: the run's own static part)."""
    program = program or static_part(cfg)

    def value(name):
        if name == "gp_weight":
            return np.float32(cfg.resolved_gp_weight)
        if name in LIST_FIELDS:
            return np.asarray(getattr(cfg, name) or (), np.float32)
        return np.float32(getattr(cfg, name))

    indices = (np.int32(getattr(program, f).index(getattr(cfg, f))) for f in CHOICE_FIELDS)
    declared, own = registry.declared_options(program), dict(cfg.options)
    options = np.asarray([own.get(k, declared[k].option.default)
                          for k in traced_option_keys(program)], np.float32)
    return HParams(*(value(name) for name in TRACED_FIELDS), *indices, options)


def stack_hparams(hps: list[HParams]) -> HParams:
    """Stack per-run HParams into one HParams with a leading run axis."""
    return HParams(*(np.stack([getattr(h, f) for h in hps]) for f in HParams._fields))


# ----------------------------------------------------------------------------- validation


def _unknown_field(key: str) -> ConfigError:
    options = tuple(registry.declared_options())
    return ConfigError(f"{key}: unknown field{suggest(key, FIELD_NAMES + options)}; "
                       f"allowed fields: {', '.join(FIELD_NAMES)}; and the components' "
                       "options (\"<component>.<option>\", python -m gan_jax list)")


def make_config(values: dict[str, Any] | None = None, *, where: str = "") -> RunConfig:
    """Build a validated RunConfig from a plain dict (e.g. a sweep file's table).

    Args:
      values: field name -> value; missing fields take their defaults.
      where: a prefix for error messages naming where the values came from (e.g. "[base]").

    Raises:
      ConfigError: naming the field, the value and what is allowed.
    """
    values = dict(values or {})
    try:
        # A component's option ("sga.scaled"), or the field it was before (Option.legacy),
        # given beside the fields: it goes to the `options` table.
        legacy = legacy_options()
        moved = {legacy.get(key, key): values.pop(key) for key in list(values)
                 if key not in FIELD_NAMES and (key in legacy or "." in key)}
        for key in values:
            if key not in FIELD_NAMES:
                raise _unknown_field(key)
        given = _option_pairs(values.get("options", ()))
        if moved and given is not None:
            values["options"] = {**dict(given), **moved}
        for key, kind in _component_fields().items():
            if key in values:
                values[key] = _by_name(key, kind, values[key])
        return RunConfig(**values)
    except ConfigError as e:
        if where:
            raise ConfigError(f"{where}.{e}") from None
        raise


def _component_fields() -> dict[str, str]:
    """field -> kind of component it names, read from the registry when called."""
    return {k.field: kind for kind, k in registry.KINDS.items()}


def _by_name(field: str, kind: str, value):
    """A component given as an object (the Python API, a notebook) registered under a name
    made from its code's digest, `<kind>-<digest>`: the same code is the same name, so run
    ids and kept programs follow the code (gan_jax.core.digest). Names pass through."""
    if isinstance(value, (list, tuple)) and field in NAME_LIST_FIELDS:
        return [_by_name(field, kind, v) for v in value]
    if isinstance(value, str) or value is None or field in NAME_LIST_FIELDS:
        return value
    code = digest.code_digest(value)
    if code is None:
        raise field_error(field, type(value).__name__, "is an object whose code cannot be "
                          f"followed; register it by name (gan_jax.register({kind!r}, NAME, "
                          "obj)) and give the name")
    name = f"{kind}-{code[:12]}"
    if name not in registry.table(kind):
        registry.register(kind, name, value, doc=f"given as an object ({type(value).__name__})")
    return name


def legacy_options() -> dict[str, str]:
    """A field that became a component's option (Option.legacy) -> the option's key."""
    return {d.option.legacy: key for key, d in registry.declared_options().items()
            if d.option.legacy}


def is_field(key: str) -> bool:
    """Whether a configuration (a sweep file's table, make_config) may set `key`: a field, an
    option a registered component declares ("<component>.<option>"), or the field such an
    option was before (Option.legacy)."""
    return key in FIELD_NAMES or key in registry.declared_options() or key in legacy_options()


def is_float_field(key: str) -> bool:
    """Whether a configuration key takes real numbers: a float field, or a float option."""
    found = registry.declared_options().get(legacy_options().get(key, key))
    return key in FLOAT_FIELDS or found is not None and found.option.type is float


def check_field(name: str, value: Any) -> Any:
    """One field's value checked by its own rule (not against other fields) and normalised as
    a RunConfig stores it (an integer for a real-valued field becomes a float). A component's
    option ("<component>.<option>", or the field it was before) is checked by its
    declaration."""
    if name not in FIELD_NAMES:
        key = legacy_options().get(name, name)
        found = registry.declared_options().get(key)
        if found is None:
            raise _unknown_field(name)
        problem = found.option.problem(value)
        if problem:
            raise field_error(name, value, problem)
        return found.option.normalised(value)
    problem = FIELDS[FIELD_NAMES.index(name)].metadata["check"](value)
    if problem:
        raise field_error(name, list(value) if isinstance(value, tuple) else value, problem)
    return _normalised(name, value)


def _normalised(name: str, value: Any) -> Any:
    """An allowed value as a RunConfig stores it: a whole number given for a real-valued field
    as a float, a list of numbers as a tuple of floats."""
    if name in FLOAT_FIELDS and is_int(value):
        return float(value)
    if name in LIST_FIELDS and isinstance(value, (list, tuple)):
        return tuple(float(x) for x in value)
    if name in ("stabilisers", "wrappers") and isinstance(value, (list, tuple)):
        return tuple(sorted(value))     # they apply by name, whatever the list's order
    if name in NAME_LIST_FIELDS and isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def validate(cfg: RunConfig) -> RunConfig:
    """Check every field of a RunConfig, then the rules between fields; raise ConfigError on
    the first problem."""
    for f in FIELDS:
        check_field(f.name, getattr(cfg, f.name))
    _options(cfg)                 # before a component is built with them (make_target below)
    target = data.preset(cfg.data)
    if cfg.data_radius is not None and not target.has_radius:
        raise field_error("data_radius", cfg.data_radius,
                          f"does not apply to data = {cfg.data!r}")
    if cfg.extra_metrics:
        built = data.make_target(cfg)
        for name in cfg.extra_metrics:
            problem = metrics.metric_problem(name, built)
            if problem:
                raise field_error("extra_metrics", list(cfg.extra_metrics), problem)
            need = metrics.METRICS[name].min_samples
            for size in ("history_samples", "eval_samples"):
                if getattr(cfg, size) < need:
                    raise field_error(size, getattr(cfg, size),
                                      f"must be at least {need} for the extra metric {name!r}")
    if cfg.hq_threshold < target.min_hq_threshold:
        raise field_error("hq_threshold", cfg.hq_threshold,
                          f"must be at least {target.min_hq_threshold} for data = {cfg.data!r}, "
                          "whose own samples would otherwise not count as high quality "
                          "(docs/targets.md)")
    if cfg.data_std is not None and not target.has_std:
        raise field_error("data_std", cfg.data_std, f"does not apply to data = {cfg.data!r} "
                          "(it takes no options)")
    if (cfg.steps + 1) * cfg.d_updates >= 2**31:
        raise field_error("d_updates", cfg.d_updates,
                          f"(steps + 1) x d_updates must stay below 2**31 ({COUNTER}); "
                          f"steps = {cfg.steps}")
    if cfg.steps % cfg.log_every != 0:
        raise field_error("log_every", cfg.log_every, f"must divide steps = {cfg.steps} exactly")
    if methods.simultaneous(cfg.update) and cfg.d_updates != 1:
        raise field_error("d_updates", cfg.d_updates,
                          f"must be 1 with update = {cfg.update!r} (both players step together)")
    _check_method_fields(cfg)
    _check_model_fields(cfg)
    for role in ("generator", "discriminator"):
        name = getattr(cfg, role)
        if models.FAMILIES[role][name].one_d and target.dim != 1:
            what = "makes" if role == "generator" else "takes"
            raise field_error(role, name, f"{what} 1-D samples but data {cfg.data!r} is "
                                          f"{target.dim}-D; use 'mlp'")
    if models.GENERATORS[cfg.generator].one_d and cfg.latent_dim not in (None, 1):
        raise field_error("latent_dim", cfg.latent_dim,
                          f"must be 1 for generator {cfg.generator!r}")
    dim = max(target.dim, models.latent_dim(cfg))
    for name in ("batch_size", "dataset_size", "eval_batch", "history_samples", "eval_samples"):
        if getattr(cfg, name) * dim * 2 > RANDOM_WORDS:
            raise field_error(name, getattr(cfg, name), f"times the sample dimension {dim} "
                              f"must stay below 2**31 ({DRAW})")
    for role in ("generator", "discriminator"):
        if models.num_params(cfg, role) > MAX_PARAMS:
            raise field_error(f"{role[0]}_width", getattr(cfg, f"{role[0]}_width"),
                              f"the {role} would have {models.num_params(cfg, role):,} "
                              "parameters; at most 2**31 - 1 (int32 indices)")
    for key, role in (("g_init", "generator"), ("d_init", "discriminator")):
        v = getattr(cfg, key)
        if v is not None and len(v) != models.num_params(cfg, role):
            raise field_error(key, list(v), f"must have {models.num_params(cfg, role)} values "
                                            f"for {role} {getattr(cfg, role)!r}")
    if data.has_points(data.TARGETS[cfg.data]):
        _check_point_cloud(cfg, data.TARGETS[cfg.data])
    return cfg


def _check_point_cloud(cfg: RunConfig, cloud) -> None:
    """A point cloud is its own finite training set, and a draw of real samples takes
    distinct held-out reference points (data.PointCloud)."""
    if cfg.dataset_size:
        raise field_error("dataset_size", cfg.dataset_size,
                          f"must be 0 with data = {cfg.data!r}: a point cloud's training set "
                          f"is its {cloud.num_training:,} training points")
    for name in ("eval_batch", "history_samples", "eval_samples"):
        if getattr(cfg, name) > cloud.num_reference:
            raise field_error(name, getattr(cfg, name),
                              f"must be at most {cloud.num_reference:,}, the held-out "
                              f"reference points of data = {cfg.data!r} (a draw takes distinct "
                              "points); lower it, or hold out more points")
    per_step = real_samples_per_step(cfg)
    if per_step > cloud.num_training:
        raise field_error("batch_size", cfg.batch_size,
                          f"one step reads {per_step:,} real samples (batch_size x pack x "
                          f"batches), more than the {cloud.num_training:,} training points of "
                          f"data = {cfg.data!r}")
    _check_positions(cfg, per_step, "steps", cfg.steps)


def _options(cfg) -> tuple[tuple[str, Any], ...]:
    """The configuration's component options checked by their declarations and normalised:
    the (key, value) pairs away from their defaults, sorted (equal runs compare equal). An
    option of a component the configuration does not name may only be given its default."""
    in_use = registry.declared_options(cfg)
    out = {}
    for key, value in _option_pairs(cfg.options):
        found = in_use.get(key)
        if found is None:
            every = registry.declared_options()
            found = every.get(key)
            if found is None:
                own = [k for k in every if k.rpartition(".")[0] == key.rpartition(".")[0]]
                raise ConfigError(
                    f"{key}: unknown option{suggest(key, tuple(every))}; " +
                    (f"its component declares {', '.join(own)}" if own else
                     "options are \"<component>.<option>\" of a registered component "
                     "(python -m gan_jax list)"))
        problem = found.option.problem(value)
        if problem:
            raise field_error(key, value, problem)
        value = found.option.normalised(value)
        if key not in in_use and value != found.option.default:
            field = registry.KINDS[found.kind].field
            named = getattr(cfg, field)
            raise field_error(key, value, f"applies only to {field} = {found.component!r}, not "
                              f"{field} = {list(named) if isinstance(named, tuple) else named!r}"
                              f"; leave it at its default {found.option.default!r}")
        if value != found.option.default:
            out[key] = value
    return tuple(sorted(out.items()))


def traced_option_keys(static) -> tuple[str, ...]:
    """The keys of the traced options of the components a static configuration names, in the
    order of `HParams.options` (registry.declared_options')."""
    return tuple(k for k, d in registry.declared_options(static).items() if d.option.traced)


def option_values(static, kind: str, name: str, hp: "HParams | None" = None) -> dict[str, Any]:
    """The options of component `name` of `kind` as it is built for a run: option name ->
    value, its static ones from `static` (a StaticConfig, EvalConfig or RunConfig), its traced
    ones (f32[] arrays) from the run's `hp.options` (declared defaults when hp is None)."""
    own, keys = dict(static.options), traced_option_keys(static)
    out = {}
    for o in registry.options_of(registry.table(kind)[name]):
        key = f"{name}.{o.name}"
        if o.traced and hp is not None:
            out[o.name] = hp.options[keys.index(key)]
        else:
            out[o.name] = own.get(key, o.default)
    return out


def _check_method_fields(cfg: RunConfig) -> None:
    defaults = {f.name: f.default for f in FIELDS}
    own = dict(_options(cfg))          # the options away from their defaults
    if not own.get("sga.scaled", False) and "sga.lambda" in own:
        raise field_error("sga.lambda", own["sga.lambda"],
                          "applies only with sga.scaled = true: Balduzzi et al.'s Algorithm 1 "
                          "sets lambda to the alignment's sign, +-1, and has no weight; leave "
                          "it at its default 1.0 or set sga.scaled")
    if cfg.lookahead_k == 0 and cfg.lookahead_alpha != defaults["lookahead_alpha"]:
        raise field_error("lookahead_alpha", cfg.lookahead_alpha,
                          "applies only with lookahead_k > 0 (lookahead_k = 0: off)")
    if cfg.noise_anneal and cfg.noise_std == 0:
        raise field_error("noise_anneal", True, "needs instance noise: noise_std > 0")
    one_d = models.DISCRIMINATORS[cfg.discriminator].one_d
    if cfg.pack > 1 and one_d:
        raise field_error("pack", cfg.pack, f"needs a discriminator that takes packed samples "
                          f"('mlp'), not discriminator = {cfg.discriminator!r}")
    if cfg.spectral_norm and one_d:
        raise field_error("spectral_norm", True, "normalizes the weight matrices of an 'mlp' "
                          f"discriminator, not discriminator = {cfg.discriminator!r}")


def real_batches_per_step(update: str, d_updates: int, g_full: bool) -> int:
    """Batches of real samples one run-step takes: the method's full batches
    (`methods.slots`), plus its generator batches when the generator's step needs real
    samples (`g_full`: the Nagarajan-Kolter regulariser, or a relativistic loss;
    `train.make_step`)."""
    slots = methods.slots(update, d_updates)
    return slots.d + (slots.g if g_full else 0)


def generator_needs_real(cfg) -> bool:
    """Whether the generator's step draws real samples: the NK regulariser's d_value reads
    them, and so do a relativistic loss's generator term and a named stabiliser that
    declares `g_real`."""
    named = any(stabilisers.STABILISERS[n].g_real for n in cfg.stabilisers)
    if isinstance(cfg, StaticConfig):
        return cfg.use_nk or cfg.g_real or named
    return cfg.nk_eta > 0 or losses.LOSSES[cfg.loss].g_real or named


def _check_positions(cfg, per_step: int, field: str, value) -> None:
    """A finite training set (dataset_size, or a point cloud) is read by int32 positions in its
    stream of epochs: (steps + 2) steps' real samples must count below 2**31."""
    if (cfg.steps + 2) * per_step >= 2**31:
        raise field_error(field, value,
                          f"reads {per_step:,} real samples per step: (steps + 2) x that must "
                          f"stay below 2**31 (int32 positions in the training set); "
                          f"steps = {cfg.steps}, batch_size = {cfg.batch_size}")


def real_samples_per_step(cfg) -> int:
    """Real samples one run-step reads from a finite training set: batch_size x pack per batch."""
    return cfg.batch_size * cfg.pack * real_batches_per_step(cfg.update, cfg.d_updates,
                                                             generator_needs_real(cfg))


def _check_model_fields(cfg: RunConfig) -> None:
    """The MLP options apply to MLP families only; a finite training set must hold a step's
    real samples, and its stream's positions must count in int32."""
    if cfg.g_norm != "none" and cfg.generator != "mlp":
        raise field_error("g_norm", cfg.g_norm, "normalizes the hidden layers of an 'mlp' "
                          f"generator, not generator = {cfg.generator!r}")
    if cfg.g_norm == "batch" and cfg.batch_size < 2:
        raise field_error("g_norm", cfg.g_norm, "normalizes with each training batch's own "
                          "statistics (each pack place's batch_size samples), which needs "
                          f"batch_size >= 2; batch_size = {cfg.batch_size}")
    if cfg.d_pieces != 1 and cfg.discriminator != "mlp":
        raise field_error("d_pieces", cfg.d_pieces, "makes the hidden layers of an 'mlp' "
                          f"discriminator maxout layers, not discriminator = "
                          f"{cfg.discriminator!r}")
    if cfg.weight_init != "uniform" and "mlp" not in (cfg.generator, cfg.discriminator):
        raise field_error("weight_init", cfg.weight_init, "initializes 'mlp' families; "
                          f"generator = {cfg.generator!r} and discriminator = "
                          f"{cfg.discriminator!r} start from N(0, 1)")
    if cfg.dataset_size:
        per_step = real_samples_per_step(cfg)
        batches = per_step // (cfg.batch_size * cfg.pack)
        if cfg.dataset_size < per_step:
            raise field_error("dataset_size", cfg.dataset_size,
                              f"must be 0 (fresh samples) or at least the real samples of one "
                              f"step, batch_size x pack x batches = {cfg.batch_size} x "
                              f"{cfg.pack} x {batches} = {per_step:,} (batch_size = "
                              f"{cfg.batch_size}, update = {cfg.update!r})")
        _check_positions(cfg, per_step, "dataset_size", cfg.dataset_size)
