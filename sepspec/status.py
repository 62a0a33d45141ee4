"""Exit statuses of every command (docs/cli.md), in one place that every stage can name: 0 done, 1 a spec is
invalid (or a run failed), 2 a problem with options, files or data, 130 interrupted. The library raises
(`UserError` carries its status) and returns records; only `sepspec.cli` turns them into a process's status."""

OK, INVALID, USAGE, INTERRUPTED = 0, 1, 2, 130

# how a training run ended (`train.options.Result.status`) -> the command's status
TRAINING = {"finished": OK, "pruned": OK, "nan": INVALID, "interrupted": INTERRUPTED}


def of_training(status: str) -> int:
    return TRAINING.get(status, INVALID)
