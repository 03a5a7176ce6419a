from gan_jax.cli import main
raise SystemExit(main())
