"""The export's converter process: `python -m sepspec.cli.convert JOB TARGET` runs `deploy.export.convert` (in a
process of its own: TensorFlow's converter leaks memory per call and crashes on some activations) and prints what
it wrote as one JSON line; a refusal is one `sepspec export: ...` line on stderr and exit status 2, which
`deploy.export.export` reads back."""

from __future__ import annotations

import json
import sys

from ..deploy.export import convert
from ..diagnostics import UserError


def main(argv: list[str]) -> int:
    try:
        print(json.dumps(convert(json.loads(argv[0]), argv[1])), flush=True)
    except UserError as e:
        print(f"sepspec export: {e}", file=sys.stderr, flush=True)
        return e.status
    return 0


if __name__ == "__main__":
    from .. import lazy

    lazy.OWN_PROCESS = True
    sys.exit(main(sys.argv[1:]))
