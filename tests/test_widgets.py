"""The traversal explorer and the factor sweep, driven from Python as the browser would drive them.

Every expected image is decoded here independently (model.decode + sigmoid on the expected latent vector,
encoded to PNG), never read back from the widget.
"""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from vaenb.data.toy import ToySquares
from vaenb.train import train
from vaenb.models.vae import create_model
from vaenb.viz.widgets import FactorSweep, TraversalExplorer, png_bytes


@pytest.fixture(scope="module")
def trained():
    data = ToySquares()
    model = create_model("betavae", backbone="mlp", image_size=8, latent_dim=4, hidden_dim=64, lr=5e-3, seed=1)
    return train(model, data, steps=500, batch_size=64, seed=1, progress=False).model.eval(), data


def expected_png(model, z, size):
    with torch.no_grad():
        image = torch.sigmoid(model.decode(torch.as_tensor(np.asarray(z, np.float32))[None]))[0].numpy()
    return png_bytes(image, size), image


def input_code(model, data, index):
    x = torch.from_numpy(data.images(data.index_to_factors([index])))
    with torch.no_grad():
        return model.encode(x)["mu"][0].numpy()


class CallCounter:
    "Counts calls of a model method while forwarding them."
    def __init__(self, model, name):
        self.calls, self.original = 0, getattr(model, name)
        def counted(*args, **kwargs):
            self.calls += 1
            return self.original(*args, **kwargs)
        setattr(model, name, counted)


def test_initial_state_is_the_input_code(trained):
    model, data = trained
    ex = TraversalExplorer(model, data, index=17)
    np.testing.assert_allclose(ex.z, input_code(model, data, 17), atol=1e-6)
    png, image = expected_png(model, input_code(model, data, 17), ex.image_px)
    assert ex.image.value == png
    np.testing.assert_allclose(ex.decoded, image, atol=1e-6)
    assert ex.input_image.value == png_bytes(data.images(data.index_to_factors([17]))[0], ex.image_px)


def test_each_slider_move_decodes_exactly_that_latent(trained):
    model, data = trained
    ex = TraversalExplorer(model, data, index=40)
    z = input_code(model, data, 40).astype(np.float32)
    rng = np.random.default_rng(0)
    for j in (0, 3, 1, 3):
        lo, hi = ex.latent_sliders[j].min, ex.latent_sliders[j].max
        z[j] = np.float32(rng.uniform(lo, hi))
        before = ex.image.value
        ex.latent_sliders[j].value = float(z[j])
        png, image = expected_png(model, z, ex.image_px)
        assert ex.image.value == png, f"latent {j}: shown image is not the decoding of the slider values"
        np.testing.assert_allclose(ex.decoded, image, atol=1e-6)
        assert ex.image.value != before


def test_slider_moves_decode_once_and_never_encode(trained):
    model, data = trained
    ex = TraversalExplorer(model, data, index=5)
    decodes, encodes = CallCounter(model, "decode"), CallCounter(model, "encode")
    try:
        for j, frac in ((2, 0.3), (0, 0.7)):   # interior values: the input's code may sit on a range end
            s = ex.latent_sliders[j]
            s.value = s.min + frac * (s.max - s.min)
        assert (decodes.calls, encodes.calls) == (2, 0)
        ex.index_slider.value = 6            # a new input: encoded once, decoded once
        assert (decodes.calls, encodes.calls) == (3, 1)
    finally:
        del model.decode, model.encode       # drop the instance attributes: the class methods are back


def test_picking_factors_selects_the_matching_input(trained):
    model, data = trained
    ex = TraversalExplorer(model, data, index=0)
    ex.factor_pickers[0].value = 1
    ex.factor_pickers[2].value = 4
    index = int(data.factors_to_index([[1, 0, 4]])[0])
    assert ex.index == index and ex.index_slider.value == index
    np.testing.assert_allclose(ex.z, input_code(model, data, index), atol=1e-6)
    assert "<td>y</td><td>0.8</td>" in ex.factor_table.value and "<td>size</td><td>3</td>" in ex.factor_table.value
    ex.index_slider.value = 7                # and the other way round
    assert [p.value for p in ex.factor_pickers] == list(data.index_to_factors([7])[0])


def test_play_animates_the_chosen_latent_over_its_range(trained):
    model, data = trained
    ex = TraversalExplorer(model, data, index=3, play_frames=5)
    z = input_code(model, data, 3).astype(np.float32)
    ex.play_latent.value = 2
    lo, hi = ex.ranges[2]
    for frame, value in zip([1, 2, 4], np.linspace(lo, hi, 5)[[1, 2, 4]]):
        ex.play.value = frame
        z[2] = np.float32(value)
        assert ex.latent_sliders[2].value == pytest.approx(value)
        assert ex.image.value == expected_png(model, z, ex.image_px)[0]
    ex.reset()
    assert ex.image.value == expected_png(model, input_code(model, data, 3), ex.image_px)[0]


def test_slider_ranges_are_data_quantiles(trained):
    model, data = trained
    ex = TraversalExplorer(model, data, index=0, n=300, seed=4, quantiles=(0.1, 0.9))
    _, images = data.sample(300, np.random.default_rng(4))
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(images))["mu"].numpy()
    np.testing.assert_allclose(ex.ranges, np.quantile(codes, [0.1, 0.9], axis=0).T, atol=1e-5)
    for s, (lo, hi), v in zip(ex.latent_sliders, ex.ranges, ex.code):
        assert s.min <= min(lo, v) + 1e-6 and s.max >= max(hi, v) - 1e-6


def test_png_is_the_decoded_array_enlarged(trained):
    model, data = trained
    ex = TraversalExplorer(model, data, index=9, image_px=32)
    shown = np.asarray(Image.open(io.BytesIO(ex.image.value)), dtype=np.float32) / 255
    np.testing.assert_allclose(shown[::4, ::4], ex.decoded[0], atol=1 / 255)


def test_from_run_uses_the_injected_loader(trained, tmp_path):
    model, data = trained
    seen = []
    def loader(run_dir):
        seen.append(run_dir)
        return model, data, {"seed": 1}
    ex = TraversalExplorer.from_run(tmp_path, loader=loader, index=2)
    assert seen == [tmp_path] and ex.record == {"seed": 1} and ex.index == 2
    with pytest.raises(FileNotFoundError, match="run_dir: .*missing does not exist"):
        TraversalExplorer.from_run(tmp_path / "missing", loader=loader)


def test_bad_inputs_are_named(trained):
    model, _ = trained
    class Big(ToySquares):
        image_shape = (1, 16, 16)
    with pytest.raises(ValueError, match=r"dataset: images of shape \(1, 16, 16\) do not fit this model"):
        TraversalExplorer(model, Big())
    with pytest.raises(ValueError, match="factor: expected one of"):
        FactorSweep(model, ToySquares(), factor="hue")


def test_factor_sweep_responses_are_the_codes_of_the_swept_images(trained):
    model, data = trained
    sw = FactorSweep(model, data, index=50, factor="y")
    base = data.index_to_factors([50])[0]
    factors = np.array([[base[0], base[1], y] for y in range(6)])
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(data.images(factors)))["mu"].numpy()
    np.testing.assert_allclose(sw.responses, codes, atol=1e-6)
    np.testing.assert_allclose(sw.values, np.linspace(0, 1, 6))
    first = sw.plot.value
    assert bytes(first).startswith(b"\x89PNG")
    sw.index_slider.value = 56             # x changes; index 51 would only move y, the swept factor
    assert sw.plot.value != first
