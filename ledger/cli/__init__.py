"""Command-line tools: thin layers that parse, call the library, and print."""
