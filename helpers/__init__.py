"""Helpers for the fine-tuning workbook: the logic the notebooks call, kept importable and tested.

Modules: profiles (sizes per profile, device), paths, models (embedded model, loading, bnb guard),
quantization, lora, catalog (sample data generator), curation, data (cached splits), evaluation,
prices (parsing model output), baselines, inference, training, plots, run_notebooks.
"""
