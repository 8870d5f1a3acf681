"""json_to_flamo(flamo_to_json(m)): re-exports bit-identically, responds like the original."""
import json

import pytest
import torch

import adac
from adac.frontend.flamo.reference import flamo_reference
from flamo_models import FS, SINGLE_KINDS, fdn, single


@pytest.mark.parametrize("kind", SINGLE_KINDS)
def test_round_trip_is_bit_identical(kind):
    model = single(kind)
    ir = adac.flamo_to_json(model, FS, name=kind)
    rebuilt = adac.json_to_flamo(ir)
    assert json.dumps(adac.flamo_to_json(rebuilt, FS, name=kind)) == json.dumps(ir)


def test_round_trip_response_equals_original():
    model = fdn(8, t60=0.1)
    ir = adac.flamo_to_json(model, FS)
    rebuilt = adac.json_to_flamo(ir)
    original, _ = flamo_reference(model, 8000, 1 << 15)
    again, _ = flamo_reference(rebuilt, 8000, 1 << 15)
    assert (original == again).all()
    # and in the model's own float32 forward pass
    with torch.no_grad():
        assert torch.equal(model.get_time_response(identity=True), rebuilt.get_time_response(identity=True))


def test_round_trip_keeps_paths_and_settings():
    ir = adac.flamo_to_json(fdn(4), FS)
    rebuilt = adac.json_to_flamo(ir, dtype=torch.float64, nfft=1 << 12)
    core = rebuilt.get_core()
    assert core.branchA[1].feedforward.nfft == 1 << 12
    assert core.branchA[1].feedforward.param.dtype == torch.float64
