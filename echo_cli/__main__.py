from echo_cli.cli import main

main()
