"""The seed notebook's own model code, run by Keras 2 and saved as it saved models (`.h5`), then `sepspec import`ed:
how far is the imported spec from `specs/base.yaml`? Prints the spec and the rows of `sepspec show` that differ.

    pip install --target .keras2 tf_keras==2.21.0 --no-deps        # Keras 2, for TensorFlow 2.21
    PYTHONPATH=.keras2 python benchmarks/seed_keras2.py [../shared/seed/EIP_Session3.md]

The model code is the write-up's "Model definition" block as written (its `model.compile` and `model.summary`
left out), after Keras 2's imports of the layers it names.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPORTS = ("import tf_keras as keras\nfrom tf_keras.layers import Activation, BatchNormalization, Dropout, Flatten, "
           "GlobalAveragePooling2D, MaxPooling2D, SeparableConv2D\nnum_classes = 10\n")


def main(writeup: str) -> int:
    text = open(writeup).read()
    block = re.search(r"## Model definition\n```\n(.*?)```", text, re.S)
    if block is None:
        print(f"{writeup}: no 'Model definition' block", file=sys.stderr)
        return 2
    code = "\n".join(line for line in block.group(1).splitlines()
                     if not line.startswith(("model.compile", "model.summary")))
    sepspec = [sys.executable, "-m", "sepspec"]
    with tempfile.TemporaryDirectory() as tmp:
        h5, spec = os.path.join(tmp, "seed.h5"), os.path.join(tmp, "seed.yaml")
        r = subprocess.run([sys.executable, "-c", f"{IMPORTS}{code}\nmodel.save({h5!r})\n"], capture_output=True,
                           text=True)
        if r.returncode != 0:
            print(f"Keras 2 could not run the seed's code (is tf_keras on PYTHONPATH?):\n{r.stderr[-2000:]}",
                  file=sys.stderr)
            return 2
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # sepspec itself runs on Keras 3
        r = subprocess.run([*sepspec, "import", h5, "-o", spec], capture_output=True, text=True, env=env, cwd=ROOT)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        print(open(spec).read())
        rows = [subprocess.run([*sepspec, "show", s], capture_output=True, text=True, env=env, cwd=ROOT)
                .stdout.splitlines()[1:] for s in (spec, os.path.join(ROOT, "specs", "base.yaml"))]
    diff = [line for line in difflib.unified_diff(rows[1], rows[0], "specs/base.yaml", "imported", n=0, lineterm="")
            if not line.startswith("@@")]
    print("\n".join(diff) if diff else "sepspec show: the same rows as specs/base.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "seed", "EIP_Session3.md")))
