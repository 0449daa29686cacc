"""Helpers for the fine-tuning workbook: the logic the notebooks call, kept importable and tested.

One flat package (notebooks import `from helpers.lora import ...`), read in five groups:
- the math from scratch: quantization (absmax, zero-point, NF4/FP4, blockwise, double quant, PTQ/QAT), lora,
  memory (the planner);
- data: catalog (the sample-catalog generator; its table is data/catalog_products.json), curation, data (cached
  splits), chat (the [INST] format, chat templates, instruction sets);
- a run's settings: config (the schemas, their help, the checks), profiles (one literal per profile: its sizes and
  every run's settings; device checks), runplan (how a run executes on this machine, decided once before loading);
- model and training: models (embedded model, loading, the bitsandbytes guard), training, adapters (load, merge,
  score, upload, ship a trained adapter), distributed, sweeps
  (notebook 09), price_head (notebook 08), diagnosis (notebook 07), benchmark (tokens/s, memory, MFU);
- evaluation: evaluation (metrics), prices (reading a model's answer), inference (greedy, median and
  expected-price decoding, each scored), baselines, ladder (notebook 07's table, cited figures), plots (every figure);
- setup and running: paths, repository, run_notebooks, exercises.
"""
