"""``python -m parallelrun.cli``: the same as the ``parallelrun`` command."""

from parallelrun.cli import main

if __name__ == "__main__":
    main()
