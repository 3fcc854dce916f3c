"""One module per `pifed` subcommand; each is imported only when its command runs."""
