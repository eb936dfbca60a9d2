"""`python -m ixypy`: the `ixypy` command."""
from .cli import main

main()
