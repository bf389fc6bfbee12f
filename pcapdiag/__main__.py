from pcapdiag.cli import main

main()
