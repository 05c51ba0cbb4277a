"""The scripts in tools/ a researcher runs against a results store."""
import importlib.util
import statistics
from pathlib import Path

import pytest

from vaenb.experiments.runs import RunConfig, build_run, run_directory, write_record
from vaenb.metrics import evaluate
from vaenb.train import train

SMALL = {"subset": {"orientation": [0], "posX": list(range(0, 32, 4)), "posY": list(range(0, 32, 4))}}
EVAL = {"num_train": 200, "num_test": 100, "n_jobs": 1}


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    "Two arms × two training seeds of tiny finished runs; each record holds MIG as `evaluate` scores it at seed 0."
    root, recorded = tmp_path_factory.mktemp("runs"), {}
    for beta in (1, 8):
        for seed in (0, 1):
            config = RunConfig.from_dict(dict(model="betavae", label=f"beta{beta}", seed=seed, steps=4, batch_size=8,
                                              dataset_params=SMALL, model_params={"beta": beta}, metrics=("mig",),
                                              train_params={"checkpoint_every": 4, "progress": False}, eval_params=EVAL))
            run_dir = run_directory(config, root)
            data, model, train_config = build_run(config, run_dir)
            train(model, data, train_config)
            mig = evaluate(model, data, ["mig"], seed=0, **EVAL)["mig"]
            write_record(run_dir, config, "finished", metrics={"mig": mig})
            recorded.setdefault(f"beta{beta}", []).append(mig)
    return root, recorded


def test_eval_noise_separates_evaluation_noise_from_seed_spread(runs):
    root, recorded = runs
    tool = load_tool("eval_noise")
    by_arm = tool.finished_runs(root, None)
    assert list(by_arm) == [("dsprites", "beta1"), ("dsprites", "beta8")] and all(len(dirs) == 2 for dirs in by_arm.values())
    rows = {r["arm"]: r for r in tool.noise_table(by_arm, None, {}, [0, 0], noise_runs=2)}
    for arm, values in recorded.items():   # evaluation seed 0, unchanged sizes: the recorded scores, no evaluation noise
        assert rows[arm]["mean"] == pytest.approx(statistics.fmean(values), abs=1e-12)
        assert rows[arm]["between_sd"] == pytest.approx(statistics.stdev(values), abs=1e-12)
        assert rows[arm]["eval_sd"] == 0
    assert tool.finished_runs(root, datasets=["shapes3d"]) == {}
    noisy = tool.noise_table({("dsprites", "beta8"): by_arm["dsprites", "beta8"]}, ["mig"], {"num_train": 100}, [0, 1, 2], noise_runs=1)
    assert noisy[0]["eval_sd"] > 0 and noisy[0]["mean"] != pytest.approx(statistics.fmean(recorded["beta8"]), abs=1e-9)


def test_eval_noise_command_line(runs, capsys):
    root, _ = runs
    tool = load_tool("eval_noise")
    assert tool.main([str(root), "--arms", "beta1", "--set", "num_test=50", "--eval-seeds", "0", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| dataset | arm | metric") and len(table) == 3 and table[2].startswith("| dsprites | beta1 | mig | 2 |")
    assert tool.main([str(root), "--arms", "nobody"]) == 1 and "no finished runs of the arms" in capsys.readouterr().out
    with pytest.raises(SystemExit): tool.main([str(root), "--set", "num_train"])
    assert "--set expects KEY=VALUE" in capsys.readouterr().err
