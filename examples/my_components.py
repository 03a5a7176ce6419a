"""A researcher's own components beside the library's, registered from a file of their own.

Load it from a sweep file (`plugins = ["my_components.py"]`, a path relative to the sweep
file) or a command (`--plugin examples/my_components.py`); `python -m gan_jax list --plugin
examples/my_components.py` then shows each beside the built-ins. docs/extending.md walks
through every kind.
"""

import jax
import jax.numpy as jnp

import gan_jax as gj


# A loss: relativistic average least squares, RaLSGAN (Jolicoeur-Martineau 2018, eq. (16)).
# Its generator term reads the real logits (g_real), so its generator step gets real samples.
def ralsgan_d(real, fake):
    return (jnp.mean((real - jnp.mean(fake) - 1.0) ** 2)
            + jnp.mean((fake - jnp.mean(real) + 1.0) ** 2))


def ralsgan_g(fake, real):
    return (jnp.mean((fake - jnp.mean(real) - 1.0) ** 2)
            + jnp.mean((real - jnp.mean(fake) + 1.0) ** 2))


gj.register("loss", "ralsgan", gj.Loss(ralsgan_d, ralsgan_g, g_real=True),
            doc="relativistic average LSGAN (Jolicoeur-Martineau 2018)")


# A loss with an option of its own: the hinge loss with its margin m as a traced number, so
# a grid over "margin_hinge.margin" runs in one compiled program (m = 1 is the built-in hinge).
def margin_hinge_d(real, fake, margin):
    return jnp.mean(jax.nn.relu(margin - real)) + jnp.mean(jax.nn.relu(margin + fake))


def margin_hinge_g(fake, margin):
    return -jnp.mean(fake)


gj.register("loss", "margin_hinge", gj.Loss(
    margin_hinge_d, margin_hinge_g,
    options=(gj.Option("margin", 1.0, "the discriminator's margin m",
                       check=lambda m: None if m > 0 else "must be a positive number",
                       traced=True),)),
    doc="hinge loss with its margin as an option")


# A target: a 2-D swiss roll, sampled in jax.numpy from a key. It has no modes, so the
# mode metrics are left out of its records, and no closed form.
class SwissRoll:
    """A 2-D swiss roll: t ~ U(1.5 pi, 4.5 pi), x = (t cos t, t sin t) / 5, plus N(0, noise^2)."""

    dim = 2

    def __init__(self, noise: float = 0.1):
        self.noise = noise

    def sample(self, key, n):
        k_t, k_e = jax.random.split(key)
        t = 1.5 * jnp.pi * (1.0 + 2.0 * jax.random.uniform(k_t, (n,)))
        x = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=1) / 5.0
        return x + self.noise * jax.random.normal(k_e, (n, 2))


gj.register("target", "swiss_roll", SwissRoll())


# A metric: the energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo 2013),
# V-statistic on the evaluation samples, which are as many real as generated.
def _mean_dist(a, b):
    return jnp.mean(jnp.sqrt(jnp.sum((a[:, None] - b[None]) ** 2, axis=-1) + 1e-12))


def energy_distance(real, fake):
    return 2.0 * _mean_dist(real, fake) - _mean_dist(real, real) - _mean_dist(fake, fake)


gj.register("metric", "energy", gj.Metric(energy_distance, higher_is_better=False),
            doc="energy distance (Szekely & Rizzo 2013), V-statistic")


# A training method: Hamiltonian gradient descent (Balduzzi et al. 2018, Sec. 4; Loizou et al.
# 2020): both players descend H = |xi|^2 / 2, xi the simultaneous gradient, from one point.
def hamiltonian_direction(ctx, g, d, batch):
    def half_sq(g, d):
        xi = gj.methods.simultaneous_gradient(ctx.game, g, d, batch)
        return 0.5 * gj.methods.sq_norm(xi)
    return jax.grad(half_sq, argnums=(0, 1))(g, d)


def hamiltonian(ctx):
    players = ctx.players()

    def step(play, batches):
        batch, = batches
        return players.step_both(play, hamiltonian_direction(ctx, play.g, play.d, batch))

    return players.init, step


gj.register("method", "hamiltonian",
            gj.MethodSpec(hamiltonian, lambda d_updates: gj.methods.Slots(1, 0),
                          direction=hamiltonian_direction),
            doc="Hamiltonian gradient descent: both descend |xi|^2 / 2")


# A stabiliser of the game: the drift term of Karras et al. (2018, "Progressive growing of
# GANs", Appendix A.1), eps_drift E[D(x_real)^2] added to the discriminator's loss, which keeps
# a critic's values near 0; eps_drift is a traced option (0.001 in the paper). Switched on by
# `stabilisers = ["drift"]`.
def drift_wrap(static, hp, game, view):
    eps = gj.option_values(static, "stabiliser", "drift", hp)["eps"]

    def d_loss(g, d, batch):
        real, _ = view.inputs(g, batch)
        return game.d_loss(g, d, batch) + eps * jnp.mean(view.d_apply(d, real) ** 2)

    return game._replace(d_loss=d_loss)


gj.register("stabiliser", "drift", gj.Stabiliser(
    wrap=drift_wrap,
    options=(gj.Option("eps", 0.001, "the drift term's weight eps_drift",
                       check=lambda e: None if e >= 0 else "must be a non-negative number",
                       traced=True),)),
    doc="the drift term eps E[D(real)^2] on the discriminator (Karras et al. 2018)")
