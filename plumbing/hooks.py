"""The book-keeping of train.py's loop, reached through six calls. The loop itself (epochs, where an
epoch ends, when to stop) is in train.py; these only keep time, check, save and report.

In the spirit of the TensorFlow 1 CIFAR-10 tutorial (tensorflow/models,
`tutorials/image/cifar10/cifar10_train.py`), whose `train()` hands checkpoints, the NaN stop and
the log line to `MonitoredTrainingSession(hooks=[StopAtStepHook, NanTensorHook, _LoggerHook])`:
the loop shows the algorithm, and what keeps a run safe and visible has a name here.

    banner(describe, n)     the first line, and the note when batch norm cannot settle
    start_epoch(epoch, first, epoch_end)
                            the epoch's clock and image count start
    after_step(step, stop)  the non-finite check (every --check-every steps, at an epoch end,
                            before a save or a stop), --checkpoint-every saves, the progress line
    log_epoch(record)       the epoch's time and speed, a line of metrics.jsonl, TensorBoard,
                            the warning when the network does not learn
    end_of_epoch(step)      the epoch line with the time left
    finish(step, ...)       the last line: steps, time, traces, final accuracies

Reading the non-finite flag costs a wait for the device, so it happens every --check-every steps,
not every step; a non-finite step changes no weight (the guard of plumbing/step_wrappers.py), so
the last good checkpoint stays intact until the check stops the run.
"""

import json
import os
import time

from plumbing import health, progress, summaries


class Hooks:
    """What train.py's loop does besides training, with the state it needs between calls.

    args: the parsed settings; t: what train.build returned (the model and the variables the step
    updates: epoch_sums, grad_norm_sums, bad_step); lr_at: step -> learning rate; checkpoints:
    the CheckpointManager of the last checkpoints; histogram_images: () -> a batch of test
    images for the activation histograms; start: the process's start time (time to first step).
    """

    def __init__(self, args, t, lr_at, steps_per_epoch, total_steps, checkpoints, num_classes,
                 histogram_images, start):
        import tensorflow as tf

        self.args, self.t, self.lr_at = args, t, lr_at
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.checkpoints = checkpoints
        self.num_classes, self.histogram_images, self.start = num_classes, histogram_images, start
        self.progress = progress.Progress(every=args.progress_every)
        self.writer = tf.summary.create_file_writer(os.path.join(args.logdir, "tb"))
        self.paths = summaries.variable_paths(t.model)
        self.metrics_path = os.path.join(args.logdir, "metrics.jsonl")
        self.run_start, self.first_step_seconds = time.time(), None
        self.seconds_per_step = None  # of whole epochs (train, evaluate, log, checkpoint)

    def banner(self, describe, train_size):
        """The first line, and the note when batch norm's moving averages cannot settle."""
        print(f"training {describe} on {self.args.dataset}: {train_size} images, "
              f"{self.steps_per_epoch} steps/epoch, {self.total_steps} steps; logdir "
              f"{self.args.logdir}", flush=True)
        note = health.short_run_note(self.args, self.total_steps)
        if note:
            print(note, flush=True)

    def start_epoch(self, epoch, first, epoch_end):
        """Epoch `epoch` (0-based) starts at its step `first` (> 0: resumed within it) and ends
        after step `epoch_end`, as train.py's loop decided: start its clock."""
        self.epoch, self.first, self.epoch_end = epoch, first, epoch_end
        self.t0, self.seen, self.t_first, self.seen_first = time.time(), 0, None, 0
        self.t_last = self.t0

    def images_per_second(self, now):
        """This epoch's rate so far without its first step (tracing, the input pipeline's
        start): the same measure for a whole epoch and for a resumed partial one."""
        if self.seen > self.seen_first:
            return (self.seen - self.seen_first) / (now - self.t_first)
        return self.seen / (now - self.t0)

    def after_step(self, step, stopping):
        """After train step `step` (1-based count of finished steps); `stopping`: the loop stops
        after this step (Ctrl-C, SIGTERM), so check the steps since the last check first."""
        args = self.args
        self.seen += args.batch_size  # full global batches (drop_remainder)
        self.t_last = time.time()
        if self.t_first is None:  # the rate leaves out this process's first step (tracing)
            self.t_first, self.seen_first = self.t_last, self.seen
        if self.first_step_seconds is None:
            self.first_step_seconds = self.t_last - self.start
        saving = args.checkpoint_every and step % args.checkpoint_every == 0
        if step % args.check_every == 0 or step >= self.epoch_end or stopping or saving:
            self.check_finite(step)
        if stopping and step < self.epoch_end:  # the loop saves and exits now
            return
        if saving and step < self.epoch_end:
            self.checkpoints.save(checkpoint_number=step)
        done = step - self.epoch * self.steps_per_epoch
        if self.progress.due(done):
            self.show_progress(step, done)

    def check_finite(self, step):
        """One host read: stop the run if a step since the last check could not be recovered."""
        bad = int(self.t.bad_step.numpy())
        if bad >= 0:
            health.stop_on_non_finite(self.args, self.args.logdir, bad, step, self.lr_at(bad - 1))

    def show_progress(self, step, done):
        # Until a whole epoch is timed, the estimate counts training steps only.
        args = self.args
        per_step = self.seconds_per_step or (time.time() - self.t0) * args.batch_size / self.seen
        text = (f"epoch {self.epoch + 1}/{args.epochs} step {done}/{self.steps_per_epoch} "
                f"{progress.fmt_time((self.total_steps - step) * per_step)} "
                + ("left" if self.seconds_per_step else "of training left"))
        if not self.progress.tty:  # at most once a minute: reading the sums costs one wait
            s = self.t.epoch_sums.numpy()  # [loss sum, correct, images] of this epoch so far
            text += (f"  train loss {s[0] / s[2]:.4f} acc {100 * s[1] / s[2]:.2f}%  "
                     f"{self.images_per_second(time.time()):.0f} img/s")
        self.progress.update(text)

    def log_epoch(self, record):
        """Add the epoch's time and speed to `record`; write metrics.jsonl and TensorBoard; warn
        when the network does not learn. Before the epoch's checkpoint: a process killed in
        between repeats the epoch, and rundir.start_training drops the repeated line."""
        args, step = self.args, record["step"]
        record.update(seconds=self.t_last - self.t0,
                      images_per_second=self.images_per_second(self.t_last))
        if self.first:
            record["resumed_at_step"] = self.epoch * self.steps_per_epoch + self.first
        epoch_steps = self.t.epoch_sums.numpy()[2] / args.batch_size  # before and after a resume
        grad_norms = dict(zip(self.paths,
                              (self.t.grad_norm_sums.numpy() / epoch_steps).tolist()))
        histograms = args.histograms_every and (
            (self.epoch + 1) % args.histograms_every == 0 or step >= self.total_steps)
        summaries.log_epoch(self.writer, step, record, self.metrics_path, grad_norms,
                            self.t.model if histograms else None,
                            self.histogram_images() if histograms else None)
        health.warn_if_dead(args.logdir, self.num_classes, args)
        self.record = record

    def end_of_epoch(self, step):
        """The epoch line, timed over the whole epoch (training, evaluation, histograms and
        checkpoints)."""
        epoch_seconds = time.time() - self.t0
        self.seconds_per_step = epoch_seconds / max(self.seen // self.args.batch_size, 1)
        record = self.record
        self.progress.done(progress.epoch_line(
            self.args, record, [n for n in ("val", "test") if n + "_loss" in record],
            epoch_seconds, (self.total_steps - step) * self.seconds_per_step))

    def finish(self, step, train_step, eval_step):
        """The last line: steps, time, traces (each step traced once) and the final accuracies."""
        summary = {"steps": step, "seconds_this_process": time.time() - self.run_start,
                   "first_step_seconds": self.first_step_seconds,
                   "train_step_traces": train_step.experimental_get_tracing_count(),
                   "eval_step_traces": eval_step.experimental_get_tracing_count()}
        summary.update({k: v for k, v in self.record.items() if k.endswith("accuracy")})
        print("done: " + json.dumps(summary), flush=True)
