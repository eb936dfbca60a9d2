"""`python -m ixypy`: the `ixypy` command."""
from .cli import cli

cli()
