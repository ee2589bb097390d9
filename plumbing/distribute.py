"""Several devices or machines with TensorFlow's own engine, tf.distribute (data parallelism).

    default      one device (TensorFlow's default strategy: no replicas, no copies)
    mirrored     tf.distribute.MirroredStrategy: one replica per visible GPU (or per logical device,
                 see `--virtual-devices`), all in this process
    multiworker  tf.distribute.MultiWorkerMirroredStrategy: one process per machine, each with its
                 replicas; the cluster and this process's place in it come from the environment
                 variable TF_CONFIG, e.g. on the first of two machines
                 {"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}

Every replica holds a copy of the weights and runs train.py's single-device step on its share of
each global batch; the replicas' gradients are averaged (one all-reduce, plumbing/step_wrappers.py)
and every replica applies the same update to its copy. One update equals the single-device update
on the same global batch:

    global batch      B = --batch-size, split into R equal shares of B / R (R = replicas)
    replica gradient  g_r = d/dw (mean xent over its B / R images + wd * sum(||k||^2 / 2))
    update gradient   (1/R) sum over r of g_r = d/dw (mean xent over B + wd * sum(||k||^2 / 2))

(tf.distribute's guide writes the same as a sum of loss shares, `tf.nn.compute_average_loss` and
`tf.nn.scale_regularization_loss`; tests/test_distribute.py checks the two agree.)
Batch norm uses each share's own statistics unless synchronised (batch_norm.py, `sync=True`).

`--virtual-devices N` splits the first physical device (the CPU, or the first GPU) into N logical
devices with `tf.config.set_logical_device_configuration`, so that a mirrored run, and its tests,
work on one CPU. It must happen before TensorFlow initialises its devices.
"""

import json
import os

import tensorflow as tf

from plumbing.choices import STRATEGIES
from plumbing.errors import UserError


def split_devices(count):
    """Split the first physical device into `count` logical devices (before any op runs)."""
    if count < 1:
        raise UserError(f"--virtual-devices must be at least 1, got {count}")
    gpus = tf.config.list_physical_devices("GPU")
    device = (gpus or tf.config.list_physical_devices("CPU"))[0]
    # A GPU's logical devices need a memory limit each; a CPU's need nothing.
    config = [tf.config.LogicalDeviceConfiguration(memory_limit=1024 if gpus else None)
              for _ in range(count)]
    try:
        tf.config.set_logical_device_configuration(device, config)
    except RuntimeError as e:  # TensorFlow's devices were already initialised
        if len(tf.config.list_logical_devices(device.device_type)) != count:
            raise UserError(f"--virtual-devices {count}: TensorFlow's devices were already "
                            f"initialised ({e})") from None


def make_strategy(name, virtual_devices=0):
    """The tf.distribute strategy `name` (one of STRATEGIES).

    virtual_devices > 0 first splits the first physical device into that many logical devices;
    `mirrored` then uses them all (on a CPU-only machine: the logical CPUs; else the GPUs).
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if virtual_devices:
        split_devices(virtual_devices)
    if name == "default":
        return tf.distribute.get_strategy()  # the default strategy: plain single-device code
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if "TF_CONFIG" not in os.environ:
        raise UserError("--strategy multiworker reads the cluster from the environment variable "
                        "TF_CONFIG (see README, 'Several GPUs or machines'); it is not set")
    try:
        json.loads(os.environ["TF_CONFIG"])
    except ValueError as e:
        raise UserError(f"TF_CONFIG is not valid JSON: {e}") from None
    # Collective ops over gRPC between the workers; RING works on CPUs and GPUs alike.
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING))


def is_chief(strategy):
    """True in the process that writes the log directory: the only one, or worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def check_batch_size(strategy, batch_size):
    """The global batch must split into equal shares, one per replica."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise UserError(f"--batch-size {batch_size} does not split into {replicas} equal "
                        f"per-replica shares; use a multiple of {replicas}")
    return batch_size // replicas


def distribute_batches(strategy, make_dataset):
    """Each replica gets its share of every global batch of `make_dataset()`.

    make_dataset() yields global batches (a tuple of tensors [B, ...], e.g. images [B, 32, 32, 3]
    and labels [B]) exactly as a single-device
    run reads them (same order, same augmentation). Replica r of R receives rows
    [r * B / R, (r + 1) * B / R) of each: the R replicas together see the single-device batch.
    Every worker (process) builds the same global batches and keeps its replicas' shares.
    """
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return make_dataset()

    def per_worker(context):  # tf.distribute.InputContext: which worker this pipeline feeds
        local = replicas // context.num_input_pipelines  # replicas in this process
        first = context.input_pipeline_id * local  # its first replica

        def shares(*batch):
            # Each tensor [B, ...] -> [R, B / R, ...]; keep this worker's replicas, one dataset
            # element each, in replica order (the order tf.distribute hands elements to replicas).
            split = [tf.reshape(t, tf.concat([[replicas, -1], tf.shape(t)[1:]], 0))[
                first:first + local] for t in batch]
            return tf.data.Dataset.from_tensor_slices(tuple(split))

        return make_dataset().flat_map(shares)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(per_worker, options)


def setup(args):
    """The strategy of --strategy, with the checks that must come before any data is read.

    Devices first: logical devices can only be made before TensorFlow initialises them. Under
    multiworker, worker 0 writes the log directory; every worker takes part in saving a checkpoint
    (collective reads), so the others write theirs to a scratch folder and all of them resume from
    worker 0's checkpoints. Returns (strategy, the log directory to resume from).
    """
    strategy = make_strategy(args.strategy, args.virtual_devices)
    check_batch_size(strategy, args.batch_size)
    shared_logdir = args.logdir
    if not is_chief(strategy):
        import tempfile
        args.logdir = tempfile.mkdtemp(prefix="rawtf-worker-")
    if args.data_format == "NCHW" and not tf.config.list_physical_devices("GPU"):
        raise UserError("--data-format NCHW needs a GPU: TensorFlow's CPU kernels compute the "
                        "filter gradient of a convolution in NHWC only; leave the default NHWC")
    if args.deterministic:
        # Every op picks a deterministic kernel (or raises if it has none).
        tf.config.experimental.enable_op_determinism()
    return strategy, shared_logdir


def batches_for(strategy, make_dataset):
    """The global batches of `make_dataset()` split over the replicas (distribute_batches); on a
    single GPU the next batches are copied to it while the current step runs."""
    batches = distribute_batches(strategy, make_dataset)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and strategy.num_replicas_in_sync == 1:
        batches = batches.apply(tf.data.experimental.prefetch_to_device("/gpu:0"))
    return batches
