"""Exact analysis where the answer is known: closed-form quantities, local stability, the Dirac-
GAN, the seed notebook's runs.
"""
