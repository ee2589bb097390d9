"""What a run prints: the progress line within an epoch, the line at its end, the first line.

On a terminal the progress line is redrawn in place; in a log file (compare.py's train.log, nohup)
a plain line is written at most once a `--progress-every` seconds, so a long epoch is never silent.
"""

import sys
import time


class Progress:
    """Progress within an epoch, and one line at its end.

    On a terminal the progress line is redrawn in place (the caller updates it every few steps);
    when the output goes to a file (`> log`, nohup, compare.py's train.log) a plain line is written
    at most every `every` seconds instead, so that a log of a long epoch is never silent.
    """

    def __init__(self, stream=None, every=60.0, clock=time.monotonic):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.every, self.clock = every, clock
        self.last = clock()

    def due(self, steps_done):
        """Whether to write a progress line after `steps_done` steps of the epoch."""
        if self.tty:
            return steps_done % 10 == 0
        return self.every > 0 and self.clock() - self.last >= self.every

    def update(self, text):
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
            self.last = self.clock()
        self.stream.flush()

    def done(self, text):
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()
        self.last = self.clock()


def fmt_time(seconds):
    """12m05s, or 1h02m from an hour on."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def epoch_line(args, record, eval_names, seconds, seconds_left):
    """The line printed at the end of each epoch."""
    return (f"epoch {record['epoch']}/{args.epochs}  train loss {record['train_loss']:.4f} acc "
            f"{100 * record['train_accuracy']:.2f}%  " + "  ".join(
                f"{n} loss {record[n + '_loss']:.4f} acc {100 * record[n + '_accuracy']:.2f}%"
                for n in eval_names) + f"  lr {record['lr']:.4g}  "
            f"{record['images_per_second']:.0f} img/s  {fmt_time(seconds)}, "
            f"~{fmt_time(seconds_left)} left")


def describe_model(args):
    """The model in words for the first line, e.g. 'ResNet-20 v1 (shortcut A), act elu, BN'."""
    if args.model == "resnet":
        name = f"ResNet-{args.depth} v{args.resnet_version} (shortcut {args.shortcut}" + (
            ", bottleneck)" if args.bottleneck else ")")
    elif args.model == "cnn":
        name = f"cnn ({args.order}, {args.dropout} {','.join(map(str, args.dropout_rates))})"
    else:
        name = "All-CNN-C" + (" without dropout" if args.dropout == "none" else "")
    bn = ("batch norm (" + ("fused kernel" if args.bn_fused else "written-out formulas") + ")"
          if args.bn else "no batch norm")
    return f"{name}, act {args.act}, {bn}"
