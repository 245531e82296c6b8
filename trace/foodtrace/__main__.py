from foodtrace.cli import main

main()
