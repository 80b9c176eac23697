"""``python -m seglab`` is the same as the ``seglab`` console script."""

from seglab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
