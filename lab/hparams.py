"""Runs' hyperparameters and final metrics for TensorBoard's HParams dashboard.

The layout of an experiment folder:

    EXPERIMENT/                 `write_experiment`: the hyperparameters, their values, the metrics
    EXPERIMENT/RUN/hparams/     `write_run`: the run's hyperparameter values, its metrics at step 0
    EXPERIMENT/RUN/tb/          the run's own training summaries

`tensorboard --logdir EXPERIMENT` then shows one row per run in the HParams dashboard, to sort,
filter and plot against the hyperparameters. Values are written as str, bool, int or float, the
types the dashboard accepts; anything else (a list of steps, None) is written as its str().
"""

import numbers
import os

# TensorFlow is imported inside the functions (as in rundir.py): importing this module must not
# wait seconds for TensorFlow.


def _plain(value):
    """`value` as str, bool, int or float; numpy numbers as int or float, anything else as str."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def one_type_each(rows, names):
    """The rows ({name: value}) with every name's values of one type, as a domain of the
    dashboard must be: `_plain` values, and str for all of a name whose values mix types (None
    in one run, a number in another) or that a row lacks ("")."""
    plain = [{k: _plain(row.get(k, "")) for k in names} for row in rows]
    mixed = {k for k in names if len({type(row[k]) for row in plain}) > 1}
    return [{k: str(v) if k in mixed else v for k, v in row.items()} for row in plain]


def write_experiment(out_dir, domains, metric_names):
    """Write the experiment's `hp.hparams_config` once, in the experiment folder `out_dir`.

    `domains`: {hyperparameter name: list of the values it takes in the grid}, each shown as a
    filter in the dashboard. `metric_names`: the tags that `write_run` writes, its table's columns.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    hparams = [hp.HParam(name, hp.Discrete([_plain(v) for v in values]))
               for name, values in domains.items()]
    metrics = [hp.Metric(name) for name in metric_names]
    with tf.summary.create_file_writer(out_dir).as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)


def write_run(run_dir, hparams, metrics):
    """Write one run's `hp.hparams(hparams)` and its metrics (scalars at step 0) in run_dir/hparams.

    TensorBoard takes each folder of event files as a run, and the HParams dashboard reads a
    run's metrics from the folder that holds its hyperparameters. A folder of their own keeps the
    final values apart from the training curves in `tb/`: there a metric at step 0 would be drawn
    as the first point of a curve of the same tag, and the dashboard would read whichever value of
    that tag came last instead of the value given here. `run_dir` must be inside the experiment
    folder, where TensorBoard looks for runs. Runs with equal values (the seeds of an arm, when
    the seed is not among them) form one group in the dashboard.

    Returns the folder written.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    folder = os.path.join(run_dir, "hparams")
    with tf.summary.create_file_writer(folder).as_default():
        hp.hparams({name: _plain(v) for name, v in hparams.items()})
        for name, value in metrics.items():
            tf.summary.scalar(name, float(value), step=0)
    return folder
