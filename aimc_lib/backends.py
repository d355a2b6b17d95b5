"""Where an analog layer's periphery runs: one ``backend=`` choice, and the layer that uses it.

The computation is specified once, by the PyTorch reference :mod:`aimc_lib.periphery`. A backend
computes the same thing faster on some hardware, drawing the same output noise (the stream of
:mod:`aimc_lib.rng`):

* ``"torch"``: the reference itself, on any device.
* ``"c"``: on CPUs, compiled C (:mod:`aimc_lib.periphery_cpu`). On x86-64 CPUs with AVX2 and FMA
  the abs-max DAC conv runs as one compiled pass (:func:`aimc_lib.periphery_cpu.dac_conv`: DAC
  levels, product and output stage a few output pixels at a time in the L1 cache); on other CPUs
  (e.g. ARM) as compiled loops around PyTorch's matrix product (abs-max, DAC patch matrix, output
  stage). The other layers' output stage is one compiled loop after PyTorch's product. The library is
  built on first use into the user's cache folder; without a C compiler (and no prebuilt copy) this
  backend is unavailable.
* ``"triton"``: on CUDA GPUs (compute capability 8 or newer) with Triton, the abs-max DAC conv as
  one fused kernel (:mod:`aimc_lib.periphery_triton`); every other step runs the reference's
  PyTorch ops on the GPU.
* ``"auto"`` (default): ``"triton"`` on a GPU where it is available, ``"c"`` on a CPU where it is
  available, else ``"torch"``.

The backends agree up to the order of float additions in the products: an output that lands
within rounding of an ADC level's edge can come out one level apart (counted in the tests). The
name of the backend a read used is recorded in every result's metadata.
"""
from __future__ import annotations

import torch
from torch import nn

from . import periphery, periphery_cpu
from .converters import Periphery, half_levels, in_step, out_step, output_stage_args
from .rng import Stream

#: The choices of ``backend=`` (module docstring).
BACKENDS = ("auto", "torch", "c", "triton")


def _triton():
    """:mod:`aimc_lib.periphery_triton`, imported on first use (it imports Triton, needed only on a GPU)."""
    from . import periphery_triton
    return periphery_triton


def available(name: str, device: torch.device | str = "cpu") -> bool:
    """Whether backend ``name`` can run layers on ``device`` here."""
    device = torch.device(device)
    if name == "torch":
        return True
    if name == "c":
        return device.type == "cpu" and periphery_cpu.available()
    if name == "triton":
        return (device.type == "cuda" and _triton().available
                and torch.cuda.get_device_capability(device)[0] >= 8)  # TF32 tensor cores (Ampere or newer)
    raise ValueError(f"unknown periphery backend {name!r}; choose one of {BACKENDS}")


def resolve(name: str, device: torch.device | str = "cpu") -> str:
    """The backend that ``name`` means on ``device``: ``"auto"`` picks the fastest available one; an
    explicit name that is not available here is refused (with what is)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown periphery backend {name!r}; choose one of {BACKENDS}")
    if name == "auto":
        for candidate in ("triton", "c"):
            if available(candidate, device):
                return candidate
        return "torch"
    if not available(name, device):
        here = [b for b in BACKENDS[1:] if available(b, device)]
        raise ValueError(f"periphery backend {name!r} is not available on {torch.device(device)} here; "
                         f"available: {here}")
    return name


def _stream_args(noise: Stream | None, noise_sd: float) -> tuple[int, tuple[int, int]]:
    """The compiled functions' noise key: the stream's seed and words (zeros without noise: nothing drawn)."""
    return (noise.seed, noise.words) if noise is not None and noise_sd > 0 else (0, (0, 0))


def _c_output_stage_(y_rows: torch.Tensor, mult: float, s_rows: torch.Tensor, per: Periphery, noise: Stream | None,
                     row0: int, pixels_per_image: int, digital_scale: float) -> torch.Tensor:
    """The reference's output stage as one compiled loop on ``[rows, C_out]`` (channels-last rows)."""
    noise_sd, adc, clip = output_stage_args(per)
    step = out_step(per)
    gain = (mult / step).reshape(-1).contiguous() if isinstance(mult, torch.Tensor) else mult / step
    seed, words = _stream_args(noise, noise_sd)
    return periphery_cpu.output_stage_(y_rows, gain, (s_rows * (step * digital_scale)).reshape(-1).contiguous(),
                                       noise_sd, seed, words, row0, pixels_per_image, adc, clip)


def _dac_conv_c(x, w4d, conv, per, noise, row0, digital_scale):
    k = w4d.shape[1] * w4d.shape[2] * w4d.shape[3]
    noise_sd, adc, clip = output_stage_args(per)
    seed, words = _stream_args(noise, noise_sd)
    out = periphery_cpu.dac_conv(
        x.permute(0, 2, 3, 1).contiguous(), w4d.permute(2, 3, 1, 0).reshape(k, w4d.shape[0]), conv.kernel_size,
        conv.stride, conv.padding, in_step(per), half_levels(per.inp_bits), per.inp_bound < 1.0,
        in_step(per) / out_step(per), out_step(per) * digital_scale, noise_sd, seed, words, row0, adc, clip)
    return out.permute(0, 3, 1, 2)  # NCHW shape, channels-last memory


def _patch_matrix_conv_c(x, w4d, conv, per, noise, row0, digital_scale):
    """The abs-max DAC conv as compiled loops around PyTorch's product (CPUs without AVX2): the
    reference's chunks, its abs-max, DAC patch matrix and output stage in C, the product ``torch.mm``."""
    step = in_step(per)
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    n, c = x.shape[:2]
    x_nhwc = x.permute(0, 2, 3, 1).contiguous()
    s = periphery._nonzero_scale(periphery._window_max(periphery_cpu.channel_abs_max(x_nhwc), conv))
    ho, wo = s.shape[-2:]
    inv = (1.0 / (s * step)).contiguous()
    k, cout = kh * kw * c, w4d.shape[0]
    w_mat = w4d.permute(2, 3, 1, 0).reshape(k, cout)
    chunk = max(1, min(n, periphery.PATCH_CHUNK_BYTES // (ho * wo * k * x.element_size())))
    out = torch.empty((n, ho, wo, cout), dtype=x.dtype)
    cols = torch.empty((chunk, ho, wo, kh * kw, c), dtype=x.dtype)
    for b0 in range(0, n, chunk):
        b1 = min(n, b0 + chunk)
        cb = cols[: b1 - b0]
        periphery_cpu.dac_patches(x_nhwc[b0:b1], inv[b0:b1], cb, (kh, kw), (sh, sw), (ph, pw),
                                  half_levels(per.inp_bits), per.inp_bound < 1.0)
        rows = out[b0:b1].view(-1, cout)
        torch.mm(cb.view(-1, k), w_mat, out=rows)
        _c_output_stage_(rows, step, s[b0:b1], per, noise, row0 + b0, ho * wo, digital_scale)
    return out.permute(0, 3, 1, 2)


def conv2d(x: torch.Tensor, w4d_norm: torch.Tensor, conv: nn.Conv2d, per: Periphery, noise: Stream | None,
           digital_scale: float, row0: int, backend: str) -> torch.Tensor:
    """:func:`aimc_lib.periphery.analog_conv2d` on a resolved ``backend``."""
    periphery.check_plain_conv(conv)
    if per.out_noise > 0 and noise is None:
        raise ValueError("a periphery with output noise needs a noise stream (aimc_lib.rng.Stream)")
    dac_conv = per.inp_bits is not None and per.noise_management == "abs_max"
    if backend == "triton" and dac_conv and _triton().supports(x, w4d_norm, per):
        return _triton().dac_conv(x, w4d_norm, conv.stride, conv.padding, per, digital_scale, noise, row0)
    if backend == "c" and dac_conv and x.dtype == torch.float32:
        if periphery_cpu.has_dac_conv():
            return _dac_conv_c(x, w4d_norm, conv, per, noise, row0, digital_scale)
        return _patch_matrix_conv_c(x, w4d_norm, conv, per, noise, row0, digital_scale)
    return periphery.analog_conv2d(x, w4d_norm, conv, per, noise, digital_scale, row0)


def matmul(x: torch.Tensor, w_norm: torch.Tensor, per: Periphery, noise: Stream | None, digital_scale: float,
           row0: int, backend: str) -> torch.Tensor:
    """:func:`aimc_lib.periphery.analog_matmul` on a resolved ``backend``."""
    if backend != "c" or x.dtype != torch.float32 or x.dim() != 2:
        return periphery.analog_matmul(x, w_norm, per, noise, digital_scale, row0)
    if per.out_noise > 0 and noise is None:
        raise ValueError("a periphery with output noise needs a noise stream (aimc_lib.rng.Stream)")
    y, mult, s = periphery.matmul_product(x, w_norm, per)
    return _c_output_stage_(y.contiguous(), mult, s, per, noise, row0, 1, digital_scale)


class AnalogLayer(nn.Module):
    """A conv or linear layer computed by a crossbar with its periphery.

    Holds the crossbar's normalised weights (``(G+ - G-) / G_max`` as read) and the digital
    factor ``W_max * alpha`` applied after the ADC. The FC bias, if any, is the crossbar's last
    column, driven by a constant input 1. ``noise`` is the stream of the output noise; the layer
    counts the images it has computed, so image ``k`` of everything it computes after the read
    gets row ``k`` of the stream, however the images are batched. ``backend``: see
    :data:`aimc_lib.backends.BACKENDS` (resolved for the weights' device when the layer is made).

    A read is for inference: no gradient flows through the converters (rounding has none), so
    the forward pass runs without autograd even where it is enabled (a plain ``model(x)`` call).
    """

    def __init__(self, layer: nn.Module, w2d_norm: torch.Tensor, digital_scale: float, periphery_: Periphery,
                 noise: Stream | None = None, backend: str = "auto"):
        super().__init__()
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            raise ValueError(f"AnalogLayer wraps Conv2d or Linear layers, got {type(layer).__name__}")
        if not isinstance(periphery_, Periphery):
            raise ValueError(f"AnalogLayer: periphery must be a Periphery, got {type(periphery_).__name__}")
        self.layer = layer
        self.has_bias = getattr(layer, "bias", None) is not None
        if isinstance(layer, nn.Conv2d):
            if self.has_bias:
                raise ValueError("AnalogLayer: conv layers with a bias are not supported (ResNet convs have none)")
            w = w2d_norm.reshape(layer.weight.shape)
        else:
            w = w2d_norm
        self.register_buffer("w_norm", w.to(layer.weight.device, layer.weight.dtype).contiguous())
        self.digital_scale = float(digital_scale)
        self.periphery = periphery_
        self.noise = noise
        self.backend = resolve(backend, self.w_norm.device)
        self.images_seen = 0

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        row0, self.images_seen = self.images_seen, self.images_seen + x.shape[0]
        if isinstance(self.layer, nn.Conv2d):
            return conv2d(x, self.w_norm, self.layer, self.periphery, self.noise, self.digital_scale, row0,
                          self.backend)
        if self.has_bias:
            x = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
        return matmul(x, self.w_norm, self.periphery, self.noise, self.digital_scale, row0, self.backend)
