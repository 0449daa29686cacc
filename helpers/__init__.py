"""Helpers for the fine-tuning workbook: the logic the notebooks call, kept importable and tested.

Modules: profiles (sizes per profile, device), paths, models (embedded model, loading, bnb guard),
quantization, lora, catalog (sample data generator), curation, data (cached splits), evaluation,
prices (parsing model output), baselines, inference (greedy and expected-price decoding), training,
benchmark (tokens/s, memory, MFU), memory (the planner), distributed (data-parallel runs), sweeps
(notebook 08), chat (the [INST] format, messages, assistant-only masks), plots, run_notebooks.
"""
