from gan_jax.commands.cli import run_process
run_process()
