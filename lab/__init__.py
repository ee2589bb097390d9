"""The experiment tools: comparisons over seeds, their statistics, reports and diagnostics.

    compare.py          the grid behind `python compare.py`: its flags, arms, seeds and runs
    runs.py             one run's state, read from its log directory alone
    runner.py           one train.py subprocess per run, --jobs at a time
    report.py           results.md / .json / .csv from the runs' log directories
    plots.py            the report's plots
    hparams.py          the runs' settings and results for TensorBoard's HParams dashboard
    verdicts.py         the one rule for a source's claims: Holm-adjusted paired tests at each
                        budget, a verdict only where the sign has settled; ranks
    studies.py          the sources' comparisons, each one command (`python -m lab.studies`)
    studies_doc.py      docs/STUDIES.md's generated blocks (`python -m lab.studies_doc`)
    studies_figure.py   the picture of every study: each arm's rank against training steps
    stats.py            mean, intervals and paired differences over seeds
    diagnostics.py      why an arm wins: variance shift, recomputed BN statistics, bias shift
    plot_activations.py every activation and its derivative (`python -m lab.plot_activations`)

Nothing here is imported by the teaching files at the root or by plumbing/.
"""
