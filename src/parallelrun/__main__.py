"""``python -m parallelrun``: the ``parallelrun`` command, for when it is not on PATH."""

from parallelrun.cli import main

if __name__ == "__main__":
    main(prog_name="parallelrun")
