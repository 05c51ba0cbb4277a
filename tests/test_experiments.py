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


def test_factorqvae_paper_rows_follow_the_official_configs():
    # expected values typed from the official Shapes3D configs (ituvisionlab/FactorQVAE 7d74cea, configs/Shapes3D/*.yaml),
    # converted to vaenb's pixel-summed units: N = 3*64*64, n = 12 latents
    N, n = 3 * 64 * 64, 12
    from vaenb.experiments import factorqvae_runs
    runs = [r for r in factorqvae_runs("paper") if r.dataset == "shapes3d-official"]
    by_model = {}
    for r in runs: by_model.setdefault(r.model, []).append(r)
    assert sorted({r.seed for r in runs}) == [0, 1, 2]
    kl = {"fq_vae": 1e-4 * N, "fq_factorvae": 1e-4 * N, "dvae": 5e-3 * N / n, "factordvae": 5e-3 * N / n,
          "qvae": 1e-3 * N / n, "factorqvae": 1e-3 * N / n}
    gamma = {"fq_factorvae": 1e-4 * N, "factordvae": 5e-4 * N, "factorqvae": 1e-4 * N}
    for model, rs in by_model.items():
        r = rs[0]
        p = r.model_params
        assert p.get("beta", 1.0) == pytest.approx(kl.get(model, 1.0), rel=1e-12), model
        assert p.get("tc_gamma", 0.0) == pytest.approx(gamma.get(model, 0.0), rel=1e-12), model
        assert p["lr"] == 1e-3 and p["adam_eps"] == pytest.approx(1e-8 * N, rel=1e-12), model
        assert p["recon"] == "gaussian" and p["decoder_output"] == "linear", model     # linear output on x - 0.5 (input shift)
        assert p["init_std"] == 0.02 and p["backbone"] == "resnet", model             # N(0, 0.02²) everywhere
        factor = model.startswith("factor") or model == "fq_factorvae"
        assert (r.steps, r.batch_size) == ((50_000, 512) if factor else (100_000, 256)), model
        assert r.train_params["lr_schedule"] == "cosine" and r.train_params["lr_min"] == 1.25e-6, model
        if factor:
            assert p["tc_lr"] == 1e-3 and (p["tc_beta1"], p["tc_beta2"]) == (0.9, 0.999) and p["tc_layers"] == 6, model
            assert p.get("tc_half_batch", True), model
        discrete = model in ("qlae", "dvae", "factordvae", "qvae", "factorqvae")
        assert r.eval_params.get("discrete_latents", False) is discrete, model
        assert r.eval_params.get("representation", "mean") == ("sample" if model in ("fq_vae", "fq_factorvae") else "mean"), model
        if discrete: assert p["codes_as"] == "index", model
    assert set(by_model) == {"ae", "bioae", "fq_vae", "fq_factorvae", "qlae", "dvae", "factordvae", "qvae", "factorqvae"}


def test_factorqvae_paper_gaussian_rows_build_the_official_model():
    import torch
    from vaenb.experiments import factorqvae_runs
    from vaenb.factorqvae import GaussianAE, HalfBatchTCDiscriminator
    from vaenb.vae import create_model
    row = next(r for r in factorqvae_runs("paper") if r.model == "fq_factorvae")
    model = create_model({**row.model_params, "model": row.model, "channels": 3, "backbone": "mlp", "tc_hidden": 16})
    assert isinstance(model, GaussianAE) and isinstance(model.regularisers["tc_discriminator"], HalfBatchTCDiscriminator)
    assert model.uses_half_batch() and model.make_optimizers()["model"].defaults["eps"] == pytest.approx(1.2288e-4)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(model.encode(x)["mu"], model.encoder(x - 0.5).chunk(2, 1)[0])   # the official encoder input


def test_factorqvae_discrete_flag_in_every_profile():
    from vaenb.experiments import factorqvae_runs
    for profile in ("smoke", "quick", "paper"):
        for r in factorqvae_runs(profile):
            assert r.eval_params.get("discrete_latents", False) is (r.model in ("qlae", "dvae", "factordvae", "qvae", "factorqvae")), (profile, r.name)
