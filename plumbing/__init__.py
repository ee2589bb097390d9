"""The plumbing of a run: what train.py, eval.py and compare.py need besides the algorithm.

    errors.py          UserError: a problem the user can fix, printed as one line
    choices.py         the names and defaults of every choice (activations, models, ...)
    recipes.py         presets that reproduce a source (train.py --recipe)
    help_format.py     --help with every default shown once
    command_line.py    train.py's flags, in groups, and the checks of their values
    rundir.py          the log directory: config.json, resume, provenance, the lock
    step_wrappers.py   around train.py's plain train step: replicas, fp16 loss scaling, the guard
    hooks.py           the book-keeping of train.py's loop: after a step, at an epoch's end
    progress.py        the progress line, the epoch line, the first line
    summaries.py       metrics.jsonl and TensorBoard
    health.py          dead and diverged runs, non-finite steps, runs too short for batch norm
    signals.py         Ctrl-C / SIGTERM: checkpoint and exit
    distribute.py      devices and tf.distribute strategies
    tf_logs.py         TensorFlow's start-up log lines kept out of the output
    cifar_download.py  finding the data, the official download with its checksum

The teaching files at the root take only the shared vocabulary from here (errors, choices).
"""
