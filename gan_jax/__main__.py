from gan_jax.cli import run_process
run_process()
