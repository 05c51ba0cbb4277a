"""Property tests of the JL1-VAE Jacobian: exact columns vs autograd's full Jacobian on random tiny decoders."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from vaenb.jl1vae import decoder_jacobian, jacobian_l1


def _full_columns(fn, z):
    "Per-sample blocks of reverse-mode autograd's full Jacobian, [B, d, *out]."
    full = torch.autograd.functional.jacobian(fn, z)
    return torch.stack([full[b, ..., b, :] for b in range(len(z))]).movedim(-1, 1)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 4), dim=st.integers(1, 5), width=st.integers(1, 8),
       activation=st.sampled_from([nn.ReLU, nn.Tanh, nn.Softplus]))
def test_exact_columns_match_autograd(seed, batch, dim, width, activation):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(dim, width), activation(), nn.Linear(width, 2 * 3 * 3), nn.Unflatten(1, (2, 3, 3))).double()
    fn = lambda latent: torch.sigmoid(net(latent))
    z = torch.randn(batch, dim, dtype=torch.float64)
    expected = _full_columns(fn, z)
    assert torch.allclose(decoder_jacobian(fn, z), expected, atol=1e-12)
    assert torch.allclose(jacobian_l1(fn, z), expected.abs().sum() / batch, atol=1e-10)
    assert torch.allclose(decoder_jacobian(fn, z, "finite_difference", fd_step=1e-7), expected, atol=1e-5)
