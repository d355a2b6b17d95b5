"""Noise-aware training: noise statistics, gradients, clipping, learning on real data, exact resume."""
import json

import pytest
import torch

from aimc_lib.models import analog_layers, crossbar_matrix, resnet
from aimc_lib.training import TrainConfig, clip_weights, custom_config, lr_at, noisy_weights, train


def test_injected_noise_has_requested_relative_std():
    m = resnet(20, (16, 28, 56))
    noisy = noisy_weights(m, 0.038, torch.Generator().manual_seed(0))
    for name, layer in analog_layers(m).items():
        w_max = crossbar_matrix(layer).abs().max().item()
        diff = (noisy[f"{name}.weight"] - layer.weight).detach()
        if diff.numel() > 5000:
            assert diff.std().item() / w_max == pytest.approx(0.038, rel=0.03), name
            assert diff.mean().item() / w_max == pytest.approx(0, abs=0.003)
    assert "fc.bias" in noisy


def test_gradients_reach_clean_weights():
    m = resnet(20, (8, 8, 8))
    noisy = noisy_weights(m, 0.05, torch.Generator().manual_seed(0))
    out = torch.func.functional_call(m, noisy, (torch.randn(4, 3, 32, 32),), strict=False)
    out.sum().backward()
    for name, layer in analog_layers(m).items():
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0, name


def test_fresh_noise_each_call():
    m = resnet(20, (8, 8, 8))
    g = torch.Generator().manual_seed(0)
    a, b = noisy_weights(m, 0.05, g), noisy_weights(m, 0.05, g)
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"])


def test_clipping_bounds_hold():
    m = resnet(20, (8, 8, 8))
    with torch.no_grad():
        m.conv1.weight[0, 0, 0, 0] = 10.0
        m.fc.bias[0] = -10.0
    bounds = {n: 2.0 * crossbar_matrix(l).std().item() for n, l in analog_layers(m).items()}
    clip_weights(m, 2.0)
    for name, layer in analog_layers(m).items():
        assert crossbar_matrix(layer).abs().max().item() <= bounds[name] + 1e-6
    assert m.conv1.weight[0, 0, 0, 0].item() == pytest.approx(bounds["conv1"])


def test_one_cycle_schedule():
    cfg = TrainConfig(lr_max=0.2, warmup_frac=0.2)
    assert lr_at(0, 100, cfg) == pytest.approx(0.02)
    assert lr_at(20, 100, cfg) == pytest.approx(0.2)
    assert lr_at(100, 100, cfg) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(60, 100, cfg) == pytest.approx(0.1)


def _tiny(**kw):
    base = dict(depth=8, widths=(8, 8, 16), epochs=2, batch_size=64, lr_max=0.05, train_subset=640,
                test_subset=200, seed=3)
    return TrainConfig(**{**base, **kw})


def test_training_reduces_loss_on_real_cifar(cifar_train, cifar_test, tmp_path):
    cfg = _tiny(epochs=3, eta_tr=0.04, clip_alpha=2.5, label_smoothing=0.0, batch_size=32, lr_max=0.1,
                train_subset=960)
    train(cfg, cifar_train, cifar_test, tmp_path, progress=False)
    log = json.loads((tmp_path / "log.json").read_text())["epochs"]
    assert log[-1]["train_loss"] < log[0]["train_loss"] - 0.1
    assert log[0]["train_loss"] < 2.35  # below chance-level cross-entropy ln(10) = 2.30 + noise
    assert (tmp_path / "model.pt").exists()


def test_resume_reproduces_uninterrupted_run(cifar_train, cifar_test, tmp_path):
    cfg = _tiny(eta_tr=0.03, clip_alpha=2.0)
    full = train(cfg, cifar_train, cifar_test, tmp_path / "a", progress=False)
    train(cfg, cifar_train, cifar_test, tmp_path / "b", progress=False, stop_after_epochs=1)
    log_b = json.loads((tmp_path / "b" / "log.json").read_text())["epochs"]
    assert len(log_b) == 1 and not (tmp_path / "b" / "model.pt").exists()
    resumed = train(cfg, cifar_train, cifar_test, tmp_path / "b", progress=False)
    for (k, v), (_, w) in zip(full.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def test_resume_with_another_config_refuses(cifar_train, cifar_test, tmp_path):
    train(_tiny(epochs=1), cifar_train, cifar_test, tmp_path, progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(_tiny(epochs=1, lr_max=0.1), cifar_train, cifar_test, tmp_path, progress=False)


def test_fine_tuning_starts_from_checkpoint(cifar_train, cifar_test, tmp_path):
    train(_tiny(epochs=1), cifar_train, cifar_test, tmp_path / "fp32", progress=False)
    cfg = _tiny(epochs=1, eta_tr=0.04, clip_alpha=2.0, init_from=str(tmp_path / "fp32" / "model.pt"))
    m = train(cfg, cifar_train, cifar_test, tmp_path / "custom", progress=False)
    log = json.loads((tmp_path / "custom" / "log.json").read_text())["epochs"]
    assert log[0]["test_acc"] > 15  # starts from a trained model, not from scratch
    assert m is not None


def test_custom_recipe_and_bad_config():
    cfg = custom_config()
    assert cfg.eta_tr == pytest.approx(0.038) and cfg.clip_alpha == 2.0
    with pytest.raises(ValueError):
        TrainConfig(eta_tr=-0.1)
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)
