"""GAN losses on discriminator logits, in the minimise convention, and gradient penalties.

Every loss takes raw discriminator outputs (logits, or critic values for WGAN) and returns a
batch mean to be *minimised*. They are written with `softplus` / `log_sigmoid` so that no finite
logit gives inf or NaN. The seed notebook's *maximised* objectives are their negatives:

  seed L_D  = E log D(x) + E log(1 - D(G(z)))  = -nonsaturating.d_loss
  seed L_G  = E log D(G(z))                    = -nonsaturating.g_loss   (non-saturating)
  seed minimax G objective E log(1 - D(G(z))) =  minimax.g_loss           (minimised)

The relativistic losses (Jolicoeur-Martineau 2018) compare each real logit with a fake one (or
with the other sample's mean), so their generator term reads the real logits too
(`Loss.g_real`); training then gives the generator's step real samples, which no other loss
draws, so every other loss's numbers are those it always had:

  rsgan:  D: E softplus(-(r_i - f_i))                   G: E softplus(-(f_i - r_i))
  ragan:  D: E softplus(-(r - mean f)) + E softplus(f - mean r)
          G: E softplus(-(f - mean r)) + E softplus(r - mean f)
  rpgan:  R3GAN's relativistic pairing loss (Huang et al. 2024), the same function as rsgan
          (their released Trainer: softplus(-(fake - real)) for G, softplus(-(real - fake))
          for D); R3GAN's objective is rpgan with r1_weight = r2_weight = gamma.

r_i, f_i: the i-th real and fake logits of a batch (paired in draw order), mean over the batch.

Penalties (added to the discriminator's loss, weight traced):

  gradient_penalty: E_xhat (||grad_x D(xhat)|| - 1)^2, xhat = u x_real + (1 - u) x_fake,
                    u ~ U(0, 1) per sample (Gulrajani et al. 2017); used with weight lambda.
  r1_penalty:       E_real ||grad_x D(x)||^2 / 2, so that weight gamma gives Mescheder et al.
                    (2018)'s gamma/2 E||grad D||^2.  r2_penalty: the same on fake samples.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gan_jax.core import registry


class Loss(NamedTuple):
    """A GAN objective, the loss protocol: two functions of discriminator logits, each a batch
    mean that its player *minimises*.

    d_loss(real_logits_N, fake_logits_N) -> f32[]: the discriminator's loss.
    g_loss(fake_logits_N) -> f32[]: the generator's loss; with `g_real`, g_loss(fake_logits_N,
      real_logits_N), the real logits of the same step (relativistic losses).
    clip: whether the discriminator's parameters are clipped to [-clip, clip] after each of
      its updates (WGAN's Lipschitz constraint).
    gp_weight: the gradient penalty's weight when a configuration leaves `gp_weight` unset
      (10 for WGAN-GP, Gulrajani et al. 2017; 0, no penalty, for the others).
    g_real: whether g_loss reads the real logits. Only then does the generator's step draw
      real samples (the alternating method's generator batch has none otherwise), so a loss
      without it costs nothing for them and keeps its numbers.
    options: the loss's own options (registry.Option), set in a configuration as
      "<loss>.<option>"; d_loss and g_loss then take each one's value as a keyword argument
      of its name (a traced option's as an f32[] array): `d_loss(real, fake, margin=...)`.

    Both logit arrays have one entry per sample (per pack with PacGAN's packing), N real and N
    fake, the i-th of each drawn together; the functions are traced, so they must be written
    in jax.numpy, and are differentiated with respect to the logits' inputs.
    """

    d_loss: Callable[[jax.Array, jax.Array], jax.Array]
    g_loss: Callable[..., jax.Array]
    clip: bool = False
    gp_weight: float = 0.0
    g_real: bool = False
    options: tuple = ()

    def generator(self, fake_logits, real_logits=None) -> jax.Array:
        """The generator's loss, given the real logits where it reads them (`g_real`)."""
        if self.g_real:
            if real_logits is None:
                raise ValueError("a relativistic loss's generator term needs the real logits")
            return self.g_loss(fake_logits, real_logits)
        return self.g_loss(fake_logits)


def _mean(x):
    return jnp.mean(x)


# Non-saturating / minimax: D(x) = sigmoid(s); -log sigmoid(s) = softplus(-s),
# -log(1 - sigmoid(s)) = softplus(s).
def nonsaturating_d_loss(real, fake):
    return _mean(jax.nn.softplus(-real)) + _mean(jax.nn.softplus(fake))


def nonsaturating_g_loss(fake):
    return _mean(jax.nn.softplus(-fake))


def minimax_g_loss(fake):
    # E log(1 - sigmoid(f)), minimised by G.
    return -_mean(jax.nn.softplus(fake))


# LSGAN on probabilities, as in the seed: (sigmoid(s) - 1)^2 = sigmoid(-s)^2.
def lsgan_d_loss(real, fake):
    return 0.5 * (_mean(jax.nn.sigmoid(-real) ** 2) + _mean(jax.nn.sigmoid(fake) ** 2))


def lsgan_g_loss(fake):
    return 0.5 * _mean(jax.nn.sigmoid(-fake) ** 2)


# WGAN: the critic maximises E f(x) - E f(G(z)).
def wgan_d_loss(real, fake):
    return _mean(fake) - _mean(real)


def wgan_g_loss(fake):
    return -_mean(fake)


# Hinge (Lim & Ye 2017; Miyato et al. 2018).
def hinge_d_loss(real, fake):
    return _mean(jax.nn.relu(1.0 - real)) + _mean(jax.nn.relu(1.0 + fake))


def hinge_g_loss(fake):
    return -_mean(fake)


# Relativistic (Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element
# missing from standard GAN", eqs. for RSGAN and RaSGAN; module docstring).
def rsgan_d_loss(real, fake):
    return _mean(jax.nn.softplus(-(real - fake)))


def rsgan_g_loss(fake, real):
    return _mean(jax.nn.softplus(-(fake - real)))


def ragan_d_loss(real, fake):
    return (_mean(jax.nn.softplus(-(real - jnp.mean(fake))))
            + _mean(jax.nn.softplus(fake - jnp.mean(real))))


def ragan_g_loss(fake, real):
    return (_mean(jax.nn.softplus(-(fake - jnp.mean(real))))
            + _mean(jax.nn.softplus(real - jnp.mean(fake))))


def check_loss(obj) -> str | None:
    """What a loss breaks of the protocol (:class:`Loss`), or None."""
    if not isinstance(obj, Loss):
        return f"must be a gan_jax.Loss(d_loss, g_loss, ...), got {type(obj).__name__}"
    if not callable(obj.d_loss) or not callable(obj.g_loss):
        return "d_loss and g_loss must be functions of logits"
    if not isinstance(obj.clip, bool) or not isinstance(obj.g_real, bool):
        return "clip and g_real must be true or false"
    if not isinstance(obj.gp_weight, (int, float)) or not obj.gp_weight >= 0:
        return f"gp_weight must be a non-negative number, got {obj.gp_weight!r}"
    return None


# The registry of losses (gan_jax.core.registry): configuration validates `loss` against it.
LOSSES: dict[str, Loss] = registry.declare(
    "loss", check_loss, "a GAN objective on logits (gan_jax.Loss)", "loss")
for _name, _loss, _doc in (
        ("nonsaturating", Loss(nonsaturating_d_loss, nonsaturating_g_loss),
         "the non-saturating GAN loss (Goodfellow et al. 2014), the seed's"),
        ("minimax", Loss(nonsaturating_d_loss, minimax_g_loss),
         "the minimax GAN loss: G minimises E log(1 - D(G(z)))"),
        ("lsgan", Loss(lsgan_d_loss, lsgan_g_loss),
         "least squares on probabilities (Mao et al. 2017), as in the seed"),
        ("wgan", Loss(wgan_d_loss, wgan_g_loss, clip=True),
         "WGAN with weight clipping (Arjovsky et al. 2017)"),
        ("wgan_gp", Loss(wgan_d_loss, wgan_g_loss, gp_weight=10.0),
         "WGAN with the gradient penalty, lambda 10 (Gulrajani et al. 2017)"),
        ("hinge", Loss(hinge_d_loss, hinge_g_loss), "hinge loss (Lim & Ye 2017; Miyato et al. 2018)"),
        ("rsgan", Loss(rsgan_d_loss, rsgan_g_loss, g_real=True),
         "relativistic standard GAN, paired (Jolicoeur-Martineau 2018)"),
        ("ragan", Loss(ragan_d_loss, ragan_g_loss, g_real=True),
         "relativistic average GAN, RaSGAN (Jolicoeur-Martineau 2018)"),
        ("rpgan", Loss(rsgan_d_loss, rsgan_g_loss, g_real=True),
         "relativistic pairing GAN of R3GAN (Huang et al. 2024); the same function as rsgan")):
    registry.register("loss", _name, _loss, doc=_doc)


def get_loss(name: str) -> Loss:
    return LOSSES[name]


def bind(loss: Loss, values: dict | None) -> Loss:
    """A loss with its options' values given (`Loss.options`): its functions take no more
    than the logits. A loss without options is returned as it is."""
    if not values:
        return loss
    return loss._replace(d_loss=functools.partial(loss.d_loss, **values),
                         g_loss=functools.partial(loss.g_loss, **values), options=())


def pick(names: tuple[str, ...], index, options: "list[dict] | None" = None) -> Loss:
    """The loss `names[index]`, where one program holds several losses and each run picks its
    own by a traced integer index; `options`, each loss's option values (`bind`), in the
    order of `names`.

    With one name this is that loss itself (no index is read, the program is the single-loss
    one). With several, each value is `lax.switch` over the losses, which under `vmap` computes
    every branch and selects each run's own; `clip` is then a traced bool (the run's loss
    clips), or the plain bool when all the losses agree.
    """
    chosen = [bind(LOSSES[n], o) for n, o in zip(names, options or [None] * len(names))]
    if len(names) == 1:
        return chosen[0]

    def d_loss(real, fake):
        return jax.lax.switch(index, [c.d_loss for c in chosen], real, fake)

    g_real = {c.g_real for c in chosen}
    if len(g_real) != 1:
        raise ValueError(f"pick: losses {names} differ in g_real; they cannot share a program")
    g_real = g_real.pop()

    def g_loss(fake, *real):
        return jax.lax.switch(index, [c.g_loss for c in chosen], fake, *real)

    clips = {c.clip for c in chosen}
    clip = clips.pop() if len(clips) == 1 else jnp.asarray([c.clip for c in chosen])[index]
    return Loss(d_loss, g_loss, clip=clip, g_real=g_real)


# ----------------------------------------------------------------------------- penalties

def _input_grads(d_apply, d_params, x_ND):
    """f32[N, D]: the gradient of each sample's logit with respect to that sample."""
    return jax.vmap(jax.grad(lambda x_D: d_apply(d_params, x_D[None])[0]))(x_ND)


def gradient_penalty(d_apply, d_params, real_ND, fake_ND, u_N):
    """E (||grad D(xhat)||_2 - 1)^2 on per-sample interpolates (multiply by lambda).

    u_N: f32[N] or f32[N, 1] interpolation weights, u ~ U(0, 1) per sample.
    """
    u_N1 = jnp.reshape(u_N, (real_ND.shape[0], 1))
    xhat_ND = u_N1 * real_ND + (1.0 - u_N1) * fake_ND
    g_ND = _input_grads(d_apply, d_params, xhat_ND)
    # sqrt with a floor keeps the gradient finite where a sample's input gradient is zero.
    norm_N = jnp.sqrt(jnp.sum(g_ND**2, axis=-1) + 1e-12)
    return jnp.mean((norm_N - 1.0) ** 2)


def r1_penalty(d_apply, d_params, real_ND):
    """E_real ||grad D(x)||^2 / 2 (multiply by gamma)."""
    g_ND = _input_grads(d_apply, d_params, real_ND)
    return 0.5 * jnp.mean(jnp.sum(g_ND**2, axis=-1))


def r2_penalty(d_apply, d_params, fake_ND):
    """E_fake ||grad D(x)||^2 / 2 (multiply by gamma)."""
    return r1_penalty(d_apply, d_params, fake_ND)


def clip_params(params, clip):
    """WGAN weight clipping: every parameter to [-clip, clip]."""
    return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)
