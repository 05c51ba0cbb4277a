"""Integration tests of the results store, papermill runs, Dask sweeps and reports (each run is a real notebook execution)."""
import json

import pytest

from vaenb.cli import main
from vaenb.experiments import (NOTEBOOK, RECORD, RunConfig, build_report, build_run, execute_run, load_run, read_record,
                               reproduce, run_directory, run_sweep, study_runs)
from vaenb.train import train

SMALL = {"subset": {"orientation": [0], "posX": list(range(0, 32, 8)), "posY": list(range(0, 32, 8))}}


def smoke(**changes) -> RunConfig:
    base = dict(model="betavae", steps=6, batch_size=8, dataset_params=SMALL, metrics=("mig", "recon_mse"),
                train_params={"log_every": 2, "checkpoint_every": 2, "progress": False},
                eval_params={"num_train": 100, "num_test": 50, "recon_samples": 20})
    return RunConfig.from_dict({**base, **changes})


def test_run_is_recorded_then_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tuples = {"subset": {k: tuple(v) for k, v in SMALL["subset"].items()}}   # nested tuples reach the notebook intact
    config = smoke(dataset_params=tuples)
    record = execute_run(config, "results")                             # a relative results path
    run_dir = run_directory(config, "results")
    assert run_dir == tmp_path / "results" / config.run_id()
    assert record["status"] == "finished", record.get("error")
    assert {"mig", "recon_mse"} <= set(record["metrics"]) and record["environment"]["torch"]
    assert (run_dir / NOTEBOOK).is_file() and (run_dir / "checkpoint.pt").is_file()
    stamp = (run_dir / RECORD).stat().st_mtime_ns
    assert execute_run(config, tmp_path / "results") == record         # finished: not run again
    assert (run_dir / RECORD).stat().st_mtime_ns == stamp
    model, dataset, loaded = load_run(run_dir)
    assert loaded == record and model.config.model == "betavae" and dataset.name == "dsprites"


def test_failed_run_is_recorded_not_raised(tmp_path):
    config = smoke(dataset_params={"subset": {"posX": [99]}})           # fails inside the notebook
    record = execute_run(config, tmp_path)
    assert record["status"] == "failed"
    assert "posX" in record["error"]["message"]
    assert read_record(run_directory(config, tmp_path))["status"] == "failed"


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    config = smoke(steps=8)
    run_dir = run_directory(config, tmp_path)
    data, model, train_config = build_run(config, run_dir)
    train(model, data, train_config, steps=4)                           # "killed" after step 4: checkpoint, no record
    assert read_record(run_dir) is None
    record = execute_run(config, tmp_path)
    assert record["status"] == "finished" and record["training"]["start_step"] == 4


def test_sweep_on_two_dask_workers_survives_a_failure(tmp_path):
    configs = [smoke(seed=0), smoke(seed=1), smoke(seed=2, dataset_params={"subset": {"shape": [7]}})]
    records = run_sweep(configs, tmp_path, n_workers=2, verbose=False)
    assert [r["status"] for r in records] == ["finished", "finished", "failed"]
    assert records[0]["metrics"] != records[1]["metrics"]               # different seeds, different runs


def test_bad_sweep_input_fails_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'beta'"):
        run_sweep([smoke(), smoke(model_params={"bta": 2.0})], tmp_path, verbose=False)
    assert not any(tmp_path.iterdir())


def test_report_reads_partial_results(tmp_path):
    runs = study_runs("mipe", "smoke")
    record = execute_run(runs[0], tmp_path / "runs")
    assert record["status"] == "finished", record.get("error")
    out = build_report("mipe", "smoke", tmp_path / "runs", tmp_path / "reports")
    table = (out / "table_main.md").read_text()
    assert "smoke profile" in table and "procedural stand-in" in table and runs[0].name in table
    assert (out / "scores.png").is_file() and (out / "scores.svg").is_file() and (out / "table_main.tex").is_file()
    executed = json.loads((out / "report.ipynb").read_text())
    assert any(f"1 of {len(runs)} runs finished" in "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["run", "-p", "bta=4", "--results", str(tmp_path)]) == 2
    assert "did you mean 'beta'" in capsys.readouterr().err
    assert main(["reproduce", "--paper", "jl2", "--results", str(tmp_path)]) == 2
    assert "paper: expected one of" in capsys.readouterr().err
    (tmp_path / "grid.yaml").write_text("grid:\n  modle: [vae]\n")
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--results", str(tmp_path)]) == 2
    assert "did you mean 'model'" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_reproduction_of_every_paper(tmp_path):
    records = reproduce("all", "smoke", tmp_path / "runs", tmp_path / "reports")
    failed = [(r["run_id"], r.get("error", {}).get("message", "")[-500:]) for r in records if r["status"] != "finished"]
    assert not failed, failed
    for paper in ("mipe", "factorqvae", "jl1vae"):
        assert any((tmp_path / "reports" / f"{paper}-smoke").glob("*.md"))


def test_jl1vae_paper_profile_is_the_official_run():
    from vaenb.vae import model_config
    runs = study_runs("jl1vae", "paper")
    rows = {label: [r for r in runs if r.label == label] for label in ("β-VAE", "JL1-VAE")}
    for label, gamma in (("β-VAE", 0.0), ("JL1-VAE", 0.1)):
        assert [r.seed for r in rows[label]] == list(range(11, 21))            # 10 seeds, 11-20, as the official scripts
        for run in rows[label]:
            assert (run.model, run.dataset, run.steps, run.batch_size) == ("jl1vae", "threedots", 300_000, 64)
            config = model_config(run.model, **run.model_params)
            assert (config.beta, config.jl1_gamma, config.warmup_steps, config.lr) == (4.0, gamma, 100_000, 1e-4)
            # the official finite-difference penalty (ε = 1e-3) over all columns, not vaenb's exact default
            assert (config.jl1_method, config.jl1_columns, config.jl1_fd_step) == ("finite_difference", None, 1e-3)
            assert run.train_params.get("amp", "off") == "off"
    assert {r.label for r in runs} >= {"β-VAE (dlib)", "FactorVAE", "DIP-VAE-I", "DIP-VAE-II", "β-TCVAE", "AnnealedVAE"}


def test_jl1vae_smoke_warmup_fits_the_run():
    from vaenb.vae import create_model, model_config
    for run in study_runs("jl1vae", "smoke"):
        config = model_config(run.model, **run.model_params)
        assert 0 < config.warmup_steps < run.steps, (run.label, config.warmup_steps, run.steps)
        assert create_model(config).weight(config.jl1_gamma, run.steps - 1) == config.jl1_gamma   # γ reaches its target
    with pytest.raises(Exception, match="jl1vae-mpi3d-multi"):                 # no MPI3D-multi dataset, so no preset
        create_model("jl1vae-mpi3d-multi")
