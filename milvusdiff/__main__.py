"""`python -m milvusdiff` runs the CLI."""

from milvusdiff.cli.main import main

main()
