"""The memory profile's replay of an allocation trace (benchmarks/memory_profile.py), on a trace made by hand."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "memory_profile", Path(__file__).resolve().parents[1] / "benchmarks" / "memory_profile.py")
memory_profile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory_profile)
GIB = memory_profile.GIB


def frames(*names, filename="/x/site-packages/transformers/models/llama/modeling_llama.py"):
    return [{"filename": filename, "name": n, "line": 1} for n in names]


def test_the_peak_of_each_phase_lists_what_was_alive_then():
    weights = frames("from_pretrained")
    activation = frames("forward", "compute_loss", "training_step")
    gradient = frames("backward", "training_step")
    optimizer = [{"filename": "/x/torch/optim/adamw.py", "name": "_init_group", "line": 3}] + frames(
        "_inner_training_loop")
    evaluation = frames("forward", "compute_loss", "prediction_step", "evaluation_loop")
    trace = [
        {"action": "alloc", "addr": 1, "size": 2 * GIB, "frames": weights},
        {"action": "alloc", "addr": 2, "size": 5 * GIB, "frames": activation},
        {"action": "alloc", "addr": 3, "size": 1 * GIB, "frames": gradient},
        {"action": "alloc", "addr": 6, "size": 1 * GIB, "frames": []},  # autograd's thread: training peak, 9 GiB
        {"action": "free_requested", "addr": 6, "size": 1 * GIB},
        {"action": "free_requested", "addr": 2, "size": 5 * GIB},
        {"action": "free_completed", "addr": 2, "size": 5 * GIB},  # counted once, when it was freed
        {"action": "free_requested", "addr": 3, "size": 1 * GIB},
        {"action": "alloc", "addr": 4, "size": 1 * GIB, "frames": optimizer},
        {"action": "alloc", "addr": 5, "size": 3 * GIB, "frames": evaluation},  # evaluation peak: 6 GiB
        {"action": "segment_alloc", "addr": 9, "size": 50 * GIB},  # the allocator's reserve, not a tensor
        {"action": "free_requested", "addr": 5, "size": 3 * GIB},
    ]
    replayed = memory_profile.replay(trace)
    assert replayed["timeline"][-1][0] == 3 * GIB  # weights + optimizer state left
    assert max(t for t, _ in replayed["timeline"]) == 9 * GIB
    assert set(replayed["peaks"]) == {"setup (model, weights)", "training step", "training loop (optimizer, scheduler)",
                                      "evaluation"}
    total, blocks = replayed["peaks"]["training step"]
    table = memory_profile.breakdown(blocks)
    assert total == 9 * GIB
    assert table["by_category_gib"] == {"forward activations": 5.0, "weights and adapters": 2.0,
                                        "backward (gradients)": 1.0, "backward (autograd engine)": 1.0}
    assert next(iter(table["largest_sites_gib"])).startswith("transformers/models/llama/modeling_llama.py:")
    total, blocks = replayed["peaks"]["evaluation"]
    assert total == 6 * GIB
    assert memory_profile.breakdown(blocks)["by_category_gib"] == {
        "evaluation forward": 3.0, "weights and adapters": 2.0, "optimizer state (AdamW moments)": 1.0}


def test_the_peaks_of_several_runs_are_drawn_side_by_side(tmp_path):
    table = {"peak_gib": 9.0, "by_category_gib": {}, "largest_sites_gib": {"peft/tuners/lora/layer.py:forward:1": 5.0,
                                                                           "transformers/activations.py:forward:2": 1.0}}
    memory_profile.plot_peaks({"a": {"phases": {"training step": table}}, "b": {"phases": {"training step": table}}},
                              tmp_path / "peaks.png")
    assert (tmp_path / "peaks.png").stat().st_size > 10_000
