"""The command line: one module per command family; ``main`` builds the parser and dispatches."""
