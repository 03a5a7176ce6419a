from gan_jax.cli import exit_process, main
exit_process(main())
