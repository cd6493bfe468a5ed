"""``python -m ketfaq``: the same command line as the ``ketfaq`` script."""

from ketfaq.cli import main

if __name__ == "__main__":
    main()
