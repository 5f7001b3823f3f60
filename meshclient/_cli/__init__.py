"""One module per `meshclient` subcommand."""
