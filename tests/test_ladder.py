import json

import matplotlib
import pytest

from helpers.adapters import SHIPPED_ADAPTER, ship_adapter, shipped_provenance
from helpers.evaluation import evaluate
from helpers.inference import choose_decoding
from helpers.ladder import COURSE_REAL_DATA, adapter_records_name, crossing, ladder_rows
from helpers.plots import plot_data_curve, plot_ladder  # noqa: E402

matplotlib.use("Agg")
ITEMS = [{"price": p, "category": "A"} for p in (10.0, 50.0, 200.0, 600.0)]


def test_decoding_is_chosen_by_validation_mae_only():
    validation = {"greedy": evaluate([10, 50, 200, 700], ITEMS, "g"), "median price": evaluate([10, 50, 200, 600], ITEMS, "m")}
    assert choose_decoding(validation) == "median price"


def test_ladder_rows_refuse_mixed_item_counts():
    four = evaluate([10, 50, 200, 600], ITEMS, "four").record()
    two = evaluate([10, 50], ITEMS[:2], "two").record()
    rows = ladder_rows([four], [("a", "four")])
    assert rows[0]["mae"] == 0 and rows[0]["filled"] == 0
    with pytest.raises(ValueError, match="same items"):
        ladder_rows([four, two], [("a", "four"), ("b", "two")])
    with pytest.raises(KeyError, match="missing"):
        ladder_rows([four], [("a", "missing")])


def test_ladder_plot_keeps_the_course_figures_apart():
    rows = ladder_rows([evaluate([12, 50, 200, 600], ITEMS, "m", kind="fine-tuned").record()], [("ours", "m")])
    ax = plot_ladder(rows)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "ours: m" and all(lab.startswith("[course, real data]") for lab in labels[1:])
    assert len(labels) == 1 + len(COURSE_REAL_DATA)


def test_crossing_interpolates_on_a_log_scale():
    curve = {"methods": {"a": [{"n_train": 1000, "mae": 200}, {"n_train": 4000, "mae": 100}],
                         "b": [{"n_train": 1000, "mae": 150}, {"n_train": 4000, "mae": 150}]}}
    assert crossing(curve, "a", "b") == pytest.approx(2000, rel=1e-6)  # halfway in log between 1k and 4k
    assert crossing(curve, "b", "a") == 1000  # b is below a from the smallest size measured
    curve["methods"]["c"] = [{"n_train": 1000, "mae": 300}, {"n_train": 4000, "mae": 250}]
    assert crossing(curve, "c", "b") is None  # never below at any measured size
    ax = plot_data_curve({**curve, "oracle_mae": 20, "n_test": 4})
    assert len(ax.lines) == 4  # three methods and the oracle line


def test_shipped_adapter_is_small_bf16_and_documented():
    info = shipped_provenance()
    weights = SHIPPED_ADAPTER / "adapter_model.safetensors"
    assert weights.stat().st_size <= 10_000_000
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}
    for key in ("commit", "config", "device", "seconds", "decoding", "test_mae", "n_train"):
        assert key in info, key
    with pytest.raises(FileNotFoundError, match="No shipped adapter"):
        shipped_provenance(SHIPPED_ADAPTER.parent / "nowhere")


def test_ship_adapter_casts_to_bf16_and_keeps_provenance(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    src = tmp_path / "src"
    src.mkdir()
    save_file({"a.lora_A.weight": torch.randn(4, 8)}, str(src / "adapter_model.safetensors"))
    (src / "adapter_config.json").write_text("{}")
    (src / "workbook_training.json").write_text(json.dumps({"profile": "smoke", "model": "m", "dataset": "sample",
                                                             "n_train": 3, "n_val": 1, "config": {}}))
    out = ship_adapter(src, tmp_path / "out", extra={"device": "test"})
    tensors = load_file(str(out / "adapter_model.safetensors"))
    assert tensors["a.lora_A.weight"].dtype == torch.bfloat16
    info = json.loads((out / "workbook_training.json").read_text())
    assert info["n_train"] == 3 and info["device"] == "test" and info["weights_dtype"] == "bfloat16"


def test_larger_training_splits_extend_the_shipped_catalog():
    from helpers.curation import CurationReport, curate
    from helpers.data import extra_training_items

    shipped, _ = curate(__import__("helpers.catalog", fromlist=["x"]).generate_records(n=2_000))
    report = CurationReport()
    extra = extra_training_items(500, shipped, None, report)
    assert len(extra) == 500 and report.generated_records >= 4_000
    shipped_ids = {item.id for item in shipped}
    assert not shipped_ids & {item.id for item in extra}
    assert [i.id for i in extra_training_items(500, shipped, None, CurationReport())] == [i.id for i in extra]


def test_score_decodings_refuses_an_unknown_decoding():
    from helpers.inference import score_decodings

    with pytest.raises(ValueError, match="unknown decoding"):
        score_decodings(None, None, {"prompt": []}, fallback=1.0, label="x", profile="t", split="test", only=["beam"])


def test_ladder_value_labels_sit_clear_of_the_whiskers():
    row = evaluate([12, 50, 200, 900], ITEMS, "m", kind="fine-tuned").record()
    rows = ladder_rows([row], [("ours", "m")])
    ax = plot_ladder(rows, course=())
    label = next(t for t in ax.texts if t.get_text().strip().startswith("$"))
    assert label.get_position()[0] == pytest.approx(rows[0]["ci_high"])


def test_a_shipped_adapter_standing_in_for_notebook_06s_is_recorded_under_its_own_name(tmp_path):
    # notebook 08 finds notebook 06's generative rows by the "<model> + QLoRA (" prefix
    own = adapter_records_name("SmolLM2-135M-Instruct", tmp_path / "training" / "adapter")
    stand_in = adapter_records_name("SmolLM2-135M-Instruct", SHIPPED_ADAPTER)
    assert own == "SmolLM2-135M-Instruct + QLoRA"
    assert not f"{stand_in} (greedy)".startswith(f"{own} (")
    assert "shipped" in stand_in
