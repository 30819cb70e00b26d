"""`python -m milvusdiff` runs the CLI."""

from milvusdiff.cli.main import console_main

console_main()
