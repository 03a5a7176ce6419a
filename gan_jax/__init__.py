"""gan_jax: GAN training dynamics on low-dimensional targets with known answers, in JAX."""

# Importing the package changes no JAX setting: the persistent compilation cache is set up by
# the commands, and by the engine when it first builds a program (gan_jax.engine.cache).
from gan_jax.core import digest as _digest
# The component modules, by their short names (`gj.losses.hinge_d_loss`, `gj.methods.Slots`):
# what a researcher composes their own component from (docs/extending.md).
from gan_jax.components import data, losses, methods, metrics, models, optim, toy_targets
from gan_jax.config import (HParams, RunConfig, StaticConfig, make_config, option_values,
                            stack_hparams,
                            static_part, traced_part, validate)
from gan_jax.components.data import (EmbeddedMixture, GaussianMixture, bimodal_1d, grid_2d,
                                     make_target, mixture_1d, ring_2d, veegan_1200d)
from gan_jax.engine.programs import compiled_run, rerun, run_batch, seed_keys
from gan_jax.core.errors import ConfigError
from gan_jax.core.registry import Option, load_plugins, register, unregister
from gan_jax.analysis.exact import (Estimate, Floor, Pushforward, Quadrature, discriminator_gap,
                                    estimate_w1, estimated_floor, family_floor, gan_value,
                                    optimal_logit, optimal_value, pushforward)
from gan_jax.components.losses import (LOSSES, Loss, clip_params, get_loss, gradient_penalty,
                                       r1_penalty, r2_penalty)
from gan_jax.components.data import Preset
from gan_jax.components.metrics import (METRICS, Metric, default_bandwidth, js_divergence,
                                        kl_divergence, left_fraction, mmd2, mode_assignment,
                                        mode_balance, mode_metrics, projection_directions,
                                        sample_metrics, sliced_w1, standardized_sq_distances,
                                        w1_1d)
from gan_jax.components.models import (Family, Model, linear_generator, logistic_discriminator,
                                       make_discriminator, make_generator, mlp,
                                       piecewise_generator)
from gan_jax.components.methods import Game, MethodSpec, Wrapper
from gan_jax.components.stabilisers import STABILISERS, GameView, Stabiliser
from gan_jax.components.optim import make_optimizer, maximize
from gan_jax.report.plots import (heatmap_cells, plot_curves, plot_heatmap, plot_samples,
                                  recorded_samples)
from gan_jax.presets import BENCH_CONFIGS, SEED_CONFIGS
from gan_jax.records.results import history_frame, load_results, to_dataframe
from gan_jax.analysis.stability import (LocalAnalysis, analyze, analyze_config,
                                        find_stationary, population_game, saturation, trajectory,
                                        update_map, vector_field)
from gan_jax.sweep import (Group, Plan, Report, Run, Sweep, load_sweep, parse_sweep, plan_sweep,
                           run_sweep)
from gan_jax.report.tables import Table, make_table, markdown_table, to_csv, to_latex, to_markdown
from gan_jax.training.train import RunOutput, TrainState, make_evaluate, make_run, make_train

__version__ = "0.1.0"

_digest.seal()      # what each module binds now: a later replacement is keyed (gan_jax.core.digest)

__all__ = [
    "data", "losses", "methods", "metrics", "models", "optim", "toy_targets",
    "ConfigError", "Option", "register", "unregister", "load_plugins", "Preset", "METRICS", "Metric",
    "HParams", "RunConfig", "StaticConfig", "make_config", "option_values", "stack_hparams",
    "static_part", "traced_part", "validate",
    "EmbeddedMixture", "GaussianMixture", "bimodal_1d", "grid_2d", "make_target", "mixture_1d",
    "ring_2d", "veegan_1200d",
    "compiled_run", "rerun", "run_batch", "seed_keys",
    "Estimate", "Floor", "Pushforward", "Quadrature", "discriminator_gap", "estimate_w1",
    "estimated_floor", "family_floor", "gan_value", "optimal_logit", "optimal_value",
    "pushforward",
    "LOSSES", "Loss", "clip_params", "get_loss", "gradient_penalty", "r1_penalty", "r2_penalty",
    "default_bandwidth", "js_divergence", "kl_divergence", "left_fraction", "mmd2",
    "mode_assignment", "mode_balance", "mode_metrics", "projection_directions",
    "sample_metrics", "sliced_w1", "standardized_sq_distances", "w1_1d",
    "Family", "Model", "linear_generator", "logistic_discriminator", "make_discriminator",
    "make_generator", "mlp", "piecewise_generator",
    "MethodSpec", "make_optimizer", "maximize", "Game", "GameView", "STABILISERS", "Stabiliser",
    "Wrapper",
    "heatmap_cells", "plot_curves", "plot_heatmap", "plot_samples",
    "recorded_samples", "BENCH_CONFIGS", "SEED_CONFIGS", "load_results", "to_dataframe",
    "history_frame",
    "LocalAnalysis", "analyze", "analyze_config", "find_stationary", "population_game",
    "saturation", "trajectory", "update_map", "vector_field",
    "Group", "Plan", "Report", "Run", "Sweep", "load_sweep", "parse_sweep", "plan_sweep",
    "run_sweep",
    "Table", "make_table", "markdown_table", "to_csv", "to_latex", "to_markdown",
    "RunOutput", "TrainState", "make_evaluate", "make_run", "make_train",
]
