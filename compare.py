"""Run a comparison over seeds and report it with statistics and plots: lab/compare.py.

    python compare.py --study blog-allcnn --scale quick --data-dir data   # a source's study
    python compare.py --model resnet --depth 20 --act relu,elu --bn on,off --seeds 0,1,2
    python compare.py --help

The command lives at the root with train.py and eval.py; the experiment tools it uses (the grid,
the runner, the statistics and the report) live in lab/.
"""

from lab.compare import main
from plumbing.errors import run_script

if __name__ == "__main__":
    run_script(main)
