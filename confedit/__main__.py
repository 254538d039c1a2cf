"""`python -m confedit` runs the command line."""

from confedit.console import main

main()
