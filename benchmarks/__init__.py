"""Speed measurements, run from the repository root as modules (they import the project's files):

    python -m benchmarks.bench           # training speed against stock Keras and PyTorch
    python -m benchmarks.bench_profile   # where a step's time goes, ours beside PyTorch's
    python -m benchmarks.step_variants   # variants of this project's step, in one process
    python -m benchmarks.bench_input     # the input pipeline alone: per record vs per batch

bench_peers.py holds the same networks in stock Keras and PyTorch that bench.py compares against;
trainers.py one training step of each row (ours, Keras, PyTorch).
"""
