"""One run: its state, step, game, loop and evaluation, written for one run and vmapped from
outside.
"""
