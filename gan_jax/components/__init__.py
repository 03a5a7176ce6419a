"""The components by protocol and their built-ins: targets, generator and discriminator families,
losses, metrics, training methods, optimisers.
"""
