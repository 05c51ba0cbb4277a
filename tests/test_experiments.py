"""Integration tests of the results store, papermill runs, Dask sweeps and reports (each run is a real notebook execution)."""
import json

import pytest

from vaenb.cli import _report_failures, main
from vaenb.core.config import ConfigError
from vaenb.experiments.execute import dask_client, execute_run, failure, root_cause, run_notebook, run_sweep
from vaenb.experiments.reports import build_report, reproduce
from vaenb.experiments.runs import NOTEBOOK, RECORD, RunConfig, build_run, load_run, read_record, run_directory, study_runs, write_record
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
    assert "posX" in record["error"]["root_cause"] and record["error"]["notebook"] == str(run_directory(config, tmp_path) / NOTEBOOK)
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


# issue 20: faults of the sweep, the store and the input checks

def test_sweep_never_overwrites_an_unreadable_record(tmp_path):
    configs = [smoke(seed=0), smoke(seed=1)]
    for config, spoil in zip(configs, (lambda text: text.replace('"schema": 1', '"schema": 2'), lambda text: text[:40])):
        run_dir = run_directory(config, tmp_path)
        run_dir.mkdir(parents=True)
        write_record(run_dir, config, "finished", metrics={"mig": 0.5})
        (run_dir / RECORD).write_text(spoil((run_dir / RECORD).read_text()))
    before = {c.run_id(): (run_directory(c, tmp_path) / RECORD).read_text() for c in configs}
    records = run_sweep(configs, tmp_path, n_workers=1, verbose=False)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert "move the results directory aside" in records[0]["error"]["root_cause"]
    assert "not valid JSON" in records[1]["error"]["root_cause"]
    assert {c.run_id(): (run_directory(c, tmp_path) / RECORD).read_text() for c in configs} == before   # metrics kept


def test_sweep_starts_runs_in_the_order_given(tmp_path, capsys):
    "A sweep stopped part way has finished the first runs of its list (Dask alone does not keep the order)."
    configs = [smoke(seed=s) for s in (5, 2, 7, 0, 3, 6, 1, 4, 9, 8)]
    for c in configs:   # an unreadable record stops each run in its worker before a kernel starts
        run_directory(c, tmp_path).mkdir(parents=True)
        (run_directory(c, tmp_path) / RECORD).write_text("{truncated")
    run_sweep(configs, tmp_path, n_workers=2)
    finished = [line.split()[2].rstrip(":") for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    order = [c.run_id() for c in configs]
    # the i-th run to finish was submitted while at most 2 ran: it is among the first i + 1 of the list
    assert all(order.index(run_id) <= i + 1 for i, run_id in enumerate(finished)), finished


def test_unwritable_run_directory_fails_alone(tmp_path):
    configs = [smoke(seed=0), smoke(seed=1)]
    run_directory(configs[1], tmp_path).write_text("a file where the run directory belongs")   # unwritable, even for root
    records = run_sweep(configs, tmp_path, n_workers=2, verbose=False)
    assert [r["status"] for r in records] == ["finished", "failed"], records[0].get("error")
    assert "cannot be written" in records[1]["error"]["record"]


def test_unwritable_results_store_is_one_line(tmp_path, capsys):
    store = tmp_path / "store"
    store.write_text("not a directory")
    (tmp_path / "grid.yaml").write_text("base: {steps: 2}\ngrid:\n  seed: [0, 1]\n")
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--results", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vaenb sweep: error: results store {store}: cannot write there") and "\n" not in err


@pytest.mark.parametrize("args, expected", [
    (["-t", "steps=10"], "set it with RunConfig.steps (vaenb run --steps)"),
    (["-t", "seed=9"], "(vaenb run --seed)"),
    (["-t", "batch_size=4"], "(vaenb run --batch-size)"),
    (["-t", "out_dir=elsewhere"], "the run directory in the results store (--results)"),
    (["-p", "beta=NaN"], "RunConfig.model_params.beta: expected a finite number, found nan"),
    (["-p", "lr=Infinity"], "RunConfig.model_params.lr: expected a finite number, found inf"),
    (["-p", "adam_beta1=5.0"], "ModelConfig.adam_beta1: expected a number in [0, 1) (an Adam β), found 5.0"),
    (["-t", "amp=fp16"], "TrainConfig.amp: expected one of 'off', 'bf16', found 'fp16'"),
    (["-p", "recon=mse"], "ModelConfig.recon: expected one of 'bernoulli', 'gaussian', found 'mse'"),
    (["--model", "betatcvae", "-p", "estimator=foo"], "estimator: expected one of 'dlib', 'mss', 'mss_reference'"),
])
def test_cli_rejects_values_before_a_kernel_starts(tmp_path, capsys, args, expected):
    assert main(["run", "--steps", "2", *args, "--results", str(tmp_path)]) == 2
    assert expected in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("base, expected", [
    ("{eval_params: {num_trian: 10}}", "RunConfig.eval_params: unknown key(s) 'num_trian' (did you mean 'num_train'?)"),
    ("{metrics: []}", "RunConfig.metrics: expected at least one metric name"),
    ("{model_params: {beta: .nan}}", "RunConfig.model_params.beta: expected a finite number"),
])
def test_grid_values_are_checked_naming_the_file(tmp_path, capsys, base, expected):
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {base}\ngrid:\n  seed: [0]\n")
    assert main(["sweep", str(grid), "--results", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{grid}: " in err and expected in err
    assert not (tmp_path / "runs").exists()


def test_sweep_options_and_grid_files_fail_clearly(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"n_workers \(--workers\): expected an integer >= 1, found 0"):
        with dask_client(None, 0): pass
    with pytest.raises(ConnectionError, match="Dask scheduler tcp://127.0.0.1:1: cannot connect"):
        with dask_client("tcp://127.0.0.1:1", timeout="2s"): pass
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  model_params.bta: [1, 4]\n")
    assert main(["sweep", str(grid), "--results", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{grid}: " in err and "did you mean 'beta'" in err
    grid.write_text("grid:\n  seed: [0]\n")
    for workers in ("0", "-1"):
        assert main(["sweep", str(grid), "--workers", workers, "--results", str(tmp_path / "runs")]) == 2
        assert "--workers" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path)]) == 2
    assert "is a directory; expected a YAML or JSON file" in capsys.readouterr().err


def test_report_names_an_unreadable_record(tmp_path, capsys):
    run_dir = run_directory(study_runs("mipe", "smoke")[0], tmp_path / "runs")
    run_dir.mkdir(parents=True)
    (run_dir / RECORD).write_text("{truncated")
    rc = main(["report", "--paper", "mipe", "--profile", "smoke", "--results", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"{run_dir / RECORD}: not valid JSON" in err and "\n" not in err
    assert not (tmp_path / "reports").exists()                          # stopped before the report's kernel


def test_failure_line_is_the_root_cause_and_the_notebook(tmp_path, capsys):
    notebook = tmp_path / "full_disk.ipynb"
    cell = ("try: raise OSError(28, 'No space left on device')\n"
            "except OSError: raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64')")
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                                               "outputs": [], "source": cell}],
                                    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                                    "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(Exception) as info:
        run_notebook(notebook, tmp_path / "out.ipynb", {})
    cause = "OSError: [Errno 28] No space left on device (raised as RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 64)"
    assert root_cause(info.value) == cause
    record = {"run_id": "r", "status": "failed", "error": failure(info.value, tmp_path / "out.ipynb")}
    assert _report_failures([record]) == 1
    line = capsys.readouterr().err.strip()
    assert line == f"FAILED r: {cause}; notebook: {tmp_path / 'out.ipynb'}"


def test_records_carry_package_versions(tmp_path):
    import dask
    import numpy
    import papermill
    import scipy
    import sklearn
    import torch
    record = write_record(tmp_path, smoke(), "finished")
    expected = {"numpy": numpy.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                "dask": dask.__version__, "papermill": papermill.__version__, "torch": torch.__version__}
    assert {k: read_record(tmp_path)["environment"]["packages"][k] for k in expected} == expected
    assert record["environment"]["packages"] == read_record(tmp_path)["environment"]["packages"]


def test_mipe_paper_runs_carry_the_paper_settings():
    from vaenb.studies.mipe import mipe_runs
    from vaenb.models.vae import create_model
    runs = mipe_runs("paper")
    assert {(r.dataset, r.label) for r in runs if r.seed == 0} == {
        (d, label) for d in ("dsprites-official", "shapes3d-official", "cars3d")
        for label in ("β-VAE", "MIPET-β-VAE", "β-TCVAE", "MIPET-β-TCVAE", "CLG-VAE", "MIPET-CLG-VAE")}
    # label: (model, β (None: the model's own default), MIPE units, backbone)
    expected = {"β-VAE": ("betavae", 4.0, 0, "mipet-conv"), "MIPET-β-VAE": ("mipet-betavae", 1.0, 3, "mipet-conv"),
                "β-TCVAE": ("betatcvae", 4.0, 0, "mipet-conv"), "MIPET-β-TCVAE": ("mipet-betatcvae", None, 3, "mipet-conv"),
                "CLG-VAE": ("clgvae", None, 0, "conv-unpadded"), "MIPET-CLG-VAE": ("mipet-clgvae", None, 1, "conv-unpadded")}
    for r in runs:
        model, beta, units, backbone = expected[r.label]
        p = r.model_params
        assert (r.model, p.get("beta"), p["mipe_units"], p["backbone"]) == (model, beta, units, backbone), (r.dataset, r.label, p)
        assert (p["lr"], p["mipe_lr"], p["adam_beta1"], p["adam_beta2"], p["weight_decay"], p["init"]) == (4e-4, 4e-4, 0.9, 0.999, 0.0, "xavier_all")
        assert p["hidden_dim"] == (256 if "CLG" in r.label or r.dataset != "dsprites-official" else 128), (r.dataset, r.label)
        assert (r.steps, r.batch_size) == (75_000, 256)
        t = r.train_params
        assert (t["grad_clip"], t["lr_schedule"], t["amp"]) == (1.0, "constant", "off")
        assert r.eval_params["representation"] == "sample"   # the official evaluation encodes a sampled z
    assert sorted({r.seed for r in runs}) == [0, 1, 2, 3, 4]
    # the CLG rows hold the official CLG encoder: unpadded convs, 64·2·2 = 256 features into the first linear layer
    clg = next(r for r in runs if r.label == "MIPET-CLG-VAE" and r.dataset == "dsprites-official")
    assert create_model({"model": clg.model, **clg.model_params}).encoder.net[9].in_features == 256


def test_factorqvae_paper_rows_follow_the_official_configs():
    # expected values typed from the official Shapes3D configs (ituvisionlab/FactorQVAE 7d74cea, configs/Shapes3D/*.yaml),
    # converted to vaenb's pixel-summed units: N = 3*64*64, n = 12 latents
    N, n = 3 * 64 * 64, 12
    from vaenb.studies.factorqvae import factorqvae_runs
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
    from vaenb.studies.factorqvae import factorqvae_runs
    from vaenb.models.factorqvae import GaussianAE, HalfBatchTCDiscriminator
    from vaenb.models.vae import create_model
    row = next(r for r in factorqvae_runs("paper") if r.model == "fq_factorvae")
    model = create_model({**row.model_params, "model": row.model, "channels": 3, "backbone": "mlp", "tc_hidden": 16})
    assert isinstance(model, GaussianAE) and isinstance(model.regularisers["tc_discriminator"], HalfBatchTCDiscriminator)
    assert model.uses_half_batch() and model.make_optimizers()["model"].defaults["eps"] == pytest.approx(1.2288e-4)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(model.encode(x)["mu"], model.encoder(x - 0.5).chunk(2, 1)[0])   # the official encoder input


def test_factorqvae_discrete_flag_in_every_profile():
    from vaenb.studies.factorqvae import factorqvae_runs
    for profile in ("smoke", "quick", "paper"):
        for r in factorqvae_runs(profile):
            assert r.eval_params.get("discrete_latents", False) is (r.model in ("qlae", "dvae", "factordvae", "qvae", "factorqvae")), (profile, r.name)


def test_jl1vae_paper_profile_is_the_official_run():
    from vaenb.models.vae import model_config
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
    from vaenb.models.vae import create_model, model_config
    for run in study_runs("jl1vae", "smoke"):
        config = model_config(run.model, **run.model_params)
        assert 0 < config.warmup_steps < run.steps, (run.label, config.warmup_steps, run.steps)
        assert create_model(config).weight(config.jl1_gamma, run.steps - 1) == config.jl1_gamma   # γ reaches its target
    with pytest.raises(Exception, match="jl1vae-mpi3d-multi"):                 # no MPI3D-multi dataset, so no preset
        create_model("jl1vae-mpi3d-multi")


def test_factorqvae_paper_runs_cover_the_three_official_datasets():
    from vaenb.studies.factorqvae import factorqvae_runs
    runs = factorqvae_runs("paper")
    assert {r.dataset for r in runs} == {"shapes3d-official", "isaac3d-official", "mpi3d-complex"}
    isaac = [r for r in runs if r.dataset == "isaac3d-official"]
    assert len({r.label for r in isaac}) == 9 and all(r.dataset_params == {"cache": True} for r in isaac)
    fq = next(r for r in isaac if r.label == "FactorQVAE")
    assert fq.model_params["latent_dim"] == 18   # 2 x the nine Isaac3D factors (spec: D = 18)


# issue 19: a run layer for researchers' own experiments

def test_config_file_run_with_profile_and_overrides(tmp_path, capsys, monkeypatch):
    from vaenb.cli import _command_line_fields, build_parser
    from vaenb.experiments.runs import compose_run, load_run_file
    (tmp_path / "run.yaml").write_text("model: betatcvae\nsteps: 7\nmodel_params: {beta: 2.0}\neval_params: {num_test: 40}\n")
    args = build_parser().parse_args(["run", "--config", str(tmp_path / "run.yaml"), "--profile", "smoke", "--steps", "3",
                                      "--metrics", "mig,dci", "--eval-param", "num_train=80", "--dataset-param", "cache_size=5"])
    config = compose_run(load_run_file(args.config), _command_line_fields(args))
    assert (config.model, config.steps, config.batch_size, config.model_params) == ("betatcvae", 3, 16, {"beta": 2.0})
    assert config.metrics == ("mig", "dci")
    # the smoke sizes, not the metrics' 10,000/5,000 points and 100-tree DCI; file and command line win per key
    assert config.eval_params == {"num_train": 80, "num_test": 40, "recon_samples": 100, "n_jobs": 1, "dci_params": {"n_estimators": 10}}
    assert config.train_params["checkpoint_every"] == 10 and config.dataset_params["cache_size"] == 5
    assert main(["run", "--config", str(tmp_path / "run.yaml"), "--metrics", "mig,migg", "--results", str(tmp_path / "r")]) == 2
    assert "unknown metric(s) ['migg']" in capsys.readouterr().err
    monkeypatch.setenv("VAENB_DATA", str(tmp_path / "nodata"))
    assert main(["run", "--dataset", "dsprites-official", "--results", str(tmp_path / "r")]) == 2   # before any kernel
    assert "put the file at" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_plugin_model_swept_through_dask(tmp_path, monkeypatch):
    (tmp_path / "mymodels.py").write_text("from vaenb.models.vae import VAE, register_model\nregister_model('mybeta', VAE, beta=6.0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    configs = [smoke(model="mybeta", imports=("mymodels",), seed=s) for s in (0, 1)]
    records = run_sweep(configs, tmp_path / "runs", n_workers=2, verbose=False)
    assert [r["status"] for r in records] == ["finished", "finished"], [r.get("error", {}).get("root_cause") for r in records]
    assert records[0]["config"]["imports"] == ["mymodels"]


def test_paths_default_to_the_current_directory(tmp_path, monkeypatch, capsys):
    from vaenb.core.config import data_dir
    from vaenb.experiments.reports import reports_dir
    from vaenb.experiments.runs import results_dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAENB_DATA", raising=False); monkeypatch.delenv("VAENB_RESULTS", raising=False)
    assert (data_dir(create=False), results_dir(), reports_dir()) == (tmp_path / "data", tmp_path / "runs", tmp_path / "reports")
    assert main(["info", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"data directory: {tmp_path / 'data'}" in out and f"results: {tmp_path / 'runs'}" in out
    monkeypatch.setenv("VAENB_RESULTS", str(tmp_path / "elsewhere"))
    assert results_dir() == tmp_path / "elsewhere"


def test_table_of_any_runs(tmp_path, capsys):
    for beta, seed, mig in ((1, 0, 0.2), (1, 1, 0.4), (4, 0, 0.9)):
        config = RunConfig(model_params={"beta": beta}, seed=seed)
        write_record(run_directory(config, tmp_path), config, "finished", metrics={"mig": mig})
    assert main(["table", str(tmp_path), "--out", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "model_params.beta" in out and "0.300 ± 0.141 (2)" in out and "0.900 (1)" in out
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert rows[0] == "model_params.beta,mig" and len(rows) == 3
    assert main(["table", str(tmp_path / "none")]) == 2


def test_empty_report_exits_nonzero(tmp_path, capsys):
    assert main(["report", "--paper", "mipe", "--profile", "smoke", "--results", str(tmp_path / "runs"),
                 "--reports", str(tmp_path / "reports")]) == 1
    assert "no finished smoke runs" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_paper_captions_say_what_differs_from_the_official_run():
    import pandas as pd

    from vaenb.experiments.reports import caption
    df = pd.DataFrame({"procedural": [False]})
    for paper in ("mipe", "factorqvae", "jl1vae"):
        assert "differences from the official run: " in caption("t", "paper", df, paper)
        assert "differences from the official run" not in caption("t", "quick", df, paper)
        for profile in ("quick", "cpu"): assert "what the CPU profile changes from the paper: " in caption("t", profile, df, paper)
    assert "changes from the paper" not in caption("t", "smoke", df, "mipe")
    assert "seeds 11" not in caption("t", "paper", df, "jl1vae")   # the run seeds are the official ones, not a difference


def test_jl1vae_paper_runs_read_the_official_training_settings():
    from vaenb.studies.jl1vae import jl1vae_runs
    from vaenb.studies.jl1vae import JL1_TRAINING
    runs = jl1vae_runs("paper")
    official = JL1_TRAINING["threedots"]
    assert {(r.steps, r.batch_size) for r in runs} == {(official["steps"], official["batch_size"])} == {(300_000, 64)}
    assert sorted({r.seed for r in runs}) == list(official["seeds"]) == list(range(11, 21))


def test_a_run_prints_live_progress_and_saves_its_figures(tmp_path, capfd):
    "Issue 19 points 2 and 6: progress lines while the run works, no kernel warning, PNGs and TensorBoard events in the run folder."
    import re

    config = smoke()
    record = execute_run(config, tmp_path, loggers=["tensorboard"], progress_every=0.5)
    out, err = capfd.readouterr()
    assert record["status"] == "finished", record.get("error")
    stages = r"starting the kernel|building data and model|training step \d/6, [\d,]+ img/s, ~\d+s of training left|evaluating mig, recon_mse"
    assert re.search(rf"^  {config.run_id()}: ({stages}) \(\d+s\)$", out, re.M), out
    assert "without encryption" not in err and "IPKernelApp" not in err, err
    run_dir = run_directory(config, tmp_path)
    for name in ("loss_curves", "traversal", "reconstructions"):
        assert (run_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((run_dir / "progress.json").read_text())["stage"] == "done"


def test_the_progress_watcher_prints_a_line_per_active_run(tmp_path, capsys):
    "Issue 19 point 2: the parent prints each active run's stage every interval; finished and stale runs are left out."
    import time

    from vaenb.experiments.execute import RunWatcher
    from vaenb.train import write_progress
    write_progress(tmp_path / "stale", "train", step=1, steps=9, images_per_s=1.0, remaining_s=1.0)   # an earlier sweep's
    time.sleep(0.02)
    with RunWatcher({"a": tmp_path / "a", "b": tmp_path / "b", "stale": tmp_path / "stale"}, every=0.05) as watch:
        write_progress(tmp_path / "a", "train", step=3, steps=9, images_per_s=1500.0, remaining_s=4.0)
        write_progress(tmp_path / "b", "eval", metrics=["mig"])
        time.sleep(0.3)
        watch.finished.add("b")
        out = capsys.readouterr().out
        time.sleep(0.2)
    assert "  a: training step 3/9, 1,500 img/s, ~4s of training left (0s)" in out.splitlines()
    assert "  b: evaluating mig (0s)" in out.splitlines() and "stale" not in out
    assert "b:" not in capsys.readouterr().out


def test_each_local_worker_gets_its_own_gpu(tmp_path, monkeypatch):
    "Issue 19 point 8: with (a fake list of) several GPUs, each local Dask worker and the kernels it starts see one of them."
    import os

    import torch

    from vaenb.experiments import execute as experiments
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)   # the parent's view: two GPUs
    assert experiments.visible_gpus() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert experiments.visible_gpus() == ["3", "5"]
    configs = [smoke(seed=s) for s in range(4)]
    for c in configs:   # an unreadable record stops each run in its worker before a kernel starts
        run_directory(c, tmp_path).mkdir(parents=True)
        (run_directory(c, tmp_path) / RECORD).write_text("{truncated")
    with dask_client(None, 2) as client:
        records = run_sweep(configs, tmp_path, client=client, verbose=False)
        seen = client.run(lambda dask_worker: (dask_worker.name, os.environ.get("CUDA_VISIBLE_DEVICES")))
        assigned = [client.submit(experiments.worker_gpu, ["3", "5"], workers=[address], pure=False).result() for address in seen]
    assert all(r["status"] == "failed" for r in records)
    got = {name: device for name, device in seen.values() if device is not None}
    assert got and all(device == ["3", "5"][name] for name, device in got.items()), seen   # round-robin by worker number
    assert sorted(assigned) == ["3", "5"]


def test_a_kept_kernel_gives_the_numbers_of_a_fresh_one(tmp_path):
    "Issue 19 point 9: runs of a sweep share their worker's kernel and still give the same record as a run in a fresh kernel."
    configs = [smoke(seed=1, steps=4), smoke(seed=2, steps=4)]
    with dask_client(None, 1) as client:
        kept = run_sweep(configs, tmp_path / "kept", client=client, verbose=False)
    fresh = execute_run(configs[1], tmp_path / "fresh")
    assert [r["status"] for r in kept + [fresh]] == ["finished"] * 3, [r.get("error") for r in kept + [fresh]]
    assert kept[1]["metrics"] == fresh["metrics"] and kept[1]["training"]["final"]["loss"] == fresh["training"]["final"]["loss"]
    assert kept[0]["metrics"] != kept[1]["metrics"]


def test_cpu_profile_grids_are_the_headline_arms_at_32_pixels():
    "Issue 18: the `cpu` profile runs only the headline arms, 8 unreported seeds each, on 32×32 data and backbones, for longer."
    from vaenb.experiments.reports import PROFILE_NOTES
    from vaenb.experiments.runs import PROFILES, study_runs
    assert "cpu" in PROFILES and "8 seeds" in PROFILE_NOTES["cpu"] and "32×32" in PROFILE_NOTES["cpu"]
    expected = {"mipe": ({"β-VAE": 6000, "MIPET-β-VAE": 6000}, "conv32", "dsprites-lite"),
                "factorqvae": ({"FactorQVAE": 3000, "FactorVAE": 3000, "QVAE": 6000, "dVAE": 6000, "β-VAE": 6000}, "conv32", "shapes3d"),
                "jl1vae": ({"β-VAE": 9000, "JL1-VAE": 9000}, "jl1conv32", "threedots")}
    for paper, (arms, backbone, dataset) in expected.items():
        runs = study_runs(paper, "cpu")
        assert {r.name: r.steps for r in runs} == arms, paper
        for arm in arms:
            seeds = sorted(r.seed for r in runs if r.name == arm)
            assert seeds == list(range(8)), (paper, arm, seeds)   # ≥ 8 seeds, never the pilot's 100/101
        assert all(r.profile == "cpu" and r.dataset == dataset and r.model_params["backbone"] == backbone for r in runs), paper
        assert all(r.train_params["amp"] == "bf16" for r in runs), paper
    assert study_runs("mipe", "cpu")[0].model_params["beta"] == 8.0
    assert all(r.model_params["jl1_columns"] == 1 for r in study_runs("jl1vae", "cpu"))


def test_cpu_profile_runs_build_at_32_pixels(tmp_path):
    "Every cpu arm builds: its dataset serves 32×32 images and its model reconstructs them at that size."
    import torch

    from vaenb.experiments.runs import study_runs
    for paper in ("mipe", "factorqvae", "jl1vae"):
        arms = {r.name: r for r in study_runs(paper, "cpu")}
        for arm, run in arms.items():
            tiny = {"cache_size": 100, "cache_dir": str(tmp_path)} if run.dataset == "threedots" else {}   # a 100-image cache, not 50,000
            small = run.replace(dataset_params={**run.dataset_params, **tiny})
            data, model, tcfg = build_run(small, tmp_path / arm)
            assert data.image_shape[1:] == (32, 32), (paper, arm, data.image_shape)
            assert (tcfg.steps, tcfg.amp) == (run.steps, "bf16")
            x = torch.rand(2, *data.image_shape)
            assert model.reconstruct(x).shape == x.shape, (paper, arm)


def test_mipe_report_writes_verdicts_and_seeds_figure(tmp_path):
    "Issue 18: beside its tables a report writes `verdicts` (a row per headline claim, a verdict even without runs) and `seeds`."
    runs = study_runs("mipe", "smoke")
    assert execute_run(runs[0], tmp_path / "runs")["status"] == "finished"
    out = build_report("mipe", "smoke", tmp_path / "runs", tmp_path / "reports")
    verdicts = (out / "verdicts.md").read_text()
    assert "smoke profile" in verdicts and "detectable" in verdicts
    assert "MIPET-β-VAE > β-VAE on mig" in verdicts and "not shown" in verdicts and (out / "verdicts.csv").is_file()
    assert (out / "seeds.png").is_file() and (out / "seeds.svg").is_file()


def test_every_profile_composes_a_single_run():
    from vaenb.experiments.runs import PROFILES, compose_run
    for profile in PROFILES:
        assert compose_run({"profile": profile}).profile == profile
