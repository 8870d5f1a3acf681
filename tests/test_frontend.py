"""FLAMO frontend: traversal, map-aware extraction, refusals with the module's path."""
import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system
from torch import nn

import adac
from adac.common.errors import AdacError, InvalidParameterError, UnsupportedModuleError
from adac.ir import iter_nodes
from flamo_models import CPU, FS, fdn, set_delays_samples, single


def test_traversal_paths_ids_and_channels():
    ir = adac.flamo_to_json(fdn(8, n_in=1, n_out=2), FS, name="fdn")
    assert (ir["input_channels"], ir["output_channels"]) == (1, 2)
    nodes = [n for n, _ in iter_nodes(ir["graph"])]
    assert len({n["id"] for n in nodes}) == len(nodes)
    paths = {n["path"]: n["kind"] for n in nodes}
    assert paths["core"] == "parallel"
    assert paths["core.branchA.1"] == "recursion"
    assert paths["core.branchA.1.feedforward"] == "delay"
    assert paths["core.branchA.1.feedback.0"] == "gain"
    assert paths["core.branchA.1.feedback.2"] == "sos"
    assert ir["flamo"]["shell"] == {"input_layer": "Identity", "output_layer": "Identity"}


def test_delay_values_come_from_the_modules_own_conversion():
    torch.manual_seed(0)
    lines = dsp.parallelDelay(size=(3,), max_len=500, isint=True, unit=100, fs=44100, **CPU)
    expected = torch.round(lines.s2sample(lines.map(lines.param))).tolist()
    node = adac.flamo_to_json(system.Shell(lines), 48000)["graph"]
    assert node["samples"] == expected
    assert node["integer"] is True
    # the raw parameter is seconds / unit, not samples: a naive param * fs would be 100x off
    assert not np.allclose(np.asarray(lines.param.tolist()) * 48000, expected)


def test_softplus_map_of_trainable_delays():
    lines = dsp.parallelDelay(size=(2,), max_len=50, isint=False, requires_grad=True, fs=FS, **CPU)
    lines.assign_value(torch.tensor([-3.0, -2.0]))
    node = adac.flamo_to_json(system.Shell(lines), FS)["graph"]
    want = (torch.nn.functional.softplus(torch.tensor([-3.0, -2.0], dtype=torch.float64)) * FS / 100).tolist()
    assert node["samples"] == pytest.approx(want, rel=1e-12)
    assert node["integer"] is False


@pytest.mark.parametrize("matrix_type", ["orthogonal", "hadamard", "rotation"])
def test_matrix_maps_are_applied(matrix_type):
    module = dsp.Matrix(size=(4, 4), matrix_type=matrix_type, **CPU)
    node = adac.flamo_to_json(system.Shell(module), FS)["graph"]
    m = np.asarray(node["matrix"])
    assert np.allclose(m @ m.T, np.eye(4), atol=1e-12)  # all three are orthogonal once mapped
    assert not np.allclose(m, np.asarray(module.param.tolist()))
    assert node["structure"] == matrix_type


def test_householder_vector_is_normalised():
    node = adac.flamo_to_json(single("HouseholderMatrix"), FS)["graph"]
    assert np.linalg.norm(node["u"]) == pytest.approx(1.0, abs=1e-12)


def test_filters_become_their_flamo_coefficients():
    """Biquad sections equal FLAMO's own lowpass_filter output, normalised."""
    from flamo.functional import lowpass_filter, rad2hertz

    model = single("parallelBiquad")
    module = model.get_core()
    mapped = module.map(module.param.double())
    b, a = lowpass_filter(fc=rad2hertz(mapped[:, 0, :] * torch.pi, fs=FS), gain=mapped[:, 1, :], fs=FS, dtype=torch.float64)
    sections = np.asarray(adac.flamo_to_json(model, FS)["graph"]["sections"])
    assert np.allclose(sections[:, 0:3], (b / a[0]).permute(1, 0, 2).numpy(), rtol=1e-9, atol=1e-12)
    assert np.allclose(sections[:, 4:6], (a[1:] / a[0]).permute(1, 0, 2).numpy(), rtol=1e-9, atol=1e-12)


def test_model_is_left_as_it_was():
    model = fdn(8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    nfft = model.get_core().branchA[1].feedforward.nfft
    adac.flamo_to_json(model, FS)
    for key, value in model.state_dict().items():
        assert value.dtype == before[key].dtype
        assert torch.equal(value, before[key])
    assert model.get_core().branchA[1].feedforward.nfft == nfft


class Doubler(nn.Module):
    def forward(self, x):
        return 2 * x


def test_unknown_module_names_its_path():
    core = system.Series(OrderedDict(gains=dsp.parallelGain(size=(2,), **CPU), odd=Doubler()))
    with pytest.raises(UnsupportedModuleError, match=r"core\.odd: Doubler is not supported"):
        adac.flamo_to_json(system.Shell(core), FS)


def test_subclass_of_a_flamo_module_is_refused():
    class MyGain(dsp.parallelGain):
        pass

    with pytest.raises(UnsupportedModuleError, match="MyGain"):
        adac.flamo_to_json(system.Shell(MyGain(size=(2,), **CPU)), FS)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_parameters(bad):
    model = fdn(4)
    feedback_gains = model.get_core().branchA[1].feedback[1]
    with torch.no_grad():
        feedback_gains.param[2] = bad
    with pytest.raises(InvalidParameterError, match=r"core\.branchA\.1\.feedback\.1"):
        adac.flamo_to_json(model, FS)


def test_negative_delay():
    lines = dsp.Delay(size=(1, 2), max_len=50, isint=True, fs=FS, **CPU)
    lines.assign_value(torch.tensor([[0.001, -0.002]]))
    with pytest.raises(InvalidParameterError, match="negative delay"):
        adac.flamo_to_json(system.Shell(lines), FS)


def test_bad_fs():
    with pytest.raises(AdacError, match="fs"):
        adac.flamo_to_json(fdn(4), 0)


def test_custom_map_is_baked_where_it_can_be():
    gains = dsp.parallelGain(size=(3,), map=lambda x: 2 * torch.tanh(x), **CPU)
    ir = adac.flamo_to_json(system.Shell(gains), FS)
    assert ir["graph"]["flamo"]["map"] == "baked"
    again = adac.flamo_to_json(adac.json_to_flamo(ir), FS)
    # baked values live in the rebuilt model's float32 parameter: equal to float32 rounding,
    # and from then on the round trip is a fixed point
    assert again["graph"]["gains"] == pytest.approx(ir["graph"]["gains"], rel=1e-7)
    assert adac.flamo_to_json(adac.json_to_flamo(again), FS) == again


def test_custom_filter_map_compiles_but_is_not_rebuilt():
    geq = dsp.parallelGEQ(size=(2,), fs=FS, map=lambda x: 12 * torch.tanh(x), **CPU)
    ir = adac.flamo_to_json(system.Shell(geq), FS)
    assert ir["graph"]["flamo"]["map"] == "custom"
    assert "adac_svf" in adac.json_to_faust(ir)
    with pytest.raises(UnsupportedModuleError, match="custom map"):
        adac.json_to_flamo(ir)


def test_ir_is_json_serialisable():
    json.dumps(adac.flamo_to_json(fdn(8), FS), allow_nan=False)


def test_every_flamo_class_is_compiled_or_refused_clearly():
    import inspect as _inspect

    from adac.frontend.flamo.modules import MODULES

    containers = {"Series", "Parallel", "Recursion", "Shell"}
    abstract = {"DSP", "_Reconfigurable"}
    transforms = {"Transform", "FFT", "iFFT", "FFTAntiAlias", "iFFTAntiAlias"}
    classes = {name for mod in (dsp, system) for name, obj in vars(mod).items()
               if _inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == mod.__name__}
    unaccounted = classes - set(MODULES) - containers - abstract - transforms
    assert not unaccounted, f"FLAMO classes neither compiled nor refused: {unaccounted}"
    from adac.frontend.flamo.extract import _Walker

    for name in sorted(transforms):
        # FLAMO itself will not chain a transform with DSP modules; the walker still names it clearly
        layer = getattr(dsp, name)(nfft=256) if name != "Transform" else dsp.Transform()
        with pytest.raises(UnsupportedModuleError, match=rf"core\.fft: {name} is a domain transform"):
            _Walker(torch.float32).walk(layer, "core.fft", "fft")
