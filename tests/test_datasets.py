"""Slow integration tests of the datasets layer: full caches and the registry end to end (`make test-slow`)."""
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vaenb.data.base import get_dataset, list_datasets


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


def _isaac3d_release(root, indices, labels=None):
    "A fake Isaac3D_down128 folder: the full factor-major labels (class / (size - 1)) and only the PNGs `indices`."
    from PIL import Image
    from vaenb.data.isaac3d import ISAAC3D_SIZES
    (root / "images").mkdir(parents=True)
    if labels is None:
        labels = np.indices(ISAAC3D_SIZES).reshape(len(ISAAC3D_SIZES), -1).T / (np.array(ISAAC3D_SIZES) - 1)
    np.save(root / "labels.npy", labels, allow_pickle=True)
    for i in indices:   # a constant colour that spells the index: it survives the resize exactly
        colour = np.array([i % 256, i // 256 % 256, i // 65536], np.uint8)
        Image.fromarray(np.broadcast_to(colour, (128, 128, 3)).copy()).save(root / "images" / f"{i:06d}.png")
    return root


def test_isaac3d_missing_folder_says_where(monkeypatch, tmp_path):
    monkeypatch.setenv("VAENB_DATA", str(tmp_path))
    assert "isaac3d-official" in list_datasets()
    with pytest.raises(FileNotFoundError, match="put the file at <data dir>/isaac3d/Isaac3D_down128"):
        get_dataset("isaac3d-official")
    _isaac3d_release(tmp_path / "isaac3d" / "Isaac3D_down128", [0])
    with pytest.raises(FileNotFoundError, match=r"images/737279\.png not found"):
        get_dataset("isaac3d-official")


def test_isaac3d_fake_release_factors_images_and_batches(tmp_path):
    wanted = [0, 1, 4, 16, 96, 300, 245760, 737279]
    ds = get_dataset("isaac3d-official", path=_isaac3d_release(tmp_path / "Isaac3D_down128", wanted))
    assert len(ds) == 737_280 and ds.image_shape == (3, 64, 64)
    assert ds.factor_bases.tolist() == [245760, 30720, 6144, 1536, 384, 96, 16, 4, 1]   # FactorQVAE's data/isaac3d.py
    f = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0],
                  [2, 7, 4, 3, 3, 3, 5, 3, 3], [0, 0, 0, 0, 0, 3, 0, 3, 0]])
    assert ds.factors_to_index(f).tolist() == [1, 4, 245760, 737279, 300]
    assert ds.index_to_factors([1, 4, 245760, 737279, 300]).tolist() == f.tolist()
    x = ds.images(f)
    assert x.shape == (5, 3, 64, 64) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert (x[:, :, 30, 2] * 255).round().astype(int).tolist() == [[1, 0, 0], [4, 0, 0], [0, 192, 3], [255, 63, 11], [44, 1, 0]]
    assert ds.factor_values[6].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    with pytest.raises(FileNotFoundError, match=r"000002\.png not found"):
        ds.images([[0, 0, 0, 0, 0, 0, 0, 0, 2]])


def test_isaac3d_resize_is_antialiased_bicubic(tmp_path):
    from PIL import Image
    from vaenb.data.isaac3d import read_resized
    p = tmp_path / "000000.png"
    Image.fromarray(np.broadcast_to((2 * np.arange(128)).astype(np.uint8)[None, :, None], (128, 128, 3)).copy()).save(p)
    ramp = read_resized(p)
    assert ramp.shape == (64, 64, 3) and ramp.dtype == np.uint8
    assert ramp[0, 4:60, 0].tolist() == (4 * np.arange(4, 60) + 1).tolist()   # linear reproduced: value at centre 2j + 1
    step = np.zeros((128, 128, 3), np.uint8); step[:, 64:] = 200
    Image.fromarray(step).save(p)
    row = read_resized(p)[0, :, 0].astype(int)
    assert row.max() > 200 and row[:28].max() == 0 and row[36:].min() == 200   # cubic ringing at the edge only


class _MakesDirWhenUnpickled:
    def __init__(self, path): self.path = path
    def __reduce__(self):
        import os
        return (os.mkdir, (self.path,))


def test_isaac3d_labels_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    evil = np.array([_MakesDirWhenUnpickled(str(marker))], dtype=object)
    root = _isaac3d_release(tmp_path / "Isaac3D_down128", [0, 737279], labels=evil)
    with pytest.raises(ValueError, match="could not read it without unpickling"):
        get_dataset("isaac3d-official", path=root)
    assert not marker.exists()
    grid = np.indices((3, 8, 5, 4, 4, 4, 6, 4, 4)).reshape(9, -1).T
    np.save(root / "labels.npy", grid[::-1].astype(float))
    with pytest.raises(ValueError, match="factor-major order"):
        get_dataset("isaac3d-official", path=root)
    np.save(root / "labels.npy", np.zeros((737_280, 9)))
    with pytest.raises(ValueError, match=r"expected factor sizes \(3, 8, 5, 4, 4, 4, 6, 4, 4\)"):
        get_dataset("isaac3d-official", path=root)
    np.save(root / "labels.npy", np.zeros((10, 9)))
    with pytest.raises(ValueError, match=r"expected a numeric array \[737,280, 9\], found float64 \[10, 9\]"):
        get_dataset("isaac3d-official", path=root)


def test_half_size_procedural_stand_ins_through_the_registry(tmp_path):
    "`size=32` (issue 18) reaches threeDots and the 3D Shapes stand-in by name: same grid, 32×32 images, pooled 64×64 ones."
    import torch
    full, half = (get_dataset("threedots", cache_size=300, cache_dir=tmp_path, size=s) for s in (64, 32))
    assert half.describe()["image_shape"] == [1, 32, 32] and half.factor_sizes == full.factor_sizes
    torch.testing.assert_close(half.batch(5, 8, seed=3), torch.nn.functional.avg_pool2d(full.batch(5, 8, seed=3), 2))
    shapes = get_dataset("shapes3d", size=32)
    assert shapes.image_shape == (3, 32, 32) and shapes.factor_sizes == (10, 10, 10, 8, 4, 15)
    with pytest.raises(ValueError, match="size: expected 64"):
        get_dataset("threedots", size=128)
