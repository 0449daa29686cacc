"""helpers.provenance: one typed record beside every saved adapter, written and read by code everywhere."""

import json

import pytest

from helpers.paths import REPO_ROOT
from helpers.provenance import HEAD_FILE, TRAINING_FILE, Provenance, ProvenanceError, from_dict, read

SHIPPED = [(REPO_ROOT / "adapters" / "smollm2-135m-price-gpu", TRAINING_FILE),
           (REPO_ROOT / "adapters" / "smollm2-135m-price-head-gpu", HEAD_FILE)]


@pytest.mark.parametrize("folder,name", SHIPPED, ids=["adapter", "head"])
def test_the_shipped_records_read_into_the_class_and_write_back_the_same(folder, name, tmp_path):
    record = read(folder, name)
    assert record.profile == "gpu" and record.test_mae and record.commit
    written = json.loads(record.write(tmp_path / name).read_text())
    original = json.loads((folder / name).read_text())
    assert {k: v for k, v in written.items() if k in original or v is not None} == original  # only nulls are added


def test_a_key_no_code_writes_is_refused_by_name():
    values = json.loads((SHIPPED[0][0] / TRAINING_FILE).read_text())
    with pytest.raises(ProvenanceError, match="keys no code writes: test_mae_tpu"):
        from_dict({**values, "test_mae_tpu": {"n=250": 1.0}}, "a benchmark's record")
    with pytest.raises(ProvenanceError, match="missing config"):
        from_dict({k: v for k, v in values.items() if k != "config"})
    record = from_dict(values)
    with pytest.raises(ProvenanceError, match="no provenance field test_mae_tpu: add it"):
        record.with_fields(test_mae_tpu={})
    assert record.with_fields(decoding="median price").decoding == "median price"


def test_a_folder_without_a_record_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"No {TRAINING_FILE} in .*outputs/<profile>"):
        read(tmp_path)


def test_what_training_always_records_stays_in_the_file_when_empty(tmp_path):
    record = Provenance(profile="smoke", model="m", dataset="sample", n_train=1, n_val=1, config={})
    written = json.loads(record.write(tmp_path / TRAINING_FILE).read_text())
    assert written["resumed_from"] is None and "test_mae_cpu" not in written
    assert read(tmp_path) == record
