"""Exit statuses of every command (docs/cli.md): 0 done, 1 a spec is invalid (or a run failed), 2 a problem
with options, files or data, 130 interrupted."""

OK, INVALID, USAGE, INTERRUPTED = 0, 1, 2, 130
