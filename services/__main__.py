"""`python -m tiercel` is the `tiercel` command."""

from tiercel.cli.main import main

main()
