"""Speed measurements, run from the repository root as modules (they import the project's files):

    python -m benchmarks.bench           # training speed against stock Keras and PyTorch
    python -m benchmarks.bench_input     # the input pipeline alone: per record vs per batch

bench_peers.py holds the same networks in stock Keras and PyTorch that bench.py compares against.
"""
