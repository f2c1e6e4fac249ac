"""One module per `poise` subcommand: each has NAME, HELP, add_arguments(parser) and run(args)."""
