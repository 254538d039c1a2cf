"""`python -m confedit` runs the command line."""

from confedit.cli import main

main()
