"""lab/hparams.py: a 2-run experiment written to disk and read back from the event files."""

import glob
import os

import pytest
from google.protobuf import json_format

from lab import hparams


def read_events(folder):
    """{"hparams": [HParamsPluginData, ...], "scalars": {tag: (step, value)}} of `folder`'s files."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = dict(hparams=[], scalars={})
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data
                if plugin.plugin_name == "hparams":
                    out["hparams"].append(
                        plugin_data_pb2.HParamsPluginData.FromString(plugin.content))
                else:
                    out["scalars"][value.tag] = (event.step, float(tf.make_ndarray(value.tensor)))
    return out


def test_experiment_of_two_runs(tmp_path):
    hparams.write_experiment(str(tmp_path), {"activation": ["relu", "elu"], "lr": [0.1, 0.05],
                                             "bn": [True], "lr_steps": [[100, 200]]},
                             ["test_accuracy", "test_loss"])
    runs = {"relu-seed0": ({"activation": "relu", "lr": 0.1, "bn": True, "lr_steps": [100, 200]},
                           {"test_accuracy": 0.91, "test_loss": 0.3}),
            "elu-seed0": ({"activation": "elu", "lr": 0.05, "bn": True, "lr_steps": [100, 200]},
                          {"test_accuracy": 0.89, "test_loss": 0.35})}
    for name, (values, metrics) in runs.items():
        folder = hparams.write_run(str(tmp_path / name), values, metrics)
        assert folder == str(tmp_path / name / "hparams")

    [config] = read_events(str(tmp_path))["hparams"]
    # A domain's values as Python values (hp.Discrete keeps them sorted).
    domains = {h.name: json_format.MessageToDict(h.domain_discrete)
               for h in config.experiment.hparam_infos}
    assert domains == {"activation": ["elu", "relu"], "lr": [0.05, 0.1], "bn": [True],
                       "lr_steps": ["[100, 200]"]}
    assert [m.name.tag for m in config.experiment.metric_infos] == ["test_accuracy", "test_loss"]

    for name, (values, metrics) in runs.items():
        events = read_events(str(tmp_path / name / "hparams"))
        [session] = [h.session_start_info for h in events["hparams"]
                     if h.HasField("session_start_info")]
        h = session.hparams
        assert h["activation"].string_value == values["activation"]
        assert h["lr"].number_value == values["lr"]
        assert h["bn"].bool_value is True
        assert h["lr_steps"].string_value == "[100, 200]"  # a list is written as its str()
        assert events["scalars"]["test_accuracy"] == (0, pytest.approx(metrics["test_accuracy"]))
        assert events["scalars"]["test_loss"] == (0, pytest.approx(metrics["test_loss"]))
