from pcapdiag.cli import main

# Guarded: the worker processes of --cluster local start by importing this module again.
if __name__ == "__main__":
    main()
