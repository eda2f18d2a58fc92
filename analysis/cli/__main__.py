"""`python -m memdash.analysis.cli`: the same commands as the `memdash` entry point."""

from memdash.analysis.cli import main

main()
