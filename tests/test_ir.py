"""IR schema and semantic validation: every error names the JSON pointer of the bad field."""
import copy
import json

import pytest

import adac
from adac.common.errors import ChannelMismatchError, InvalidParameterError, SchemaError
from adac.ir import IR_VERSION, load_ir, save_ir, validate_ir
from flamo_models import FS, fdn


@pytest.fixture(scope="module")
def ir():
    return adac.flamo_to_json(fdn(4), FS, name="fdn4")


def test_valid_ir_passes_and_carries_versions(ir):
    assert validate_ir(copy.deepcopy(ir)) == ir
    assert ir["format"] == "adac-ir" and ir["version"] == IR_VERSION
    assert ir["flamo"]["version"] == "0.2.20"


def test_missing_field_names_pointer(ir):
    bad = copy.deepcopy(ir)
    del bad["graph"]["children"][0]["children"][1]["feedforward"]["samples"]
    with pytest.raises(SchemaError, match=r"/graph/children/0/children/1/feedforward"):
        validate_ir(bad)


def test_unknown_kind(ir):
    bad = copy.deepcopy(ir)
    bad["graph"]["children"][1]["kind"] = "reverb"
    with pytest.raises(SchemaError, match=r"/graph/children/1"):
        validate_ir(bad)


def test_nan_in_an_ir_names_pointer(ir):
    bad = copy.deepcopy(ir)
    bad["graph"]["children"][1]["matrix"][0][0] = float("nan")
    with pytest.raises(InvalidParameterError, match=r"/graph/children/1/matrix/0/0"):
        validate_ir(bad)


def test_negative_delay_in_an_ir(ir):
    bad = copy.deepcopy(ir)
    bad["graph"]["children"][0]["children"][1]["feedforward"]["samples"][2] = -4.0
    with pytest.raises(InvalidParameterError, match=r"feedforward/samples.*negative delay"):
        validate_ir(bad)


def test_mismatched_channels(ir):
    bad = copy.deepcopy(ir)
    wet = bad["graph"]["children"][0]
    wet["children"][2]["in"] = 5  # output gains now claim 5 inputs after a 4-line loop
    with pytest.raises(ChannelMismatchError, match=r"/graph/children/0.*child 1"):
        validate_ir(bad)


def test_matrix_shape_must_match_channels(ir):
    bad = copy.deepcopy(ir)
    bad["graph"]["children"][1]["matrix"] = [[1.0, 2.0, 3.0]]
    with pytest.raises(ChannelMismatchError, match=r"/graph/children/1/matrix"):
        validate_ir(bad)


def test_future_major_version_is_refused(ir):
    bad = copy.deepcopy(ir)
    bad["version"] = "2.0"
    with pytest.raises(SchemaError, match="/version"):
        validate_ir(bad)


def test_load_ir_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "adac-ir",\n  "version": \n}')
    with pytest.raises(SchemaError, match=r"broken\.json: line 4"):
        load_ir(path)
    with pytest.raises(SchemaError, match="no such IR file"):
        load_ir(tmp_path / "missing.json")


def test_save_ir_leaves_nothing_when_invalid(ir, tmp_path):
    bad = copy.deepcopy(ir)
    bad["fs"] = -1
    target = tmp_path / "out.json"
    with pytest.raises(SchemaError, match="/fs"):
        save_ir(bad, target)
    assert list(tmp_path.iterdir()) == []
    save_ir(ir, target)
    assert json.loads(target.read_text()) == ir


def test_backends_validate_their_input(ir):
    bad = copy.deepcopy(ir)
    bad["graph"]["children"][1]["matrix"][0][0] = float("inf")
    with pytest.raises(InvalidParameterError):
        adac.json_to_faust(bad)
    with pytest.raises(InvalidParameterError):
        adac.json_to_flamo(bad)


def test_undeclared_node_fields_are_refused(ir):
    """Pass-private data (a loop's taken sample, a simulation's order) never enters a document: the schema
    refuses any field it does not declare, on any node."""
    import copy

    for field in ("taken", "_order"):
        bad = copy.deepcopy(ir)
        bad["graph"][field] = 1
        with pytest.raises(SchemaError, match=f"undeclared field.*'{field}'"):
            validate_ir(bad)
