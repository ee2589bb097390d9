"""Copy an experiment's evidence into the repository: its report and the small files of every run.

    python tools/keep_evidence.py experiments/NAME docs/studies/NAME

Kept: the experiment's grid.json, results.md / .json / .csv and plots; per run (OUT/<arm>/seed-<s>/)
config.json, metrics.jsonl, the eval json of the chosen checkpoint, diverged.json / failed.json and
command.sh. Never the checkpoints, TensorBoard events or logs. From the copy,
`python compare.py --collect --out DST` rebuilds the same report: it reads only these files.
"""

import os
import shutil
import sys

REPORT = ("grid.json", "results.md", "results.json", "results.csv", "curves.png",
          "test_accuracy.png", "budgets.png")
PER_RUN = ("config.json", "metrics.jsonl", "eval-test-best.json", "diverged.json",
           "failed.json", "command.sh")


def keep(src, dst):
    """Copy the evidence of experiment folder `src` into `dst`; the number of runs copied."""
    os.makedirs(dst, exist_ok=True)
    for name in REPORT:
        if os.path.exists(os.path.join(src, name)):
            shutil.copy2(os.path.join(src, name), os.path.join(dst, name))
    runs = 0
    for arm in sorted(os.listdir(src)):
        for seed in sorted(os.listdir(os.path.join(src, arm))) if os.path.isdir(
                os.path.join(src, arm)) else []:
            run = os.path.join(src, arm, seed)
            if not (seed.startswith("seed-") and os.path.exists(os.path.join(run, "config.json"))):
                continue
            os.makedirs(os.path.join(dst, arm, seed), exist_ok=True)
            for name in PER_RUN:
                if os.path.exists(os.path.join(run, name)):
                    shutil.copy2(os.path.join(run, name), os.path.join(dst, arm, seed, name))
            runs += 1
    return runs


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    print(f"kept {keep(sys.argv[1], sys.argv[2])} runs' files in {sys.argv[2]}")
