"""Copy an experiment's evidence into the repository: its report and the small files of every run.

    python tools/keep_evidence.py experiments/NAME docs/studies/NAME

Kept: the experiment's grid.json, results.md / .json / .csv and plots; per run (OUT/<arm>/seed-<s>/)
config.json, metrics.jsonl, the eval json of the chosen checkpoint, diverged.json / failed.json and
command.sh. Never the checkpoints, TensorBoard events or logs. From the copy,
`python compare.py --collect --out DST` rebuilds the same report: it reads only these files.

The copies name the folder they are in, and the dataset folder of the machine that ran them is
written as DATA (it means nothing on another machine): in config.json, the eval json and
command.sh, the values of data_dir / data_root / --data-dir, and every path under SRC as DST.
"""

import json
import os
import shlex
import shutil
import sys

REPORT = ("grid.json", "results.md", "results.json", "results.csv", "curves.png",
          "test_accuracy.png", "budgets.png")
PER_RUN = ("config.json", "metrics.jsonl", "eval-test-best.json", "diverged.json",
           "failed.json", "command.sh")


def scrub(value, src, dst, data):
    """`value` with the experiment folder `src` written as `dst` and the dataset folder as DATA."""
    if isinstance(value, dict):
        return {k: scrub(v, src, dst, data) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, src, dst, data) for v in value]
    if isinstance(value, str):
        for old, new in ((data, "DATA"), (src, dst)):
            if old and (value == old or value.startswith(old.rstrip("/") + "/")):
                value = new + value[len(old.rstrip("/")):]
        return value
    return value


def copy_run(run, to, src, dst):
    """The evidence files of one run, machine paths written as DATA and the folder as `dst`."""
    config = json.load(open(os.path.join(run, "config.json")))
    data = config.get("data_dir")
    for name in PER_RUN:
        path = os.path.join(run, name)
        if not os.path.exists(path):
            continue
        if name.endswith(".json"):
            with open(os.path.join(to, name), "w") as f:
                json.dump(scrub(json.load(open(path)), src, dst, data), f, indent=2,
                          sort_keys=name == "config.json")
        elif name == "command.sh":
            words = [scrub(w, src, dst, data) for w in shlex.split(open(path).read())]
            with open(os.path.join(to, name), "w") as f:
                f.write(shlex.join(words) + "\n")
        else:
            shutil.copy2(path, os.path.join(to, name))


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
            copy_run(run, os.path.join(dst, arm, seed), src, dst)
            runs += 1
    return runs


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    print(f"kept {keep(sys.argv[1], sys.argv[2])} runs' files in {sys.argv[2]}")
