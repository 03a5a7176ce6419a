"""The Dirac-GAN: every method of gan_jax.components.methods held to its closed form (gan_jax.analysis.dirac).

Derivations. With the library's losses on the one real point 0 and the one generated point
theta, and the logit psi x, the minimax loss is the game L(theta, psi) = f(psi theta) + f(0)
of Mescheder et al. (2018) in the minimise convention (G minimises L, D minimises
d_loss = -L) with f(t) = -softplus(t) = log(1 - sigmoid(t)):

  d_loss = softplus(-psi 0) + softplus(psi theta) = -f(0) - f(psi theta),  g_loss = f(psi theta).

So a = f'(0) = -sigmoid(0) = -1/2 and f''(0) = -1/4. The non-saturating g_loss softplus(-psi
theta) has the same first-order terms. Near (0, 0), xi = (dg/dtheta, dd/dpsi) = (a psi, -a theta)
to first order: the Jacobian of xi is H = [[0, a], [-a, 0]], the field's J = -H has
eigenvalues +-i a, and H^T H = a^2 I. For lsgan a = -1/8 (sigma(0) sigma'(0)), for wgan and
hinge a = -1. Below, h is both players' SGD step size and "field" is gan_jax.analysis.dirac's vector
field (the module docstring says which one each method has).

  simultaneous    map I + hJ: 1 +- i h a, radius sqrt(1 + h^2 a^2) > 1 for every h > 0.
  alternating     psi' = psi + h a theta, then theta' = theta - h a psi': the map
                  [[1 - h^2 a^2, -h a], [h a, 1]] has determinant 1 and trace 2 - h^2 a^2:
                  1 - h^2 a^2 / 2 +- i h a sqrt(1 - h^2 a^2 / 4), on the unit circle for h|a| < 2.
  extragradient   I + hJ + h^2 J^2: 1 - h^2 a^2 +- i h a, radius sqrt(1 - h^2 a^2 + h^4 a^4).
  optimistic      x' = x - 2hHx + hHx_prev over the state (x, previous update): per eigenvalue
                  b = +-i a of H, mu^2 - (1 - 2hb) mu - hb = 0, i.e. mu = (1 - 2hb +-
                  sqrt(1 + 4h^2 b^2)) / 2; for 2h|a| <= 1 the radius is
                  sqrt((1 + sqrt(1 - 4h^2 a^2)) / 2) < 1.
  extragradient_past  with the stored look-ahead gradient g: x' = (I - hH) x + h^2 H g,
                  g' = H x - h H g; per b the matrix [[1 - hb, h^2 b], [b, -hb]] has the same
                  characteristic polynomial as optimistic (the two agree on linear games).
  consensus       field -(H + gamma H^T H) = J - gamma a^2 I: -gamma a^2 +- i a.
  sga             A = (H - H^T)/2 = H, A^T xi linearises to H^T H = a^2 I, and the alignment's
                  sign is +1 at xi = 0 (<xi, H^T xi> = 0 there, so epsilon decides): Balduzzi
                  et al.'s lambda is that sign, field J - a^2 I, -a^2 +- i a (-0.25 +- 0.5i);
                  the scaled generalisation (lambda = c times the sign) gives -c a^2 +- i a.
  unrolled        psi_k(theta) = psi + k h a theta; G descends g_loss(theta, psi_k(theta)), whose
                  gradient is a psi_k + a theta * k h a = a psi + 2 k h a^2 theta (the second
                  term is the gradient through the unrolling). Field [[-2 k h a^2, -a], [a, 0]]:
                  -k h a^2 +- sqrt(k^2 h^2 a^4 - a^2); map I + h J (both players step from x),
                  radius^2 = 1 + h^2 a^2 (1 - 2k) when the eigenvalues are complex. A
                  stopped gradient would give -k h a^2 / 2 as the real part.
  lookahead       k inner steps M, then slow += alpha (fast - slow): per cycle
                  (1 - alpha) I + alpha M^k on the slow weights and 0 on fast - slow, so the
                  cycle's eigenvalues are 1 - alpha + alpha mu^k (mu = 1 +- i h a) and 0, 0.
  R1 (gamma)      d_loss += gamma r1_penalty = gamma/2 psi^2: J = [[0, -a], [a, -gamma]],
                  -gamma/2 +- sqrt(gamma^2/4 - a^2) (Mescheder et al. 2018, Section 4).
  NK (eta)        g_loss += eta (dd/dpsi)^2 = eta a^2 theta^2: J = [[-2 eta a^2, -a], [a, 0]],
                  -eta a^2 +- sqrt(eta^2 a^4 - a^2) (eta multiplies the squared norm itself).
  noise (sigma)   d_loss's second psi-derivative is -f''(0) E[eps_real^2 + eps_fake^2] =
                  sigma^2 / 2: J = [[0, -a], [a, 2 f''(0) sigma^2]],
                  f''(0) sigma^2 +- sqrt(f''(0)^2 sigma^4 - a^2); wgan (f'' = 0) stays at +-i.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.analysis import dirac
from gan_jax.components import losses
from gan_jax.commands.cli import main as cli_main
from sweep_testing import run_cli

# Methods whose Dirac-GAN programs (seconds of compilation each) only the slow run compiles:
# each shares its test and closed form with a method the default run keeps (sga with
# consensus, extragradient_past with optimistic), and tests/test_methods.py checks its update
# rule by hand in the default run.
SLOW_METHODS = ("sga", "extragradient_past")


def methods_param(*names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_METHODS else n for n in names]


A = {"nonsaturating": -0.5, "minimax": -0.5, "lsgan": -0.125, "wgan": -1.0, "hinge": -1.0}
a = A["nonsaturating"]
F2 = -0.25          # f''(0) of the sigmoid losses
H = 0.1


def analyze(method, **kw):
    result = dirac.analyze(dirac.Options(method, **kw))
    assert result.fixed_point_residual <= 1e-12 and result.field_residual <= 1e-12
    return result


def ordered(z):
    z = np.asarray(z, complex).ravel()
    return np.array(sorted(z, key=lambda c: (round(c.real, 7), round(c.imag, 7))))


def assert_eigs(actual, expected, atol=1e-9):
    np.testing.assert_allclose(ordered(actual), ordered(expected), atol=atol)


def pair(re, disc):
    """re +- sqrt(disc), complex where disc < 0."""
    root = np.sqrt(complex(disc))
    return [re + root, re - root]


def radius(eigs):
    return float(np.max(np.abs(eigs)))


# ----------------------------------------------------------------------------- the game

def test_the_library_losses_are_mescheders_game():
    f = lambda t: -np.logaddexp(0.0, t)        # noqa: E731  -softplus
    minimax = dirac.dirac_game("minimax")
    nonsat = dirac.dirac_game("nonsaturating")
    r1 = dirac.dirac_game("nonsaturating", r1=3.0)

    @jax.jit    # every value below from one program (not an eager compilation per operation)
    def values(g, d):
        return dict(minimax_d=minimax.d_loss(g, d, None), minimax_g=minimax.g_loss(g, d, None),
                    nonsat_g=nonsat.g_loss(g, d, None),
                    r1_extra=r1.d_loss(g, d, None) - nonsat.d_loss(g, d, None),
                    r1_penalty=losses.r1_penalty(dirac.d_apply, d, jnp.zeros((1, 1))))

    for theta, psi in [(0.7, -0.4), (-1.3, 2.0), (0.0, 0.5)]:
        v = values(jnp.array([theta]), jnp.array([psi]))
        assert float(v["minimax_d"]) == pytest.approx(-f(psi * theta) - f(0.0), rel=1e-6)
        assert float(v["minimax_g"]) == pytest.approx(f(psi * theta), rel=1e-6)
        assert float(v["nonsat_g"]) == pytest.approx(-f(-psi * theta), rel=1e-6)
    # R1's scaling: gamma r1_penalty = gamma/2 psi^2 on the Dirac-GAN.
    v = values(jnp.array([0.0]), jnp.array([0.8]))
    assert float(v["r1_extra"]) == pytest.approx(3.0 / 2 * 0.8**2, rel=1e-6)
    assert float(v["r1_penalty"]) == pytest.approx(0.32)


@pytest.mark.parametrize("loss", [
    "nonsaturating", "lsgan",      # the two values of a; minimax has nonsaturating's a
    pytest.param("minimax", marks=pytest.mark.slow)])
def test_unregularised_losses_have_imaginary_eigenvalues(loss):
    r = analyze("simultaneous", loss=loss)
    assert_eigs(r.field_eigenvalues, [1j * A[loss], -1j * A[loss]])
    assert r.flow == "cycles" and r.verdict == "diverges"


# ----------------------------------------------------------------------------- methods

@pytest.mark.parametrize("h", [0.01, 0.1, 0.5, 2.0])
def test_simultaneous_diverges_for_every_step_size(h):
    r = analyze("simultaneous", lr=h)
    assert_eigs(r.field_eigenvalues, [1j * a, -1j * a])
    assert_eigs(r.map_eigenvalues, [1 + 1j * h * a, 1 - 1j * h * a])
    assert r.radius == pytest.approx(math.sqrt(1 + h**2 * a**2), abs=1e-12) and r.radius > 1
    assert r.verdict == "diverges" and r.state_size == 2


@pytest.mark.parametrize("h", [0.01, 0.1, 1.0, 3.9])
def test_alternating_circles_on_the_unit_circle(h):
    r = analyze("alternating", lr=h)
    re, im = 1 - h**2 * a**2 / 2, h * a * math.sqrt(1 - h**2 * a**2 / 4)
    assert_eigs(r.map_eigenvalues, [re + 1j * im, re - 1j * im])
    assert r.radius == pytest.approx(1.0, abs=1e-12) and r.verdict == "cycles"
    assert analyze("alternating", lr=5.0).verdict == "diverges"   # h |a| > 2: real, one > 1


@pytest.mark.parametrize("h", [0.1, 1.0, 2.5])
def test_extragradient(h):
    r = analyze("extragradient", lr=h)
    assert_eigs(r.map_eigenvalues, [1 - h**2 * a**2 + 1j * h * a, 1 - h**2 * a**2 - 1j * h * a])
    rho = math.sqrt(1 - h**2 * a**2 + h**4 * a**4)
    assert r.radius == pytest.approx(rho, abs=1e-12)
    assert r.verdict == ("converges" if h * abs(a) < 1 else "diverges")


def optimistic_roots(h):
    return [(1 - 2 * h * b + s * np.sqrt(1 + 4 * h**2 * b**2 + 0j)) / 2
            for b in (1j * a, -1j * a) for s in (1, -1)]


@pytest.mark.parametrize("method", methods_param("optimistic", "extragradient_past"))
@pytest.mark.parametrize("h", [0.1, 0.8, 3.0])      # (2 h |a| = 1 is a double root)
def test_optimistic_and_extrapolation_from_the_past(method, h):
    r = analyze(method, lr=h)
    assert r.state_size == 4          # the parameters and a stored update / gradient
    assert_eigs(r.map_eigenvalues, optimistic_roots(h))
    assert_eigs(r.field_eigenvalues, [1j * a, -1j * a])
    if 2 * h * abs(a) <= 1:
        assert r.radius == pytest.approx(math.sqrt((1 + math.sqrt(1 - 4 * h**2 * a**2)) / 2),
                                         abs=1e-12)
    assert r.verdict == ("converges" if r.radius < 1 else "diverges")


@pytest.mark.parametrize("method", methods_param("consensus", "sga"))
@pytest.mark.parametrize("weight", [0.5, 10.0])
def test_consensus_and_scaled_sga(method, weight):
    coef = {"consensus": dict(gamma=weight), "sga": dict(sga_lambda=weight, sga_scaled=True)}
    r = analyze(method, lr=H, **coef[method])
    field = [-weight * a**2 + 1j * a, -weight * a**2 - 1j * a]
    assert_eigs(r.field_eigenvalues, field)
    assert_eigs(r.map_eigenvalues, [1 + H * z for z in field])
    assert r.flow == "converges" and r.verdict == "converges"


@pytest.mark.slow   # a program of its own (see SLOW_METHODS)
def test_sga_sets_lambda_to_the_alignment_sign():
    # Balduzzi et al.'s Algorithm 1: lambda = +-1, so the field is J - a^2 I whatever
    # sga_lambda would have scaled (the generalisation at 0.5 gives -0.125 +- 0.5i).
    r = analyze("sga", lr=H)
    field = [-a**2 + 1j * a, -a**2 - 1j * a]
    assert_eigs(r.field_eigenvalues, field)                   # -0.25 +- 0.5i
    assert_eigs(r.map_eigenvalues, [1 + H * z for z in field])
    assert r.radius == pytest.approx(abs(1 + H * field[0]), abs=1e-12)
    scaled = analyze("sga", lr=H, sga_lambda=0.5, sga_scaled=True)
    assert_eigs(scaled.field_eigenvalues, [-0.125 + 0.5j, -0.125 - 0.5j])


@pytest.mark.parametrize("h", [0.1, 0.4])
def test_unrolled_field_includes_the_gradient_through_the_unrolling(h):
    k = 5
    r = analyze("unrolled", lr=h, steps_k=k)
    field = pair(-k * h * a**2, k**2 * h**2 * a**4 - a**2)
    assert_eigs(r.field_eigenvalues, field)
    assert_eigs(r.map_eigenvalues, [1 + h * z for z in field])
    assert not np.allclose(r.field_eigenvalues.real, -k * h * a**2 / 2)   # not stopped
    if k * h * abs(a) < 1:
        assert r.radius == pytest.approx(math.sqrt(1 + h**2 * a**2 * (1 - 2 * k)), abs=1e-12)
    assert r.verdict == "converges"


def test_unrolled_generator_gradient_is_the_total_derivative():
    """The library's unrolled step against finite differences of theta -> g_loss(theta,
    psi_k(theta)), psi_k by k explicit SGD steps (float64, NumPy)."""
    theta, psi, h, k = 0.7, -0.4, 0.3, 3
    sig = lambda t: 1 / (1 + np.exp(-t))                                  # noqa: E731
    softplus = lambda t: np.log1p(np.exp(t))                              # noqa: E731

    def psi_k(th):
        p = psi
        for _ in range(k):
            p = p - h * th * sig(p * th)     # d d_loss / d psi = theta sigmoid(psi theta)
        return p

    def surrogate(th):
        return softplus(-psi_k(th) * th)     # the non-saturating g_loss

    delta = 1e-5
    total = (surrogate(theta + delta) - surrogate(theta - delta)) / (2 * delta)
    stopped = -psi_k(theta) * sig(-psi_k(theta) * theta)
    with jax.enable_x64(True):
        method = dirac.make("unrolled", dirac.dirac_game("nonsaturating"), h, {"k": k})
        out = jax.jit(lambda g, d: method.step(method.init(g, d), (None,)))(
            jnp.array([theta]), jnp.array([psi]))
        library = (theta - float(out.g[0])) / h
        d_step = float(out.d[0])
    assert library == pytest.approx(total, abs=1e-8)
    assert abs(library - stopped) > 1e-2           # the difference the unrolling makes
    assert d_step == pytest.approx(psi - h * theta * sig(psi * theta), abs=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_lookahead_cycle(alpha):
    k = 5
    r = analyze("lookahead", lr=H, steps_k=k, alpha=alpha)
    mus = [1 + 1j * H * a, 1 - 1j * H * a]
    cycle = [1 - alpha + alpha * mu**k for mu in mus]
    assert r.state_size == 4 and r.steps_per_map == k
    assert_eigs(r.map_eigenvalues, cycle + [0, 0])
    assert r.cycle_radius == pytest.approx(radius(cycle), abs=1e-12)
    assert r.radius == pytest.approx(radius(cycle) ** (1 / k), abs=1e-12)
    # alpha = 1 is plain simultaneous play; alpha = 1/2 pulls it inside the unit circle.
    assert r.verdict == ("diverges" if alpha == 1 else "converges")
    if alpha == 1:
        assert r.radius == pytest.approx(math.sqrt(1 + H**2 * a**2), abs=1e-12)


# ----------------------------------------------------------------------------- regularisers

@pytest.mark.parametrize("gamma", [0.6, 1.0, 3.0])
def test_r1(gamma):
    r = analyze("simultaneous", r1=gamma)
    field = pair(-gamma / 2, gamma**2 / 4 - a**2)
    assert_eigs(r.field_eigenvalues, field, atol=1e-7)   # gamma = 1: a double root
    assert_eigs(r.map_eigenvalues, [1 + H * z for z in field], atol=1e-7)
    assert r.flow == "converges" and r.verdict == "converges"


@pytest.mark.parametrize("eta", [0.5, 4.0, 20.0])
def test_nagarajan_kolter(eta):
    r = analyze("simultaneous", nk_eta=eta)
    field = pair(-eta * a**2, eta**2 * a**4 - a**2)
    assert_eigs(r.field_eigenvalues, field)
    assert_eigs(r.map_eigenvalues, [1 + H * z for z in field])
    assert r.flow == "converges"


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_instance_noise(sigma):
    r = analyze("simultaneous", noise_std=sigma)
    field = pair(F2 * sigma**2, F2**2 * sigma**4 - a**2)
    assert_eigs(r.field_eigenvalues, field)
    assert r.flow == "converges"


def test_wgan_circles_with_clipping_or_noise_and_wgan_gp_has_no_linearisation():
    for extra in ({"clip": 0.01}, {"noise_std": 1.0}):
        sim = analyze("simultaneous", loss="wgan", **extra)
        assert_eigs(sim.field_eigenvalues, [1j, -1j])
        assert sim.radius == pytest.approx(math.sqrt(1 + H**2), abs=1e-12)
    alt = analyze("alternating", loss="wgan", clip=0.01)
    assert alt.verdict == "cycles" and sim.verdict == "diverges"
    gp = analyze("simultaneous", loss="wgan_gp", gp=10.0)
    assert not gp.differentiable and gp.field_eigenvalues is None and gp.radius is None
    assert gp.verdict.startswith("not differentiable")


@pytest.mark.parametrize("name", methods_param(*dirac.names()))
def test_every_method_is_analysed_over_its_whole_state(name):
    sizes = {"extragradient_past": 4, "optimistic": 4, "lookahead": 4}
    assert analyze(name).state_size == sizes.get(name, 2)


# ----------------------------------------------------------------------------- command line

def test_cli_json_and_table(capsys):
    assert cli_main(["dirac", "--method", "optimistic", "--lr", "0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "optimistic" and out["verdict"] == "converges"
    assert_eigs([complex(*z) for z in out["jacobian_eigenvalues"]], [0.5j, -0.5j])
    assert out["update_spectral_radius"] == pytest.approx(
        math.sqrt((1 + math.sqrt(1 - 4 * 0.01 * 0.25)) / 2), abs=1e-12)
    assert cli_main(["dirac", "--method", "lookahead", "--steps-k", "5"]) == 0
    text = capsys.readouterr().out
    assert "cycle radius ^ (1/k)" in text and "| verdict | converges |" in text


@pytest.mark.parametrize("flags, expected", [
    (["--method", "leapfrog"], "--method: got 'leapfrog'; must be one of alternating"),
    (["--method", "sga", "--loss", "lsgn"], "(did you mean 'lsgan'?)"),
    (["--method", "sga", "--lr", "0"], "--lr: got 0.0; must be a positive number"),
    (["--method", "sga", "--sga-lambda", "0.5"],
     "--sga-lambda: got 0.5; applies only with --sga-scaled"),
    (["--method", "lookahead", "--alpha", "1.5"], "--alpha: got 1.5"),
    (["--method", "unrolled", "--steps-k", "0"], "--steps-k: got 0"),
    (["--method", "simultaneous", "--noise-std", "nan"], "--noise-std: got nan"),
])
def test_cli_bad_input_exits_2_with_one_line(capsys, flags, expected):
    assert cli_main(["dirac", *flags]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


@pytest.mark.slow   # a process of its own; test_cli_bad_input_exits_2_with_one_line checks the
def test_cli_bad_method_in_a_process():     # same message in-process
    done = run_cli("dirac", "--method", "leapfrog", timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: --method: got 'leapfrog'; must be one of " + ", ".join(dirac.names())]


def test_r3gan_objective_through_the_command_options():
    # --loss rpgan --r1 g --r2 g: J's psi-psi entry is -2g, eigenvalues -g +- sqrt(g^2 - a^2)
    from gan_jax.analysis import dirac as d
    g = 1.0
    a = d.analyze(d.Options("simultaneous", lr=0.1, loss="rpgan", r1=g, r2=g))
    root = np.sqrt(g**2 - 0.25)
    np.testing.assert_allclose(np.sort(a.field_eigenvalues.real), [-g - root, -g + root],
                               atol=1e-9)
    np.testing.assert_allclose(a.radius, 1 + 0.1 * (-g + root), atol=1e-9)
    assert a.verdict == "converges"
