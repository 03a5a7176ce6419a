"""The released toy generators, transcribed to Python 3 NumPy as the tests' reference.

WGAN-GP: igul222/improved_wgan_training, gan_toy.py (commit fa66c574a54c4916d27c55441d33753dcc78f6bc),
`inf_train_gen`. FFJORD: rtqichen/ffjord, lib/toy_data.py (commit
994864ad0517db3549717c25170f9b71e96788b1), `inf_train_gen`. scikit-learn's make_swiss_roll,
make_moons and make_circles (sklearn/datasets/_samples_generator.py, commit
00597594c3eae7432de0e0ebf6c3c83d84bf499d) are transcribed beside them, since scikit-learn is
not a dependency. Only Python 2 idioms (xrange, integer `/`) and the global NumPy generator
(replaced by `rng`) are changed; every constant and every operation is the release's.
"""

import numpy as np


def make_swiss_roll(n_samples, noise, rng):
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n_samples))
    y = 21 * rng.uniform(size=n_samples)
    x = t * np.cos(t)
    z = t * np.sin(t)
    X = np.vstack((x, y, z))
    X += noise * rng.standard_normal(size=(3, n_samples))
    return X.T, t


def make_circles(n_samples, factor, noise, rng):
    n_samples_out = n_samples // 2
    n_samples_in = n_samples - n_samples_out
    linspace_out = np.linspace(0, 2 * np.pi, n_samples_out, endpoint=False)
    linspace_in = np.linspace(0, 2 * np.pi, n_samples_in, endpoint=False)
    X = np.vstack([np.append(np.cos(linspace_out), np.cos(linspace_in) * factor),
                   np.append(np.sin(linspace_out), np.sin(linspace_in) * factor)]).T
    X = rng.permutation(X)
    X += rng.normal(scale=noise, size=X.shape)
    return X, None


def make_moons(n_samples, noise, rng):
    n_samples_out = n_samples // 2
    n_samples_in = n_samples - n_samples_out
    outer_circ_x = np.cos(np.linspace(0, np.pi, n_samples_out))
    outer_circ_y = np.sin(np.linspace(0, np.pi, n_samples_out))
    inner_circ_x = 1 - np.cos(np.linspace(0, np.pi, n_samples_in))
    inner_circ_y = 1 - np.sin(np.linspace(0, np.pi, n_samples_in)) - 0.5
    X = np.vstack([np.append(outer_circ_x, inner_circ_x),
                   np.append(outer_circ_y, inner_circ_y)]).T
    X = rng.permutation(X)
    X += rng.normal(scale=noise, size=X.shape)
    return X, None


def wgangp(dataset, batch_size, rng):
    """One batch of gan_toy.py's inf_train_gen (the 25 Gaussians: a batch of its fixed set)."""
    if dataset == "25gaussians":
        data = []
        for i in range(100000 // 25):
            for x in range(-2, 3):
                for y in range(-2, 3):
                    point = rng.randn(2) * 0.05
                    point[0] += 2 * x
                    point[1] += 2 * y
                    data.append(point)
        data = np.array(data, dtype="float32")
        rng.shuffle(data)
        data /= 2.828  # stdev
        return data[:batch_size]
    if dataset == "swissroll":
        data = make_swiss_roll(batch_size, 0.25, rng)[0]
        data = data.astype("float32")[:, [0, 2]]
        data /= 7.5  # stdev plus a little
        return data
    if dataset == "8gaussians":
        scale = 2.
        centers = [(1, 0), (-1, 0), (0, 1), (0, -1), (1. / np.sqrt(2), 1. / np.sqrt(2)),
                   (1. / np.sqrt(2), -1. / np.sqrt(2)), (-1. / np.sqrt(2), 1. / np.sqrt(2)),
                   (-1. / np.sqrt(2), -1. / np.sqrt(2))]
        centers = [(scale * x, scale * y) for x, y in centers]
        data = []
        for i in range(batch_size):
            point = rng.randn(2) * .02
            center = centers[rng.randint(8)]    # random.choice(centers)
            point[0] += center[0]
            point[1] += center[1]
            data.append(point)
        data = np.array(data, dtype="float32")
        data /= 1.414  # stdev
        return data
    raise KeyError(dataset)


def ffjord(data, batch_size, rng):
    """One batch of lib/toy_data.py's inf_train_gen."""
    if data == "swissroll":
        data = make_swiss_roll(batch_size, 1.0, rng)[0]
        data = data.astype("float32")[:, [0, 2]]
        data /= 5
        return data
    if data == "circles":
        data = make_circles(batch_size, .5, 0.08, rng)[0]
        data = data.astype("float32")
        data *= 3
        return data
    if data == "rings":
        n_samples4 = n_samples3 = n_samples2 = batch_size // 4
        n_samples1 = batch_size - n_samples4 - n_samples3 - n_samples2
        linspace4 = np.linspace(0, 2 * np.pi, n_samples4, endpoint=False)
        linspace3 = np.linspace(0, 2 * np.pi, n_samples3, endpoint=False)
        linspace2 = np.linspace(0, 2 * np.pi, n_samples2, endpoint=False)
        linspace1 = np.linspace(0, 2 * np.pi, n_samples1, endpoint=False)
        circ4_x = np.cos(linspace4)
        circ4_y = np.sin(linspace4)
        circ3_x = np.cos(linspace4) * 0.75
        circ3_y = np.sin(linspace3) * 0.75
        circ2_x = np.cos(linspace2) * 0.5
        circ2_y = np.sin(linspace2) * 0.5
        circ1_x = np.cos(linspace1) * 0.25
        circ1_y = np.sin(linspace1) * 0.25
        X = np.vstack([
            np.hstack([circ4_x, circ3_x, circ2_x, circ1_x]),
            np.hstack([circ4_y, circ3_y, circ2_y, circ1_y])
        ]).T * 3.0
        X = rng.permutation(X)
        X = X + rng.normal(scale=0.08, size=X.shape)
        return X.astype("float32")
    if data == "moons":
        data = make_moons(batch_size, 0.1, rng)[0]
        data = data.astype("float32")
        data = data * 2 + np.array([-1, -0.2])
        return data
    if data == "8gaussians":
        scale = 4.
        centers = [(1, 0), (-1, 0), (0, 1), (0, -1), (1. / np.sqrt(2), 1. / np.sqrt(2)),
                   (1. / np.sqrt(2), -1. / np.sqrt(2)), (-1. / np.sqrt(2), 1. / np.sqrt(2)),
                   (-1. / np.sqrt(2), -1. / np.sqrt(2))]
        centers = [(scale * x, scale * y) for x, y in centers]
        dataset = []
        for i in range(batch_size):
            point = rng.randn(2) * 0.5
            idx = rng.randint(8)
            center = centers[idx]
            point[0] += center[0]
            point[1] += center[1]
            dataset.append(point)
        dataset = np.array(dataset, dtype="float32")
        dataset /= 1.414
        return dataset
    if data == "pinwheel":
        radial_std = 0.3
        tangential_std = 0.1
        num_classes = 5
        num_per_class = batch_size // 5
        rate = 0.25
        rads = np.linspace(0, 2 * np.pi, num_classes, endpoint=False)
        features = rng.randn(num_classes * num_per_class, 2) \
            * np.array([radial_std, tangential_std])
        features[:, 0] += 1.
        labels = np.repeat(np.arange(num_classes), num_per_class)
        angles = rads[labels] + rate * np.exp(features[:, 0])
        rotations = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)])
        rotations = np.reshape(rotations.T, (-1, 2, 2))
        return 2 * rng.permutation(np.einsum("ti,tij->tj", features, rotations))
    if data == "2spirals":
        n = np.sqrt(rng.rand(batch_size // 2, 1)) * 540 * (2 * np.pi) / 360
        d1x = -np.cos(n) * n + rng.rand(batch_size // 2, 1) * 0.5
        d1y = np.sin(n) * n + rng.rand(batch_size // 2, 1) * 0.5
        x = np.vstack((np.hstack((d1x, d1y)), np.hstack((-d1x, -d1y)))) / 3
        x += rng.randn(*x.shape) * 0.1
        return x
    if data == "checkerboard":
        x1 = rng.rand(batch_size) * 4 - 2
        x2_ = rng.rand(batch_size) - rng.randint(0, 2, batch_size) * 2
        x2 = x2_ + (np.floor(x1) % 2)
        return np.concatenate([x1[:, None], x2[:, None]], 1) * 2
    raise KeyError(data)


def released(name, n, seed=0):
    """n samples of the registered target `name` from its released generator (float64)."""
    rng = np.random.RandomState(seed)
    source, data = name.split("_", 1)
    if source == "wgangp":
        return np.asarray(wgangp(data, n, rng), np.float64)
    return np.asarray(ffjord(data, n, rng), np.float64)
