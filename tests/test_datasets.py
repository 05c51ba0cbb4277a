"""Slow integration tests of the datasets layer: full caches and the registry end to end (`make test-slow`)."""
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vaenb.data import get_dataset, list_datasets


def test_registry_names_every_dataset():
    names = set(list_datasets())
    assert {"dsprites", "dsprites-lite", "dsprites-official", "threedots", "shapes3d", "shapes3d-official",
            "cars3d", "cars3d-procedural", "mpi3d-toy", "mpi3d-realistic", "mpi3d-real", "mpi3d-complex"} <= names
    with pytest.raises(ValueError, match="unknown name 'dsprite'"):
        get_dataset("dsprite")


def test_missing_official_file_says_where(monkeypatch, tmp_path):
    monkeypatch.setenv("VAENB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="3dshapes.h5"):
        get_dataset("shapes3d-official")


# Where the loaders look, written out here (not read from vaenb's constants) so that a change on either
# side fails: the README's Data table must name exactly these paths under the data directory.
OFFICIAL_FILES = {
    "dsprites-official": "dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    "shapes3d-official": "3dshapes/3dshapes.h5",
    "cars3d": "cars/list.txt",
    "mpi3d-toy": "mpi3d_toy/mpi3d_toy.npz",
    "mpi3d-realistic": "mpi3d_realistic/mpi3d_realistic.npz",
    "mpi3d-real": "mpi3d_real/mpi3d_real.npz",
    "mpi3d-complex": "mpi3d_real_complex/mpi3d_real_complex.npz",
}


def _readme_data_table() -> str:
    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("| name | what | official file (under the data directory) |")
    return text[start:text.index("\n\n", start)]


def test_readme_data_table_names_the_paths_the_loaders_open():
    table = _readme_data_table()
    for relpath in OFFICIAL_FILES.values():
        assert f"`{relpath}`" in table, f"README Data table: expected `{relpath}`, found:\n{table}"


@pytest.mark.filterwarnings("ignore:.*matches none of the published checksums")
@pytest.mark.parametrize("name", OFFICIAL_FILES)
def test_loader_finds_the_official_file_where_the_readme_says(name, monkeypatch, tmp_path):
    # an empty file at the documented path: the loader must find it there and then reject its contents
    monkeypatch.setenv("VAENB_DATA", str(tmp_path))
    monkeypatch.setenv("VAENB_ALLOW_UNVERIFIED", "1")
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    target = tmp_path / OFFICIAL_FILES[name]
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    with pytest.raises(ValueError) as error:  # VAENB_ALLOW_UNVERIFIED: the checksum mismatch only warns
        get_dataset(name)
    assert str(target) in str(error.value), error.value


@pytest.mark.slow
def test_full_dsprites_cache_matches_renderer_and_survives_corruption():
    with tempfile.TemporaryDirectory() as tmp:
        ds = get_dataset("dsprites", cache_dir=tmp)
        assert ds.packed.shape == (737280, 512)
        idx = np.random.default_rng(0).integers(len(ds), size=3000)
        np.testing.assert_array_equal(ds._images_at(idx), ds.images(ds.index_to_factors(idx)))
        # orientation 39 repeats orientation 0 across the whole cache
        f = ds.index_to_factors(np.arange(len(ds)))
        zero, last = f[:, 2] == 0, f[:, 2] == 39
        np.testing.assert_array_equal(ds.packed[np.flatnonzero(zero)], ds.packed[np.flatnonzero(last)])
        npy = next(Path(tmp).rglob("images.npy"))
        with open(npy, "r+b") as fh:
            fh.seek(-10, 2); fh.write(b"\xff" * 10)
        with pytest.warns(UserWarning, match="rebuilding"):
            again = get_dataset("dsprites", cache_dir=tmp).packed
        rebuilt = np.unpackbits(again[idx], axis=1).reshape(-1, 1, 64, 64).astype(np.float32)
        np.testing.assert_array_equal(rebuilt, ds.images(ds.index_to_factors(idx)))


@pytest.mark.slow
def test_threedots_paper_cache_and_shapes3d_grid():
    with tempfile.TemporaryDirectory() as tmp:
        td = get_dataset("threedots", cache_size=20000, cache_dir=tmp)
        b = td.batch(0, 64, seed=0)
        assert b.shape == (64, 1, 64, 64) and float(b.min()) >= 0 and float(b.max()) <= 1
        sh = get_dataset("shapes3d", cache_dir=tmp)
        f = sh.sample_factors(500, np.random.default_rng(0))
        x = sh.images(f)
        assert x.shape == (500, 3, 64, 64)
        np.testing.assert_array_equal(sh.images(f[:5]), x[:5])
