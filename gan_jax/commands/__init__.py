"""The command line: every `python -m gan_jax` command's arguments and `main`; nothing below
imports it.
"""
