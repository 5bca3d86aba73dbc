"""``postread`` and ``python -m postread``: a light entry point.

Spawned worker processes import the program's main module again; importing the command
line here only when it runs keeps typer, rich and SQLAlchemy out of every worker.
"""

import sys


def main() -> None:
    """Run the ``postread`` command line."""
    from postread.cli import app

    app()


if __name__ == "__main__":
    sys.exit(main())
