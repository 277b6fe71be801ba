"""Experiment trackers read back with their own tools: an MLflow file store through MlflowClient, a W&B offline
run from its transaction log, TensorBoard event files through EventAccumulator. One tiny search logs to all
three, and one tiny evaluation to MLflow."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from nasp.config import build_config, parse_overrides
from nasp.evaluation.config import eval_config
from nasp.evaluation.run import resume_eval, start_eval
from nasp.genotype import Genotype
from nasp.runfolder import RunFolder
from nasp.search_run import start_run
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd
from nasp.trainer.trainer import Trainer

pytest.importorskip("mlflow")
pytest.importorskip("wandb")
pytest.importorskip("tensorboard")

TINY = ["data.limit=64", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=2", "threads=1"]


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> Path:
    out, home = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("home")
    cfg = build_config(parse_overrides([*TINY, f"out={out}", "name=s", "loggers=tensorboard,mlflow,wandb",
                                        "mlflow.experiment=tiny", "wandb.project=tiny"]))
    with pytest.MonkeyPatch.context() as env:  # W&B writes under the home folder unless told otherwise
        env.setenv("HOME", str(home))
        trainer = start_run(cfg, console=False)
        assert trainer.fit().status == "finished"
    stray = [p for p in home.rglob("*") if "wandb" in p.name or "mlflow" in p.name or "mlruns" in p.name]
    assert not stray, f"a logger wrote outside the run folder: {stray}"  # (matplotlib keeps its font cache there)
    assert sorted(p.name for p in out.iterdir()) == ["mlruns", "s"]  # MLflow's default store, next to the runs
    return trainer.folder.path


def _client(run: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=(run.parent / "mlruns").as_uri())


def test_mlflow_file_store_holds_params_metrics_and_genotype(logged, tmp_path):
    client = _client(logged)
    experiment = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "s"
    assert run.data.params["algorithm.name"] == "nasp" and run.data.params["model.channels"] == "4"
    assert run.data.params["space.name"] == "cnn12"
    metrics = RunFolder(logged).metrics()
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history] == pytest.approx([m["val_acc"] for m in metrics])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"genotype.json", "cells", "genotypes", "discrete"} <= names
    assert {a.path for a in client.list_artifacts(run.info.run_id, "discrete")} >= {
        "discrete/normal_epoch_002.png", "discrete/reduce_epoch_002.png"}
    got = Path(client.download_artifacts(run.info.run_id, "genotype.json", str(tmp_path)))
    assert Genotype.from_json(got.read_text()) == Genotype.load(logged)
    last = Path(client.download_artifacts(run.info.run_id, "genotypes/epoch_002.json", str(tmp_path)))
    assert Genotype.model_validate(json.loads(last.read_text())) == Genotype.load(logged)


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        if event.epoch == 1:
            trainer.request_stop()


def test_mlflow_evaluation_stopped_and_resumed_is_one_tracking_run(logged):
    out = logged.parent
    cfg = eval_config(["genotype=NASP", "data=embedded", "data.limit=64", "batch_size=16", "model.channels=4",
                       "model.layers=2", "epochs=2", "threads=1", f"out={out}", "name=e", "loggers=mlflow",
                       "mlflow.experiment=tiny-eval"])
    assert start_eval(cfg, callbacks=[StopAfterFirstEpoch()], console=False).fit().status == "stopped"
    client = _client(logged)
    (run,) = client.search_runs([client.get_experiment_by_name("tiny-eval").experiment_id])
    assert run.info.status == "KILLED"
    assert resume_eval(out / "e", console=False).fit().status == "finished"
    (again,) = client.search_runs([client.get_experiment_by_name("tiny-eval").experiment_id])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert again.data.params["genotype"] == "NASP"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
    assert "genotype.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def _wandb_records(path: Path):
    """The records of a W&B transaction log (LevelDB's log format: 32 KiB blocks, 7-byte record headers, after
    W&B's 7-byte file header), as the protobufs W&B writes."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record


def test_wandb_offline_run_holds_config_metrics_images_and_genotype(logged):
    (log,) = (logged / "wandb").glob("offline-run-*/run-*.wandb")
    rows, summary, config, artifacts = [], {}, {}, []
    for record in _wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config = {i.key: json.loads(i.value_json) for i in record.run.config.update}
            assert record.run.project == "tiny" and record.run.run_id == (logged / ".wandb_run_id").read_text().strip()
        elif kind == "history":
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({i.key: json.loads(i.value_json) for i in record.summary.update})
        elif kind == "artifact":
            artifacts += [m.path for m in record.artifact.manifest.contents]
    assert config["algorithm"]["name"] == "nasp" and config["model"]["channels"] == 4
    metrics = RunFolder(logged).metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["val_acc"] for r in rows] == pytest.approx([m["val_acc"] for m in metrics])
    assert all(r["discrete/normal/_type"] == "image-file" for r in rows)
    assert Genotype.from_json(summary["genotype"]) == Genotype.load(logged) and summary["status"] == "finished"
    assert {"genotype.json", "cells/latest_normal.svg"} <= set(artifacts)


def test_tensorboard_holds_hparams_genotype_text_and_discrete_images(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(RunFolder(logged).tensorboard_dir), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"discrete/normal", "discrete/reduce"} <= set(tags["images"])
    images = acc.Images("discrete/normal")
    assert [i.step for i in images] == [1, 2] and images[0].encoded_image_string[:4] == b"\x89PNG"
    texts = acc.Tensors("genotype/text_summary")
    assert [t.step for t in texts] == [1, 2]
    last = texts[-1].tensor_proto.string_val[0].decode()
    assert Genotype.from_json("\n".join(line[4:] for line in last.splitlines())) == Genotype.load(logged)
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = {k: v.string_value or v.number_value for k, v in start.session_start_info.hparams.items()}
    assert hparams["algorithm.name"] == "nasp" and hparams["model.channels"] == 4
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} == {"val_acc", "val_loss"}
